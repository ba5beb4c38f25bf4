"""Reading and merging folders of images and folder stacks.

Rules
-----
- Files are listed in *natural order*: digit runs compare as numbers, so
  ``img_2.tif`` comes before ``img_10.tif``; case is ignored. Pass ``sort_key`` for
  another order or ``files=`` for an explicit list.
- A file is used when a reader recognises its content. Everything else is skipped
  and recorded as :class:`Skipped` (path and reason) in the ``skipped`` attribute of
  the result, or, when merging, in the result's ``omio:merge`` provenance
  (``extra.skipped``). Hidden entries (``.name``) and sub-folders that are not an
  acquisition are skipped too. Skips are also logged at INFO level on the
  ``omio.folders`` logger; no warning is raised.
- A file that a reader claims but cannot read (corrupt, truncated) raises by
  default (``on_error="raise"``); ``on_error="skip"`` records it instead.
- A folder that a reader recognises as a whole (a Thorlabs acquisition with its
  ``Experiment.xml``) is *one* dataset, never a folder of files; so is such a
  sub-folder.
- Entries that cannot be read are skipped with the reason: broken symbolic links,
  link loops, entries the user may not read. Symbolic links leading out of the
  folder (the *input root*) are skipped too unless ``follow_symlinks=True``.
- Only the first image (scene) of each file is used; a
  :class:`omio.errors.ScenesLeftOutWarning` names the scenes of a file left out.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from omio.dataset import MicroscopyDataset
from omio.errors import FileFormatError, MergeError, UnsupportedFormatError
from omio.merge import concat
from omio.policies import Axis, Policy
from omio.readers import find_reader

__all__ = [
    "FolderContents",
    "FolderListing",
    "Skipped",
    "list_folder",
    "natural_key",
    "open_folder",
    "open_folder_stack",
    "safe_entries",
    "subfolders",
    "unreadable_reason",
]

log = logging.getLogger(__name__)
OnError = Literal["raise", "skip"]
SortKey = Callable[[Path], Any]


def natural_key(path: str | Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders digit runs by value, ignoring case.

    Examples
    --------
    >>> sorted(["img_10.tif", "img_2.tif", "IMG_1.tif"], key=natural_key)
    ['IMG_1.tif', 'img_2.tif', 'img_10.tif']
    """
    name = Path(path).name
    return tuple((0, int(tok)) if tok.isdigit() else (1, tok.lower()) for tok in re.split(r"(\d+)", name) if tok)


@dataclass(frozen=True)
class Skipped:
    """A folder entry that was not read, and why."""

    path: Path
    reason: str

    def to_record(self) -> dict[str, str]:
        """``{"path": ..., "reason": ...}`` as plain strings."""
        return {"path": str(self.path), "reason": self.reason}


def unreadable_reason(exc: OSError) -> str:
    """The reason recorded for an entry that cannot be read.

    >>> unreadable_reason(OSError(errno.ELOOP, "Too many levels of symbolic links"))
    'symbolic link loop (Too many levels of symbolic links)'
    """
    what = {
        errno.ELOOP: "symbolic link loop",
        errno.ENOENT: "broken symbolic link or vanished entry",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }.get(exc.errno or 0, "cannot be read")
    return f"{what} ({exc.strerror or exc})"


def safe_entries(
    folder: str | Path, *, root: str | Path | None = None, follow_symlinks: bool = False
) -> tuple[list[Path], list[Skipped]]:
    """The entries of a folder that can be used, and the others with the reason they cannot.

    Broken symbolic links, link loops and entries whose status cannot be read are
    skipped; so are links leading out of ``root`` (after resolving them) unless
    ``follow_symlinks``. Nothing is opened. The entries are in the file system's order.

    Parameters
    ----------
    folder
        The folder to list; errors listing it (``PermissionError``...) are raised.
    root
        The input root that links may not leave (default: ``folder``).
    follow_symlinks
        Follow links wherever they lead.
    """
    folder = Path(folder)
    inside = Path(root if root is not None else folder).resolve()
    with os.scandir(folder) as it:
        names = [entry.name for entry in it]
    used: list[Path] = []
    skipped: list[Skipped] = []
    for name in names:
        path = folder / name
        try:
            if path.is_symlink():
                real = Path(os.path.realpath(path, strict=True))
                if not follow_symlinks and not real.is_relative_to(inside):
                    reason = f"symbolic link to {real}, outside {inside} (pass follow_symlinks=True to follow it)"
                    skipped.append(Skipped(path, reason))
                    continue
            path.stat()
        except OSError as exc:
            skipped.append(Skipped(path, unreadable_reason(exc)))
            continue
        used.append(path)
    return used, skipped


def subfolders(
    folder: str | Path,
    rule: str | re.Pattern[str] | None = None,
    *,
    root: str | Path | None = None,
    follow_symlinks: bool = False,
    sort_key: SortKey | None = None,
) -> tuple[list[Path], list[Skipped]]:
    """The visible sub-folders of ``folder`` whose names match ``rule``, sorted, and the skipped ones.

    Entries are checked by :func:`safe_entries`; only skipped entries whose names
    match ``rule`` are returned (the others would not have been used anyway).
    """
    entries, skipped = safe_entries(folder, root=root, follow_symlinks=follow_symlinks)
    found = [p for p in entries if p.is_dir() and not p.name.startswith(".") and name_matches(p.name, rule)]
    relevant = [s for s in skipped if not s.path.name.startswith(".") and name_matches(s.path.name, rule)]
    return sorted(found, key=sort_key or natural_key), relevant


@dataclass(frozen=True)
class FolderListing:
    """What a folder holds: the entries a reader recognises, in order, and the skipped ones."""

    folder: Path
    files: tuple[Path, ...]
    skipped: tuple[Skipped, ...] = ()
    is_acquisition: bool = False
    """True when the folder itself is one dataset (e.g. a Thorlabs acquisition)."""


@dataclass(frozen=True)
class FolderContents(Sequence[MicroscopyDataset]):
    """The datasets of a folder, in order, with the files they came from and what was skipped.

    Behaves as a read-only list of :class:`~omio.dataset.MicroscopyDataset`.
    """

    folder: Path
    datasets: tuple[MicroscopyDataset, ...]
    files: tuple[Path, ...]
    skipped: tuple[Skipped, ...] = field(default=())

    @overload
    def __getitem__(self, index: int) -> MicroscopyDataset: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[MicroscopyDataset]: ...
    def __getitem__(self, index: int | slice) -> MicroscopyDataset | Sequence[MicroscopyDataset]:
        return self.datasets[index]

    def __len__(self) -> int:
        return len(self.datasets)

    def __iter__(self) -> Iterator[MicroscopyDataset]:
        return iter(self.datasets)


def list_folder(
    path: str | Path,
    *,
    sort_key: SortKey | None = None,
    files: Sequence[str | Path] | None = None,
    pattern: str | None = None,
    follow_symlinks: bool = False,
    root: str | Path | None = None,
) -> FolderListing:
    """List the readable entries of a folder without reading any pixels.

    Parameters
    ----------
    path
        The folder.
    sort_key
        Key on each path (default :func:`natural_key`).
    files
        Explicit entries (relative to ``path`` or absolute), used in the order given.
    pattern
        A glob on file names (``"*.tif"``); entries not matching are skipped.
    follow_symlinks
        Follow symbolic links that lead out of ``root``; by default they are skipped.
    root
        The input root (default: ``path``). Links inside it are always followed.
    """
    folder = Path(path)
    if not folder.is_dir():
        if not folder.exists():
            raise FileNotFoundError(f"No such folder: '{folder}'")
        raise NotADirectoryError(f"'{folder}' is a file; use omio.open for a single file")
    if files is None and _is_acquisition(folder):
        return FolderListing(folder, (folder,), (), is_acquisition=True)
    if files is not None:
        entries = [p if Path(p).is_absolute() else folder / p for p in map(Path, files)]
        missing = [str(p) for p in entries if not p.exists()]
        if missing:
            raise FileNotFoundError(f"files not found in '{folder}': {missing}")
    used: list[Path] = []
    skipped: list[Skipped] = []
    if files is None:
        found, unusable = safe_entries(folder, root=root, follow_symlinks=follow_symlinks)
        entries = sorted(found, key=sort_key or natural_key)
        skipped.extend(_log_skip(u) for u in unusable)
    for entry in entries:
        reason = _skip_reason(entry, pattern, explicit=files is not None)
        if reason is None:
            used.append(entry)
        else:
            skipped.append(_log_skip(Skipped(entry, reason)))
    return FolderListing(folder, tuple(used), tuple(skipped))


def _log_skip(skip: Skipped) -> Skipped:
    log.info("omio.open_folder skips %s: %s", skip.path, skip.reason)
    return skip


def _is_acquisition(folder: Path) -> bool:
    try:
        find_reader(folder)
    except UnsupportedFormatError:
        return False
    return True


def _skip_reason(entry: Path, pattern: str | None, *, explicit: bool) -> str | None:
    if not explicit and entry.name.startswith("."):
        return "hidden entry"
    if pattern is not None and not fnmatch.fnmatch(entry.name, pattern):
        return f"name does not match pattern {pattern!r}"
    try:
        if entry.is_dir():
            return None if _is_acquisition(entry) else "sub-folder that is not an acquisition (open it separately)"
        find_reader(entry)
    except UnsupportedFormatError:
        return "unsupported format (no omio reader recognises its content)"
    except FileFormatError:
        return None  # claimed by a reader but damaged: opening it decides (on_error)
    except OSError as exc:
        if explicit:
            raise  # a path the caller named
        return unreadable_reason(exc)
    return None


def _open_listing(
    listing: FolderListing, on_error: OnError
) -> tuple[list[MicroscopyDataset], list[Path], list[Skipped]]:
    from omio._api import open as omio_open

    datasets: list[MicroscopyDataset] = []
    used: list[Path] = []
    skipped = list(listing.skipped)
    for entry in listing.files:
        try:
            datasets.append(omio_open(entry))
        except (FileFormatError, UnsupportedFormatError, OSError) as exc:
            if on_error == "raise":
                raise
            reason = unreadable_reason(exc) if isinstance(exc, OSError) else str(exc)
            skipped.append(_log_skip(Skipped(entry, f"unreadable: {reason}")))
            continue
        used.append(entry)
    from omio._scenes import warn_scenes_left_out

    warn_scenes_left_out(
        datasets,
        caller="reading a folder (one scene per file)",
        hint="open them with omio.open(path, scene=i) or omio.open_all(path)",
    )
    return datasets, used, skipped


@overload
def open_folder(
    path: str | Path,
    *,
    merge_along: None = None,
    policy: Policy = "strict",
    sort_key: SortKey | None = None,
    files: Sequence[str | Path] | None = None,
    pattern: str | None = None,
    on_error: OnError = "raise",
    promote_dtype: bool = False,
    follow_symlinks: bool = False,
) -> FolderContents: ...
@overload
def open_folder(
    path: str | Path,
    *,
    merge_along: Axis,
    policy: Policy = "strict",
    sort_key: SortKey | None = None,
    files: Sequence[str | Path] | None = None,
    pattern: str | None = None,
    on_error: OnError = "raise",
    promote_dtype: bool = False,
    follow_symlinks: bool = False,
) -> MicroscopyDataset: ...
def open_folder(
    path: str | Path,
    *,
    merge_along: Axis | None = None,
    policy: Policy = "strict",
    sort_key: SortKey | None = None,
    files: Sequence[str | Path] | None = None,
    pattern: str | None = None,
    on_error: OnError = "raise",
    promote_dtype: bool = False,
    follow_symlinks: bool = False,
) -> FolderContents | MicroscopyDataset:
    """Open every readable image of a folder lazily, or merge them along an axis.

    Parameters
    ----------
    path
        The folder (a Thorlabs acquisition folder gives one dataset).
    merge_along
        ``None`` (default) returns the datasets; ``"T"``, ``"Z"`` or ``"C"`` merges them
        in order with :func:`omio.merge.concat`.
    policy
        Merge policy, ``"strict"`` or ``"pad"``.
    sort_key, files, pattern
        Order and selection; see :func:`list_folder`.
    on_error
        ``"raise"`` on a file a reader claims but cannot read (default) or ``"skip"`` and
        record it. Entries that cannot be opened at all (broken links, link loops,
        permission denied) are always skipped and recorded.
    promote_dtype
        Passed to :func:`omio.merge.concat`.
    follow_symlinks
        Follow symbolic links that lead out of ``path``; by default they are skipped
        and recorded.

    Returns
    -------
    FolderContents or MicroscopyDataset
        Without ``merge_along``: a sequence of datasets with ``.files`` and
        ``.skipped``. With it: the merged dataset, whose ``omio:merge`` annotation
        records the folder and the skipped entries.
    """
    listing = list_folder(path, sort_key=sort_key, files=files, pattern=pattern, follow_symlinks=follow_symlinks)
    datasets, used, skipped = _open_listing(listing, on_error)
    if merge_along is None:
        return FolderContents(listing.folder, tuple(datasets), tuple(used), tuple(skipped))
    if not datasets:
        raise MergeError(f"'{listing.folder}': no readable images to merge ({len(skipped)} entries skipped)")
    extra = {"folder": str(listing.folder), "skipped": [s.to_record() for s in skipped]}
    return concat(datasets, axis=merge_along, policy=policy, promote_dtype=promote_dtype, extra=extra)


def stack_folders(
    path: str | Path | Sequence[str | Path],
    *,
    tag: str | re.Pattern[str] | None = None,
    sort_key: SortKey | None = None,
    follow_symlinks: bool = False,
) -> list[Path]:
    """The folders of a stack, in order: the given list as it is, or a parent's matching sub-folders.

    A string ``tag`` matches folder names containing it (``"TAG_"``), a compiled
    pattern is searched in the name; folders are sorted by ``sort_key`` (default
    :func:`natural_key`). Sub-folders that cannot be read, or are links leading out
    of the parent (unless ``follow_symlinks``), are left out (see :func:`subfolders`).
    """
    return _stack(path, tag, sort_key, follow_symlinks)[0]


def _stack(
    path: str | Path | Sequence[str | Path],
    tag: str | re.Pattern[str] | None,
    sort_key: SortKey | None,
    follow_symlinks: bool,
) -> tuple[list[Path], list[Skipped]]:
    if isinstance(path, (str, Path)):
        parent = Path(path)
        if not parent.is_dir():
            raise FileNotFoundError(f"No such folder: '{parent}'")
        return subfolders(parent, tag, follow_symlinks=follow_symlinks, sort_key=sort_key)
    return [Path(p) for p in path], []


def name_matches(name: str, rule: str | re.Pattern[str] | None) -> bool:
    """True when ``rule`` is None, a string contained in ``name``, or a pattern found in it.

    >>> name_matches("exp_TP001", "TP"), name_matches("sub-01", re.compile(r"^sub-\\d+$"))
    (True, True)
    """
    if rule is None:
        return True
    if isinstance(rule, str):
        return rule in name
    return rule.search(name) is not None


def open_folder_stack(
    path: str | Path | Sequence[str | Path],
    *,
    tag: str | re.Pattern[str] | None = None,
    merge_along: Axis = "T",
    policy: Policy = "strict",
    sort_key: SortKey | None = None,
    pattern: str | None = None,
    on_error: OnError = "raise",
    promote_dtype: bool = False,
    follow_symlinks: bool = False,
) -> MicroscopyDataset:
    """Merge the same acquisition repeated in sibling folders (``TAG_01/``, ``TAG_02/``...).

    The images of every folder (each folder's files in natural order) are merged, folder
    after folder, along ``merge_along``.

    Parameters
    ----------
    path
        A parent folder (its sub-folders matching ``tag`` form the stack, in
        ``sort_key`` order), or an explicit list of folders in the order to use.
    tag
        A substring (``"TAG_"``) or compiled pattern selecting sub-folders of ``path``.
    merge_along, policy, promote_dtype
        See :func:`omio.merge.concat`.
    sort_key
        Order of folders and of the files inside each (default :func:`natural_key`).
    pattern, on_error
        See :func:`open_folder`.
    follow_symlinks
        Follow symbolic links leading out of the parent folder (or, for a list, out of
        each folder); by default they are skipped and recorded.
    """
    folders, skipped = _stack(path, tag, sort_key, follow_symlinks)
    if not folders:
        raise MergeError(f"'{path}': no folders match {tag!r}; nothing to stack")
    root = path if isinstance(path, (str, Path)) else None
    datasets: list[MicroscopyDataset] = []
    for folder in folders:
        listing = list_folder(folder, sort_key=sort_key, pattern=pattern, follow_symlinks=follow_symlinks, root=root)
        contents, _, folder_skipped = _open_listing(listing, on_error)
        datasets.extend(contents)
        skipped.extend(folder_skipped)
    if not datasets:
        raise MergeError(f"no readable images in the folder stack {[str(f) for f in folders]}")
    extra = {"folders": [str(f) for f in folders], "skipped": [s.to_record() for s in skipped]}
    return concat(datasets, axis=merge_along, policy=policy, promote_dtype=promote_dtype, extra=extra)
