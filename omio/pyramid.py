"""Resolution pyramids: lazy downsampling of TZCYX dask arrays.

Every writer that stores resolution levels (OME-Zarr multiscales, OME-TIFF SubIFDs)
builds them here, so all formats hold the same pixels at the same level. A level is
the previous one averaged over ``factor`` x ``factor`` blocks in Y and X (and in Z when
asked), with the trailing rows or columns that do not fill a whole block dropped
(``floor(n / factor)``, as NGFF and OME-TIFF readers expect). Integer data is averaged
with round-half-up in a wider integer type, never through float64, so a level costs
little more than reading its input.

Level geometry (:func:`level_factors`, :func:`level_geometry`) is computed here too,
for every reader and writer: a level's pixel size is level 0's times the exact integer
factor (``2.0`` for 2 x 2 means of ``1.0``, never the shape ratio ``2001 / 1000``), and
its origin moves with the factor. omio's coordinates are pixel centres, so a level
pixel, the mean of level-0 pixels ``0 .. f - 1``, sits at their mean centre: the level's
first pixel centre is ``(f - 1) / 2`` level-0 pixels after level 0's (the NGFF
``translation`` of that level).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from omio.units import Measure

if TYPE_CHECKING:
    import dask.array as da

__all__ = [
    "LevelGeometry",
    "block_mean",
    "downsample",
    "level_count",
    "level_factors",
    "level_geometry",
    "level_origin",
    "pyramid",
]

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
    with np.errstate(invalid="ignore"):  # a block holding inf and -inf (or complex infinities) averages to NaN
        return view.mean(axis=tuple(reduce_axes), dtype=wide).astype(block.dtype)


def _integer_block_mean(block: np.ndarray[Any, Any], factors: dict[int, int], count: int) -> np.ndarray[Any, Any]:
    """Round-half-up block mean of integers: strided adds in a wide enough type (faster than a reduce).

    64-bit integers have no wider type: each value is split as ``count * q + r`` and
    the quotients and remainders are summed apart (neither sum can overflow), so the
    mean is exact for every value.
    """
    signed = np.issubdtype(block.dtype, np.signedinteger)
    if block.dtype.itemsize == 8:
        native = block.dtype.newbyteorder("=")
        q = _block_sum(block // count, factors, native)
        r = _block_sum(block % count, factors, native)
        mean: np.ndarray[Any, Any] = (q + (r + count // 2) // count).astype(block.dtype)
        return mean
    wide = block.dtype.itemsize <= 2 and count <= 2**15
    acc = np.dtype((np.int32 if wide else np.int64) if signed else (np.uint32 if wide else np.uint64))
    total = _block_sum(block, factors, acc)
    return ((total + count // 2) // count).astype(block.dtype)


def _block_sum(block: np.ndarray[Any, Any], factors: dict[int, int], acc: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """Sums of ``factors`` blocks (axis -> factor) by strided adds in the type ``acc``."""
    total: np.ndarray[Any, Any] = block
    for axis, f in factors.items():
        parts = [total[(slice(None),) * axis + (slice(k, None, f),)] for k in range(f)]
        summed = np.add(parts[0], parts[1], dtype=acc)
        for part in parts[2:]:
            summed += part
        total = summed
    return total


def block_mean(block: np.ndarray[Any, Any], factors: Mapping[int, int]) -> np.ndarray[Any, Any]:
    """Average non-overlapping blocks of a numpy array, as :func:`downsample` does a level.

    Trailing elements that do not fill a whole block are dropped (``floor(n / f)``);
    a part of an array whose start along each reduced axis is a multiple of its factor
    averages to the same values as that part of the whole array's mean.

    Parameters
    ----------
    block
        The array.
    factors
        Factor per axis index (axes left out, or with factor 1, are kept).

    Returns
    -------
    numpy.ndarray
        The means, same dtype (integers rounded half up, exactly).

    Examples
    --------
    >>> block_mean(np.arange(10, dtype="uint8").reshape(2, 5), {1: 2})
    array([[1, 3],
           [6, 8]], dtype=uint8)
    """
    used = {a: int(f) for a, f in factors.items() if f > 1}
    keep = tuple(slice(0, (n // used.get(a, 1)) * used.get(a, 1)) for a, n in enumerate(block.shape))
    trimmed = block[keep]
    if trimmed.size == 0 or not used:
        shape = tuple(n // used.get(a, 1) for a, n in enumerate(block.shape))
        return trimmed.copy() if not used else np.empty(shape, block.dtype)
    return _block_mean(trimmed, used)


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


class LevelGeometry(NamedTuple):
    """Where a pyramid level's pixels lie, relative to level 0 (see :func:`level_geometry`)."""

    factors: dict[str, float]
    """Per axis (``"Z"``, ``"Y"``, ``"X"``): level-0 pixels per level pixel (an integer for a block mean)."""
    physical_sizes: dict[str, Any]
    """Per axis: the level's pixel size (level 0's times the factor), ``None`` where level 0's is unknown."""
    offsets: dict[str, Any]
    """Per axis: the level's first pixel centre minus level 0's, ``(factor - 1) / 2`` level-0 pixel sizes
    (``None`` where the pixel size is unknown)."""


def level_factors(full: Sequence[int], reduced: Sequence[int]) -> dict[str, float]:
    """The factor of each spatial axis between two TZCYX level shapes.

    A level made by averaging ``f`` x ``f`` blocks holds ``floor(n / f)`` pixels (some
    writers round up, ``ceil(n / f)``), so the shape ratio is not the factor
    (``2001 / 1000``). The integer ``f`` that gives the reduced size from the full
    one is returned; where no integer does, the ratio.

    Parameters
    ----------
    full, reduced
        The TZCYX shapes of level 0 and of the level.

    Returns
    -------
    dict
        ``{"Z": f, "Y": f, "X": f}``.

    Examples
    --------
    >>> level_factors((1, 1, 1, 2001, 1001), (1, 1, 1, 1000, 501))
    {'Z': 1, 'Y': 2, 'X': 2}
    >>> level_factors((1, 1, 1, 10, 10), (1, 1, 1, 4, 4))
    {'Z': 1, 'Y': 2.5, 'X': 2.5}
    """
    out: dict[str, float] = {}
    for axis in "ZYX":
        n, m = int(full[_AXIS[axis]]), int(reduced[_AXIS[axis]])
        if m <= 0 or n <= 0:
            raise ValueError(f"level shapes must be positive along {axis}, got {n} and {m}")
        f = max(1, round(n / m))
        out[axis] = f if n // f == m or -(-n // f) == m else n / m
    return out


def _times(value: Any, factor: float) -> Any:
    """A size times a number: a :class:`~omio.units.Measure` (a tuple) scaled, a number or quantity multiplied."""
    if isinstance(value, Measure):
        return value.scaled(factor)
    return value * factor


def level_geometry(physical_sizes: Mapping[str, Any], factors: Mapping[str, float]) -> LevelGeometry:
    """The pixel sizes and origin offsets of a level from level 0's and its factors.

    Parameters
    ----------
    physical_sizes
        Level 0's pixel size per axis (``"X"``, ``"Y"``, ``"Z"``): :class:`omio.units.Measure`,
        pint quantities or plain numbers, ``None`` where unknown.
    factors
        Level-0 pixels per level pixel along each axis, from level 0 (for level ``k`` of
        a pyramid halving each time, ``2 ** k``); axes left out have factor 1.

    Returns
    -------
    LevelGeometry
        The factors, the level's pixel sizes and the offsets of its first pixel centre
        (pixel centres: a level pixel lies at the mean centre of the level-0 pixels it
        averages), in the units of ``physical_sizes``.

    Examples
    --------
    >>> g = level_geometry({"X": 1.0, "Y": 1.0, "Z": None}, {"Y": 2, "X": 2})
    >>> g.physical_sizes, g.offsets
    ({'X': 2.0, 'Y': 2.0, 'Z': None}, {'X': 0.5, 'Y': 0.5, 'Z': None})
    """
    used = {axis: factors.get(axis, 1) for axis in physical_sizes}
    sizes: dict[str, Any] = {}
    offsets: dict[str, Any] = {}
    for axis, size in physical_sizes.items():
        f = used[axis]
        sizes[axis] = None if size is None else _times(size, f)
        offsets[axis] = None if size is None else _times(size, (f - 1) / 2)
    return LevelGeometry(dict(used), sizes, offsets)


def level_origin(
    origin: Mapping[str, Measure | None], offsets: Mapping[str, Measure | None]
) -> dict[str, Measure | None]:
    """A level's origin: level 0's (``None`` read as 0) plus the level's offsets (:func:`level_geometry`).

    Axes without an offset (no pixel size) keep level 0's origin; an offset in another
    unit than the origin is converted to the origin's.

    Examples
    --------
    >>> level_origin({"X": Measure(10.0, "micrometer"), "Y": None}, {"X": Measure(0.5, "micrometer"),
    ...                                                              "Y": Measure(500.0, "nanometer")})
    {'X': Measure(magnitude=10.5, units='micrometer'), 'Y': Measure(magnitude=500.0, units='nanometer')}
    """
    from omio import units

    out = dict(origin)
    for axis, offset in offsets.items():
        if offset is None:
            continue
        base = origin.get(axis)
        if base is None:
            out[axis] = offset
            continue
        shift = units.convert(offset, base.units) if offset.units != base.units else offset.magnitude
        out[axis] = base if shift is None else Measure(base.magnitude + shift, base.units)
    return out
