"""Optional third-party readers: a clear error when the extra is not installed."""

from __future__ import annotations

import importlib
import os

from omio.errors import MissingDependencyError

__all__ = ["require"]


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
            f"{os.fspath(path)}: reading {what} files needs the {module} package: "
            f"pip install 'omio-microscopy[{extra}]'"
        ) from exc
