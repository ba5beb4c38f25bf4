"""A per-process cache of open file handles for dask tasks, and when those handles close.

Dask tasks capture ``(path, offsets, dtype, shape)``, never an open handle, so that
graphs pickle and run on any worker. Re-opening a file for every chunk would be
slow, so tasks fetch handles from this cache, keyed by the opener, the path and the
file's identity (size and modification time: a rewritten file is reopened).

Lifetime of a handle
--------------------
* A handle leaves the cache when the cache is full (least recently used first),
  when :func:`close_cached_handles` names its file, or when the last
  :class:`~omio.MicroscopyDataset` reading that file is closed or garbage collected
  (:func:`hold_files` / :func:`release_files`, called by the dataset).
* A handle that left the cache is *retired*, and closed as soon as no reader holds
  it: a reader holds a handle while it keeps a reference to the object
  :func:`cached_handle` returned (a local variable, or a bound method being called),
  which is what Python's reference count measures. So eviction never closes a file
  under a thread that is reading through it; a retired handle still in use is closed
  by the next call into this module after its reader let go of it.
* Nothing is lost by closing: the next task that needs the file opens it again.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "cached_handle",
    "close_cached_handles",
    "file_identity",
    "files_read_by",
    "hold_files",
    "open_handle_count",
    "release_files",
]

_MAX_OPEN = 64
_lock = threading.RLock()
_cache: OrderedDict[tuple[str, str, int, int], Any] = OrderedDict()
_retired: list[Any] = []
_holds: Counter[str] = Counter()


def _refcounts(handles: list[Any]) -> list[int]:
    """``sys.getrefcount`` of each handle, as seen from here."""
    return [sys.getrefcount(h) for h in handles]


# What _refcounts reports for an object that only a list refers to (it depends on the
# Python version, so it is measured rather than assumed).
_UNHELD = _refcounts([object()])[0]


def _normalize(path: str | os.PathLike[str]) -> str:
    """The absolute, case-normalised form under which a file's handles are filed."""
    return os.path.normcase(os.path.abspath(path))


def cached_handle[T](opener: Callable[[str], T], path: str | os.PathLike[str]) -> T:
    """Return an open handle made by ``opener(path)``, reusing one from this process.

    Keep a reference to the returned handle while reading through it (a local
    variable is enough): the cache closes a handle only once no one refers to it.

    Parameters
    ----------
    opener
        A module-level function (its qualified name is part of the key) that opens
        the file and returns an object with a ``close()`` method. It must return a
        handle that is safe to share between threads (e.g. with its own lock).
    path
        The file to open.
    """
    p = str(Path(path))
    key = (f"{opener.__module__}.{opener.__qualname__}", _normalize(p), *file_identity(p))
    with _lock:
        _close_idle()
        handle = _cache.get(key)
        if handle is not None:
            _cache.move_to_end(key)
            return handle  # type: ignore[no-any-return]
        handle = opener(p)
        _cache[key] = handle
        while len(_cache) > _MAX_OPEN:
            _retired.append(_cache.popitem(last=False)[1])
        _close_idle()
        return handle


def file_identity(path: str | os.PathLike[str]) -> tuple[int, int]:
    """A file's size and modification time (ns): what tells a rewritten file from the one opened."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def close_cached_handles(path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None) -> None:
    """Close cached handles: all of them, or those of the given files (and of files inside given folders).

    A handle that a reader is still using is closed as soon as that reader lets go of it.
    """
    with _lock:
        if path is None:
            _retire(list(_cache))
        else:
            roots = [path] if isinstance(path, (str, os.PathLike)) else list(path)
            _retire([k for k in _cache if _covered(k[1], {_normalize(r) for r in roots})])
        _close_idle()


def hold_files(paths: Iterable[str]) -> None:
    """Count one more user (a dataset) of each of ``paths``; see :func:`release_files`."""
    with _lock:
        _holds.update(_normalize(p) for p in paths)


def release_files(paths: Iterable[str]) -> None:
    """Count one user less of each of ``paths``; a file no one holds any more has its handles closed.

    A handle is kept while another held path still covers it (the same file, or a folder containing it).
    """
    with _lock:
        freed = set()
        for p in {_normalize(p) for p in paths}:
            _holds[p] -= 1
            if _holds[p] <= 0:
                del _holds[p]
                freed.add(p)
        held = set(_holds)
        _retire([k for k in _cache if _covered(k[1], freed) and not _covered(k[1], held)])
        _close_idle()


def open_handle_count() -> int:
    """Return how many handles this process holds open (in the cache, or retired but still in use)."""
    with _lock:
        _close_idle()
        return len(_cache) + len(_retired)


def _covered(path: str, roots: set[str]) -> bool:
    """True when ``path`` is one of ``roots`` or lies inside one of them."""
    return path in roots or any(path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _retire(keys: list[tuple[str, str, int, int]]) -> None:
    """Move these handles out of the cache (call with the lock held)."""
    _retired.extend(_cache.pop(k) for k in keys)


def _close_idle() -> None:
    """Close the retired handles no reader refers to any more (call with the lock held).

    A retired handle is no longer in the cache, so no new reader can get it: once its
    reference count says only this module refers to it, it stays that way.
    """
    if not _retired:
        return
    counts = _refcounts(_retired)
    idle = [h for h, n in zip(_retired, counts, strict=True) if n <= _UNHELD]
    if idle:
        _retired[:] = [h for h, n in zip(_retired, counts, strict=True) if n > _UNHELD]
        for handle in idle:
            handle.close()


_layer_files: OrderedDict[str, frozenset[str]] = OrderedDict()
_LAYER_MEMO = 4096


def files_read_by(data: object) -> frozenset[str]:
    """The files a dask array's reader tasks read (empty for anything else).

    Reader tasks are ``(guarded_call, source, what, function, *args)`` tuples
    (:mod:`omio.readers._lazy`): their files are ``source`` and the path-like
    arguments. Materialised graph layers are looked at, and the blockwise layers
    whose function is an :class:`~omio.readers._lazy.IndexedChunkReader`, each once
    per process (layers are shared by every array derived from a reader's array).
    """
    from dask.blockwise import Blockwise
    from dask.highlevelgraph import HighLevelGraph

    from omio.readers._guard import guarded_call
    from omio.readers._lazy import IndexedChunkReader

    graph = getattr(data, "dask", None)
    if not isinstance(graph, HighLevelGraph):
        return frozenset()
    found: set[str] = set()
    for name, layer in graph.layers.items():
        with _lock:
            known = _layer_files.get(name)
        if known is None:
            known = frozenset()
            if isinstance(layer, Blockwise):  # before materialised layers: a computed one may be both
                readers = [v for v, i in layer.indices if i is None and isinstance(v, IndexedChunkReader)]
                known = frozenset(f for r in readers for f in _task_files((None, r.source, None, *r.args)))
            elif layer.is_materialized():
                first = next(iter(layer.values()), None)
                if isinstance(first, tuple) and first and first[0] is guarded_call:
                    known = frozenset(f for task in layer.values() for f in _task_files(task))
            with _lock:
                _layer_files[name] = known
                while len(_layer_files) > _LAYER_MEMO:
                    _layer_files.popitem(last=False)
        found |= known
    return frozenset(found)


def _task_files(task: object) -> Iterable[str]:
    """``source`` and the path-like arguments of one reader task."""
    if not isinstance(task, tuple) or len(task) < 2:
        return ()
    args = task[3:]
    return [
        str(task[1]),
        *(str(a) for a in args if isinstance(a, os.PathLike) or (isinstance(a, str) and _looks_like_path(a))),
    ]


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text
