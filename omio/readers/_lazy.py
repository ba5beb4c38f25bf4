"""Build dask arrays whose chunks are read by picklable tasks."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from omio.readers._guard import guarded_call

__all__ = ["array_from_chunks", "array_from_tasks"]


def array_from_tasks(
    tasks: Mapping[tuple[int, ...], tuple[Any, ...]],
    chunks: tuple[tuple[int, ...], ...],
    dtype: np.dtype[Any] | str,
    *,
    name: str,
    token: Any,
    source: str,
) -> da.Array:
    """Return a dask array with one task per chunk.

    Parameters
    ----------
    tasks
        ``{chunk grid index: (function, *args)}``; the function is module-level and
        the arguments picklable (paths, offsets, shapes), never open handles.
    chunks
        The dask chunks of the array (one tuple of sizes per dim).
    dtype
        The dtype of the chunks.
    name, token
        The graph-name prefix and what makes the name unique (e.g. path, size, mtime, scene).
    source
        The file named when a task fails: any exception other than omio's own is
        re-raised as a :class:`~omio.errors.FileFormatError` naming it and the chunk.
    """
    key_name = f"{name}-{tokenize(token)}"
    dsk: dict[Any, Any] = {
        (key_name, *index): (guarded_call, source, f"read chunk {index} of {name}", *task)
        for index, task in tasks.items()
    }
    graph = HighLevelGraph.from_collections(key_name, dsk, dependencies=())
    return da.Array(graph, key_name, chunks, dtype=dtype)


def array_from_chunks(
    read: Callable[..., np.ndarray[Any, Any]],
    args: np.ndarray[Any, Any],
    chunk_shape: Sequence[int],
    dtype: np.dtype[Any],
    *,
    name: str,
    token: Any,
    source: str,
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
    source
        The file named when a chunk read fails (see :func:`array_from_tasks`).
    """
    grid = args.shape
    trailing = tuple(int(s) for s in chunk_shape)
    zeros = (0,) * len(trailing)
    tasks = {
        (*idx, *zeros): (_chunk, read, len(grid), *args[idx]) for idx in itertools.product(*(range(n) for n in grid))
    }
    chunks = tuple((1,) * n for n in grid) + tuple((s,) for s in trailing)
    return array_from_tasks(tasks, chunks, dtype, name=name, token=token, source=source)


def _chunk(read: Callable[..., np.ndarray[Any, Any]], leading: int, *args: Any) -> np.ndarray[Any, Any]:
    """Run ``read`` and give its result the leading size-1 dims of a grid chunk."""
    plane = read(*args)
    return plane.reshape((1,) * leading + plane.shape)
