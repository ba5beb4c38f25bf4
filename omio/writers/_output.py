"""Output paths: collision-safe naming and atomic commits.

A file appears at its final path only when complete: it is written to a hidden
temporary file in the target folder and then linked (never overwriting) or, with
``overwrite=True``, renamed over the target. When the target exists and overwriting
was not asked, the first free ``<stem>_<n><suffix>`` is used and returned; the whole
stem is kept, dots included (``a.b.ome.tif`` -> ``a.b_1.ome.tif``). Folder outputs
(OME-Zarr) follow the same rules through :func:`atomic_directory`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from omio.errors import OutputExistsError

__all__ = ["atomic_directory", "atomic_output", "split_suffix"]

_COMPOUND = (".ome.tiff", ".ome.tif", ".ome.tf2", ".ome.tf8", ".ome.btf", ".ome.zarr")
_MAX_TRIES = 10_000


def split_suffix(path: Path) -> tuple[str, str]:
    """Split a file name into stem and (possibly compound) suffix.

    >>> split_suffix(Path("cells.day1.ome.tif"))
    ('cells.day1', '.ome.tif')
    >>> split_suffix(Path("a.b.tif"))
    ('a.b', '.tif')
    """
    name = path.name
    for suffix in _COMPOUND:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    return path.stem, path.suffix


def _candidates(path: Path) -> Iterator[Path]:
    yield path
    stem, suffix = split_suffix(path)
    for n in range(1, _MAX_TRIES):
        yield path.with_name(f"{stem}_{n}{suffix}")


def _commit(tmp: Path, target: Path, *, overwrite: bool) -> Path:
    """Move a finished temporary file to ``target`` or the first free name; return it."""
    if overwrite:
        os.replace(tmp, target)
        return target
    for candidate in _candidates(target):
        try:
            os.link(tmp, candidate)  # atomic and never overwrites
        except FileExistsError:
            continue
        except OSError:
            if candidate.exists():
                continue
            os.replace(tmp, candidate)  # file systems without hard links
            return candidate
        tmp.unlink()
        return candidate
    raise OutputExistsError(f"{target}: no free name found next to it; remove old outputs or pass overwrite=True")


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[tuple[Path, list[Path]]]:
    """Yield a temporary path to write to, then commit it; nothing is left on failure.

    Yields ``(tmp_path, result)``: after the block, ``result[0]`` holds the final
    path. On any exception the temporary file is removed and the target untouched.
    """
    final = Path(target).expanduser().absolute()
    if not final.parent.is_dir():
        raise FileNotFoundError(f"No such directory for the output: '{final.parent}'")
    if final.is_dir():
        raise OutputExistsError(f"{final} exists and is a folder; choose another output name")
    stem, suffix = split_suffix(final)
    fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".partial{suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    result: list[Path] = []
    try:
        yield tmp, result
        result.append(_commit(tmp, final, overwrite=overwrite))
    finally:
        tmp.unlink(missing_ok=True)


def _commit_directory(tmp: Path, target: Path, *, overwrite: bool) -> Path:
    """Move a finished temporary folder to ``target`` or the first free name; return it."""
    if overwrite and target.exists():
        if not target.is_dir():
            raise OutputExistsError(f"{target} exists and is not a folder; remove it or choose another output name")
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old)  # the old output stays complete under a hidden name until the new one is in
        os.replace(tmp, target)
        shutil.rmtree(old)
        return target
    for candidate in _candidates(target):
        try:
            os.mkdir(candidate)  # claims the name atomically
        except FileExistsError:
            continue
        os.replace(tmp, candidate)  # replaces the empty folder just made
        return candidate
    raise OutputExistsError(f"{target}: no free name found next to it; remove old outputs or pass overwrite=True")


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[tuple[Path, list[Path]]]:
    """Yield a hidden temporary sibling folder to write into, then rename it to ``target``.

    Like :func:`atomic_output` for folder formats: the folder ``.<name>.tmp-XXXX`` is
    renamed to ``target`` (or the first free ``<stem>_<n><suffix>``) when the block
    ends; with ``overwrite=True`` an existing output is moved aside, the new one
    renamed in, then the old one deleted. On any exception the temporary folder is
    removed and the target untouched. ``result[0]`` holds the final path.
    """
    final = Path(target).expanduser().absolute()
    if not final.parent.is_dir():
        raise FileNotFoundError(f"No such directory for the output: '{final.parent}'")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    result: list[Path] = []
    try:
        yield tmp, result
        result.append(_commit_directory(tmp, final, overwrite=overwrite))
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
