"""Which dask scheduler omio's own computations use."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["cpu_count", "local_computations", "scheduler"]

_LOCAL_ONLY: ContextVar[bool] = ContextVar("omio_local_computations", default=False)


@contextlib.contextmanager
def local_computations() -> Iterator[None]:
    """Within the block, omio's own computations in this thread use a local scheduler.

    For work that already runs as one task of a larger computation (a batch job on a
    dask worker or in a thread pool): its pixels are computed where it runs, not sent
    back to a client. Unlike ``dask.config.set(scheduler=...)``, which changes the whole
    process's configuration and, entered and left by several threads at once, can leave
    it changed for good, a context variable is private to the thread.
    """
    token = _LOCAL_ONLY.set(True)
    try:
        yield
    finally:
        _LOCAL_ONLY.reset(token)


def scheduler(*, local: Callable[..., Any] | None = None) -> Callable[..., Any] | None:
    """Return ``None`` (dask's choice, e.g. an active distributed client) or a local scheduler.

    Left to itself, dask imports ``distributed`` on the first compute just to look for
    a client, which costs a quarter of a second; when the user has not imported
    ``distributed`` there can be no client, so omio passes a local scheduler itself (a
    scheduler name would still trigger the import).

    Parameters
    ----------
    local
        The scheduler ``get`` function to use when neither a client nor a configured
        scheduler applies (or inside :func:`local_computations`); default dask's
        threaded scheduler.
    """
    import dask

    if not _LOCAL_ONLY.get() and ("distributed" in sys.modules or dask.config.get("scheduler", None) is not None):
        return None
    if local is not None:
        return local
    import dask.threaded

    return dask.threaded.get


def cpu_count() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else all of them)."""
    if hasattr(os, "sched_getaffinity"):  # Linux; macOS and Windows have no affinity call in os
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
