"""A per-process cache of open file handles for dask tasks.

Dask tasks capture ``(path, offsets, dtype, shape)``, never an open handle, so that
graphs pickle and run on any worker. Re-opening a file for every chunk would be
slow, so tasks fetch handles from this cache, keyed by the opener, the path and the
file's identity (size and modification time: a rewritten file is reopened).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["cached_handle", "close_cached_handles", "file_identity", "open_handle_count"]

T = TypeVar("T")

_MAX_OPEN = 64
_lock = threading.RLock()
_cache: OrderedDict[tuple[str, str, int, int], Any] = OrderedDict()


def cached_handle[T](opener: Callable[[str], T], path: str | os.PathLike[str]) -> T:
    """Return an open handle made by ``opener(path)``, reusing one from this process.

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
    key = (f"{opener.__module__}.{opener.__qualname__}", p, *file_identity(p))
    with _lock:
        handle = _cache.get(key)
        if handle is not None:
            _cache.move_to_end(key)
            return handle  # type: ignore[no-any-return]
        handle = opener(p)
        _cache[key] = handle
        while len(_cache) > _MAX_OPEN:
            _, old = _cache.popitem(last=False)
            old.close()
        return handle


def file_identity(path: str | os.PathLike[str]) -> tuple[int, int]:
    """A file's size and modification time (ns): what tells a rewritten file from the one opened."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def close_cached_handles(path: str | os.PathLike[str] | None = None) -> None:
    """Close cached handles (all of them, or those of one path)."""
    with _lock:
        keys = [k for k in _cache if path is None or k[1] == str(Path(path))]
        for key in keys:
            _cache.pop(key).close()


def open_handle_count() -> int:
    """Return how many handles this process holds open in the cache."""
    with _lock:
        return len(_cache)
