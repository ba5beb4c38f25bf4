"""Warn when a function that reads one scene per file leaves scenes of a file out."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

from omio.errors import ScenesLeftOutWarning

if TYPE_CHECKING:
    from omio.dataset import MicroscopyDataset

__all__ = ["warn_scenes_left_out"]

_OMIO_FOLDER = os.path.dirname(os.path.abspath(__file__))


def _label(index: int, name: str | None) -> str:
    return f"{index} ({name!r})" if name else str(index)


def warn_scenes_left_out(datasets: Iterable[MicroscopyDataset], *, caller: str, hint: str) -> None:
    """Warn once per file whose scenes are not all among ``datasets``.

    Parameters
    ----------
    datasets
        The datasets a function read (before any merge), each knowing its file's scenes.
    caller
        The function's name, for the message.
    hint
        How to get every scene (an option of ``caller`` or another function).

    Warns
    -----
    ScenesLeftOutWarning
        Naming the file, the scenes used and those left out (index and name), and the
        hint. The warning points at the caller's code, not at omio's.
    """
    read: dict[str, tuple[tuple[str | None, ...], set[int]]] = {}
    for ds in datasets:
        info = ds.source
        if info.path is None or len(info.scenes) < 2:
            continue
        key = os.fspath(info.path)
        read.setdefault(key, (tuple(info.scenes), set()))[1].add(int(info.scene))
    for path, (names, used) in read.items():
        left = [i for i in range(len(names)) if i not in used]
        if not left:
            continue
        used_text = ", ".join(_label(i, names[i]) for i in sorted(used))
        left_text = ", ".join(_label(i, names[i]) for i in left)
        warnings.warn(
            f"{path}: {caller} used scene {used_text} of {len(names)} and left out scene(s) {left_text}; {hint}",
            ScenesLeftOutWarning,
            skip_file_prefixes=(_OMIO_FOLDER,),
        )
