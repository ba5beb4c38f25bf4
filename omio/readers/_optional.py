"""Optional third-party reader libraries: a clear error when one is not installed, and
their exceptions turned into omio's."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

from omio.errors import DimensionError, FileFormatError, MetadataError, MissingDependencyError

__all__ = ["library_errors", "require"]


def require(module: str, *, extra: str, what: str, path: str | os.PathLike[str]) -> None:
    """Import ``module`` or raise MissingDependencyError naming the file and the extra to install.

    Parameters
    ----------
    module
        The import name of the library (``"nd2"``).
    extra
        The omio extra that installs it (``"nd2"``, ``"lif"``, ``"olympus"``).
    what
        The format, as users call it (``"ND2"``).
    path
        The file being opened.

    Raises
    ------
    MissingDependencyError
        When the library cannot be imported.

    Examples
    --------
    >>> require("numpy", extra="all", what="any", path="x")
    """
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{os.fspath(path)}: reading {what} files needs the {module} package: {install_hint(module, extra)}"
        ) from exc


def install_hint(package: str, extra: str) -> str:
    """How to install a missing package: by its own name, or as omio's extra when installing omio from a clone.

    Examples
    --------
    >>> install_hint("nd2", "nd2")
    "pip install nd2 (or, installing omio from a clone, pip install -e '.[nd2]')"
    """
    return f"pip install {package} (or, installing omio from a clone, pip install -e '.[{extra}]')"


@contextmanager
def library_errors(path: str | os.PathLike[str], doing: str, *, what: str, hint: str) -> Iterator[None]:
    """Turn a reader library's exceptions into FileFormatError naming the file.

    OSError (FileNotFoundError, PermissionError...), MemoryError and omio's own
    errors pass through unchanged.

    Parameters
    ----------
    path
        The file being read.
    doing
        What was being done (``"reading the metadata"``).
    what
        The kind of file, as users call it (``"ND2 file"``).
    hint
        The likely cause and fix, appended to the message.

    Examples
    --------
    >>> with library_errors("a.nd2", "reading the header", what="ND2 file", hint="it may be truncated"):
    ...     raise KeyError("chunk map")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    omio.errors.FileFormatError: a.nd2: not a readable ND2 file (reading the header failed: KeyError: ...
    """
    try:
        yield
    except (OSError, MemoryError, FileFormatError, MetadataError, DimensionError, MissingDependencyError):
        raise
    except Exception as exc:
        raise FileFormatError(
            f"{os.fspath(path)}: not a readable {what} ({doing} failed: {type(exc).__name__}: {exc}); {hint}"
        ) from exc
