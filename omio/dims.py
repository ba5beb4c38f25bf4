"""The TZCYX model: constants, axis strings, and mapping arrays onto TZCYX.

Every image in omio has dims exactly ``("T", "Z", "C", "Y", "X")``. Readers state
the file's own axes with a string of letters (tifffile's vocabulary: ``T Z C Y X``,
``S`` for colour samples, ``Q``/``I`` for an unnamed page axis, and others such as
``H`` or ``E`` for extra dimensions); :func:`to_tzcyx` maps them by a fixed, stated
rule:

- ``T Z C Y X`` keep their meaning; missing axes are inserted with size 1.
- ``S`` (RGB samples) becomes C; with a C axis too, channels and samples are folded
  channel-major (C outer, S inner).
- An unnamed page axis (``Q``, ``I``) becomes T (as Bio-Formats does for a plain
  multi-page TIFF), or Z when T is taken, and the rule says so.
- Any other axis of size 1 is dropped; of size > 1 it is folded into C
  channel-major (C outer, the extra axis inner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import dask.array as da

from omio.errors import DimensionError

__all__ = ["DIMS", "SAMPLE_COLORS", "SAMPLE_NAMES", "AxisMapping", "ChannelPart", "normalize_axes", "to_tzcyx"]

DIMS: Final[tuple[str, str, str, str, str]] = ("T", "Z", "C", "Y", "X")
"""The dims of every dataset, in order."""

AMBIGUOUS = ("Q", "I")
SAMPLE_NAMES: Final = ("R", "G", "B", "A")
"""The names of a pixel's colour samples, in the order they are stored."""
SAMPLE_COLORS: Final[dict[str, tuple[int, int, int]]] = {"R": (255, 0, 0), "G": (0, 255, 0), "B": (0, 0, 255)}
"""The display colour of each colour sample (alpha has none): every reader and writer takes RGB colours from here."""


@dataclass(frozen=True)
class ChannelPart:
    """Where one output channel comes from: the file's channel index and a suffix.

    ``suffix`` is ``None`` for a plain channel, ``"R"``/``"G"``/``"B"`` for a colour
    sample, or ``"<axis><i>"`` for a folded extra axis.
    """

    channel: int
    suffix: str | None = None

    def name(self, names: Sequence[str | None] | None) -> str | None:
        """Return the output channel name given the file's channel names."""
        base = names[self.channel] if names is not None and self.channel < len(names) else None
        if self.suffix is None:
            return base
        return self.suffix if base is None else f"{base}:{self.suffix}"


@dataclass(frozen=True)
class AxisMapping:
    """The result of mapping an array onto TZCYX."""

    data: da.Array
    channels: tuple[ChannelPart, ...]
    rule: str
    keeps_order: bool = False
    """True when ``data`` holds the input's elements in the input's C order (only size-1
    axes were added or dropped), so the input can be read straight into a TZCYX buffer."""


def normalize_axes(axes: str, ndim: int | None = None, *, allowed: str = "TZCYX") -> str:
    """Validate and upper-case an axis string.

    Parameters
    ----------
    axes
        Letters naming each axis of an array in order, e.g. ``"ZYX"`` or ``"yxc"``.
    ndim
        If given, the number of axes the string must name.
    allowed
        The letters accepted.

    Raises
    ------
    DimensionError
        For unknown or repeated letters, a wrong length, or a missing Y or X.

    Examples
    --------
    >>> normalize_axes("zyx", 3)
    'ZYX'
    """
    if not isinstance(axes, str) or not axes:
        raise DimensionError(f"axes must be a non-empty string such as 'ZYX', got {axes!r}")
    up = axes.upper()
    bad = sorted({a for a in up if a not in allowed})
    if bad:
        raise DimensionError(f"axes {axes!r} has unknown letter(s) {bad}; use letters from {allowed!r}")
    repeated = sorted({a for a in up if up.count(a) > 1})
    if repeated:
        raise DimensionError(f"axes {axes!r} repeats {repeated}; name each axis once")
    if ndim is not None and len(up) != ndim:
        raise DimensionError(f"axes {axes!r} names {len(up)} axes but the array has {ndim}; give one letter per axis")
    if "Y" not in up or "X" not in up:
        raise DimensionError(f"axes {axes!r} must include Y and X")
    return up


def to_tzcyx(array: Any, axes: str, *, stated_by: str = "file") -> AxisMapping:
    """Map an array with the given axes onto TZCYX by the module's rule.

    Parameters
    ----------
    array
        A numpy or dask array.
    axes
        One letter per axis of ``array`` (tifffile vocabulary, upper case).
    stated_by
        Who stated ``axes`` (``"file"`` or ``"user"``), recorded in the rule.

    Returns
    -------
    AxisMapping
        The lazy TZCYX dask array, the origin of every output channel, and the rule text.
    """
    arr = array if isinstance(array, da.Array) else da.asarray(array)
    if len(axes) != arr.ndim:
        raise DimensionError(f"axes {axes!r} names {len(axes)} axes but the array has {arr.ndim}")
    letters = list(axes)
    notes: list[str] = []
    # Ambiguous page axes: first to T, then Z, then folded into C.
    for i, a in enumerate(letters):
        if a in AMBIGUOUS:
            target = next((d for d in ("T", "Z") if d not in letters), None)
            if target is None:
                notes.append(f"unnamed axis {a} (size {arr.shape[i]}) folded into C")
                letters[i] = "E"
            else:
                notes.append(f"unnamed page axis {a} (size {arr.shape[i]}) taken as {target}")
                letters[i] = target
    # Drop extra axes of size 1; extras of size > 1 are folded into C below, in file order.
    kept = [i for i, a in enumerate(letters) if a in DIMS or arr.shape[i] > 1]
    arr = arr[tuple(slice(None) if i in kept else 0 for i in range(arr.ndim))]
    letters = [letters[i] for i in kept]
    extra_letters = [a for a in letters if a not in DIMS]
    for a in extra_letters:
        if a != "S":
            notes.append(f"extra axis {a} folded into C (C outer, {a} inner)")
        else:
            notes.append("colour samples S become C")
    # Insert missing TZCYX dims.
    for d in DIMS:
        if d not in letters:
            arr = arr[..., None]
            letters.append(d)
    # Order: T Z C <extras> Y X, then fold extras into C.
    order = [letters.index(d) for d in ("T", "Z", "C")] + [letters.index(a) for a in extra_letters]
    order += [letters.index("Y"), letters.index("X")]
    moved = [i for i in order if arr.shape[i] > 1]
    keeps_order = moved == sorted(moved)
    arr = arr.transpose(order)
    n_c = arr.shape[2]
    extra_sizes = [arr.shape[3 + k] for k in range(len(extra_letters))]
    parts: list[ChannelPart] = []
    if extra_letters:
        import itertools

        for c in range(n_c):
            for combo in itertools.product(*(range(n) for n in extra_sizes)):
                suffix = ":".join(_suffix(a, i, n) for a, i, n in zip(extra_letters, combo, extra_sizes, strict=True))
                parts.append(ChannelPart(c, suffix))
        total_c = len(parts)
        arr = arr.reshape((*arr.shape[:2], total_c, *arr.shape[-2:]))
    else:
        parts = [ChannelPart(c) for c in range(n_c)]
    who = "as stated by the user" if stated_by == "user" else "as stated in the file"
    rule = f"axes {axes!r} {who}"
    if notes:
        rule += "; " + "; ".join(notes)
    return AxisMapping(arr, tuple(parts), rule, keeps_order)


def _suffix(axis: str, index: int, size: int) -> str:
    if axis == "S" and size in (3, 4):
        return SAMPLE_NAMES[index]
    return f"{axis}{index}"


def plane_chunks(shape: Sequence[int], axes: str) -> tuple[int, ...]:
    """Chunks of whole Y/X planes, one per index of the other axes."""
    up = axes.upper()
    return tuple(int(n) if a in "YX" else 1 for a, n in zip(up, shape, strict=True))
