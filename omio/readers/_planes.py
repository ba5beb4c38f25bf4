"""Per-plane metadata a file states (times, exposures, stage positions), without ome-types.

Readers make the rows of a dataset's plane table (:class:`omio.record.PlaneInfo`) with
:func:`plane_row` from numbers in seconds (``delta_t``, ``exposure_time``) and micrometres
(positions), parse what files state with :func:`finite` and :func:`parse_time`, and keep
the planes that state something (:func:`plane_infos`). A value the file does not state
is ``None``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from omio.errors import MetadataError
from omio.record import PlaneInfo
from omio.units import Measure

__all__ = [
    "MAX_PLANES",
    "finite",
    "parse_time",
    "plane_codes",
    "plane_infos",
    "plane_row",
    "too_many_planes",
]

MAX_PLANES = 2**16
"""Images with more TZC planes than this get no plane table (OME ``Plane`` elements take
about 50 microseconds each to build): the reader's rule says so."""


def plane_row(
    t: int,
    z: int,
    c: int,
    delta_t: float | None = None,
    exposure_time: float | None = None,
    position_x: float | None = None,
    position_y: float | None = None,
    position_z: float | None = None,
) -> PlaneInfo:
    """A plane table row from what a file states in seconds (times) and micrometres (positions).

    ``t``, ``z``, ``c`` are the plane's indices in the dataset's TZCYX array; ``None``
    where the file states nothing.
    """

    def m(value: float | None, unit: str) -> Measure | None:
        return None if value is None else Measure(value, unit)

    return PlaneInfo(
        t,
        z,
        c,
        m(delta_t, "second"),
        m(exposure_time, "second"),
        m(position_x, "micrometer"),
        m(position_y, "micrometer"),
        m(position_z, "micrometer"),
    )


def finite(value: object, what: str, path: str | os.PathLike[str]) -> float | None:
    """A stated number as a finite float; ``None`` for an absent (``None`` or blank) value.

    Raises
    ------
    MetadataError
        Naming ``path`` and ``what``, where the value is stated but is not a finite number.

    Examples
    --------
    >>> finite(" 1.5 ", "x", "a.czi"), finite(None, "x", "a.czi"), finite("", "x", "a.czi")
    (1.5, None, None)
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MetadataError(f"{os.fspath(path)}: {what} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise MetadataError(f"{os.fspath(path)}: {what} is {value!r}, not a finite number")
    return number


def parse_time(text: str | None, what: str, path: str | os.PathLike[str]) -> datetime | None:
    """Parse an ISO 8601 time stamp (``2021-06-15T06:09:43.0304818Z``); ``None`` where absent.

    Fractions finer than a microsecond are cut to microseconds; a time without a zone is
    taken as UTC (so that any two stamps can be subtracted).

    Raises
    ------
    MetadataError
        Naming ``path`` and ``what``, where the text is not such a time stamp.
    """
    if text is None or not text.strip():
        return None
    stamp = text.strip()
    if stamp.endswith(("Z", "z")):
        stamp = stamp[:-1] + "+00:00"
    head, dot, rest = stamp.partition(".")
    if dot:  # at most 6 fractional digits for datetime
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[: min(digits, 6)] + rest[digits:]
        stamp = f"{head}.{rest}"
    try:
        value = datetime.fromisoformat(stamp)
    except ValueError:
        raise MetadataError(f"{os.fspath(path)}: {what} is {text!r}, not an ISO 8601 time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def plane_codes(codes: np.ndarray[Any, Any], letters: str, tzc: Sequence[int]) -> np.ndarray[Any, Any]:
    """Map per-frame codes onto T, Z, C exactly as :func:`omio.dims.to_tzcyx` maps the pixels.

    ``codes`` has the pixels' native axes ``letters`` (axes it does not vary along may
    have size 1, or be broadcast views); the result is ``codes[t, z, c]``, the smallest
    code among those of the plane's Y and X (the first stored frame of a plane whose rows
    come from several frames). Done with numpy: the pixels' mapping is a dask array, and
    opening computes nothing. ``tzc``, the pixels' T, Z, C sizes, is checked.
    """
    from omio.dims import DIMS

    axes = list(letters)
    kept = [i for i, a in enumerate(axes) if a in DIMS or codes.shape[i] > 1]
    arr = codes[tuple(slice(None) if i in kept else 0 for i in range(codes.ndim))]
    axes = [axes[i] for i in kept]
    extras = [a for a in axes if a not in DIMS]
    for d in DIMS:
        if d not in axes:
            arr, axes = arr[..., np.newaxis], [*axes, d]
    arr = arr.transpose([axes.index(d) for d in ("T", "Z", "C", *extras, "Y", "X")]).min(axis=(-2, -1))
    out = arr.reshape(arr.shape[0], arr.shape[1], -1)
    if out.shape != tuple(tzc):
        raise AssertionError(f"plane codes {out.shape} do not match the pixels' T, Z, C {tuple(tzc)}")
    return out


def too_many_planes(tzc: Sequence[int]) -> str | None:
    """The rule's note for an image with more than :data:`MAX_PLANES` planes, else ``None``."""
    n = math.prod(int(v) for v in tzc)
    if n <= MAX_PLANES:
        return None
    return f"Plane metadata: not read ({n} planes, more than {MAX_PLANES})."


def plane_infos(planes: Iterable[PlaneInfo]) -> list[PlaneInfo]:
    """The rows of the planes that state something (the plane table leaves the others out)."""
    return [p for p in planes if not p.is_empty()]
