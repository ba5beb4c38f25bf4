"""OME-Zarr (NGFF) writer: multiscale images through dask, in parallel and atomic.

Layout written (the image is the root group, so every NGFF reader opens the folder
directly)::

    out.ome.zarr/
        zarr.json            NGFF 0.5: attributes["ome"] = {version, multiscales, omero}
        0/ 1/ ...            resolution levels, axes t, c, z, y, x (NGFF's order)
        OME/zarr.json        a group holding the full OME model, as bioformats2raw does:
        OME/METADATA.ome.xml instruments, annotations and provenance survive the copy

NGFF 0.4 (``version="0.4"``) writes the same on Zarr v2 (``.zattrs`` / ``.zgroup``,
``/`` chunk separator, no shards).

Pixels of int64, uint64 and float16, which Zarr stores but OME-XML's ``PixelType``
cannot name, are written without the ``OME`` group; what only the OME-XML would hold
(plane table, annotations...) is named in a :class:`~omio.errors.MetadataNotStoredWarning`
issued before anything is written.

Pyramid levels come from :mod:`omio.pyramid` (block means). Every level is averaged
in Y and X; Z is averaged too with ``downsample_z=True``, or with ``"auto"`` at each
step where the Z spacing is not coarser than the Y/X spacing at that level (so a
typical confocal stack keeps its Z planes until the levels are about isotropic).

Level 0 is read once, in pieces, and every piece feeds all levels while it is in
memory (:class:`_LevelWriter`): its pixels go to the chunks of level 0 it falls in, its
block means to those of level 1, and so on. A Zarr v3 chunk is encoded and appended to
its shard's file as soon as it is complete (:class:`_ShardWriter`; Zarr itself would
hold the whole shard, its encoded chunks and the assembled file in memory), a Zarr v2
chunk written by Zarr, by a few threads. The pieces are taken in an order that
completes the shards of every level one after the other, and the pixels held at once
are bounded by ``_MEMORY_BUDGET``, so the memory used does not grow with the image.
With an active ``dask.distributed`` client, all levels are written by one
``dask.array.store`` call on the cluster instead (dask blocks aligned to whole shards
or chunks, so no two tasks write the same object). The folder is written under a
hidden temporary name and renamed when complete
(:func:`omio.writers._output.atomic_directory`).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from omio import units
from omio._block_tasks import block_tasks
from omio._scheduler import scheduler
from omio.errors import DimensionError, MetadataError, MetadataNotStoredWarning, PixelTypeError
from omio.ome_update import SOURCE_NAMESPACE
from omio.pyramid import block_mean, downsample, level_count, level_geometry
from omio.writers._output import atomic_directory

if TYPE_CHECKING:
    import dask.array as da
    import pint
    from ome_types import OME

    from omio.dataset import MicroscopyDataset

__all__ = ["NGFF_AXES", "Compression", "NgffVersion", "write_omezarr"]

NgffVersion = Literal["0.4", "0.5"]
Compression = Literal["blosc-zstd", "blosc-lz4", "zstd", "none"]
NGFF_AXES = "TCZYX"
"""Axis order of the stored arrays (NGFF requires time, channel, then space)."""
_TO_STORED = (0, 2, 1, 3, 4)  # TZCYX -> TCZYX (its own inverse)
_AXIS_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}
_PLANE_CHUNK = 1024
_SHARD_BYTES = 16 * 2**20  # larger shards cost memory (each level holds one while it fills) for no speed
_MEMORY_BUDGET = 32 * 2**20
"""Bytes of pixels the writer holds at most (pieces being read, incomplete chunks or shards,
those being written; see :class:`_LevelWriter`), unless the layout needs more: one per
level, a piece and one being written are always allowed."""
_WRITE_THREADS = 2
_NGFF_LENGTH_UNITS = frozenset(
    "angstrom attometer centimeter decimeter exameter femtometer foot gigameter hectometer inch kilometer "
    "megameter meter micrometer mile millimeter nanometer parsec petameter picometer terameter yard "
    "yoctometer yottameter zeptometer zettameter".split()
)
_NGFF_TIME_UNITS = frozenset(
    "attosecond centisecond day decisecond exasecond femtosecond gigasecond hectosecond hour kilosecond "
    "megasecond microsecond millisecond minute nanosecond petasecond picosecond second terasecond "
    "yoctosecond yottasecond zeptosecond zettasecond".split()
)
_LEVELS = {"blosc-zstd": (1, 9, 1), "blosc-lz4": (1, 9, 5), "zstd": (1, 22, 3), "none": (0, 0, 0)}
_DEFAULT_COLORS = ("FF0000", "00FF00", "0000FF", "FF00FF", "00FFFF", "FFFF00")
_ZARR_DTYPES = frozenset(
    "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 complex64 complex128".split()
)
"""The numpy dtypes both Zarr v2 and v3 store (v3 names no wider float or complex type)."""
_OME_CASTS = {
    "i": "'int32' if the values fit, or 'float64' (exact up to 2**53)",
    "u": "'uint32' if the values fit, or 'float64' (exact up to 2**53)",
    "f": "'float32' (exact for float16) or 'float64'",
    "c": "'complex128'",
}


def write_omezarr(
    ds: MicroscopyDataset,
    path: str | os.PathLike[str],
    *,
    version: NgffVersion = "0.5",
    levels: int | Literal["auto"] = 1,
    downsample_z: bool | Literal["auto"] = False,
    chunks: Mapping[str, int] | None = None,
    shards: Mapping[str, int] | None = None,
    compression: Compression = "blosc-zstd",
    compression_level: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write a dataset as an OME-Zarr image (NGFF 0.5 on Zarr v3, or 0.4 on Zarr v2).

    Parameters
    ----------
    ds
        The dataset (any size: blocks are streamed through dask, never all loaded).
    path
        The output folder (``*.ome.zarr``); it is the path written unless it exists.
    version
        ``"0.5"`` (Zarr v3, sharded; default) or ``"0.4"`` (Zarr v2, for older readers).
    levels
        Number of resolution levels including the full one, or ``"auto"`` for
        halving until Y and X fit in 256 pixels (:func:`omio.pyramid.level_count`).
    downsample_z
        Also halve Z at every level (``True``), never (``False``, default), or at the
        levels where the Z spacing is not coarser than the Y/X spacing (``"auto"``).
    chunks
        Chunk sizes by axis letter, e.g. ``{"Z": 16, "Y": 512, "X": 512}``; axes not
        given use one plane tile: 1 along T, Z and C, up to 1024 along Y and X.
    shards
        Shard sizes by axis letter (Zarr v3 only), multiples of the chunks. By default
        Z planes, then Y/X tiles, are grouped into shards of about 16 MB.
    compression
        ``"blosc-zstd"`` (default: Blosc with bit shuffle and zstd, level 1, which on
        camera images compresses better than plain zstd level 3 at about three times
        its speed), ``"blosc-lz4"`` (bit shuffle and LZ4, fastest), ``"zstd"`` or ``"none"``.
    compression_level
        The codec's level (Blosc 1-9, default 1 for zstd and 5 for LZ4; zstd 1-22, default 3).
    overwrite
        Replace an existing output (moved aside, then deleted once the new one is in
        place). Otherwise a free name ``<stem>_<n>.ome.zarr`` is chosen and returned.
    progress
        Show a progress bar over dask tasks (local schedulers only).

    Returns
    -------
    Path
        The folder written.

    Raises
    ------
    PixelTypeError
        For a dtype Zarr has no data type for (``longdouble``, ``clongdouble``), before
        anything is written.

    Warns
    -----
    MetadataNotStoredWarning
        For int64, uint64 or float16 pixels (no ``OME/METADATA.ome.xml``, as OME-XML
        cannot name them) when the dataset carries metadata only that file holds: a plane
        table, annotations, a description, instruments, channel acquisition fields.

    Examples
    --------
    >>> import numpy as np, omio, tempfile, pathlib
    >>> ds = omio.MicroscopyDataset.from_array(np.zeros((8, 64, 64), "uint16"), axes="ZYX",
    ...                                        physical_pixel_sizes={"X": 0.5, "Y": 0.5, "Z": 2.0})
    >>> out = write_omezarr(ds, pathlib.Path(tempfile.mkdtemp()) / "a.ome.zarr", levels=2)
    >>> omio.open(out, level=1).physical_pixel_sizes["X"]
    Quantity(1.0, "micrometer")
    """

    if version not in ("0.4", "0.5"):
        raise MetadataError(f"OME-Zarr version {version!r} is not supported; use '0.5' (Zarr v3) or '0.4' (Zarr v2)")
    if shards is not None and version == "0.4":
        raise DimensionError("shards need Zarr v3; write version='0.5' or leave shards unset")
    if ds.nbytes == 0:
        raise DimensionError(f"cannot write an empty image of shape {ds.shape}")
    with_xml = _check_pixel_type(ds, path)  # before anything is written
    _check_axes("chunks", chunks)
    _check_axes("shards", shards)
    n_levels = level_count(ds.shape) if levels == "auto" else int(levels)
    if n_levels < 1:
        raise DimensionError(f"levels must be >= 1 or 'auto', got {levels!r}")
    steps = _steps(ds)
    arrays, scales, translations, with_z = _levels(ds.data, steps, n_levels, downsample_z)
    codecs = _compressor(version, compression, compression_level, ds.dtype)
    xml = _ome_xml(ds.ome) if with_xml else None
    with atomic_directory(path, overwrite=overwrite) as (tmp, result):
        import zarr

        zarr_format: Literal[2, 3] = 3 if version == "0.5" else 2
        root = zarr.open_group(str(tmp), mode="w-", zarr_format=zarr_format)  # in place: keeps the lock
        sources: list[da.Array] = []
        targets: list[Any] = []
        for index, level in enumerate(arrays):
            stored = level.transpose(_TO_STORED)
            stored = stored.astype(stored.dtype.newbyteorder("<"), copy=False)  # big-endian input stored little-endian
            chunk, shard = _layout(stored.shape, stored.dtype.itemsize, chunks, shards, sharded=version == "0.5")
            target = root.create_array(
                str(index),
                shape=stored.shape,
                dtype=stored.dtype,
                chunks=chunk,
                shards=shard,
                compressors=codecs,
                fill_value=0,
                **_format_options(version),
            )
            sources.append(stored.rechunk(shard or chunk))
            targets.append(target)
        attrs = _image_attrs(ds, version, scales, _windows(ds), translations)
        root.attrs.update(attrs)
        if xml is not None:
            ome_group = root.create_group("OME")
            ome_group.attrs.update({"ome": {"version": version}} if version == "0.5" else {})
            (tmp / "OME" / "METADATA.ome.xml").write_text(xml, encoding="utf-8")
        stored0 = arrays[0].transpose(_TO_STORED)
        stored0 = stored0.astype(stored0.dtype.newbyteorder("<"), copy=False)
        if _distributed_client():
            _store(sources, targets, progress=progress, name=Path(path).name)
        else:
            factors = [(1, 1, 2 if z else 1, 2, 2) for z in with_z]
            folders = [tmp / str(index) for index in range(len(targets))]
            _LevelWriter(targets, factors, budget=_MEMORY_BUDGET, folders=folders).write(
                stored0, progress=progress, name=Path(path).name
            )
    return result[0]


def _check_pixel_type(ds: MicroscopyDataset, path: str | os.PathLike[str]) -> bool:
    """Whether ``OME/METADATA.ome.xml`` is written; refuse a dtype Zarr cannot hold, warn of what is not stored.

    Zarr stores every bool, integer (up to 64 bits), float16/32/64 and complex64/128
    array natively, and the NGFF metadata names no pixel type. OME-XML does: for a
    dtype OME's ``PixelType`` lacks (int64, uint64, float16) no ``METADATA.ome.xml`` is
    written, and a :class:`~omio.errors.MetadataNotStoredWarning` names what only it
    would have held (:func:`_not_in_ngff`).

    Raises
    ------
    PixelTypeError
        For a dtype Zarr has no data type for (``longdouble``, ``clongdouble``).
    """
    from omio import metadata

    found = metadata.pixel_type(ds.dtype)  # refuses dtypes that are not numbers
    dt = ds.dtype.newbyteorder("=")
    if dt.name in _ZARR_DTYPES:
        if not isinstance(found, str):
            return True
        lost = _not_in_ngff(ds)
        if lost:
            warnings.warn(
                f"{path}: OME-Zarr writes {dt.name} pixels without OME/METADATA.ome.xml (OME's PixelType has no "
                f"{dt.name}), so these are not stored: {'; '.join(lost)}. The sizes, units, origin, channel names "
                f"and colours are stored in the NGFF metadata. To keep everything, cast to an OME pixel type first: "
                f"ds.apply(lambda a: a.astype(T), dtype=T), T being {_OME_CASTS.get(dt.kind, repr('float64'))}",
                MetadataNotStoredWarning,
                stacklevel=4,  # the caller of ds.to_omezarr
            )
        return False
    raise PixelTypeError(
        f"{path}: OME-Zarr cannot store {dt.name} pixels: Zarr has no {dt.name} data type (it stores bool, "
        f"int8-int64, uint8-uint64, float16-float64, complex64 and complex128); nothing was written. Cast first "
        f"with ds.apply(lambda a: a.astype(T), dtype=T), T being {_OME_CASTS.get(dt.kind, repr('float64'))}"
    )


def _not_in_ngff(ds: MicroscopyDataset) -> list[str]:
    """What of the dataset's metadata only ``OME/METADATA.ome.xml`` holds (empty when NGFF holds it all).

    NGFF holds the name, sizes, units, origin (``translation``), channel names and
    colours (``omero``). Only the OME-XML holds the plane table beyond the origin, the
    structured annotations, the image description and acquisition date, instruments
    and objective settings, and the channels' acquisition fields (wavelengths, fluor...).
    omio's own provenance record (the ``omio:source`` annotation of a dataset read from
    a file) is not counted: reading the written store records its own.
    """
    from omio import metadata

    out: list[str] = []
    record = ds.record
    if record.replace(planes=()).planes != record.planes:
        table = ds.planes
        out.append(f"the plane table (ds.planes: {len(table)} planes with {', '.join(table.columns)})")
    ome = ds.ome
    image = ome.images[0]
    annotations = [a for a in ome.structured_annotations or [] if a.namespace != SOURCE_NAMESPACE]
    if annotations:
        namespaces = sorted({a.namespace or "(no namespace)" for a in annotations})
        noun = "annotation" if len(annotations) == 1 else "annotations"
        out.append(f"{len(annotations)} {noun} (ds.annotations; namespaces {', '.join(namespaces)})")
    if image.description:
        out.append("the image description")
    if image.acquisition_date is not None:
        out.append("the acquisition date")
    if ome.instruments or image.instrument_ref is not None or image.objective_settings is not None:
        out.append("the instrument and objective settings")
    fields = sorted({k for c in metadata.channel_descriptions(image) for k in c if not k.endswith("_unit")})
    if fields:
        out.append(f"the channels' {', '.join(fields)}")
    return out


def _check_axes(what: str, sizes: Mapping[str, int] | None) -> None:
    if sizes is None:
        return
    bad = [k for k in sizes if k not in NGFF_AXES]
    if bad:
        raise DimensionError(f"{what} has keys {bad}; use axis letters from TZCYX")
    small = {k: v for k, v in sizes.items() if not isinstance(v, (int, np.integer)) or v < 1}
    if small:
        raise DimensionError(f"{what} must be positive integers, got {small}")


def _steps(ds: MicroscopyDataset) -> dict[str, tuple[float, str | None]]:
    """Level-0 spacing and NGFF unit per axis (1.0 and no unit where unknown)."""
    out: dict[str, tuple[float, str | None]] = {"C": (1.0, None)}
    sizes: dict[str, pint.Quantity | None] = {**ds.physical_pixel_sizes, "T": ds.time_increment}
    for axis, q in sizes.items():
        out[axis] = (1.0, None) if q is None else _ngff_quantity(q, time=axis == "T")
    return out


def _ngff_origin(ds: MicroscopyDataset, steps: Mapping[str, tuple[float, str | None]]) -> dict[str, float]:
    """The dataset's origin per NGFF axis in that axis' unit (0 where unknown or the axis has no unit)."""
    out = dict.fromkeys(NGFF_AXES, 0.0)
    for axis, value in ds.record.origin.items():
        unit = steps[axis][1] if axis in steps else None
        if value is None or unit is None:
            continue
        converted = units.convert(value, unit)
        if converted is None:
            raise MetadataError(
                f"the origin {axis}={value.magnitude} {value.units} cannot be given in {unit}, the unit of axis "
                f"{axis.lower()}; state it with ds.with_metadata(origin=...)"
            )
        out[axis] = converted
    return out


def _ngff_quantity(q: pint.Quantity, *, time: bool) -> tuple[float, str]:
    """The value and NGFF unit name of a quantity (converted where NGFF lacks the unit)."""
    name = units.unit_name(q.units)
    allowed, fallback = (_NGFF_TIME_UNITS, "second") if time else (_NGFF_LENGTH_UNITS, "micrometer")
    if name not in allowed:
        q, name = q.to(fallback), fallback
    return float(q.magnitude), name


def _levels(
    data: da.Array,
    steps: Mapping[str, tuple[float, str | None]],
    n_levels: int,
    downsample_z: bool | Literal["auto"],
) -> tuple[list[da.Array], list[dict[str, float]], list[dict[str, float]], list[bool]]:
    """The lazy levels (TZCYX), their per-axis scale and translation, and whether each step halves Z.

    Scales and translations come from :func:`omio.pyramid.level_geometry`: the
    translation of a level is where its first pixel centre lies relative to level 0's,
    ``(f - 1) / 2`` level-0 pixels along an axis reduced by ``f``. The last list has one
    entry per step from a level to the next.
    """
    base = {axis: steps[axis][0] for axis in NGFF_AXES}
    factors = {"Z": 1, "Y": 1, "X": 1}
    arrays, scales, translations = [data], [dict(base)], [dict.fromkeys(NGFF_AXES, 0.0)]
    halves_z: list[bool] = []
    for _ in range(n_levels - 1):
        previous, scale = arrays[-1], scales[-1]
        if min(previous.shape[3], previous.shape[4]) < 2:
            raise DimensionError(f"cannot make {n_levels} levels from Y/X {data.shape[3:]}; ask for fewer levels")
        with_z = previous.shape[1] >= 2 and (
            downsample_z is True or (downsample_z == "auto" and scale["Z"] <= max(scale["Y"], scale["X"]))
        )
        arrays.append(downsample(previous, 2, z=with_z))
        halves_z.append(bool(with_z))
        factors = {"Z": factors["Z"] * (2 if with_z else 1), "Y": factors["Y"] * 2, "X": factors["X"] * 2}
        geometry = level_geometry({axis: base[axis] for axis in factors}, factors)
        scales.append({**base, **geometry.physical_sizes})
        translations.append({**dict.fromkeys(NGFF_AXES, 0.0), **geometry.offsets})
    return arrays, scales, translations, halves_z


def _layout(
    shape: tuple[int, ...],
    itemsize: int,
    chunks: Mapping[str, int] | None,
    shards: Mapping[str, int] | None,
    *,
    sharded: bool,
) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Chunk and shard shapes (TCZYX) for one level."""
    size = dict(zip(NGFF_AXES, shape, strict=True))
    want = {"T": 1, "C": 1, "Z": 1, "Y": _PLANE_CHUNK, "X": _PLANE_CHUNK, **(chunks or {})}
    chunk = {a: max(1, min(int(want[a]), size[a])) for a in NGFF_AXES}
    if not sharded:
        return tuple(chunk.values()), None
    if shards is not None:
        shard = {a: max(chunk[a], int(shards.get(a, chunk[a]))) for a in NGFF_AXES}
        uneven = {a: shard[a] for a in NGFF_AXES if shard[a] % chunk[a]}
        if uneven:
            raise DimensionError(f"shards {uneven} are not multiples of the chunks {chunk}")
    else:
        shard = _default_shard(size, chunk, itemsize)
    return tuple(chunk.values()), tuple(shard.values())


def _default_shard(size: Mapping[str, int], chunk: Mapping[str, int], itemsize: int) -> dict[str, int]:
    """Group chunks along Z, then Y and X, into shards of about ``_SHARD_BYTES``."""
    shard = dict(chunk)
    for axis in ("Z", "Y", "X"):
        nbytes = math.prod(shard.values()) * itemsize
        room = max(1, _SHARD_BYTES // nbytes)
        needed = math.ceil(size[axis] / chunk[axis])
        shard[axis] = chunk[axis] * min(room, needed)
    return shard


def _compressor(version: NgffVersion, compression: Compression, level: int | None, dtype: np.dtype[Any]) -> Any:
    if compression not in _LEVELS:
        raise MetadataError(f"compression {compression!r} is not supported; use one of {sorted(_LEVELS)}")
    if compression == "none":
        return None
    lo, hi, default = _LEVELS[compression]
    chosen = default if level is None else level
    if not isinstance(chosen, int) or not lo <= chosen <= hi:
        raise MetadataError(f"{compression} level must be an integer from {lo} to {hi}, got {level!r}")
    cname: Literal["zstd", "lz4"] = "zstd" if compression == "blosc-zstd" else "lz4"
    if version == "0.4":
        import numcodecs

        if compression == "zstd":
            return numcodecs.Zstd(level=chosen)
        return numcodecs.Blosc(cname=cname, clevel=chosen, shuffle=numcodecs.Blosc.BITSHUFFLE)
    from zarr.codecs import BloscCodec, ZstdCodec

    if compression == "zstd":
        return ZstdCodec(level=chosen)
    return BloscCodec(cname=cname, clevel=chosen, shuffle="bitshuffle", typesize=dtype.itemsize)


def _format_options(version: NgffVersion) -> dict[str, Any]:
    if version == "0.4":
        return {"chunk_key_encoding": {"name": "v2", "separator": "/"}}
    return {"dimension_names": [a.lower() for a in NGFF_AXES]}


def _image_attrs(
    ds: MicroscopyDataset,
    version: NgffVersion,
    scales: list[dict[str, float]],
    windows: list[tuple[float, float, float, float]],
    translations: list[dict[str, float]] | None = None,
) -> dict[str, Any]:
    """The NGFF attributes of the image group: multiscales and omero.

    Each level's ``translation`` (after its ``scale``) is the dataset's origin plus the
    level's entry in ``translations`` (where its first pixel centre lies relative to level
    0's); it is left out where all are 0.
    """
    from omio import __version__

    steps = _steps(ds)
    axes: list[dict[str, str]] = []
    for axis in NGFF_AXES:
        entry = {"name": axis.lower(), "type": _AXIS_TYPES[axis]}
        unit = steps[axis][1]
        if unit is not None:
            entry["unit"] = unit
        axes.append(entry)
    datasets: list[dict[str, Any]] = [
        {
            "path": str(i),
            "coordinateTransformations": [{"type": "scale", "scale": [scale[a] for a in NGFF_AXES]}],
        }
        for i, scale in enumerate(scales)
    ]
    origin = _ngff_origin(ds, steps)
    for dataset, shift in zip(datasets, translations or [{}] * len(datasets), strict=False):
        position = {a: origin[a] + shift.get(a, 0.0) for a in NGFF_AXES}
        if any(position.values()):
            dataset["coordinateTransformations"].append(
                {"type": "translation", "translation": [position[a] for a in NGFF_AXES]}
            )
    multiscale: dict[str, Any] = {
        "name": ds.name or "",
        "axes": axes,
        "datasets": datasets,
        "type": "mean",
        "metadata": {"method": "omio.pyramid.downsample", "version": __version__},
    }
    n_c = ds.sizes["C"]
    channels = []
    for i, (name, color, window) in enumerate(zip(ds.channel_names, ds.channel_colors, windows, strict=True)):
        channel: dict[str, Any] = {
            "color": _hex(color) if color is not None else ("FFFFFF" if n_c == 1 else _DEFAULT_COLORS[i % 6]),
            "window": dict(zip(("min", "max", "start", "end"), window, strict=True)),
            "active": True,
            "coefficient": 1,
            "family": "linear",
            "inverted": False,
        }
        if name is not None:
            channel["label"] = name
        channels.append(channel)
    omero = {"channels": channels, "rdefs": {"model": "greyscale" if n_c == 1 else "color"}}
    if version == "0.4":
        return {"multiscales": [{"version": "0.4", **multiscale}], "omero": omero}
    return {"ome": {"version": "0.5", "multiscales": [multiscale], "omero": omero}}


def _hex(color: tuple[int, int, int, int]) -> str:
    return "".join(f"{int(v):02X}" for v in color[:3])


def _windows(ds: MicroscopyDataset) -> list[tuple[float, float, float, float]]:
    """Per channel (min, max, start, end): the dtype range and the range of a subsampled middle plane.

    Reads one plane per channel at most (every ``n``-th pixel of the middle Z of T0).
    """
    _, z, _, y, x = ds.shape
    step = max(1, math.ceil(max(y, x) / 512))
    sample = np.asarray(ds.data[0, z // 2, :, ::step, ::step].compute(scheduler=scheduler()))
    out: list[tuple[float, float, float, float]] = []
    for plane in sample:
        if plane.dtype.kind == "c":  # a display window of complex pixels is one of their magnitudes
            plane = np.abs(plane)
        finite = plane[np.isfinite(plane)] if plane.dtype.kind == "f" else plane.ravel()
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if ds.dtype.kind in "iu":
            info = np.iinfo(ds.dtype)
            low, high = float(info.min), float(info.max)
        elif ds.dtype.kind == "b":
            low, high = 0.0, 1.0
        else:
            low, high = lo, hi
        out.append((low, high, lo, hi))
    return out


def _ome_xml(ome: OME) -> str:
    """The dataset's OME-XML for ``OME/METADATA.ome.xml`` (pixels stored outside the XML)."""
    from ome_types.model import MetadataOnly

    image = ome.images[0]
    pixels = image.pixels.model_copy(
        update={"metadata_only": MetadataOnly(), "tiff_data_blocks": [], "bin_data_blocks": [], "big_endian": False}
    )
    out = ome.model_copy(update={"images": [image.model_copy(update={"pixels": pixels})]})
    xml: str = out.to_xml()
    return xml


def _distributed_client() -> bool:
    """Whether a ``dask.distributed`` client is active (never imports ``distributed`` to find out)."""
    if "distributed" not in sys.modules:
        return False
    from distributed import default_client

    try:
        default_client()  # type: ignore[no-untyped-call, unused-ignore]
    except ValueError:
        return False
    return True


class _LevelWriter:
    """Write all levels of a pyramid from level-0 pieces, holding a bounded amount of pixels.

    Level 0 is read in pieces: the dataset's dask chunks where they fit in a quarter of
    ``budget``, split along Z, Y and X where they do not, each starting at a multiple
    of the product of all the factors along every axis, so that the block means of a
    piece are exactly those of the level. A piece feeds level 0, its means level 1, and
    so on. Each level collects what it is fed in the blocks it is written in (chunks
    where :class:`_ShardWriter` appends them to the shard files, else shards or Zarr v2
    chunks, written whole by Zarr): a block a piece covers whole is written from the
    piece, a block fed in parts is copied into a buffer until complete. Pieces are taken
    in the order of the shards of the last level, then of the level before it, and so
    on (then of their chunks), so each level has about one incomplete shard and block at
    a time. Complete blocks are encoded and written by ``_WRITE_THREADS`` threads while
    the next pieces are read.

    The pixels held are counted: the piece being read (twice, for its means), the
    incomplete blocks, and the blocks being written (twice, for their encoded bytes).
    Reading a piece, opening a block or writing one waits for writes to finish while
    the count would exceed ``budget``, so the memory used is at most about ``budget``
    (or, where the layout needs more, a piece, one incomplete block per level and one
    block being written), whatever the size of the image.

    Parameters
    ----------
    targets
        The Zarr arrays of the levels (TCZYX), full resolution first.
    factors
        For each level but the last, the factor along each TCZYX axis to the next.
    budget
        Bytes of pixels to hold at most (see above).
    folders
        The folders of the arrays on the local disk: their shards are then written chunk
        by chunk where :meth:`_ShardWriter.create` allows (by Zarr otherwise).
    """

    def __init__(
        self,
        targets: Sequence[Any],
        factors: Sequence[tuple[int, ...]],
        *,
        budget: int,
        folders: Sequence[Path] | None = None,
    ) -> None:
        self.targets = list(targets)
        self.shapes = [tuple(int(n) for n in t.shape) for t in targets]
        self.shards = [
            None if folders is None else _ShardWriter.create(t, folder)
            for t, folder in zip(targets, folders or targets, strict=True)
        ]
        """Per level, the writer of its shards chunk by chunk (or None: whole shards or chunks through Zarr)."""
        self.blocks = [
            tuple(int(n) for n in (t.chunks if shards is not None else (t.shards or t.chunks)))
            for t, shards in zip(targets, self.shards, strict=True)
        ]
        """Per level, the blocks written at once: chunks where its shards are written chunk by chunk."""
        self.factors = [tuple(int(f) for f in step) for step in factors]
        self.budget = int(budget)
        self.open: dict[tuple[int, ...], list[Any]] = {}
        """Incomplete blocks by (level, block index...): [buffer, pixels still missing]."""
        self.cumulative: list[tuple[int, ...]] = [(1,) * 5]
        """Per level, its factor along each TCZYX axis from level 0."""
        for step in self.factors:
            self.cumulative.append(tuple(a * b for a, b in zip(self.cumulative[-1], step, strict=True)))
        self.held = 0
        """Bytes counted now (see the class docstring)."""
        self.peak = 0
        """The most bytes counted at once."""
        self._lock = threading.Condition()
        self._writing = 0
        self._error: BaseException | None = None
        self._pending: list[Future[None]] = []
        self._pool: ThreadPoolExecutor | None = None

    # ---------------------------------------------------------------- pieces
    def piece_shape(self, chunks: Sequence[int], itemsize: int) -> tuple[int, ...]:
        """The shape of the level-0 pieces (TCZYX): ``chunks`` aligned to all factors, halved to a quarter budget."""
        align = self.cumulative[-1]
        size = self.shapes[0]
        piece = [1, 1] + [
            min(_round_up(c, a), _round_up(n, a)) for c, a, n in zip(chunks[2:], align[2:], size[2:], strict=True)
        ]
        while math.prod(piece) * itemsize > self.budget // 4:
            axis = max((2, 3, 4), key=lambda i: piece[i] / align[i])
            if piece[axis] <= align[axis]:
                break
            piece[axis] = _round_up(piece[axis] // 2, align[axis])
        return tuple(piece)

    def order(self, piece: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
        """The starts of the pieces (level-0 TCZYX), sorted by the blocks they feed, last level first.

        Made one shard of the last level at a time (its pieces sorted by the shards and
        chunks of the levels before it), so the list never holds all the pieces at once.
        """
        outer = [tuple(int(n) for n in (t.shards or t.chunks)) for t in self.targets]

        def key(start: tuple[int, ...]) -> tuple[int, ...]:
            out: list[int] = []
            for blocks in (outer, self.blocks):  # shards first, then their chunks
                for cumulative, block in zip(reversed(self.cumulative), reversed(blocks), strict=True):
                    out.extend(s // f // b for s, f, b in zip(start, cumulative, block, strict=True))
            return (*out, *start)

        span = [b * f for b, f in zip(outer[-1], self.cumulative[-1], strict=True)]  # a last-level shard, in level 0
        grid = [range(-(-n // w)) for n, w in zip(self.shapes[0], span, strict=True)]
        for index in itertools.product(*grid):
            ranges = [
                range(_round_up(i * w, p), min((i + 1) * w, n), p)
                for i, w, n, p in zip(index, span, self.shapes[0], piece, strict=True)
            ]
            yield from sorted(itertools.product(*ranges), key=key)

    # ---------------------------------------------------------------- writing
    def write(self, source: da.Array, *, progress: bool = False, name: str = "") -> None:
        """Write every level from ``source`` (level 0, TCZYX, the targets' dtype)."""
        from dask.base import optimize

        itemsize = source.dtype.itemsize
        piece = self.piece_shape([max(c) for c in source.chunks], itemsize)
        nbytes = 2 * math.prod(piece) * itemsize  # the piece and its means
        (pieces,) = optimize(source.rechunk(piece))  # type: ignore[no-untyped-call, unused-ignore]
        get = _local_get(pieces)
        total = math.prod(-(-n // p) for n, p in zip(self.shapes[0], piece, strict=True))
        bar = _progress_bar(total, f"writing {name}") if progress else None
        try:
            with ThreadPoolExecutor(_WRITE_THREADS, thread_name_prefix="omio-zarr") as self._pool:

                def keys_of(start: tuple[int, ...]) -> list[tuple[Any, ...]]:
                    return [(pieces.name, *(s // p for s, p in zip(start, piece, strict=True)))]

                for start, keys, tasks in block_tasks(pieces, self.order(piece), keys_of):
                    self._reserve(nbytes)
                    try:
                        (data,) = get(tasks, keys)
                        self.feed(0, start, np.asarray(data))
                    finally:
                        data = None
                        self._release(nbytes)
                    _release_freed_memory()
                    if bar is not None:
                        bar.update()
                for future in self._pending:
                    future.result()
        finally:
            if bar is not None:
                bar.close()
            for shards in self.shards:
                if shards is not None:
                    shards.close()
        if self.open:  # cannot happen: every pixel of every level is fed exactly once
            raise RuntimeError(f"blocks {sorted(self.open)} were never completed")

    def feed(self, level: int, start: tuple[int, ...], data: np.ndarray[Any, Any]) -> None:
        """Put ``data`` (TCZYX, at ``start`` of ``level``) into that level's blocks, its means into the next level."""
        shape, block = self.shapes[level], self.blocks[level]
        stop = tuple(s + n for s, n in zip(start, data.shape, strict=True))
        spans = [range(s // b, (e - 1) // b + 1) for s, e, b in zip(start, stop, block, strict=True)]
        for index in itertools.product(*spans):
            lo = tuple(i * b for i, b in zip(index, block, strict=True))
            hi = tuple(min(a + b, n) for a, b, n in zip(lo, block, shape, strict=True))
            first = tuple(max(a, s) for a, s in zip(lo, start, strict=True))
            last = tuple(min(b, e) for b, e in zip(hi, stop, strict=True))
            part = data[tuple(slice(a - s, b - s) for a, b, s in zip(first, last, start, strict=True))]
            if first == lo and last == hi:
                self._submit(level, lo, part, 0)
                continue
            entry = self.open.get((level, *index))
            if entry is None:
                size = tuple(b - a for a, b in zip(lo, hi, strict=True))
                self._reserve(math.prod(size) * data.itemsize)
                entry = self.open[(level, *index)] = [np.empty(size, data.dtype), math.prod(size)]
            entry[0][tuple(slice(a - o, b - o) for a, b, o in zip(first, last, lo, strict=True))] = part
            entry[1] -= part.size
            if entry[1] == 0:
                del self.open[(level, *index)]
                self._submit(level, lo, entry[0], entry[0].nbytes)
        if level + 1 < len(self.targets):
            step = self.factors[level]
            means = block_mean(data, {axis: f for axis, f in enumerate(step) if f > 1})
            if means.size:
                self.feed(level + 1, tuple(s // f for s, f in zip(start, step, strict=True)), means)

    def _submit(self, level: int, lo: tuple[int, ...], data: np.ndarray[Any, Any], held: int) -> None:
        """Write a complete block in a thread (``held``: the bytes of it counted already, those of its buffer)."""
        counted = 2 * data.nbytes
        self._reserve(counted - held)
        with self._lock:
            self._writing += 1
        self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]
        assert self._pool is not None  # set by write()
        self._pending.append(self._pool.submit(self._put, level, lo, data, counted))

    def _put(self, level: int, lo: tuple[int, ...], data: np.ndarray[Any, Any], counted: int) -> None:
        try:
            shards = self.shards[level]
            if shards is not None:
                shards.put(lo, data)
            else:
                self.targets[level][tuple(slice(a, a + n) for a, n in zip(lo, data.shape, strict=True))] = data
        except BaseException as error:
            with self._lock:
                self._error = self._error or error
            raise
        finally:
            del data
            _release_freed_memory()
            with self._lock:
                self._writing -= 1
            self._release(counted)

    def _reserve(self, nbytes: int) -> None:
        """Count ``nbytes`` more, first waiting for writes while the count would exceed the budget."""
        with self._lock:
            while self._writing and self.held + nbytes > self.budget and self._error is None:
                self._lock.wait()
            self.held += nbytes
            self.peak = max(self.peak, self.held)
        if self._error is not None:  # a block write failed: stop reading (the other writes are not waited for)
            raise self._error

    def _release(self, nbytes: int) -> None:
        with self._lock:
            self.held -= nbytes
            self._lock.notify_all()


class _ShardWriter:
    """Write the shards of a Zarr v3 array chunk by chunk, as its sharding codec lays them out.

    A shard is a file of encoded chunks followed by its index: for each chunk of the
    shard (C order), its offset and length as little-endian uint64 (both ``2**64 - 1``
    for a chunk not stored), then the CRC32C of the index. Zarr encodes a whole shard
    in memory (the pixels, the encoded chunks and the file); here each chunk is encoded
    (padded with the fill value at the array's edge, left out when all fill, as Zarr
    does) and appended to its shard's file as soon as it is complete, so a shard costs
    the memory of one chunk. Used only for the codecs omio writes (bytes, then blosc or
    zstd or nothing; the index in bytes and CRC32C at the end), read from the array's
    metadata; :meth:`create` returns None for any other.
    """

    def __init__(self, folder: Path, metadata: Any, encode: Callable[[np.ndarray[Any, Any]], bytes], crc: Any) -> None:
        self.folder = folder
        self.metadata = metadata
        self.shape = tuple(int(n) for n in metadata.shape)
        self.shard = tuple(int(n) for n in metadata.chunk_grid.chunk_shape)
        self.chunk = tuple(int(n) for n in metadata.codecs[0].chunk_shape)
        self.per_shard = tuple(s // c for s, c in zip(self.shard, self.chunk, strict=True))
        self.encode = encode
        self.crc = crc
        self.fill = metadata.fill_value
        self._lock = threading.Lock()
        self._open: dict[tuple[int, ...], _OpenShard] = {}

    @classmethod
    def create(cls, target: Any, folder: Path | None) -> _ShardWriter | None:
        """A writer for the sharded array ``target`` stored in ``folder``, or None where the codecs are others."""
        if folder is None or target.shards is None:
            return None
        try:
            import google_crc32c

            crc: Any = google_crc32c.value
        except ImportError:  # pragma: no cover - zarr requires one of the two
            try:
                import crc32c as crc32c_module

                crc = crc32c_module.crc32c
            except ImportError:
                return None
        codecs = json.loads(json.dumps(target.metadata.to_dict().get("codecs", [])))  # tuples to lists
        if len(codecs) != 1 or codecs[0].get("name") != "sharding_indexed":
            return None
        config = codecs[0].get("configuration", {})
        little = [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "bytes"}]
        index = config.get("index_codecs")
        if config.get("index_location", "end") != "end" or index not in (
            [little[0], {"name": "crc32c"}],
            [little[1], {"name": "crc32c"}],
        ):
            return None
        inner = config.get("codecs", [])
        if not inner or inner[0] not in little or len(inner) > 2:
            return None
        encode = _chunk_encoder(inner[1] if len(inner) == 2 else None)
        if encode is None:
            return None
        return cls(folder, target.metadata, encode, crc)

    def put(self, lo: tuple[int, ...], data: np.ndarray[Any, Any]) -> None:
        """Encode the chunk at ``lo`` (its pixels ``data``, cut at the array's edge) and append it to its shard."""
        coords = tuple(a // c for a, c in zip(lo, self.chunk, strict=True))
        if data.shape != self.chunk:  # Zarr stores an edge chunk whole, filled
            full = np.full(self.chunk, self.fill, data.dtype)
            full[tuple(slice(0, n) for n in data.shape)] = data
            data = full
        empty = bool(np.all(data == self.fill))
        encoded = None if empty else self.encode(np.ascontiguousarray(data))
        del data
        shard_index = tuple(c // p for c, p in zip(coords, self.per_shard, strict=True))
        within = tuple(c % p for c, p in zip(coords, self.per_shard, strict=True))
        with self._lock:
            shard = self._open.get(shard_index)
            if shard is None:
                shard = self._open[shard_index] = _OpenShard(self._chunks_in(shard_index), self.per_shard)
        with shard.lock:
            if encoded is not None:
                if shard.file is None:
                    path = self.folder / self.metadata.encode_chunk_key(shard_index)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shard.file = open(path, "wb")  # closed when the shard is complete
                shard.index[within] = (shard.end, len(encoded))
                shard.file.write(encoded)
                shard.end += len(encoded)
            shard.missing -= 1
            if shard.missing:
                return
            if shard.file is not None:
                table = shard.index.astype("<u8").tobytes()
                shard.file.write(table + int(self.crc(table)).to_bytes(4, "little"))
                shard.file.close()
        with self._lock:
            del self._open[shard_index]

    def _chunks_in(self, shard_index: tuple[int, ...]) -> int:
        """How many chunks of a shard hold pixels of the array (a shard at the edge may reach past it)."""
        counts = []
        for i, p, c, n in zip(shard_index, self.per_shard, self.chunk, self.shape, strict=True):
            first = i * p
            counts.append(max(0, min(first + p, -(-n // c)) - first))
        return math.prod(counts)

    def close(self) -> None:
        """Close the files of incomplete shards (after a failure)."""
        with self._lock:
            for shard in self._open.values():
                if shard.file is not None:
                    shard.file.close()
            self._open.clear()


class _OpenShard:
    """A shard being written: its file (once a chunk is stored), index, end offset and chunks still to come."""

    def __init__(self, missing: int, per_shard: tuple[int, ...]) -> None:
        self.file: Any = None
        self.index = np.full((*per_shard, 2), 2**64 - 1, np.uint64)
        self.end = 0
        self.missing = missing
        self.lock = threading.Lock()


def _chunk_encoder(codec: Mapping[str, Any] | None) -> Callable[[np.ndarray[Any, Any]], bytes] | None:
    """Encode a chunk's little-endian pixels as the Zarr v3 codec ``codec`` does (None: bytes only)."""
    if codec is None:
        return lambda a: a.tobytes()
    name, config = codec.get("name"), dict(codec.get("configuration", {}))
    if name == "blosc":
        import numcodecs

        shuffles = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
        options = {
            "cname": config["cname"],
            "clevel": config["clevel"],
            "shuffle": shuffles[config["shuffle"]],
            "blocksize": config.get("blocksize", 0),
        }
        try:
            blosc = numcodecs.Blosc(**options, typesize=config["typesize"])  # numcodecs >= 0.16, as Zarr passes it
        except TypeError:  # pragma: no cover - older numcodecs takes the type size from the array
            blosc = numcodecs.Blosc(**options)
        return lambda a: bytes(blosc.encode(a.reshape(-1).view(np.uint8)))
    if name == "zstd":
        import numcodecs

        zstd = numcodecs.Zstd(level=config.get("level", 0), checksum=config.get("checksum", False))
        return lambda a: bytes(zstd.encode(a.reshape(-1).view(np.uint8)))
    return None


def _release_freed_memory() -> None:
    """Return the memory freed by a block write to the system where the C library can (glibc's ``malloc_trim``).

    Compressing a shard frees many buffers of a few MB; glibc keeps such freed memory in
    its per-thread arenas, where it adds up to tens of MB of resident memory that later
    allocations do not reuse. Elsewhere this does nothing.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
    except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim
        return None
    return trim


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _local_get(collection: Any) -> Callable[..., Any]:
    """The local scheduler's ``get`` (omio's threads, or the scheduler set in ``dask.config``)."""
    from dask.base import get_scheduler

    chosen = scheduler()
    if chosen is not None:
        return chosen
    found: Callable[..., Any] | None = get_scheduler(collections=[collection])
    if found is None:  # pragma: no cover - dask always names one for a local collection
        import dask.threaded

        return dask.threaded.get
    return found


def _progress_bar(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="piece")


def _store(sources: list[da.Array], targets: list[Any], *, progress: bool, name: str) -> None:
    import dask.array as da

    if progress:
        from tqdm.dask import TqdmCallback

        with TqdmCallback(desc=f"writing {name}"):
            da.store(sources, targets, lock=False, scheduler=scheduler())
    else:
        da.store(sources, targets, lock=False, scheduler=scheduler())
