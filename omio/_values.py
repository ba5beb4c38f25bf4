"""User values checked and normalized: indexers, metadata keys, origins, pixel sizes.

Used by :class:`omio.MicroscopyDataset`'s selection and ``with_metadata``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from omio import units
from omio.errors import DimensionError, MetadataError

if TYPE_CHECKING:
    import pint

__all__ = ["check_dimensionality", "checked_keys", "indexer", "origin_value"]

LENGTH_DEFAULT = "micrometer"
TIME_DEFAULT = "second"


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
