"""Streaming OME-TIFF writer.

Pixels are pulled from dask one slab of whole planes at a time (the next slab is
read while the current one is compressed) and handed to tifffile, which compresses
the strips or tiles of each plane on all cores. Peak memory is a few slabs whatever
the image size. The OME-XML comes from ome-types and goes, UTF-8, into the first
page's ImageDescription. The file appears at its final path only when complete.
"""

from __future__ import annotations

import math
import os
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from omio._scheduler import scheduler
from omio.errors import DimensionError, MetadataError
from omio.writers._output import atomic_output

if TYPE_CHECKING:
    import dask.array as da
    from ome_types import OME

    from omio.dataset import MicroscopyDataset

__all__ = ["write_ometiff"]

Compression = Literal["zlib", "zstd", "lzw", "none"]
_BIGTIFF_LIMIT = 2**32 - 2**25  # classic TIFF offsets are 32 bit; keep room for metadata
_LEVELS: dict[str, tuple[int, int]] = {"zlib": (0, 9), "zstd": (1, 22)}


def _codec(compression: str | None, level: int) -> tuple[str | None, dict[str, Any]]:
    name = (compression or "none").lower()
    if name not in ("zlib", "zstd", "lzw", "none", "deflate"):
        raise MetadataError(f"compression {compression!r} is not supported; use 'zlib', 'zstd', 'lzw' or 'none'")
    name = "zlib" if name == "deflate" else name
    if name in _LEVELS:
        lo, hi = _LEVELS[name]
        if not isinstance(level, int) or not (0 if name == "zlib" else lo) <= level <= hi:
            raise MetadataError(f"{name} level must be an integer from {lo} to {hi}, got {level!r}")
        if name == "zlib" and level == 0:
            return None, {}  # level 0 means "no compression", as in OMIO
        return name, {"level": level}
    if name == "lzw":
        return "lzw", {}
    return None, {}


def _tiff_ome(ds: MicroscopyDataset) -> OME:
    """The dataset's OME with the pixels mapped to this file's IFDs."""
    from ome_types.model import TiffData

    ome = ds.ome
    t, z, c, _, _ = ds.shape
    image = ome.images[0]
    pixels = image.pixels.model_copy(
        update={
            "dimension_order": "XYCZT",
            "big_endian": False,
            "interleaved": False,
            "metadata_only": None,
            "bin_data_blocks": [],
            "planes": [],
            "tiff_data_blocks": [TiffData(ifd=0, plane_count=t * z * c)],
        }
    )
    image = image.model_copy(update={"pixels": pixels})
    return ome.model_copy(update={"images": [image], "uuid": f"urn:uuid:{uuid.uuid4()}"})


def _slabs(arr: da.Array, target_bytes: int = 8 * 2**20) -> list[tuple[slice, slice]]:
    """T/Z ranges whose slabs (all C) are unions of whole chunks, in C order of planes.

    Consecutive Z chunks are grouped up to about ``target_bytes`` per slab, so each
    dask computation carries enough work to hide its overhead.
    """
    t_chunks, z_chunks = arr.chunks[0], arr.chunks[1]
    plane = int(np.prod(arr.shape[2:])) * arr.dtype.itemsize
    z_full = any(n > 1 for n in t_chunks)
    out: list[tuple[slice, slice]] = []
    t0 = 0
    for nt in t_chunks:
        if z_full:
            out.append((slice(t0, t0 + nt), slice(0, arr.shape[1])))
        else:
            z0 = 0
            start = 0
            for nz in z_chunks:
                if z0 > start and (z0 + nz - start) * plane > target_bytes:
                    out.append((slice(t0, t0 + nt), slice(start, z0)))
                    start = z0
                z0 += nz
            out.append((slice(t0, t0 + nt), slice(start, z0)))
        t0 += nt
    return out


def _planes(arr: da.Array, *, prefetch: int = 1) -> Iterator[np.ndarray[Any, Any]]:
    """Yield the YX planes of a TZCYX dask array in T, Z, C order, reading ahead."""
    slabs = _slabs(arr)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="omio-read") as pool:
        pending: deque[Future[np.ndarray[Any, Any]]] = deque()
        it = iter(slabs)
        for _ in range(prefetch):
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(_compute, arr, nxt))
        for _ in range(len(slabs)):
            slab = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(_compute, arr, nxt))
            native = slab.astype(slab.dtype.newbyteorder("="), copy=False)
            for plane in native.reshape((-1, *native.shape[-2:])):
                yield np.ascontiguousarray(plane)


def _compute(arr: da.Array, where: tuple[slice, slice]) -> np.ndarray[Any, Any]:
    return np.asarray(arr[where[0], where[1]].compute(scheduler=scheduler()))


def write_ometiff(
    ds: MicroscopyDataset,
    path: str | Path,
    *,
    compression: Compression | None = "zlib",
    level: int = 6,
    overwrite: bool = False,
    bigtiff: bool | None = None,
    tile: tuple[int, int] | None = None,
    progress: bool = False,
    maxworkers: int | None = None,
) -> Path:
    """Write a dataset to an OME-TIFF file.

    Parameters
    ----------
    ds
        The dataset (any size: pixels are streamed, never all loaded).
    path
        The output path; it is the path written unless it exists.
    compression
        ``"zlib"`` (deflate, default), ``"zstd"``, ``"lzw"`` or ``"none"``.
    level
        zlib 0-9 (0 = no compression, as in OMIO), zstd 1-22; ignored for lzw.
    overwrite
        Replace an existing file. Otherwise a free name ``<stem>_<n><suffix>``
        is chosen and returned.
    bigtiff
        Force (True) or forbid (False) BigTIFF; by default it is used when the
        uncompressed pixels could pass 4 GB.
    tile
        Write tiles of this (Y, X) shape (multiples of 16) instead of strips.
    progress
        Show a progress bar over planes.
    maxworkers
        Threads compressing segments (default: all cores).

    Returns
    -------
    Path
        The path written.
    """
    import tifffile

    codec, codec_args = _codec(compression, level)
    if tile is not None and (len(tile) != 2 or any(int(n) % 16 for n in tile)):
        raise DimensionError(f"tile must be two multiples of 16 (Y, X), got {tile!r}")
    t, z, c, y, x = ds.shape
    n_planes = t * z * c
    if n_planes == 0 or y == 0 or x == 0:
        raise DimensionError(f"cannot write an empty image of shape {ds.shape}")
    use_bigtiff = ds.nbytes > _BIGTIFF_LIMIT if bigtiff is None else bigtiff
    xml = _tiff_ome(ds).to_xml().encode("utf-8")
    arr = ds.data
    dtype = np.dtype(ds.dtype).newbyteorder("=")
    planes: Iterator[np.ndarray[Any, Any]] = _planes(arr)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_planes, unit="plane", desc=f"writing {Path(path).name}")
        planes = _counted(planes, bar)
    workers = maxworkers if maxworkers is not None else (len(os.sched_getaffinity(0)) if codec else 1)
    resolution = _resolution(ds)
    try:
        with atomic_output(path, overwrite=overwrite) as (tmp, result):
            with tifffile.TiffWriter(tmp, bigtiff=use_bigtiff, byteorder="<") as tw:
                tw.write(
                    planes if tile is None else _tiles(planes, tile),
                    shape=(n_planes, y, x),
                    dtype=dtype,
                    photometric="minisblack",
                    compression=codec,
                    compressionargs=codec_args or None,
                    tile=tuple(int(n) for n in tile) if tile is not None else None,
                    description=xml,
                    metadata=None,
                    software=f"omio {_version()}",
                    maxworkers=workers,
                    buffersize=16_000_000,
                    **resolution,
                )
    finally:
        if bar is not None:
            bar.close()
    return result[0]


def _counted(planes: Iterator[np.ndarray[Any, Any]], bar: Any) -> Iterator[np.ndarray[Any, Any]]:
    for plane in planes:
        yield plane
        bar.update(1)


def _tiles(planes: Iterator[np.ndarray[Any, Any]], tile: tuple[int, int]) -> Iterator[np.ndarray[Any, Any]]:
    ty, tx = (int(n) for n in tile)
    for plane in planes:
        for y0 in range(0, plane.shape[0], ty):
            for x0 in range(0, plane.shape[1], tx):
                block = plane[y0 : y0 + ty, x0 : x0 + tx]
                if block.shape != (ty, tx):
                    padded = np.zeros((ty, tx), dtype=plane.dtype)
                    padded[: block.shape[0], : block.shape[1]] = block
                    block = padded
                yield block


def _resolution(ds: MicroscopyDataset) -> dict[str, Any]:
    """TIFF resolution tags (pixels per centimetre) so plain TIFF readers see the scale too."""
    sizes = ds.physical_pixel_sizes
    qx, qy = sizes["X"], sizes["Y"]
    if qx is None or qy is None:
        return {}
    px_per_cm = [1.0 / float(q.to("centimeter").magnitude) for q in (qx, qy)]
    if not all(math.isfinite(v) and v > 0 for v in px_per_cm):
        return {}
    return {"resolution": (px_per_cm[0], px_per_cm[1]), "resolutionunit": "CENTIMETER"}


def _version() -> str:
    from omio import __version__

    return __version__
