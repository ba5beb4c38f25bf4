"""Per-plane metadata a file states (times, exposures, stage positions), without ome-types.

Readers collect :class:`PlaneValues` while opening (plain numbers: picklable, no
ome-types import) and turn them into OME ``Plane`` elements with :func:`ome_planes`
when the OME model is built. Units are fixed: seconds for ``delta_t`` and
``exposure_time``, micrometres for positions. A value the file does not state is
``None`` and stays out of the ``Plane``; a plane with no value at all is left out.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from omio.errors import MetadataError

if TYPE_CHECKING:
    from ome_types.model import Plane

__all__ = ["PlaneValues", "finite", "ome_planes", "parse_time"]


@dataclass(frozen=True)
class PlaneValues:
    """What a file states about one TZC plane (``None`` where it states nothing).

    Attributes
    ----------
    t, z, c
        The plane's indices in the dataset's TZCYX array.
    delta_t
        Seconds since the image's first plane.
    exposure_time
        Seconds.
    position_x, position_y, position_z
        Micrometres.
    """

    t: int
    z: int
    c: int
    delta_t: float | None = None
    exposure_time: float | None = None
    position_x: float | None = None
    position_y: float | None = None
    position_z: float | None = None

    @property
    def is_empty(self) -> bool:
        """True when the plane states nothing."""
        values = (self.delta_t, self.exposure_time, self.position_x, self.position_y, self.position_z)
        return all(v is None for v in values)


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


def ome_planes(values: Iterable[PlaneValues]) -> list[Plane]:
    """OME ``Plane`` elements for the planes that state something (seconds, micrometres)."""
    from ome_types.model import Plane

    planes = []
    for v in values:
        if v.is_empty:
            continue
        fields: dict[str, Any] = {"the_t": v.t, "the_z": v.z, "the_c": v.c}
        if v.delta_t is not None:
            fields |= {"delta_t": v.delta_t, "delta_t_unit": "s"}
        if v.exposure_time is not None:
            fields |= {"exposure_time": v.exposure_time, "exposure_time_unit": "s"}
        for axis in "xyz":
            value = getattr(v, f"position_{axis}")
            if value is not None:
                fields |= {f"position_{axis}": value, f"position_{axis}_unit": "µm"}
        planes.append(Plane(**fields))
    return planes
