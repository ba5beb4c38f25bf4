"""Merge policies: pure functions over metadata (no pixel I/O).

A merge of datasets along T, Z or C is planned here from what each source states
(shape, dtype, physical pixel sizes, time increment, channel names) and carried
out lazily by :mod:`omio.merge`. Two policies exist:

``"strict"``
    Every axis but the merge axis has the same size in all sources, the dtypes are
    equal, the physical pixel sizes agree (after unit conversion, within a small
    relative tolerance), so does the time increment, and for T and Z merges the
    channel names are equal. Every mismatch is reported at once, with the source
    it came from.
``"pad"``
    Axes other than the merge axis may differ in size: each source is zero-padded
    at the end of those axes up to the largest extent. Scales must still agree
    (padding never mixes pixel sizes), channel names must agree where channels
    overlap, and different dtypes are an error unless ``promote_dtype=True``.

Examples
--------
>>> import numpy as np
>>> a = SourceMeta("a.tif", (2, 1, 1, 4, 4), np.dtype("uint8"))
>>> b = SourceMeta("b.tif", (3, 1, 1, 4, 6), np.dtype("uint8"))
>>> plan = plan_merge([a, b], axis="T", policy="pad")
>>> plan.shape
(5, 1, 1, 4, 6)
>>> [(p.start, p.stop, p.padding["X"]) for p in plan.placements]
[(0, 2, 2), (2, 5, 0)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from omio.dims import DIMS
from omio.errors import MergeError

if TYPE_CHECKING:
    import pint

    from omio.dataset import MicroscopyDataset

__all__ = ["Axis", "MergePlan", "Placement", "Policy", "SourceMeta", "check_compatible", "plan_merge", "unique_names"]

Axis = Literal["T", "Z", "C"]
Policy = Literal["strict", "pad"]
RTOL = 1e-6
"""Relative tolerance for comparing physical sizes and time increments."""


@dataclass(frozen=True)
class SourceMeta:
    """What a merge needs to know about one source.

    Attributes
    ----------
    label
        How the source is named in messages and provenance (its path, or ``dataset[i]``).
    shape
        The TZCYX shape.
    dtype
        The pixel dtype.
    physical_pixel_sizes
        ``{"X": q, "Y": q, "Z": q}`` (pint quantities or ``None``).
    time_increment
        A pint quantity or ``None``.
    channel_names
        One per channel (``None`` where unnamed); empty means "all unnamed".
    """

    label: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    physical_pixel_sizes: Mapping[str, pint.Quantity | None] = field(default_factory=dict)
    time_increment: pint.Quantity | None = None
    channel_names: tuple[str | None, ...] = ()

    @classmethod
    def from_dataset(cls, ds: MicroscopyDataset, label: str | None = None) -> SourceMeta:
        """Summarize a dataset (metadata only)."""
        return cls(
            label=label if label is not None else (str(ds.path) if ds.path is not None else "in-memory dataset"),
            shape=ds.shape,
            dtype=ds.dtype,
            physical_pixel_sizes=ds.physical_pixel_sizes,
            time_increment=ds.time_increment,
            channel_names=tuple(ds.channel_names),
        )

    def names(self) -> tuple[str | None, ...]:
        """Channel names, one per channel."""
        n_c = self.shape[2]
        return self.channel_names if len(self.channel_names) == n_c else (None,) * n_c


@dataclass(frozen=True)
class Placement:
    """Where one source lands in the merged result.

    ``offset[d]`` is the index in the result of the source's first element along
    dim ``d``; ``start``/``stop`` is its index range along the merge axis;
    ``padding[d]`` is the number of zero elements appended after it along ``d``.
    """

    label: str
    shape: tuple[int, ...]
    start: int
    stop: int
    offset: dict[str, int]
    padding: dict[str, int]


@dataclass(frozen=True)
class MergePlan:
    """The outcome of a policy: result shape and dtype, placements, channel names."""

    axis: Axis
    policy: Policy
    shape: tuple[int, int, int, int, int]
    dtype: np.dtype[Any]
    placements: tuple[Placement, ...]
    channel_names: tuple[str | None, ...]
    renamed_channels: tuple[tuple[int, str, str], ...] = ()
    """``(source index, old name, new name)`` for duplicate channel names made unique (C merges)."""
    promoted_from: tuple[str, ...] = ()
    """Source dtypes when ``promote_dtype`` changed them, else empty."""
    channel_source: int = 0
    """For T/Z merges: the source whose channel descriptions the result takes (the one with most channels)."""


def _same(a: pint.Quantity | None, b: pint.Quantity | None, rtol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a.dimensionality != b.dimensionality:
        return False
    return math.isclose(float(a.magnitude), float(b.to(a.units).magnitude), rel_tol=rtol, abs_tol=0.0)


def _fmt(q: pint.Quantity | None) -> str:
    return "None (not stated)" if q is None else f"{q.magnitude:.6g} {q.units:~P}"


def check_compatible(
    sources: Sequence[SourceMeta],
    *,
    axis: Axis,
    policy: Policy = "strict",
    promote_dtype: bool = False,
    rtol: float = RTOL,
) -> list[str]:
    """Return every reason why ``sources`` cannot be merged (empty when they can).

    Each message names the field, the source that differs and both values; the
    first source is the reference.

    Examples
    --------
    >>> import numpy as np
    >>> a = SourceMeta("a.tif", (1, 1, 1, 4, 4), np.dtype("uint8"))
    >>> b = SourceMeta("b.tif", (1, 1, 1, 4, 5), np.dtype("uint16"))
    >>> for line in check_compatible([a, b], axis="T"):
    ...     print(line)
    b.tif: size X is 5, a.tif has 4
    b.tif: dtype is uint16, a.tif has uint8
    """
    _check_axis(axis, policy)
    if not sources:
        return ["nothing to merge: no datasets given"]
    ref = sources[0]
    problems: list[str] = []
    for src in sources[1:]:
        if policy == "strict":
            for dim, n_ref, n in zip(DIMS, ref.shape, src.shape, strict=True):
                if dim != axis and n != n_ref:
                    problems.append(f"{src.label}: size {dim} is {n}, {ref.label} has {n_ref}")
        if src.dtype != ref.dtype and not (policy == "pad" and promote_dtype):
            problems.append(f"{src.label}: dtype is {src.dtype.name}, {ref.label} has {ref.dtype.name}")
        for dim in ("X", "Y", "Z"):
            qa, qb = ref.physical_pixel_sizes.get(dim), src.physical_pixel_sizes.get(dim)
            if not _same(qa, qb, rtol):
                problems.append(f"{src.label}: physical size {dim} is {_fmt(qb)}, {ref.label} has {_fmt(qa)}")
        if not _same(ref.time_increment, src.time_increment, rtol):
            problems.append(
                f"{src.label}: time increment is {_fmt(src.time_increment)}, {ref.label} has {_fmt(ref.time_increment)}"
            )
    if axis != "C":
        problems.extend(_channel_problems(sources, strict=policy == "strict"))
    return problems


def _channel_problems(sources: Sequence[SourceMeta], *, strict: bool) -> list[str]:
    ref = sources[0]
    problems: list[str] = []
    if strict:
        for src in sources[1:]:
            if src.names() != ref.names() and src.shape[2] == ref.shape[2]:
                problems.append(
                    f"{src.label}: channel names are {list(src.names())}, {ref.label} has {list(ref.names())}"
                )
        return problems
    longest = max(sources, key=lambda s: s.shape[2])
    for src in sources:
        names = src.names()
        if names != longest.names()[: len(names)]:
            problems.append(
                f"{src.label}: channel names {list(names)} do not match the first channels of "
                f"{longest.label} {list(longest.names())}; padding C would mix channels"
            )
    return problems


def _check_axis(axis: str, policy: str) -> None:
    if axis not in ("T", "Z", "C"):
        raise MergeError(f"merge axis must be 'T', 'Z' or 'C', got {axis!r}")
    if policy not in ("strict", "pad"):
        raise MergeError(f"merge policy must be 'strict' or 'pad', got {policy!r}")


def unique_names(groups: Sequence[Sequence[str | None]]) -> tuple[list[str | None], list[tuple[int, str, str]]]:
    """Concatenate channel names, making repeated names unique with ``_2``, ``_3``...

    Returns the names and the ``(group index, old, new)`` renames. Unnamed
    channels stay unnamed.

    Examples
    --------
    >>> unique_names([["GFP", "RFP"], ["GFP", None]])
    (['GFP', 'RFP', 'GFP_2', None], [(1, 'GFP', 'GFP_2')])
    """
    seen: set[str] = set()
    out: list[str | None] = []
    renamed: list[tuple[int, str, str]] = []
    all_names = {n for g in groups for n in g if n is not None}
    for i, group in enumerate(groups):
        for name in group:
            if name is None:
                out.append(None)
                continue
            new = name
            k = 2
            while new in seen or (new != name and new in all_names):
                new = f"{name}_{k}"
                k += 1
            seen.add(new)
            out.append(new)
            if new != name:
                renamed.append((i, name, new))
    return out, renamed


def plan_merge(
    sources: Sequence[SourceMeta],
    *,
    axis: Axis = "T",
    policy: Policy = "strict",
    promote_dtype: bool = False,
    rtol: float = RTOL,
) -> MergePlan:
    """Plan a merge or raise :class:`~omio.errors.MergeError` listing every problem.

    Parameters
    ----------
    sources
        One summary per dataset, in merge order.
    axis
        ``"T"``, ``"Z"`` or ``"C"``.
    policy
        ``"strict"`` or ``"pad"`` (see the module documentation).
    promote_dtype
        With ``policy="pad"``, allow different dtypes and use ``numpy.result_type``.
    rtol
        Relative tolerance for physical sizes and time increments.
    """
    problems = check_compatible(sources, axis=axis, policy=policy, promote_dtype=promote_dtype, rtol=rtol)
    if problems:
        head = f"cannot merge {len(sources)} datasets along {axis} with policy {policy!r}:"
        raise MergeError("\n  - ".join([head, *problems]))
    k = DIMS.index(axis)
    extent = [max(s.shape[i] for s in sources) for i in range(5)]
    extent[k] = sum(s.shape[k] for s in sources)
    placements: list[Placement] = []
    start = 0
    for src in sources:
        stop = start + src.shape[k]
        offset = {d: (start if d == axis else 0) for d in DIMS}
        padding = {d: (0 if d == axis else extent[i] - src.shape[i]) for i, d in enumerate(DIMS)}
        placements.append(Placement(src.label, tuple(src.shape), start, stop, offset, padding))
        start = stop
    dtypes = [s.dtype for s in sources]
    dtype = np.dtype(np.result_type(*dtypes))
    promoted = tuple(d.name for d in dtypes) if any(d != dtype for d in dtypes) else ()
    renamed: list[tuple[int, str, str]] = []
    channel_source = 0
    if axis == "C":
        names, renamed = unique_names([s.names() for s in sources])
    else:
        channel_source = max(range(len(sources)), key=lambda i: sources[i].shape[2])
        names = list(sources[channel_source].names())
    t, z, c, y, x = extent
    return MergePlan(
        axis=axis,
        policy=policy,
        shape=(t, z, c, y, x),
        dtype=dtype,
        placements=tuple(placements),
        channel_names=tuple(names),
        renamed_channels=tuple(renamed),
        promoted_from=promoted,
        channel_source=channel_source,
    )
