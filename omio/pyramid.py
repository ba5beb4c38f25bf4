"""Resolution pyramids: lazy downsampling of TZCYX dask arrays.

Every writer that stores resolution levels (OME-Zarr multiscales, OME-TIFF SubIFDs)
builds them here, so all formats hold the same pixels at the same level. A level is
the previous one averaged over ``factor`` x ``factor`` blocks in Y and X (and in Z when
asked), with the trailing rows or columns that do not fill a whole block dropped
(``floor(n / factor)``, as NGFF and OME-TIFF readers expect). Integer data is averaged
with round-half-up in a wider integer type, never through float64, so a level costs
little more than reading its input.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

__all__ = ["downsample", "level_count", "pyramid"]

_AXIS = {"T": 0, "Z": 1, "C": 2, "Y": 3, "X": 4}


def _block_mean(block: np.ndarray[Any, Any], factors: dict[int, int]) -> np.ndarray[Any, Any]:
    """Average non-overlapping blocks of ``block`` (whose sizes are multiples of ``factors``)."""
    shape: list[int] = []
    reduce_axes: list[int] = []
    for axis, size in enumerate(block.shape):
        f = factors.get(axis, 1)
        shape.append(size // f)
        if f > 1:
            shape.append(f)
            reduce_axes.append(len(shape) - 1)
    count = int(np.prod([factors.get(a, 1) for a in range(block.ndim)]))
    if np.issubdtype(block.dtype, np.integer):
        return _integer_block_mean(block, factors, count)
    view = block.reshape(shape)
    if block.dtype == np.bool_:
        return view.mean(axis=tuple(reduce_axes)) >= 0.5
    wide = np.complex128 if np.iscomplexobj(block) else np.float64  # complex keeps its imaginary part
    return view.mean(axis=tuple(reduce_axes), dtype=wide).astype(block.dtype)


def _integer_block_mean(block: np.ndarray[Any, Any], factors: dict[int, int], count: int) -> np.ndarray[Any, Any]:
    """Round-half-up block mean of integers: strided adds in a wide enough type (faster than a reduce)."""
    signed = np.issubdtype(block.dtype, np.signedinteger)
    wide = block.dtype.itemsize <= 2 and count <= 2**15
    acc = np.dtype((np.int32 if wide else np.int64) if signed else (np.uint32 if wide else np.uint64))
    total: np.ndarray[Any, Any] = block
    for axis, f in factors.items():
        parts = [total[(slice(None),) * axis + (slice(k, None, f),)] for k in range(f)]
        summed = np.add(parts[0], parts[1], dtype=acc)
        for part in parts[2:]:
            summed += part
        total = summed
    return ((total + count // 2) // count).astype(block.dtype)


def downsample(data: da.Array, factor: int = 2, *, z: bool = False) -> da.Array:
    """One pyramid step: average ``factor`` x ``factor`` blocks in Y and X (and Z if ``z``).

    Parameters
    ----------
    data
        TZCYX dask array.
    factor
        Integer reduction factor per downsampled axis (>= 2).
    z
        Also reduce Z by ``factor`` (for near-isotropic volumes).

    Returns
    -------
    dask.array.Array
        The lazily downsampled array, same dtype, sizes ``floor(n / factor)``.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> a = da.from_array(np.arange(16, dtype="uint8").reshape(1, 1, 1, 4, 4))
    >>> downsample(a).compute()[0, 0, 0]
    array([[ 3,  5],
           [11, 13]], dtype=uint8)
    """
    if factor < 2:
        raise ValueError(f"factor must be >= 2, got {factor}")
    factors = {_AXIS["Y"]: factor, _AXIS["X"]: factor}
    if z:
        factors[_AXIS["Z"]] = factor
    keep = tuple(
        slice(0, (n // factors[a]) * factors[a]) if a in factors else slice(None) for a, n in enumerate(data.shape)
    )
    trimmed = data[keep]
    if 0 in trimmed.shape:
        raise ValueError(f"cannot downsample shape {data.shape} by {factor}: an axis would be empty")
    chunks = tuple(_aligned(c, factors[a]) if a in factors else c for a, c in enumerate(trimmed.chunks))
    aligned = trimmed.rechunk(chunks)
    out_chunks = tuple(tuple(n // factors[a] for n in c) if a in factors else c for a, c in enumerate(aligned.chunks))
    result: da.Array = aligned.map_blocks(_block_mean, factors, chunks=out_chunks, dtype=data.dtype)
    return result


def _aligned(chunks: tuple[int, ...], factor: int) -> tuple[int, ...]:
    """Chunk sizes covering the same length, each a multiple of ``factor``."""
    total = sum(chunks)
    out: list[int] = []
    pos = 0
    for c in chunks:
        end = min(total, ((pos + c + factor - 1) // factor) * factor)
        if end > pos:
            out.append(end - pos)
            pos = end
    if pos < total:
        out.append(total - pos)
    return tuple(out)


def level_count(shape: tuple[int, ...], *, factor: int = 2, min_size: int = 256) -> int:
    """How many levels (including the full one) until Y and X fit in ``min_size``.

    >>> level_count((1, 1, 1, 2048, 1024))
    4
    >>> level_count((1, 1, 1, 100, 100))
    1
    """
    levels = 1
    y, x = shape[_AXIS["Y"]], shape[_AXIS["X"]]
    while max(y, x) > min_size and min(y, x) // factor >= 1:
        y, x = y // factor, x // factor
        levels += 1
    return levels


def pyramid(data: da.Array, levels: int, *, factor: int = 2, z: bool = False) -> list[da.Array]:
    """Level 0 (``data`` itself) and ``levels - 1`` successively downsampled levels.

    Parameters
    ----------
    data
        TZCYX dask array.
    levels
        Total number of levels (>= 1).
    factor
        Reduction factor between consecutive levels.
    z
        Also reduce Z at each level.

    Returns
    -------
    list of dask.array.Array
        ``levels`` lazy arrays, full resolution first.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    out = [data]
    for _ in range(levels - 1):
        out.append(downsample(out[-1], factor, z=z))
    return out
