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
declare a unit (a unitless axis has no physical size); the origin (where the first
pixel lies) from its ``translation`` (after the multiscale-wide transforms), on the same
axes. The plane table (``DeltaT``, ``ExposureTime``, ``PositionX/Y/Z``) comes from the
OME-XML's ``Plane`` elements. Channel names and colours come from the OME-XML where it
states them, else from ``omero``; instruments, descriptions and annotations of the
OME-XML are kept.

Checks
------
Before a dataset is returned: every Zarr metadata file involved parses (a broken one
is named), zarr reads it without repairs, the image's NGFF attributes follow the spec
(``ome-zarr-models`` for 0.4 and 0.5, plus explicit checks of what is used: paths,
axes, positive finite scales, ``omero`` channels), every level array has sane sizes
(no zero or absurd extents, chunks of at least one pixel and at most 2 GiB, at most
ten million chunks), the levels form a pyramid that roughly fits their scales, Zarr
v3 ``dimension_names`` equal the axes, the OME-XML image count, ``Pixels`` sizes,
type and channels fit the store, and (on local stores) no chunk files lie beyond the
declared shape or under another key separator. When read, a Blosc chunk file must be
as long as its header says (Blosc decodes a cut frame into wrong pixels silently).

Not detectable from the store: a missing chunk is valid Zarr (it reads as the fill
value); flipped bytes inside a compressed chunk decode without error unless a
checksum codec (``crc32c``) protects it; metadata edited into another valid meaning
(byte order, memory order, a shape cut within the last chunk) fits its pixels.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard
from xml.etree import ElementTree

from omio import units
from omio.dims import normalize_axes, to_tzcyx
from omio.errors import (
    DimensionError,
    FileFormatError,
    MetadataError,
    MissingDependencyError,
    OmioError,
    UnsupportedFormatError,
)
from omio.lazy_ome import deferred_make_ome
from omio.readers._base import ImageSource, SceneSelector, is_url, select_scene
from omio.readers._guard import GuardedArray
from omio.record import PlaneInfo, misplaced_plane, plane_index, planes_from_xml
from omio.units import Measure

if TYPE_CHECKING:
    import zarr
    from fsspec import AbstractFileSystem
    from ome_types import OME

__all__ = ["OmeZarrReader"]

_NAMES = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}
_TYPES = {"time": "T", "channel": "C"}
_VERSIONS = ("0.1", "0.2", "0.3", "0.4", "0.5")  # NGFF versions this reader knows
_METADATA_FILES = ("zarr.json", ".zarray", ".zgroup", ".zattrs")
_MAX_EXTENT = 10**8  # pixels along one axis
_MAX_CHUNK_BYTES = 2**31  # one stored chunk (the most Blosc compresses)
_MAX_CHUNKS = 10_000_000  # chunks (shards on Zarr v3) of one level
_MIN_SCALE, _MAX_SCALE = 1e-30, 1e30  # a pixel's size in its axis unit
_LEVEL_SLACK = 4  # how far a level's shape may stray from what its scale implies


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


@contextlib.contextmanager
def _zarr_node(location: Path | str, sub: str) -> Iterator[None]:
    """zarr reading the metadata of the node ``sub``: its failures become FileFormatErrors naming the file.

    A metadata file zarr cannot parse is named with what is wrong with it; a document
    zarr reads only by repairing it (it warns) is refused, not read another way.
    """
    import zarr

    with warnings.catch_warnings():
        warnings.simplefilter("error", zarr.errors.ZarrUserWarning)
        try:
            yield
        except (OmioError, FileNotFoundError, PermissionError):
            raise
        except zarr.errors.ZarrUserWarning as exc:
            raise FileFormatError(
                f"{_inside(location, sub)}: the Zarr metadata is invalid and zarr would read it only by "
                f"repairing it ({exc})"
            ) from exc
        except Exception as exc:
            raise FileFormatError(
                _json_damage(location, sub) or f"{_inside(location, sub)}: zarr cannot read its metadata ({exc})"
            ) from exc


def _json_damage(location: Path | str, sub: str) -> str | None:
    """What is wrong with the first metadata file of ``sub`` that is not a JSON object, if any."""
    for name in _METADATA_FILES:
        key = f"{sub}/{name}" if sub else name
        data = _read_bytes(location, key)
        if data is None:
            continue
        where = _inside(location, key)
        try:
            parsed = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            return f"{where}: not UTF-8 text (byte {exc.start}); the file is damaged, rewrite it"
        except ValueError as exc:
            return f"{where}: not valid JSON ({exc}); the file is damaged or truncated, rewrite it"
        if not isinstance(parsed, dict):
            return f"{where}: holds the JSON value {_brief(parsed)}, not an object; the file is damaged, rewrite it"
    return None


def _open_group(location: Path | str) -> zarr.Group:
    import zarr

    with _zarr_node(location, ""):
        try:
            return zarr.open_group(location if isinstance(location, str) else str(location), mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
            raise FileFormatError(f"{location}: not a readable Zarr group ({exc})") from exc


def _subgroup(root: zarr.Group, location: Path | str, sub: str) -> zarr.Group:
    import zarr

    with _zarr_node(location, sub):
        found = root.get(sub) if sub else root
    if not isinstance(found, zarr.Group):
        raise FileFormatError(f"{_inside(location, sub)}: not a readable Zarr group")
    return found


def _read_bytes(location: Path | str, key: str) -> bytes | None:
    """A plain file stored inside the Zarr hierarchy (``None`` when absent)."""
    if isinstance(location, str):
        fs, inner = _url_filesystem(location)
        target = f"{inner.rstrip('/')}/{key}"
        return bytes(fs.cat_file(target)) if fs.isfile(target) else None
    file = location / key
    return file.read_bytes() if file.is_file() else None


@dataclass
class _OmeXml:
    """``OME/METADATA.ome.xml`` read with ElementTree; the ome-types model is parsed on first use."""

    where: str
    text: str
    images: list[ElementTree.Element]
    _model: OME | None = field(default=None, repr=False)

    def pixels(self, index: int) -> ElementTree.Element:
        """The ``Pixels`` element of image ``index``.

        Raises
        ------
        FileFormatError
            When the image has none.
        """
        pixels = self.images[index].find("{*}Pixels")
        if pixels is None:
            raise FileFormatError(f"{self.where}: Image {index} has no Pixels element; the OME-XML is damaged")
        return pixels

    def model(self) -> OME:
        """The OME model (parsed once, when first asked for)."""
        if self._model is None:
            from omio import metadata

            try:
                self._model = metadata.parse_ome_xml(self.text)
            except Exception as exc:  # ome-types raises several pydantic/lxml error types
                raise MetadataError(f"{self.where}: the OME-XML cannot be parsed ({exc})") from exc
        return self._model


def _ome_xml(location: Path | str) -> _OmeXml | None:
    key = "OME/METADATA.ome.xml"
    data = _read_bytes(location, key)
    if data is None:
        return None
    where = _inside(location, key)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"{where}: not UTF-8 text (byte {exc.start}); the file is damaged") from exc
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise MetadataError(f"{where}: the OME-XML cannot be parsed ({exc})") from exc
    return _OmeXml(where, text, root.findall("{*}Image"))


def _series(root: zarr.Group, location: Path | str, count_hint: int | None) -> list[str]:
    """Series group paths of a bioformats2raw layout."""
    import zarr

    with _zarr_node(location, "OME"):
        ome_group = root.get("OME")
    if isinstance(ome_group, zarr.Group):
        listed = _ome_attrs(dict(ome_group.attrs)).get("series")
        if isinstance(listed, list) and listed:
            return [str(s) for s in listed]
    found: list[str] = []
    while count_hint is None or len(found) < count_hint:
        with _zarr_node(location, str(len(found))):
            if not isinstance(root.get(str(len(found))), zarr.Group):
                break
        found.append(str(len(found)))
    return found


def _images(location: Path | str) -> tuple[zarr.Group, list[_Image], _OmeXml | None]:
    """The root group, its images, and the OME-XML stored alongside."""
    root = _open_group(location)
    where = str(location)
    attrs = _ome_attrs(dict(root.attrs))
    ome = _ome_xml(location)
    if "multiscales" in attrs:
        if ome is not None and not ome.images:
            raise FileFormatError(f"{_inside(location, 'OME/METADATA.ome.xml')}: declares no Image for the image here")
        name = _xml_name(ome, 0) if ome is not None and ome.images else _name(attrs)
        return root, [_Image("", name, 0 if ome is not None and ome.images else None)], ome
    if "bioformats2raw.layout" in attrs:
        series = _series(root, location, len(ome.images) if ome is not None else None)
        if not series:
            raise FileFormatError(f"{where}: a bioformats2raw layout without image groups (0, 1, ...)")
        if ome is not None and len(series) != len(ome.images):
            raise FileFormatError(
                f"{_inside(location, 'OME/METADATA.ome.xml')}: declares {len(ome.images)} images, the bioformats2raw "
                f"layout holds {len(series)} series ({', '.join(series)}); one of them is damaged or incomplete"
            )
        out = []
        for i, group in enumerate(series):
            if ome is not None and i < len(ome.images):
                out.append(_Image(group, _xml_name(ome, i), i))
            else:
                out.append(_Image(group, _name(_ome_attrs(dict(_subgroup(root, location, group).attrs))), None))
        return root, out, ome
    if "plate" in attrs or "well" in attrs:
        raise FileFormatError(f"{where}: OME-Zarr HCS plates and wells are not supported; open one image group")
    raise FileFormatError(
        f"{where}: a Zarr group without OME-Zarr 'multiscales' metadata; give the folder of an OME-Zarr image"
    )


def _xml_name(ome: _OmeXml, index: int) -> str | None:
    return ome.images[index].get("Name") or None


def _name(attrs: Mapping[str, Any]) -> str | None:
    """The image name of the first multiscale, for the scene list (checked when the image is opened)."""
    found = attrs.get("multiscales")
    first = found[0] if isinstance(found, list) and found else None
    name = first.get("name") if isinstance(first, Mapping) else None
    return name if isinstance(name, str) and name else None


def _attrs_file(group: zarr.Group, location: Path | str, sub: str) -> str:
    """The file holding the attributes of ``group``, as named in messages."""
    name = "zarr.json" if group.metadata.zarr_format == 3 else ".zattrs"
    return _inside(location, f"{sub}/{name}" if sub else name)


def _multiscale(file: str, attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The first multiscale of an image group, checked against the NGFF spec."""
    found = attrs.get("multiscales")
    if not isinstance(found, list) or not found or not isinstance(found[0], Mapping):
        raise FileFormatError(
            f"{file}: 'multiscales' must be a list of multiscale objects, found {_brief(found)}; "
            "the OME-Zarr attributes are damaged"
        )
    first: Mapping[str, Any] = found[0]
    version = str(attrs.get("version") or first.get("version") or "")
    if version and not version.startswith(_VERSIONS):
        raise FileFormatError(
            f"{file}: OME-Zarr version {version!r} is not one this reader knows ({', '.join(_VERSIONS)})"
        )
    if version.startswith(("0.4", "0.5")):
        _validate_ngff(file, version[:3], first)
    datasets = first.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise FileFormatError(
            f"{file}: multiscales 'datasets' must list the resolution levels, found {_brief(datasets)}"
        )
    paths = [d.get("path") if isinstance(d, Mapping) else None for d in datasets]
    if not all(isinstance(p, str) and p for p in paths) or len(set(paths)) != len(paths):
        raise FileFormatError(
            f"{file}: each multiscales dataset needs its own array 'path', found paths {paths}; "
            "the OME-Zarr attributes are damaged"
        )
    return first


def _validate_ngff(file: str, version: str, multiscale: Mapping[str, Any]) -> None:
    """Check a multiscale against the NGFF spec of ``version`` (0.4 or 0.5) with ome-zarr-models."""
    import pydantic
    from ome_zarr_models.exceptions import ValidationWarning
    from ome_zarr_models.v04.multiscales import Multiscale as Multiscale04
    from ome_zarr_models.v05.multiscales import Multiscale as Multiscale05

    model = Multiscale04 if version == "0.4" else Multiscale05
    try:
        with warnings.catch_warnings():  # transforms in the wrong order: the scale is read by its type
            warnings.simplefilter("ignore", ValidationWarning)
            model.model_validate(dict(multiscale))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"multiscales[0].{'.'.join(str(p) for p in e['loc'])}: {e['msg']}".replace("multiscales[0].: ", "")
            for e in exc.errors()[:3]
        )
        raise FileFormatError(
            f"{file}: the multiscales metadata does not follow OME-Zarr {version} ({problems})"
        ) from exc
    except (LookupError, TypeError, ArithmeticError) as exc:  # the validator's own checks trip over the damage
        raise FileFormatError(
            f"{file}: the multiscales metadata does not follow OME-Zarr {version} ({type(exc).__name__}: {exc})"
        ) from exc


def _brief(value: Any) -> str:
    """A JSON value for messages, cut short."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _axes_letters(file: str, axes: Any, ndim: int) -> tuple[str, list[str | None]]:
    """TZCYX letters of the stored axes and their NGFF units."""
    if axes is None:  # NGFF 0.1 / 0.2: always 5D t, c, z, y, x
        axes = list("tczyx")[-ndim:]
    if not isinstance(axes, list) or not all(
        isinstance(a, str) or (isinstance(a, Mapping) and isinstance(a.get("name"), str)) for a in axes
    ):
        raise FileFormatError(f"{file}: multiscales 'axes' must be a list of named axes, found {_brief(axes)}")
    letters: list[str] = []
    unit_names: list[str | None] = []
    for axis in axes:
        entry = {"name": axis} if isinstance(axis, str) else dict(axis)
        name = str(entry["name"]).lower()
        letter = _NAMES.get(name) or _TYPES.get(str(entry.get("type", "")))
        if letter is None or letter in letters:
            raise DimensionError(
                f"{file}: cannot map the OME-Zarr axis {entry['name']!r} onto TZCYX; "
                "pass axes= with one letter per stored axis"
            )
        letters.append(letter)
        unit = entry.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise FileFormatError(f"{file}: the unit of axis {name!r} is {_brief(unit)}, not a unit name")
        unit_names.append(unit or None)
    if len(letters) != ndim:
        raise FileFormatError(
            f"{file}: {len(letters)} axes in the multiscales metadata for a {ndim}-D array; "
            "the axes or the array metadata are damaged"
        )
    return "".join(letters), unit_names


def _numbers(values: Any, ndim: int, fits: Callable[[float], bool]) -> TypeGuard[list[float]]:
    """True for a list of ``ndim`` numbers (booleans are not numbers here) that each ``fits``."""
    return (
        isinstance(values, list)
        and len(values) == ndim
        and all(isinstance(v, int | float) and not isinstance(v, bool) and fits(v) for v in values)
    )


def _scale(file: str, multiscale: Mapping[str, Any], level: int, ndim: int) -> list[float]:
    """The product of the level's scale transforms and the multiscale-wide ones (positive and finite)."""
    out = [1.0] * ndim
    dataset = multiscale["datasets"][level]
    for transforms in (dataset.get("coordinateTransformations"), multiscale.get("coordinateTransformations")):
        if transforms is None:
            continue
        if not isinstance(transforms, list) or not all(isinstance(t, Mapping) for t in transforms):
            raise FileFormatError(
                f"{file}: 'coordinateTransformations' must be a list of transforms, found {_brief(transforms)}"
            )
        for t in transforms:
            if t.get("type") != "scale":
                continue
            values = t.get("scale")
            if not _numbers(values, ndim, lambda v: _MIN_SCALE <= v <= _MAX_SCALE):
                raise FileFormatError(
                    f"{file}: the scale of level {level} must be {ndim} numbers from {_MIN_SCALE:g} to "
                    f"{_MAX_SCALE:g}, found {_brief(values)}"
                )
            out = [a * float(b) for a, b in zip(out, values, strict=True)]
    return out


def _translation(file: str, multiscale: Mapping[str, Any], level: int, ndim: int) -> list[float]:
    """Where the level's first pixel lies, per array axis: its ``translation`` (and the multiscale-wide transforms).

    A dataset's transforms are a scale then a translation; the multiscale-wide ones apply
    to the result (a point ``x`` maps to ``(x * s1 + t1) * s2 + t2``). 0 where none is given.
    """
    shift = [0.0] * ndim
    dataset = multiscale["datasets"][level]
    for transforms in (dataset.get("coordinateTransformations"), multiscale.get("coordinateTransformations")):
        if not isinstance(transforms, list):
            continue  # (a malformed list is refused by _scale)
        for t in transforms:
            if not isinstance(t, Mapping):
                continue
            if t.get("type") == "scale" and transforms is multiscale.get("coordinateTransformations"):
                values = t.get("scale")
                if isinstance(values, list) and len(values) == ndim:
                    shift = [a * float(b) for a, b in zip(shift, values, strict=True)]
            if t.get("type") != "translation":
                continue
            values = t.get("translation")
            if not _numbers(values, ndim, lambda v: math.isfinite(v) and abs(v) <= _MAX_SCALE):
                raise FileFormatError(
                    f"{file}: the translation of level {level} must be {ndim} finite numbers, found {_brief(values)}"
                )
            shift = [a + float(b) for a, b in zip(shift, values, strict=True)]
    return shift


def _origin(
    letters: str, unit_names: Sequence[str | None], shift: Sequence[float], where: str
) -> dict[str, Measure | None]:
    """The origin per T/Z/Y/X axis from a translation, in the axis' unit (none without a unit or a shift)."""
    out: dict[str, Measure | None] = {}
    for letter, unit, value in zip(letters, unit_names, shift, strict=True):
        if unit is None or letter == "C" or value == 0:
            continue
        try:
            out[letter] = Measure(float(value), units.unit_name(unit))
        except MetadataError as exc:
            raise MetadataError(f"{where}: axis {letter.lower()} has an unknown unit {unit!r}") from exc
    return out


def _physical(
    letters: str, unit_names: Sequence[str | None], scale: Sequence[float], where: str
) -> tuple[dict[str, Measure | None], Measure | None]:
    sizes: dict[str, Measure | None] = {"X": None, "Y": None, "Z": None}
    increment = None
    for letter, unit, value in zip(letters, unit_names, scale, strict=True):
        if unit is None or letter == "C":
            continue
        try:
            m = Measure(float(value), units.unit_name(unit))
        except MetadataError as exc:
            raise MetadataError(f"{where}: axis {letter.lower()} has an unknown unit {unit!r}") from exc
        if letter == "T":
            increment = m if _of_kind(m, "second") else None
        elif _of_kind(m, "micrometer"):
            sizes[letter] = m
    return sizes, increment


def _of_kind(value: Measure, unit: str) -> bool:
    """Whether ``value`` converts to ``unit`` (a length to micrometres, a time to seconds)."""
    return units.convert(Measure(1.0, value.units), unit) is not None


def _channels(
    file: str, omero: Any, ome: _OmeXml | None, ome_index: int | None, n_c: int
) -> tuple[list[str | None], list[Any], bool]:
    """Channel names and colours, the OME-XML's names where it states them, else omero's.

    The third value is whether the OME-XML's channels describe these (their colours,
    where they state one, and their other fields are then taken from the model).
    """
    names: list[str | None] = [None] * n_c
    colors: list[Any] = [None] * n_c
    for i, (label, color) in enumerate(_omero_channels(file, omero, n_c)):
        names[i] = label
        colors[i] = None if color is None else tuple(int(color[k : k + 2], 16) for k in (0, 2, 4))
    if ome is None or ome_index is None:
        return names, colors, False
    channels = ome.pixels(ome_index).findall("{*}Channel")
    if len(channels) != n_c:
        return names, colors, False
    names = [c.get("Name") or n for c, n in zip(channels, names, strict=True)]
    return names, colors, True


def _carry(built: OME, source: _OmeXml, index: int) -> OME:
    """``built`` with what the OME-XML says about image ``index`` (:func:`omio.metadata.carry_image_description`)."""
    from omio import metadata

    return metadata.carry_image_description(built, source.model(), index)


def _ome_channel_fields(ome: OME, index: int, colors: Sequence[Any]) -> tuple[list[Any], list[dict[str, Any]]]:
    """The colours (the OME-XML's where stated, else ``colors``) and the OME channel fields of an image."""
    from omio import metadata

    image = ome.images[index]
    stated = metadata.channel_colors(image)
    return [x if x is not None else c for x, c in zip(stated, colors, strict=True)], metadata.channel_descriptions(
        image
    )


def _omero_channels(file: str, omero: Any, n_c: int) -> list[tuple[str | None, str | None]]:
    """Label and ``RRGGBB`` colour of each ``omero`` channel (none without an omero block)."""
    if omero is None:
        return []
    entries = omero.get("channels") if isinstance(omero, Mapping) else None
    if not isinstance(entries, list) or not all(isinstance(ch, Mapping) for ch in entries):
        raise FileFormatError(f"{file}: 'omero' must hold a list of 'channels', found {_brief(omero)}")
    if len(entries) != n_c:
        raise FileFormatError(f"{file}: 'omero' describes {len(entries)} channels for an image of {n_c}")
    out: list[tuple[str | None, str | None]] = []
    for i, ch in enumerate(entries):
        label, color = ch.get("label"), ch.get("color")
        if label is not None and not isinstance(label, str):
            raise FileFormatError(f"{file}: omero channel {i} has the label {_brief(label)}, not a string")
        if color is not None and not (isinstance(color, str) and len(color) == 6 and _is_hex(color)):
            raise FileFormatError(f"{file}: omero channel {i} has the colour {_brief(color)}, not RRGGBB hex")
        out.append((label or None, color))
    return out


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _array(group: zarr.Group, location: Path | str, sub: str, name: str) -> zarr.Array[Any]:
    import zarr

    where = _inside(location, sub)
    with _zarr_node(location, f"{sub}/{name}" if sub else name):
        try:
            found = group[name]
        except KeyError:
            raise FileFormatError(f"{where}: the resolution level {name!r} listed in multiscales is missing") from None
    if not isinstance(found, zarr.Array):
        raise FileFormatError(f"{where}: the resolution level {name!r} is not a Zarr array")
    _check_sizes(_inside(location, f"{sub}/{name}" if sub else name), found)
    return found


def _check_sizes(where: str, array: zarr.Array[Any]) -> None:
    """Refuse extents and chunk layouts no image has, before anything is sized from them."""
    shape, chunks = tuple(array.shape), tuple(array.chunks)
    read = tuple(array.shards or chunks)
    if not shape or not all(1 <= s <= _MAX_EXTENT for s in shape):
        raise FileFormatError(
            f"{where}: the array shape {list(shape)} has an empty or absurd axis (each must hold 1 to "
            f"{_MAX_EXTENT:,} pixels); the array metadata is damaged"
        )
    if len(chunks) != len(shape) or not all(c >= 1 for c in (*chunks, *read)):
        raise FileFormatError(f"{where}: the chunk shape {list(chunks)} has an axis under one pixel")
    chunk_bytes = math.prod(chunks) * array.dtype.itemsize
    if chunk_bytes > _MAX_CHUNK_BYTES:
        raise FileFormatError(
            f"{where}: one chunk {list(chunks)} would take {chunk_bytes:,} bytes (at most {_MAX_CHUNK_BYTES:,}); "
            "the chunk shape in the array metadata is damaged"
        )
    count = math.prod(-(-s // c) for s, c in zip(shape, read, strict=True))
    per_shard = math.prod(-(-r // c) for r, c in zip(read, chunks, strict=True))
    if per_shard > _MAX_CHUNKS:
        raise FileFormatError(
            f"{where}: a shard {list(read)} of chunks {list(chunks)} holds {per_shard:,} chunks "
            f"(at most {_MAX_CHUNKS:,}); the shard shape in the array metadata is damaged"
        )
    if count > _MAX_CHUNKS:
        raise FileFormatError(
            f"{where}: the array {list(shape)} in chunks of {list(read)} makes {count:,} chunks "
            f"(at most {_MAX_CHUNKS:,}); the shape or chunks are damaged, or open a lower resolution with level="
        )


def _check_levels(file: str, multiscale: Mapping[str, Any], arrays: Sequence[zarr.Array[Any]]) -> None:
    """The levels form a pyramid: valid scales, level 0's ndim and dtype, shapes that never grow.

    A level's shape is held to its scale loosely (within a factor of ``_LEVEL_SLACK``):
    writers round and label downsampling factors freely (a level scaled 2 that is 3.9
    times smaller exists), and a scale equal to level 0's says nothing (some writers
    scale every level 1).
    """
    first = arrays[0]
    paths = [str(d["path"]) for d in multiscale["datasets"]]
    scales = [_scale(file, multiscale, n, first.ndim) for n in range(len(arrays))]
    for n in range(1, len(arrays)):
        array, previous = arrays[n], arrays[n - 1]
        level = f"level {n} (array {paths[n]!r})"
        if array.ndim != first.ndim or array.dtype != first.dtype:
            raise FileFormatError(
                f"{file}: {level} is a {array.ndim}-D {array.dtype} array, level 0 a {first.ndim}-D {first.dtype} "
                "one; every level of a multiscale must match"
            )
        if any(s > p for s, p in zip(array.shape, previous.shape, strict=True)):
            raise FileFormatError(
                f"{file}: {level} has the shape {list(array.shape)}, larger than level {n - 1}'s "
                f"{list(previous.shape)}; the levels must shrink from full resolution"
            )
        for axis, (s0, sn, size0, size) in enumerate(zip(scales[0], scales[n], first.shape, array.shape, strict=True)):
            expected = size0 * s0 / sn
            if sn != s0 and not expected / _LEVEL_SLACK - 1 <= size <= expected * _LEVEL_SLACK + 1:
                raise FileFormatError(
                    f"{file}: {level} holds {size} pixels on axis {axis}, but its scale ({sn:g} against {s0:g} at "
                    f"level 0) makes about {expected:.1f} of level 0's {size0}; the scale or an array shape is damaged"
                )


def _check_dimension_names(file: str, axes: Any, paths: Sequence[str], arrays: Sequence[zarr.Array[Any]]) -> None:
    """Zarr v3 ``dimension_names``, where stated, are the multiscales axes."""
    if not isinstance(axes, list):
        return
    expected = [a if isinstance(a, str) else a.get("name") for a in axes]
    for path, array in zip(paths, arrays, strict=True):
        stated = getattr(array.metadata, "dimension_names", None)
        if stated is not None and any(n is not None for n in stated) and list(stated) != expected:
            raise FileFormatError(
                f"{file}: the array {path!r} names its dimensions {list(stated)}, the multiscales axes are "
                f"{expected}; one of them is damaged"
            )


_OME_PIXEL_NAMES = {"float32": "float", "float64": "double", "complex64": "complex", "complex128": "double-complex"}
"""OME ``Type`` names of the dtypes whose numpy names differ (int8..uint32 are named alike)."""


def _check_ome_pixels(location: Path | str, ome: _OmeXml, index: int, letters: str, array: zarr.Array[Any]) -> None:
    """The OME-XML ``Pixels`` of image ``index`` declare level 0's sizes and pixel type."""
    pixels = ome.pixels(index)
    sizes = dict(zip(letters, array.shape, strict=True))
    declared = {d: _count(ome, pixels, f"Size{d}", None) for d in "TZCYX"}
    found = {d: int(sizes.get(d, 1)) for d in "TZCYX"}
    problems = [f"Size{d}={declared[d]} but the array holds {found[d]}" for d in "TZCYX" if declared[d] != found[d]]
    channels = pixels.findall("{*}Channel")
    samples = sum(_count(ome, c, "SamplesPerPixel", 1) or 1 for c in channels)
    if channels and samples != declared["C"]:
        problems.append(f"{len(channels)} Channel elements hold {samples} channels, not SizeC={declared['C']}")
    try:
        indices = [plane_index(p) for p in pixels.findall("{*}Plane")]
    except ValueError:
        problems.append("a Plane's TheT, TheZ or TheC is not an integer")
    else:
        misplaced = misplaced_plane(indices, [found[d] for d in "TZC"])
        if misplaced is not None:
            problems.append("a Plane TheT={} TheZ={} TheC={} outside the sizes or given twice".format(*misplaced))
    dtype = array.dtype
    if dtype.kind in "biufc" and dtype.fields is None and not dtype.subdtype:  # others are reported later
        expected = "bit" if dtype.kind == "b" else _OME_PIXEL_NAMES.get(dtype.name, dtype.name)
        stated = pixels.get("Type")
        if stated != expected:
            problems.append(f"Type={stated} but the array holds {dtype}")
    if problems:
        raise FileFormatError(
            f"{_inside(location, 'OME/METADATA.ome.xml')}: Image {index} does not fit its pixels "
            f"({'; '.join(problems)}); the OME-XML or the array metadata is damaged"
        )


def _count(ome: _OmeXml, element: ElementTree.Element, attribute: str, default: int | None) -> int | None:
    """An integer attribute of the OME-XML (``default`` where absent).

    Raises
    ------
    MetadataError
        When it is not an integer.
    """
    text = element.get(attribute)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise MetadataError(f"{ome.where}: {attribute}={text!r} is not an integer; the OME-XML is damaged") from None


def _check_chunk_keys(folder: Path, array: zarr.Array[Any]) -> None:
    """On a local store, no chunk file lies beyond the declared shape or under the other key separator."""
    grid = [-(-s // c) for s, c in zip(array.shape, array.shards or array.chunks, strict=True)]
    origin = array.metadata.encode_chunk_key((0,) * array.ndim)
    beyond = [
        array.metadata.encode_chunk_key(tuple(g if i == axis else 0 for i, g in enumerate(grid)))
        for axis in range(array.ndim)
    ]
    found = next((key for key in beyond if (folder / key).is_file()), None)
    if found is not None:
        raise FileFormatError(
            f"{folder}: the chunk file {found!r} lies beyond the declared shape {list(array.shape)}; "
            "the shape in the array metadata is damaged"
        )
    separators = "/."
    for sep in separators:
        other = separators.replace(sep, "")
        if (
            array.ndim > 1
            and sep in origin
            and not (folder / origin).is_file()
            and (folder / origin.replace(sep, other)).is_file()
        ):
            raise FileFormatError(
                f"{folder}: the chunks are stored under {other!r}-separated keys, the array metadata declares "
                f"{sep!r}; the array metadata is damaged"
            )


def _blosc_checked(array: zarr.Array[Any], location: Path | str) -> zarr.Array[Any]:
    """``array`` with its whole-chunk reads checked by :func:`_check_blosc_frame`, where its chunks are Blosc frames.

    Blosc decodes a truncated frame without an error, into wrong pixels; its header
    states the frame's length, so a short chunk file is caught before decoding. Inside
    a shard the index (checksummed) locates each chunk, so shards need no such check.
    """
    import zarr

    meta = array.metadata
    if meta.zarr_format == 2:
        blosc = getattr(meta.compressor, "codec_id", None) == "blosc"
    else:
        blosc = isinstance(meta.codecs[-1], zarr.codecs.BloscCodec)
    if not blosc:
        return array
    store = _blosc_store_class()(array.store, str(location))
    return zarr.open_array(store=store, path=array.path, mode="r")


def _check_blosc_frame(location: str, key: str, header: bytes, size: int) -> None:
    """A stored Blosc frame of ``size`` bytes is as long as its header declares."""
    declared = int.from_bytes(header[12:16], "little") if len(header) >= 16 else None
    if declared != size:
        stated = "no Blosc header" if declared is None else f"a Blosc header declaring {declared:,} bytes"
        raise FileFormatError(
            f"{_inside(location, key)}: the chunk file holds {size:,} bytes and {stated}; "
            "the chunk is truncated or damaged"
        )


@functools.cache
def _blosc_store_class() -> type[Any]:
    """The zarr store checking Blosc frames, made on first use (zarr is imported lazily)."""
    from zarr.abc.store import ByteRequest
    from zarr.core.buffer import Buffer, BufferPrototype
    from zarr.storage import WrapperStore

    class _BloscFrames(WrapperStore[Any]):
        def __init__(self, store: Any, location: str) -> None:
            super().__init__(store)
            self.location = location

        def _with_store(self, store: Any) -> _BloscFrames:
            return type(self)(store, self.location)

        async def get(
            self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
        ) -> Buffer | None:
            found = await super().get(key, prototype, byte_range)
            if found is not None and byte_range is None and key.rsplit("/", 1)[-1] not in _METADATA_FILES:
                _check_blosc_frame(self.location, key, found.as_numpy_array()[:16].tobytes(), len(found))
            return found

    _BloscFrames.__qualname__ = "_BloscFrames"  # pickled by name: see __getattr__
    _BloscFrames.__module__ = __name__
    return _BloscFrames


def __getattr__(name: str) -> Any:
    """``_BloscFrames``, the store class made by :func:`_blosc_store_class` (found by name when unpickled)."""
    if name == "_BloscFrames":
        return _blosc_store_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        file = _attrs_file(group, location, image.group)
        attrs = _ome_attrs(dict(group.attrs))
        multiscale = _multiscale(file, attrs)
        datasets = multiscale["datasets"]
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < len(datasets):
            raise DimensionError(
                f"{where}: level {level!r} does not exist; this image has levels 0..{len(datasets) - 1}"
            )
        paths = [str(d["path"]) for d in datasets]
        arrays = [_array(group, location, image.group, p) for p in paths]
        array = arrays[level]
        letters, unit_names = _axes_letters(file, multiscale.get("axes"), arrays[0].ndim)
        _check_levels(file, multiscale, arrays)
        _check_dimension_names(file, multiscale.get("axes"), paths, arrays)
        if ome is not None and image.ome_index is not None:
            _check_ome_pixels(location, ome, image.ome_index, letters, arrays[0])
        if not isinstance(location, str):
            for p, a in zip(paths, arrays, strict=True):
                _check_chunk_keys(location / image.group / p, a)
        stated = "file"
        if axes is not None:
            letters, stated = normalize_axes(axes, array.ndim), "user"
        chunks = array.shards or array.chunks
        if isinstance(location, str):  # no cheap modification time: the array's metadata stands for its version
            version_token: object = json.dumps(array.metadata.to_dict(), sort_keys=True, default=str)
        else:
            version_token = (location / image.group / paths[level]).stat().st_mtime_ns
        array_where = _inside(location, f"{image.group}/{paths[level]}" if image.group else paths[level])
        data = da.from_array(
            GuardedArray(_blosc_checked(array, location), array_where),
            chunks=chunks,
            asarray=False,
            fancy=False,
            name=f"omezarr-{tokenize(where, level, version_token, array.shape, str(array.dtype))}",
        )
        if not data.dtype.isnative:  # a big-endian store (Zarr v2 '>u2'): the same values in native order
            data = data.astype(data.dtype.newbyteorder("="))
        mapping = to_tzcyx(data, letters, stated_by=stated)
        sizes, increment = _physical(letters, unit_names, _scale(file, multiscale, level, array.ndim), where)
        origin = _origin(letters, unit_names, _translation(file, multiscale, level, array.ndim), where)
        n_c = int(mapping.data.shape[2])
        names, colors, described = _channels(file, attrs.get("omero"), ome, image.ome_index, n_c)
        planes: tuple[PlaneInfo, ...] = ()
        if ome is not None and image.ome_index is not None and stated == "file":
            try:
                planes = planes_from_xml(ome.pixels(image.ome_index))
            except ValueError as exc:
                raise MetadataError(f"{ome.where}: Image {image.ome_index}: a Plane's {exc}") from exc
        source, ome_index = ome, image.ome_index

        def later() -> dict[str, Any]:
            if source is None or ome_index is None or not described:
                return {"channel_colors": colors}
            colours, extra = _ome_channel_fields(source.model(), ome_index, colors)
            return {"channel_colors": colours, "channel_extra": extra}

        lazy = deferred_make_ome(
            mapping.data.shape,
            mapping.data.dtype,
            physical_sizes=sizes,
            time_increment=increment,
            channel_names=names,
            name=image.name,
            planes=planes,
            origin=origin,
            later=later,
        )
        if source is not None and ome_index is not None:
            lazy = lazy.then(functools.partial(_carry, source=source, index=ome_index))
        version = attrs.get("version") or multiscale.get("version")
        return ImageSource(
            data=mapping.data,
            ome=lazy,
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
