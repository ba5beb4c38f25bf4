"""OME-Zarr (NGFF 0.4 on Zarr v2, 0.5 on Zarr v3) through zarr.

Opening reads the group attributes (and ``OME/METADATA.ome.xml`` where present)
only; the dask array reads the stored chunks (whole shards on Zarr v3) lazily.

Locations
---------
A local folder, or a URL that zarr opens through fsspec (``file://``, ``memory://``,
``s3://`` with ``s3fs``, ``gs://`` with ``gcsfs``, ``https://`` with ``aiohttp``...).
A URL is kept as the string given, never turned into a path; credentials and other
options come from the filesystem's own configuration (environment, config files).

Images
------
- A group with ``multiscales`` is one image (scene 0), as omio writes it.
- A bioformats2raw layout (``"bioformats2raw.layout": 3``) holds one image per
  series group (``0``, ``1``...; or the paths listed in ``OME``'s ``series``
  attribute); each series is a scene, named as in the OME-XML.

Axis rule
---------
NGFF axes are mapped by name (``t``, ``c``, ``z``, ``y``, ``x``) or, for other names,
by type (``time`` -> T, ``channel`` -> C); missing axes get size 1. Pass ``axes=``
(one letter per stored axis) to override.

Metadata
--------
Physical sizes come from the chosen level's ``scale`` transform, on the axes that
declare a unit (a unitless axis has no physical size). Channel names and colours
come from the OME-XML where it states them, else from ``omero``; instruments,
descriptions and annotations of the OME-XML are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omio import metadata, units
from omio.dims import normalize_axes, to_tzcyx
from omio.errors import DimensionError, FileFormatError, MetadataError, MissingDependencyError, UnsupportedFormatError
from omio.readers._base import ImageSource, SceneSelector, is_url, select_scene
from omio.readers._guard import GuardedArray

if TYPE_CHECKING:
    import pint
    import zarr
    from fsspec import AbstractFileSystem
    from ome_types import OME

__all__ = ["OmeZarrReader"]

_NAMES = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}
_TYPES = {"time": "T", "channel": "C"}


@dataclass(frozen=True)
class _Image:
    """Where one image of an OME-Zarr lives and what it is called."""

    group: str  # path of the image group inside the root ("" for the root itself)
    name: str | None
    ome_index: int | None  # its Image in OME/METADATA.ome.xml


def _ome_attrs(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """NGFF attributes: under ``"ome"`` (0.5) or at the top level (0.4 and before)."""
    inner = attrs.get("ome")
    return inner if isinstance(inner, Mapping) else attrs


def _location(path: Path | str) -> Path | str:
    """A URL stays the string given (a ``str`` below always means a URL); anything else is a local path."""
    return path if is_url(path) else Path(path)


def _inside(location: Path | str, sub: str) -> str:
    """``sub`` inside ``location``, as shown in messages."""
    if not sub:
        return str(location)
    return f"{location.rstrip('/')}/{sub}" if isinstance(location, str) else str(location / sub)


def _url_filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of ``url`` and the path in it; a clear error when its package is missing."""
    scheme = url.partition("://")[0]
    try:
        from fsspec.core import url_to_fs
    except ImportError as exc:
        raise MissingDependencyError(f"{url}: opening URLs needs the fsspec package: pip install fsspec") from exc
    try:
        fs, inner = url_to_fs(url)
    except ImportError as exc:  # fsspec knows the protocol, its implementation is not installed
        package = getattr(exc.__cause__, "name", None) or exc.name
        install = f": pip install {package}" if package else ""
        raise MissingDependencyError(
            f"{url}: opening {scheme}:// URLs needs fsspec's {scheme} filesystem, not installed ({exc}){install}"
        ) from exc
    except ValueError as exc:  # "Protocol not known"
        raise UnsupportedFormatError(f"{url}: no fsspec filesystem handles {scheme}:// URLs ({exc})") from exc
    return fs, inner


def _open_group(location: Path | str) -> zarr.Group:
    import zarr

    try:
        return zarr.open_group(location if isinstance(location, str) else str(location), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError, KeyError) as exc:
        raise FileFormatError(f"{location}: not a readable Zarr group ({exc})") from exc


def _subgroup(root: zarr.Group, location: Path | str, sub: str) -> zarr.Group:
    import zarr

    found = root.get(sub) if sub else root
    if not isinstance(found, zarr.Group):
        raise FileFormatError(f"{_inside(location, sub)}: not a readable Zarr group")
    return found


def _read_text(location: Path | str, key: str) -> str | None:
    """A plain file stored inside the Zarr hierarchy (``None`` when absent)."""
    if isinstance(location, str):
        fs, inner = _url_filesystem(location)
        target = f"{inner.rstrip('/')}/{key}"
        return fs.cat_file(target).decode("utf-8") if fs.isfile(target) else None
    file = location / key
    return file.read_text(encoding="utf-8") if file.is_file() else None


def _ome_xml(location: Path | str) -> OME | None:
    key = "OME/METADATA.ome.xml"
    xml = _read_text(location, key)
    if xml is None:
        return None
    try:
        return metadata.parse_ome_xml(xml)
    except Exception as exc:  # ome-types raises several pydantic/lxml error types
        raise MetadataError(f"{_inside(location, key)}: the OME-XML cannot be parsed ({exc})") from exc


def _series(root: zarr.Group, count_hint: int | None) -> list[str]:
    """Series group paths of a bioformats2raw layout."""
    import zarr

    ome_group = root.get("OME")
    if isinstance(ome_group, zarr.Group):
        listed = _ome_attrs(dict(ome_group.attrs)).get("series")
        if isinstance(listed, list) and listed:
            return [str(s) for s in listed]
    found: list[str] = []
    while isinstance(root.get(str(len(found))), zarr.Group) and (count_hint is None or len(found) < count_hint):
        found.append(str(len(found)))
    return found


def _images(location: Path | str) -> tuple[zarr.Group, list[_Image], OME | None]:
    """The root group, its images, and the OME-XML stored alongside."""
    root = _open_group(location)
    where = str(location)
    attrs = _ome_attrs(dict(root.attrs))
    ome = _ome_xml(location)
    if "multiscales" in attrs:
        name = _xml_name(ome, 0) if ome is not None and ome.images else _multiscale(where, attrs).get("name")
        return root, [_Image("", name or None, 0 if ome is not None and ome.images else None)], ome
    if "bioformats2raw.layout" in attrs:
        series = _series(root, len(ome.images) if ome is not None else None)
        if not series:
            raise FileFormatError(f"{where}: a bioformats2raw layout without image groups (0, 1, ...)")
        out = []
        for i, group in enumerate(series):
            if ome is not None and i < len(ome.images):
                out.append(_Image(group, _xml_name(ome, i), i))
            else:
                inner = _ome_attrs(dict(_subgroup(root, location, group).attrs))
                out.append(_Image(group, _multiscale(_inside(location, group), inner).get("name") or None, None))
        return root, out, ome
    if "plate" in attrs or "well" in attrs:
        raise FileFormatError(f"{where}: OME-Zarr HCS plates and wells are not supported; open one image group")
    raise FileFormatError(
        f"{where}: a Zarr group without OME-Zarr 'multiscales' metadata; give the folder of an OME-Zarr image"
    )


def _xml_name(ome: OME, index: int) -> str | None:
    return ome.images[index].name or None


def _multiscale(where: str, attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    found = attrs.get("multiscales")
    if not isinstance(found, list) or not found or not isinstance(found[0], Mapping):
        raise FileFormatError(f"{where}: the OME-Zarr attributes have no 'multiscales' list")
    first: Mapping[str, Any] = found[0]
    if not first.get("datasets"):
        raise FileFormatError(f"{where}: the OME-Zarr multiscales list no datasets (resolution levels)")
    return first


def _axes_letters(where: str, axes: Any, ndim: int) -> tuple[str, list[str | None]]:
    """TZCYX letters of the stored axes and their NGFF units."""
    if axes is None:  # NGFF 0.1 / 0.2: always 5D t, c, z, y, x
        axes = list("tczyx")[-ndim:]
    letters: list[str] = []
    unit_names: list[str | None] = []
    for axis in axes:
        entry = {"name": axis} if isinstance(axis, str) else dict(axis)
        name = str(entry.get("name", "")).lower()
        letter = _NAMES.get(name) or _TYPES.get(str(entry.get("type", "")))
        if letter is None or letter in letters:
            raise DimensionError(
                f"{where}: cannot map the OME-Zarr axis {entry.get('name')!r} onto TZCYX; "
                "pass axes= with one letter per stored axis"
            )
        letters.append(letter)
        unit = entry.get("unit")
        unit_names.append(str(unit) if unit else None)
    if len(letters) != ndim:
        raise FileFormatError(f"{where}: {len(letters)} axes in the metadata for a {ndim}-D array")
    return "".join(letters), unit_names


def _scale(where: str, multiscale: Mapping[str, Any], level: int, ndim: int) -> list[float]:
    """The product of the level's scale transforms and the multiscale-wide ones."""
    out = [1.0] * ndim
    dataset = multiscale["datasets"][level]
    for transforms in (dataset.get("coordinateTransformations", []), multiscale.get("coordinateTransformations", [])):
        for t in transforms or []:
            if t.get("type") != "scale":
                continue
            values = t.get("scale")
            if not isinstance(values, list) or len(values) != ndim:
                raise FileFormatError(f"{where}: a scale transform of level {level} does not have {ndim} values")
            out = [a * float(b) for a, b in zip(out, values, strict=True)]
    return out


def _physical(
    letters: str, unit_names: Sequence[str | None], scale: Sequence[float], where: str
) -> tuple[dict[str, pint.Quantity | None], pint.Quantity | None]:
    sizes: dict[str, pint.Quantity | None] = {"X": None, "Y": None, "Z": None}
    increment = None
    for letter, unit, value in zip(letters, unit_names, scale, strict=True):
        if unit is None or letter == "C" or not (math.isfinite(value) and value > 0):
            continue
        try:
            q = units.quantity(value, unit)
        except MetadataError as exc:
            raise MetadataError(f"{where}: axis {letter.lower()} has an unknown unit {unit!r}") from exc
        if letter == "T":
            increment = q if q.check("[time]") else None
        elif q.check("[length]"):
            sizes[letter] = q
    return sizes, increment


def _channels(
    omero: Any, ome: OME | None, ome_index: int | None, n_c: int
) -> tuple[list[str | None], list[Any], list[dict[str, Any]] | None]:
    """Channel names, colours and OME extras: the OME-XML where it states them, else omero."""
    names: list[str | None] = [None] * n_c
    colors: list[Any] = [None] * n_c
    extra: list[dict[str, Any]] | None = None
    entries = omero.get("channels") if isinstance(omero, Mapping) else None
    if isinstance(entries, list) and len(entries) == n_c:
        for i, ch in enumerate(entries):
            label, color = ch.get("label"), ch.get("color")
            names[i] = str(label) if label else None
            if isinstance(color, str) and len(color) == 6:
                colors[i] = tuple(int(color[k : k + 2], 16) for k in (0, 2, 4))
    if ome is not None and ome_index is not None and len(ome.images[ome_index].pixels.channels) == n_c:
        image = ome.images[ome_index]
        names = [x if x is not None else n for x, n in zip(metadata.channel_names(image), names, strict=True)]
        colors = [x if x is not None else c for x, c in zip(metadata.channel_colors(image), colors, strict=True)]
        extra = metadata.channel_descriptions(image)
    return names, colors, extra


def _array(group: zarr.Group, where: str, name: str) -> zarr.Array[Any]:
    import zarr

    try:
        found = group[name]
    except KeyError:
        raise FileFormatError(f"{where}: the resolution level {name!r} listed in multiscales is missing") from None
    if not isinstance(found, zarr.Array):
        raise FileFormatError(f"{where}: the resolution level {name!r} is not a Zarr array")
    return found


def _level_shape(shape: Sequence[int], letters: str) -> tuple[int, ...]:
    sizes = dict(zip(letters, shape, strict=True))
    return tuple(int(sizes.get(d, 1)) for d in "TZCYX")


class OmeZarrReader:
    """Reader for OME-Zarr images (NGFF 0.4 / Zarr v2 and 0.5 / Zarr v3, bioformats2raw layout)."""

    name = "ome-zarr"
    suffixes: tuple[str, ...] = (".zarr",)

    def sniff(self, path: Path | str, head: bytes) -> bool:
        """A folder (or URL) holding Zarr group metadata (``zarr.json``, or ``.zgroup`` / ``.zattrs``).

        Raises
        ------
        FileNotFoundError
            For a URL that does not exist.
        omio.errors.MissingDependencyError
            For a URL whose fsspec filesystem is not installed.
        """
        markers = ("zarr.json", ".zgroup", ".zattrs")
        location = _location(path)
        if isinstance(location, str):
            fs, inner = _url_filesystem(location)  # no folder test: HTTP servers list no folders
            if any(fs.isfile(f"{inner.rstrip('/')}/{m}") for m in markers):
                return True
            if not fs.exists(inner):
                raise FileNotFoundError(f"No such file or directory: '{location}'")
            return False
        return location.is_dir() and any((location / m).is_file() for m in markers)

    def scenes(self, path: Path | str) -> list[str | None]:
        """Names of the images: one for an image group, one per series for bioformats2raw."""
        return [image.name for image in _images(_location(path))[1]]

    def open(
        self,
        path: Path | str,
        *,
        scene: SceneSelector = 0,
        axes: str | None = None,
        level: int = 0,
    ) -> ImageSource:
        """Open one image at one resolution level lazily (reads metadata only)."""
        import dask.array as da
        from dask.base import tokenize

        location = _location(path)
        root, images, ome = _images(location)
        index = select_scene(location, scene, [i.name for i in images])
        image = images[index]
        where = _inside(location, image.group)
        group = _subgroup(root, location, image.group)
        attrs = _ome_attrs(dict(group.attrs))
        multiscale = _multiscale(where, attrs)
        datasets = multiscale["datasets"]
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < len(datasets):
            raise DimensionError(
                f"{where}: level {level!r} does not exist; this image has levels 0..{len(datasets) - 1}"
            )
        arrays = [_array(group, where, str(d["path"])) for d in datasets]
        array = arrays[level]
        letters, unit_names = _axes_letters(where, multiscale.get("axes"), array.ndim)
        stated = "file"
        if axes is not None:
            letters, stated = normalize_axes(axes, array.ndim), "user"
        chunks = array.shards or array.chunks
        if isinstance(location, str):  # no cheap modification time: the array's metadata stands for its version
            version_token: object = json.dumps(array.metadata.to_dict(), sort_keys=True, default=str)
        else:
            version_token = (location / image.group / str(datasets[level]["path"])).stat().st_mtime_ns
        data = da.from_array(
            GuardedArray(array, str(where)),
            chunks=chunks,
            asarray=False,
            fancy=False,
            name=f"omezarr-{tokenize(where, level, version_token, array.shape, str(array.dtype))}",
        )
        mapping = to_tzcyx(data, letters, stated_by=stated)
        sizes, increment = _physical(letters, unit_names, _scale(where, multiscale, level, array.ndim), where)
        n_c = int(mapping.data.shape[2])
        names, colors, extra = _channels(attrs.get("omero"), ome, image.ome_index, n_c)
        built = metadata.make_ome(
            mapping.data.shape,
            mapping.data.dtype,
            physical_sizes=sizes,
            time_increment=increment,
            channel_names=names,
            channel_colors=colors,
            channel_extra=extra,
            name=image.name,
        )
        if ome is not None and image.ome_index is not None:
            built = metadata.carry_image_description(built, ome, image.ome_index)
        version = attrs.get("version") or multiscale.get("version")
        return ImageSource(
            data=mapping.data,
            ome=built,
            path=location,
            format="ome-zarr",
            scenes=[i.name for i in images],
            scene=index,
            axes_rule=f"NGFF axes {','.join(letters.lower())}: {mapping.rule}",
            original_metadata={
                "ngff_version": str(version),
                "level": str(level),
                "multiscale_metadata": json.dumps(multiscale.get("metadata", {})),
            },
            levels=[_level_shape(a.shape, letters) for a in arrays],
        )
