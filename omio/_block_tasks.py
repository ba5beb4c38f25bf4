"""The tasks of some blocks of a dask array, taken from its graph a batch at a time.

The writers compute an array's blocks in order in their own thread, without building
a dask collection per piece (each ``compute`` optimizes the whole graph again).
Culling the high-level graph costs time in proportion to all its blocks, and the
low-level graph of all blocks memory in proportion to them (about 1 kB each), so
tasks are taken for about ``batch`` blocks at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dask.array as da

__all__ = ["block_tasks"]

BATCH = 4096
"""Blocks whose tasks are taken from the graph at once."""


def block_tasks[T](
    array: da.Array, items: Iterable[T], keys_of: Callable[[T], list[tuple[Any, ...]]], *, batch: int | None = None
) -> Iterator[tuple[T, list[tuple[Any, ...]], Mapping[Any, Any]]]:
    """Each item with the keys of its blocks and just the tasks that compute them.

    ``array`` should be optimized already (``dask.base.optimize``); ``get(tasks, keys)``
    with a local scheduler's ``get`` then computes the item's blocks. ``batch``
    defaults to :data:`BATCH`.
    """
    from dask.optimization import cull

    batch = BATCH if batch is None else batch
    whole = array.__dask_graph__()
    group: list[tuple[T, list[tuple[Any, ...]]]] = []
    blocks = 0
    for item in items:
        keys = keys_of(item)
        group.append((item, keys))
        blocks += len(keys)
        if blocks >= batch:
            yield from _culled(whole, group, cull)
            group, blocks = [], 0
    yield from _culled(whole, group, cull)


def _culled[T](
    whole: Any, group: list[tuple[T, list[tuple[Any, ...]]]], cull: Callable[..., Any]
) -> Iterator[tuple[T, list[tuple[Any, ...]], Mapping[Any, Any]]]:
    if not group:
        return
    wanted = {key for _, keys in group for key in keys}
    graph = dict(whole.cull(wanted)) if hasattr(whole, "cull") else whole
    for item, keys in group:
        yield item, keys, cull(graph, keys)[0]
