"""Reader registry: which reader opens a path or URL.

Probe order: content first (each reader's ``sniff`` on the first bytes, or on the
folder), then the suffix only to explain what went wrong. Built-in readers come
first; readers from other packages join through the ``omio.readers`` entry-point
group and can never hide a built-in one.

A URL (``scheme://...``, e.g. ``s3://``, ``https://``, ``file://``, ``memory://``) is
opened by the OME-Zarr reader only, through zarr and fsspec; any other format must
be given as a local path.

Opening a file imports only the built-in readers probed before the one that
recognises it, and looks at installed entry points only when no built-in reader
does (scanning every installed distribution's metadata costs tens of milliseconds).

Third-party readers: a package declares a class implementing :class:`Reader` in the
``omio.readers`` entry-point group (``[project.entry-points."omio.readers"]`` with
``npy = "mypkg.npyreader:NpyReader"`` in its ``pyproject.toml``); omio instantiates
it with no arguments. A plugin that fails to load, does not implement the interface,
or reuses a built-in reader's name is skipped with a warning naming it. Plugin
authors check their reader with :func:`omio.testing.check_reader_conformance`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from omio.errors import FileFormatError, UnsupportedFormatError
from omio.lazy_ome import LazyOME
from omio.readers._base import ImageSource, Reader, SceneSelector, is_url
from omio.readers._guard import guarded_call, reading

if TYPE_CHECKING:
    from omio.readers.omezarr import OmeZarrReader

__all__ = ["ImageSource", "Reader", "SceneSelector", "find_reader", "is_url", "open_source", "readers", "scene_names"]

_BUILTIN = (
    "omio.readers.tiff:TiffReader",
    "omio.readers.czi:CziReader",
    "omio.readers.thorlabs:ThorlabsReader",
    "omio.readers.omezarr:OmeZarrReader",
    "omio.readers.nd2:Nd2Reader",
    "omio.readers.lif:LifReader",
    "omio.readers.oif:OifReader",
)
_HEAD_BYTES = 512


def _load(spec: str) -> Reader | None:
    module_name, _, cls_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None  # reader not present in this build
        raise
    reader: Reader = getattr(module, cls_name)()
    return reader


@cache
def _builtin(spec: str) -> Reader | None:
    return _load(spec)


def _builtin_readers() -> Iterator[Reader]:
    """The built-in readers in probe order, each imported when first reached."""
    for spec in _BUILTIN:
        reader = _builtin(spec)
        if reader is not None:
            yield reader


@cache
def readers() -> tuple[Reader, ...]:
    """All readers in probe order: built-ins first, then the ``omio.readers`` entry points."""
    found = list(_builtin_readers())
    names = {r.name for r in found}
    from importlib.metadata import entry_points

    for ep in entry_points(group="omio.readers"):
        try:
            reader = ep.load()()
        except Exception as exc:  # a broken plugin must not break omio
            warnings.warn(f"omio reader plugin {ep.name!r} ({ep.value}) failed to load: {exc}", stacklevel=2)
            continue
        if not isinstance(reader, Reader):
            warnings.warn(f"omio reader plugin {ep.name!r} does not implement the reader interface", stacklevel=2)
            continue
        if reader.name in names:
            warnings.warn(
                f"omio reader plugin {ep.name!r} reuses the built-in name {reader.name!r}; ignored", stacklevel=2
            )
            continue
        names.add(reader.name)
        found.append(reader)
    return tuple(found)


def _suffix_matches(path: Path, reader: Reader) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in reader.suffixes)


def _url_reader(url: str) -> OmeZarrReader:
    """The OME-Zarr reader, after checking that ``url`` is an OME-Zarr (the only format opened from URLs)."""
    from omio.readers.omezarr import OmeZarrReader

    reader = OmeZarrReader()
    if not reader.sniff(url, b""):
        raise UnsupportedFormatError(
            f"{url}: not a Zarr group; only OME-Zarr can be opened from a URL, give other formats as a local path"
        )
    return reader


def _sniff(reader: Reader, path: Path, head: bytes) -> bool:
    """``reader.sniff``, whose failures on unexpected content are omio errors naming the file."""
    with reading(path, f"tell whether it is a {reader.name} file"):
        return reader.sniff(path, head)


def find_reader(path: str | Path) -> Reader:
    """Return the reader that recognises ``path`` (a local path, or a URL of an OME-Zarr) by its content.

    Raises
    ------
    FileNotFoundError
        When the path or URL does not exist.
    FileFormatError
        When the file is empty, or its suffix claims a format its content is not.
    UnsupportedFormatError
        When no reader recognises it, or a URL is not an OME-Zarr.
    omio.errors.MissingDependencyError
        When the URL's filesystem needs a package that is not installed.
    """
    if is_url(path):
        return _url_reader(path)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file or directory: '{path}'")
    head = b""
    if path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
        if not head:
            raise FileFormatError(f"{path}: the file is empty (0 bytes); it was probably not written completely")
    for reader in _builtin_readers():
        if _sniff(reader, path, head):
            return reader
    for reader in readers()[len(tuple(_builtin_readers())) :]:  # plugins, loaded only now
        if _sniff(reader, path, head):
            return reader
    claimed = [r.name for r in readers() if path.is_file() and _suffix_matches(path, r)]
    if claimed:
        raise FileFormatError(
            f"{path}: the name says {claimed[0]} but the content is not (first bytes {head[:16]!r}); "
            "the file is corrupt, truncated at the start, or misnamed"
        )
    known = sorted({s for r in readers() for s in r.suffixes})
    what = "folder" if path.is_dir() else "file"
    raise UnsupportedFormatError(
        f"{path}: no omio reader recognises this {what}; supported: {', '.join(known)}"
        + (" (use omio.open_folder for a folder of images)" if path.is_dir() else "")
    )


def _named_reader(name: str, location: Path | str) -> Reader:
    """The reader called ``name``, after checking that it recognises ``location``'s content."""
    if is_url(location):
        if name != "ome-zarr":
            raise UnsupportedFormatError(f"{location}: only OME-Zarr is opened from a URL, not {name}")
        return _url_reader(location)
    path = Path(location)
    if not path.exists():
        raise FileNotFoundError(f"No such file or directory: '{path}'")
    reader = next((r for r in readers() if r.name == name), None)
    if reader is None:
        raise UnsupportedFormatError(f"{path}: no reader named {name!r}; known: {[r.name for r in readers()]}")
    head = b""
    if path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    if not _sniff(reader, path, head):
        try:
            found = f"its content is {find_reader(path).name}"
        except (UnsupportedFormatError, FileFormatError):
            found = "no reader recognises its content"
        raise UnsupportedFormatError(
            f"{path}: not a {name} file ({found}); omio.open(path) picks the reader from the content"
        )
    return reader


def open_source(
    path: str | Path,
    *,
    scene: SceneSelector = 0,
    axes: str | None = None,
    level: int = 0,
    reader: str | None = None,
) -> ImageSource:
    """Find the reader for ``path`` (a local path, or a URL of an OME-Zarr) and open one image lazily.

    With ``reader`` (a reader's ``name``: ``"tiff"``, ``"czi"``...) that reader is used,
    and a file whose content it does not recognise is an
    :class:`~omio.errors.UnsupportedFormatError` naming what the content is instead.

    Whatever a reader or its library raises on bad bytes (at opening, when the OME
    model is built, in the whole-image fast path) reaches the caller as an
    :class:`~omio.errors.OmioError` naming the file (:mod:`omio.readers._guard`); the
    dask tasks of the readers do the same at compute time.
    """
    location = path if is_url(path) else Path(path)
    with reading(location, "open it"):
        if reader is not None:
            source = _named_reader(reader, location).open(location, scene=scene, axes=axes, level=level)  # type: ignore[arg-type]
        elif is_url(path):
            source = _url_reader(path).open(path, scene=scene, axes=axes, level=level)
        else:
            source = find_reader(location).open(Path(path), scene=scene, axes=axes, level=level)
    _check_extent(location, source.data.shape)
    ome = source.ome.guarded(str(location)) if isinstance(source.ome, LazyOME) else source.ome
    read_into = source.read_into
    if read_into is not None:
        read_into = functools.partial(guarded_call, str(location), "read the whole image", read_into)
    return dataclasses.replace(source, ome=ome, read_into=read_into)


MAX_AXIS = 2**24
"""The largest size of one TZCYX axis a file may declare (16,777,216).

No microscope writes a larger one (a whole-slide scan is some 10**5 pixels wide); a
larger size is a damaged size field, and one float coordinate per index would take
gigabytes before a pixel is read.
"""


def _check_extent(location: Path | str, shape: tuple[int, ...]) -> None:
    """Refuse a declared shape with an axis beyond :data:`MAX_AXIS`."""
    huge = {axis: n for axis, n in zip("TZCYX", shape, strict=True) if n > MAX_AXIS}
    if huge:
        raise FileFormatError(
            f"{location}: the file declares {', '.join(f'{a}={n}' for a, n in huge.items())}, beyond the "
            f"{MAX_AXIS} per axis omio accepts; its size fields are damaged"
        )


def scene_names(path: str | Path) -> list[str | None]:
    """Names of the images in ``path`` (a local path, or a URL of an OME-Zarr); ``None`` where unnamed."""
    location = path if is_url(path) else Path(path)
    with reading(location, "list its images"):
        if is_url(path):
            return _url_reader(path).scenes(path)
        return find_reader(location).scenes(Path(path))
