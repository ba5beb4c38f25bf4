"""User values checked and normalized: indexers, metadata keys, origins, pixel sizes.

Used by :class:`omio.MicroscopyDataset`'s selection and ``with_metadata``
(:func:`stated_record`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from omio import units
from omio.errors import DimensionError, MetadataError

if TYPE_CHECKING:
    import pint

    from omio.record import ImageRecord

__all__ = ["KEEP", "check_dimensionality", "checked_keys", "indexer", "origin_value", "stated_record"]

LENGTH_DEFAULT = "micrometer"
TIME_DEFAULT = "second"


class Keep(enum.Enum):
    """The type of :data:`KEEP`."""

    KEEP = "keep"

    def __repr__(self) -> str:
        return "KEEP"


KEEP = Keep.KEEP
"""The default of :meth:`MicroscopyDataset.with_metadata` arguments that ``None`` clears: keep the value."""


def check_dimensionality(sizes: Mapping[str, pint.Quantity | None], increment: pint.Quantity | None) -> None:
    for axis, q in sizes.items():
        if q is not None and not q.check("[length]"):
            raise MetadataError(f"physical size {axis}={q} is not a length")
    if increment is not None and not increment.check("[time]"):
        raise MetadataError(f"time increment {increment} is not a time")


def checked_keys(values: Mapping[str, Any], valid: str, what: str) -> dict[str, Any]:
    """``values`` with upper-case axis keys, each one of ``valid``."""
    out = {str(k).upper(): v for k, v in values.items()}
    unknown = sorted(str(k) for k, u in zip(values, out, strict=True) if u not in valid)
    if unknown:
        raise MetadataError(f"{what} has keys {unknown}; the valid keys are {', '.join(valid)}")
    return out


def origin_value(axis: str, value: Any) -> units.Measure | None:
    """A user's origin value: a number (micrometres, seconds for T), a quantity or a string; ``None`` clears."""
    import pint

    if value is None:
        return None
    default = TIME_DEFAULT if axis == "T" else LENGTH_DEFAULT
    if isinstance(value, units.Measure):
        value = value.quantity()
    if isinstance(value, pint.Quantity):
        q = units.quantity(float(value.magnitude), str(value.units))
    elif isinstance(value, str):
        parts = value.strip().split(maxsplit=1)
        q = units.quantity(float(parts[0]), parts[1] if len(parts) == 2 else default)
    else:
        q = units.quantity(float(value), default)
    kind = "[time]" if axis == "T" else "[length]"
    if not q.check(kind) or not math.isfinite(q.magnitude):
        raise MetadataError(f"origin {axis}={value!r} is not a finite {kind.strip('[]')}")
    return units.measure(q)


def indexer(dim: str, index: Any, n: int) -> Any:
    """Normalize an indexer: ints become length-1 slices so dims are kept."""
    if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
        i = int(index)
        if not -n <= i < n:
            raise DimensionError(f"index {i} is out of range for {dim} of size {n}")
        i %= n
        return slice(i, i + 1)
    if isinstance(index, slice):
        if len(range(*index.indices(n))) == 0:
            raise DimensionError(f"selection {index} along {dim} is empty (size {n})")
        return index
    arr = np.asarray(index)
    if arr.dtype == bool:
        arr = np.flatnonzero(arr)
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
        raise DimensionError(
            f"selection along {dim} must be an int, a slice or a non-empty list of ints, got {index!r}"
        )
    if arr.min() < -n or arr.max() >= n:
        raise DimensionError(f"selection {arr.tolist()} is out of range for {dim} of size {n}")
    return arr % n


def stated_record(
    record: ImageRecord,
    n_channels: int,
    *,
    physical_pixel_sizes: Mapping[str, Any] | None,
    time_increment: Any,
    channel_names: Sequence[str | None] | None,
    name: str | Keep | None,
    origin: Mapping[str, Any] | None,
) -> ImageRecord:
    """``record`` with the values :meth:`omio.MicroscopyDataset.with_metadata` states (checked).

    ``None`` mappings and :data:`KEEP` keep what ``record`` holds; see that method for the values.
    """
    changes: dict[str, Any] = {}
    if physical_pixel_sizes is not None:
        sizes = dict(record.physical_sizes)
        for axis, value in checked_keys(physical_pixel_sizes, "XYZ", "physical_pixel_sizes").items():
            q = units.as_quantity(value, LENGTH_DEFAULT)
            check_dimensionality({axis: q}, None)
            sizes[axis] = units.measure(q)
        changes["physical_sizes"] = sizes
    if not isinstance(time_increment, Keep):
        q = units.as_quantity(time_increment, TIME_DEFAULT)
        check_dimensionality({}, q)
        changes["time_increment"] = units.measure(q)
    if origin is not None:
        given = {axis: origin_value(axis, value) for axis, value in checked_keys(origin, "XYZT", "origin").items()}
        record = record.without_origin(axis for axis, value in given.items() if value is None)
        changes["origin"] = {**record.origin, **{a: v for a, v in given.items() if v is not None}}
    if channel_names is not None:
        if len(channel_names) != n_channels:
            raise MetadataError(f"{len(channel_names)} channel names given for {n_channels} channels")
        changes["channel_names"] = tuple(n or None for n in channel_names)
    if not isinstance(name, Keep):
        changes["name"] = name or None
    return record.replace(**changes)
