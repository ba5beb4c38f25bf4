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

All levels are written by one ``dask.array.store`` call: each level-0 block is read
once and feeds the next level while it is in memory. Dask blocks are aligned to whole
shards (Zarr v3) or chunks (Zarr v2), so no two tasks write the same object and no
lock is needed; the same graph runs on the local threads or, unchanged, on the
active ``dask.distributed`` client. The folder is written under a hidden temporary
name and renamed when complete (:func:`omio.writers._output.atomic_directory`).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from omio import units
from omio._scheduler import scheduler
from omio.errors import DimensionError, MetadataError, MetadataNotStoredWarning, PixelTypeError
from omio.pyramid import downsample, level_count, level_geometry
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
_SHARD_BYTES = 16 * 2**20  # larger shards cost memory (two 64 MB shards in flight: ~470 MB peak) for no speed
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
_SOURCE_NAMESPACE = "omio:source"
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
    arrays, scales, translations = _levels(ds.data, steps, n_levels, downsample_z)
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
        _store(sources, targets, progress=progress, name=Path(path).name)
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
    annotations = [a for a in ome.structured_annotations or [] if a.namespace != _SOURCE_NAMESPACE]
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
) -> tuple[list[da.Array], list[dict[str, float]], list[dict[str, float]]]:
    """The lazy levels (TZCYX) and their per-axis scale and translation (:func:`omio.pyramid.level_geometry`).

    The translation of a level is where its first pixel centre lies relative to level
    0's: ``(f - 1) / 2`` level-0 pixels along an axis reduced by ``f``.
    """
    base = {axis: steps[axis][0] for axis in NGFF_AXES}
    factors = {"Z": 1, "Y": 1, "X": 1}
    arrays, scales, translations = [data], [dict(base)], [dict.fromkeys(NGFF_AXES, 0.0)]
    for _ in range(n_levels - 1):
        previous, scale = arrays[-1], scales[-1]
        if min(previous.shape[3], previous.shape[4]) < 2:
            raise DimensionError(f"cannot make {n_levels} levels from Y/X {data.shape[3:]}; ask for fewer levels")
        with_z = previous.shape[1] >= 2 and (
            downsample_z is True or (downsample_z == "auto" and scale["Z"] <= max(scale["Y"], scale["X"]))
        )
        arrays.append(downsample(previous, 2, z=with_z))
        factors = {"Z": factors["Z"] * (2 if with_z else 1), "Y": factors["Y"] * 2, "X": factors["X"] * 2}
        geometry = level_geometry({axis: base[axis] for axis in factors}, factors)
        scales.append({**base, **geometry.physical_sizes})
        translations.append({**dict.fromkeys(NGFF_AXES, 0.0), **geometry.offsets})
    return arrays, scales, translations


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


def _store(sources: list[da.Array], targets: list[Any], *, progress: bool, name: str) -> None:
    import dask.array as da

    if progress:
        from tqdm.dask import TqdmCallback

        with TqdmCallback(desc=f"writing {name}"):
            da.store(sources, targets, lock=False, scheduler=scheduler())
    else:
        da.store(sources, targets, lock=False, scheduler=scheduler())
