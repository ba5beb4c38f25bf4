"""Output paths: collision-safe naming, atomic commits and clean-up.

A file appears at its final path only when complete: it is written to a hidden
temporary file in the target folder and then linked (never overwriting) or, with
``overwrite=True``, renamed over the target. When the target exists and overwriting
was not asked, the first free ``<stem>_<n><suffix>`` is used and returned; the whole
stem is kept, dots included (``a.b.ome.tif`` -> ``a.b_1.ome.tif``). Folder outputs
(OME-Zarr) follow the same rules through :func:`atomic_directory`.

Temporaries are named ``.<stem>.omio-partial-<host>-<pid>-<random><suffix>`` (``host``
is a short hash of the machine's name) and are created like any new file, so the
output's permissions follow the umask. The writer holds an advisory lock
(``flock``) on its temporary while writing. A writer that was killed leaves its
temporary behind; the next write to the same target removes it when no one holds
its lock, its writer's process is gone (same host) and it is older than a minute,
or, for a temporary of another host, when it has not changed for a day.

A full disk or quota and other storage errors while writing raise
:class:`~omio.errors.OutputError` naming the requested output; the temporary is
removed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from omio.errors import OmioError, OutputError, OutputExistsError

if sys.platform != "win32":
    import fcntl

__all__ = ["atomic_directory", "atomic_output", "prepare_output", "remove_stale_temporaries", "split_suffix"]

log = logging.getLogger(__name__)
_COMPOUND = (".ome.tiff", ".ome.tif", ".ome.tf2", ".ome.tf8", ".ome.btf", ".ome.zarr")
_MAX_TRIES = 10_000
_HOST = hashlib.sha1(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]
STALE_AFTER = 60.0
"""Seconds a temporary of a dead writer on this host must be old before it is removed."""
STALE_AFTER_OTHER_HOST = 24 * 3600.0
"""Seconds a temporary of another host must be unchanged before it is removed."""
_STORAGE_FIX = {
    errno.ENOSPC: "free space on that file system, or write elsewhere, then write again",
    errno.EDQUOT: "free space within your quota, or write elsewhere, then write again",
    errno.EFBIG: "the file is larger than that file system allows: write OME-Zarr or to another file system",
    errno.EIO: "the storage reported an I/O error: check the disk or network share, then write again",
}


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


# ---------------------------------------------------------------------- output root


def prepare_output(path: Path, root: Path) -> Path:
    """Make the folders of ``path`` under ``root``, refusing any that leads outside ``root``.

    Every existing folder on the way, and ``path`` itself when it exists (or is a
    link), must resolve inside the resolved ``root``; missing folders are created
    one by one inside a checked one, so nothing is created elsewhere.

    Returns
    -------
    Path
        ``path`` unchanged.

    Raises
    ------
    omio.errors.OutputError
        When ``path`` is not under ``root`` or a link on the way leads out of it.
    """
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    try:
        parts = path.absolute().relative_to(root.absolute()).parts
    except ValueError:
        parts = ("..",)
    if ".." in parts or not parts:
        raise OutputError(f"{path} is not inside the output folder {root}; nothing was written")
    current = root
    for index, part in enumerate(parts, start=1):
        current = current / part
        if index < len(parts):  # a folder: made inside the checked one above it
            with contextlib.suppress(FileExistsError):
                current.mkdir()
        elif not (current.exists() or current.is_symlink()):
            break
        real = current.resolve()
        if not real.is_relative_to(real_root):
            raise OutputError(
                f"{current} leads to {real}, outside the output folder {real_root} (a symbolic link); "
                f"{path} was not written: remove the link or choose another output folder"
            )
    return path


# ---------------------------------------------------------------------- temporaries


def _temp_path(final: Path, kind: Literal["partial", "old"]) -> Path:
    stem, suffix = split_suffix(final)
    return final.with_name(f".{stem}.omio-{kind}-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def _temp_pattern(final: Path) -> re.Pattern[str]:
    stem, suffix = split_suffix(final)
    fields = r"(?P<kind>partial|old)-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}"
    return re.compile(re.escape(f".{stem}.omio-") + fields + re.escape(suffix))


def _pid_alive(pid: int) -> bool:
    """False only when no process ``pid`` runs on this host (POSIX; elsewhere always True)."""
    if sys.platform == "win32" or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    return True


def _lock(fd: int) -> bool:
    """Take the advisory lock of an open temporary without waiting; False when another holds it."""
    if sys.platform == "win32":
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _is_stale(path: Path, host: str, pid: int) -> bool:
    age = time.time() - path.lstat().st_mtime
    if host == _HOST:
        return age >= STALE_AFTER and not _pid_alive(pid)
    return age >= STALE_AFTER_OTHER_HOST


def _remove_unlocked(path: Path) -> bool:
    """Remove a temporary unless its writer still holds its lock; True when removed."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not _lock(fd):
            return False
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            shutil.rmtree(path)
        else:
            path.unlink()
    finally:
        os.close(fd)
    return True


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries that killed writers left next to ``target``; return them.

    Only temporaries of this target are considered, and only those that no live
    writer uses: unlocked, their process gone (on this host) and older than
    :data:`STALE_AFTER`, or unchanged for :data:`STALE_AFTER_OTHER_HOST` when written
    from another host. The set-aside copy of an overwritten folder is removed only
    when the new output is in place. Errors while removing are logged, not raised.
    """
    final = Path(target).expanduser().absolute()
    pattern = _temp_pattern(final)
    removed: list[Path] = []
    try:
        names = sorted(os.listdir(final.parent))
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or (match["kind"] == "old" and not final.exists()):
            continue
        path = final.parent / name
        try:
            if _is_stale(path, match["host"], int(match["pid"])) and _remove_unlocked(path):
                log.info("omio removed %s, left by a writer of %s that did not finish", path, final)
                removed.append(path)
        except OSError as exc:
            log.info("omio could not remove the stale temporary %s: %s", path, exc)
    return removed


@contextlib.contextmanager
def _storage_errors(final: Path, tmp: Path) -> Iterator[None]:
    """Re-raise storage errors while writing ``tmp`` as an OutputError naming ``final``."""
    try:
        yield
    except OmioError:
        raise
    except PermissionError as exc:  # stays a PermissionError (the user's to fix), naming the output asked for
        raise PermissionError(exc.errno, f"cannot write {final} (permission denied in {final.parent})") from exc
    except OSError as exc:
        fix = _STORAGE_FIX.get(exc.errno or 0)
        if fix is None and tmp.name not in str(exc):
            raise
        if fix is None:
            fix = f"check that {final.parent} is writable and has room, then write again"
        what = exc.strerror or str(exc).replace(str(tmp), str(final))
        raise OutputError(exc.errno, f"cannot write {final}: {what}; {fix} (nothing was left behind)") from exc


def _created(final: Path, make: Literal["file", "folder"]) -> tuple[Path, int]:
    """Create a locked temporary for ``final`` as a normal new file or folder would be (umask applies)."""
    tmp = _temp_path(final, "partial")
    with _storage_errors(final, tmp):
        if make == "file":
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        else:
            os.mkdir(tmp, 0o777)
            fd = os.open(tmp, os.O_RDONLY)
    _lock(fd)  # a new name: nobody else holds it
    return tmp, fd


def _check_target(final: Path) -> None:
    if not final.parent.is_dir():
        raise FileNotFoundError(f"No such directory for the output: '{final.parent}'")


# ---------------------------------------------------------------------- files


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
            if candidate.exists() or candidate.is_symlink():
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
    Stale temporaries of this target left by killed writers are removed first.

    Raises
    ------
    omio.errors.OutputError
        On a full disk or quota or another storage error while writing.
    """
    final = Path(target).expanduser().absolute()
    _check_target(final)
    if final.is_dir():
        raise OutputExistsError(f"{final} exists and is a folder; choose another output name")
    remove_stale_temporaries(final)
    tmp, fd = _created(final, "file")
    result: list[Path] = []
    try:
        with _storage_errors(final, tmp):
            yield tmp, result
            result.append(_commit(tmp, final, overwrite=overwrite))
    finally:
        os.close(fd)
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------- folders


def _commit_directory(tmp: Path, target: Path, *, overwrite: bool) -> Path:
    """Move a finished temporary folder to ``target`` or the first free name; return it."""
    if overwrite and (target.exists() or target.is_symlink()):
        if target.is_symlink() or not target.is_dir():
            raise OutputExistsError(f"{target} exists and is not a folder; remove it or choose another output name")
        old = _temp_path(target, "old")
        os.mkdir(old, 0o700)
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

    Like :func:`atomic_output` for folder formats: the hidden folder is renamed to
    ``target`` (or the first free ``<stem>_<n><suffix>``) when the block ends; with
    ``overwrite=True`` an existing output is moved aside, the new one renamed in,
    then the old one deleted. On any exception the temporary folder is removed and
    the target untouched. ``result[0]`` holds the final path. The folder must be
    written in place (not deleted and made again), so that its lock holds.
    """
    final = Path(target).expanduser().absolute()
    _check_target(final)
    remove_stale_temporaries(final)
    tmp, fd = _created(final, "folder")
    result: list[Path] = []
    try:
        with _storage_errors(final, tmp):
            yield tmp, result
            result.append(_commit_directory(tmp, final, overwrite=overwrite))
    finally:
        os.close(fd)
        if tmp.exists():
            shutil.rmtree(tmp)
