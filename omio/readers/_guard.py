"""Every failure on a file's bytes becomes an omio error naming the file.

Readers check what a file declares against what it holds and raise precise
:class:`~omio.errors.FileFormatError` / :class:`~omio.errors.MetadataError` messages
for the disagreements they know. This module is the net under those checks: an
exception of any other type raised while a reader opens a file, lists its scenes or
reads a chunk (tifffile, czifile, zarr, numpy, XML and JSON parsers on bad bytes) is
re-raised as a :class:`~omio.errors.FileFormatError` that names the file, what was
being done (and, at compute time, which chunk), and the original exception, which
stays chained as ``__cause__``.

Omio's own errors pass through, with the file's name put in front of a message
that lacks it. Passed through unchanged: ``FileNotFoundError`` /
``PermissionError`` (a missing or unreadable path is the user's to fix, as the
design says). ``KeyboardInterrupt`` and ``SystemExit`` are not ``Exception``\\ s
and are never caught.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omio.errors import FileFormatError, OmioError

__all__ = ["GuardedArray", "guarded_call", "reading"]


def _translate(location: Path | str, what: str, exc: Exception) -> FileFormatError:
    if isinstance(exc, MemoryError):
        detail = "it declares sizes that do not fit in memory"
    elif isinstance(exc, RecursionError):
        detail = "its structure refers to itself"
    else:
        kind = type(exc)
        name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        detail = f"{name}: {exc}"
    return FileFormatError(
        f"{location}: cannot {what} ({detail}); the file is damaged, incomplete or not what its name says"
    )


@contextlib.contextmanager
def reading(location: Path | str, what: str) -> Iterator[None]:
    """Re-raise any foreign exception of the block as a FileFormatError naming ``location``.

    Examples
    --------
    >>> try:
    ...     with reading("a.tif", "open the file"):
    ...         raise ZeroDivisionError("division by zero")
    ... except FileFormatError as exc:
    ...     print(exc)  # doctest: +ELLIPSIS
    a.tif: cannot open the file (ZeroDivisionError: division by zero); the file is damaged, ...
    """
    try:
        yield
    except OmioError as exc:
        if str(location) in str(exc):
            raise
        raise _named(exc, location) from exc
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as exc:
        raise _translate(location, what, exc) from exc


def _named(exc: OmioError, location: Path | str) -> OmioError:
    """The same omio error with ``location`` in front of its message (every error names its file)."""
    try:
        return type(exc)(f"{location}: {exc}")
    except TypeError:  # an error class with another signature keeps its message
        return exc


def guarded_call(location: str, what: str, func: Callable[..., Any], *args: Any) -> Any:
    """Call ``func(*args)`` (a dask task), translating foreign exceptions as :func:`reading` does."""
    with reading(location, what):
        return func(*args)


class GuardedArray:
    """An array-like (for ``dask.array.from_array``) whose reads fail with omio errors.

    Parameters
    ----------
    array
        Any object with ``shape``, ``dtype``, ``ndim`` and ``__getitem__`` (a zarr array).
    location
        The file or URL named in error messages.
    """

    def __init__(self, array: Any, location: str) -> None:
        self.array = array
        self.location = location
        self.shape: tuple[int, ...] = tuple(array.shape)
        self.dtype = array.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> Any:
        with reading(self.location, f"read the region {_region(key)}"):
            return self.array[key]


def _region(key: Any) -> str:
    """A selection as text (``[0:1, 5:10]``) for error messages."""
    parts = key if isinstance(key, tuple) else (key,)
    text = [f"{p.start or 0}:{'' if p.stop is None else p.stop}" if isinstance(p, slice) else str(p) for p in parts]
    return f"[{', '.join(text)}]"
