"""Build dask arrays whose chunks are read by picklable tasks."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

__all__ = ["array_from_chunks"]


def array_from_chunks(
    read: Callable[..., np.ndarray[Any, Any]],
    args: np.ndarray[Any, Any],
    chunk_shape: Sequence[int],
    dtype: np.dtype[Any],
    *,
    name: str,
    token: Any,
) -> da.Array:
    """Return a dask array made of one task per element of ``args``.

    Parameters
    ----------
    read
        A module-level function; ``read(*args[i...])`` returns the chunk at grid
        position ``i...`` with shape ``chunk_shape``.
    args
        An object array (the chunk grid over the leading dims); each element is a
        tuple of picklable arguments (paths, offsets, indices, shape, dtype).
    chunk_shape
        The shape of each chunk's trailing dims (typically one plane: ``(Y, X)``).
    dtype
        The dtype of the chunks.
    name, token
        The graph-name prefix and what makes the name unique (e.g. path, mtime, scene).
    """
    key_name = f"{name}-{tokenize(token)}"
    grid = args.shape
    trailing = tuple(int(s) for s in chunk_shape)
    dsk: dict[Any, Any] = {}
    zeros = (0,) * len(trailing)
    for idx in itertools.product(*(range(n) for n in grid)):
        dsk[(key_name, *idx, *zeros)] = (_chunk, read, len(grid), *args[idx])
    chunks = tuple((1,) * n for n in grid) + tuple((s,) for s in trailing)
    graph = HighLevelGraph.from_collections(key_name, dsk, dependencies=())
    return da.Array(graph, key_name, chunks, dtype=dtype)


def _chunk(read: Callable[..., np.ndarray[Any, Any]], leading: int, *args: Any) -> np.ndarray[Any, Any]:
    """Run ``read`` and give its result the leading size-1 dims of a grid chunk."""
    plane = read(*args)
    return plane.reshape((1,) * leading + plane.shape)
