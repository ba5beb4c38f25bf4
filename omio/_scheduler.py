"""Which dask scheduler omio's own computations use."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["cpu_count", "scheduler"]


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
        scheduler applies; default dask's threaded scheduler.
    """
    import dask

    if "distributed" in sys.modules or dask.config.get("scheduler", None) is not None:
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
