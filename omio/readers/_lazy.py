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

__all__ = ["IndexedChunkReader", "array_from_chunks", "array_from_indexed_chunks", "array_from_tasks"]


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


class IndexedChunkReader:
    """The task function of :func:`array_from_indexed_chunks`: reads the chunk at a grid position.

    The chunk at grid position ``i...`` is ``read(*head, start + n, *tail)``, where ``n``
    is the position's C-order (row-major) number in the grid. Picklable: ``read`` is a
    module-level function and the arguments are plain values.

    Attributes
    ----------
    source
        The file named when a read fails; with the path-like ``head`` and ``tail``
        arguments, the files the reads open (:func:`omio.readers._handles.files_read_by`).
    """

    def __init__(
        self,
        read: Callable[..., np.ndarray[Any, Any]],
        head: tuple[Any, ...],
        start: int,
        tail: tuple[Any, ...],
        grid: tuple[int, ...],
        *,
        name: str,
        source: str,
    ) -> None:
        self.read = read
        self.head = head
        self.start = start
        self.tail = tail
        self.grid = grid
        self.name = name
        self.source = source

    @property
    def args(self) -> tuple[Any, ...]:
        """The arguments that are the same for every chunk."""
        return (*self.head, *self.tail)

    def __call__(self, block_id: tuple[int, ...]) -> np.ndarray[Any, Any]:
        number = 0
        for i, n in zip(block_id, self.grid, strict=False):
            number = number * n + i
        args = (*self.head, self.start + number, *self.tail)
        return guarded_call(  # type: ignore[no-any-return]
            self.source, f"read chunk {tuple(block_id)} of {self.name}", _chunk, self.read, len(self.grid), *args
        )


def array_from_indexed_chunks(
    read: Callable[..., np.ndarray[Any, Any]],
    head: tuple[Any, ...],
    start: int,
    tail: tuple[Any, ...],
    grid: tuple[int, ...],
    chunk_shape: Sequence[int],
    dtype: np.dtype[Any],
    *,
    name: str,
    token: Any,
    source: str,
) -> da.Array:
    """Return a dask array of one task per chunk, the chunks found by their number in the grid.

    The same array as :func:`array_from_chunks` with ``args[i...] = (*head, start + n,
    *tail)`` (``n`` the C-order number of grid position ``i...``), for chunks numbered
    in order (the pages of a file, one after another). Its graph is not materialised:
    building it costs the same for any number of chunks, and selecting a few chunks
    does not walk a task per chunk of the whole array.

    Parameters
    ----------
    read
        A module-level function; ``read(*head, start + n, *tail)`` returns the chunk
        at grid position ``i...`` with shape ``chunk_shape``.
    head, start, tail
        The arguments of ``read`` around the chunk's number.
    grid
        The chunk grid over the leading dims (each chunk has size 1 along them).
    chunk_shape, dtype, name, token, source
        As for :func:`array_from_chunks`.
    """
    key_name = f"{name}-{tokenize(token)}"
    trailing = tuple(int(s) for s in chunk_shape)
    chunks = tuple((1,) * n for n in grid) + tuple((s,) for s in trailing)
    reader = IndexedChunkReader(read, head, start, tail, tuple(grid), name=name, source=source)
    meta = np.empty((0,) * len(chunks), dtype=dtype)
    array: da.Array = da.map_blocks(reader, chunks=chunks, dtype=dtype, meta=meta, name=key_name)
    return array
