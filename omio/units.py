"""Physical units: one pint registry for the whole package.

:data:`ureg` is a registry with ome-types' unit definitions, built here so that
reading pixels never imports the OME model classes. The quantities omio returns
(``<Quantity(0.2, 'micrometer')>``) are plain scalars; :func:`from_ome_quantity`
brings one from the OME model's ``*_quantity`` properties (ome-types' registry)
into :data:`ureg`. ``ds.quantify()`` gives pint-xarray
coordinates in this same registry. (pint-xarray insists on registries that force
array magnitudes; coordinates are arrays anyway, so :func:`quantify` lifts that check
for the one call instead of turning every scalar into a 0-d array.) Coordinates
carry their unit as a canonical pint name in ``attrs["units"]`` (``"micrometer"``,
``"second"``), pint-xarray's convention and the UDUNITS-2 name OME-Zarr expects.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import TYPE_CHECKING, Any

import pint

from omio.errors import MetadataError

if TYPE_CHECKING:
    from ome_types.model import UnitsLength, UnitsTime


def _registry() -> pint.UnitRegistry:
    """A registry defined as ome-types defines its own (``ome_types.units``)."""
    registry = pint.UnitRegistry(auto_reduce_dimensions=True, on_redefinition="ignore")
    for definition in (
        "reference_frame = [_reference_frame]",
        "@alias grade = gradian",
        "@alias astronomical_unit = ua",
        "line = inch / 12",
        "millitorr = torr / 1000 = mTorr",
        "@alias torr = Torr",
        "@alias point = pt",
    ):
        registry.define(definition)
    return registry


ureg: pint.UnitRegistry = _registry()
"""The registry of every quantity omio returns."""
_LOCK = threading.Lock()

__all__ = [
    "Quantity",
    "from_ome_quantity",
    "length_unit_from_ome",
    "ome_length_unit",
    "ome_time_unit",
    "parse_unit",
    "quantity",
    "time_unit_from_ome",
    "unit_name",
    "ureg",
]

Quantity = pint.Quantity
"""The quantity type returned by omio (from :data:`ureg`)."""

# Spellings found in ImageJ, LSM, CZI and vendor metadata that pint does not know.
_ALIASES: dict[str, str] = {
    "micron": "micrometer",
    "microns": "micrometer",
    "um": "micrometer",
    "µm": "micrometer",
    "μm": "micrometer",  # greek mu
    "\\u00b5m": "micrometer",
    "u": "micrometer",
    "nm": "nanometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "å": "angstrom",
    "angstrom": "angstrom",
    "sec": "second",
    "s": "second",
    "ms": "millisecond",
    "msec": "millisecond",
    "us": "microsecond",
    "µs": "microsecond",
    "min": "minute",
    "h": "hour",
    "hr": "hour",
}


def parse_unit(text: str) -> pint.Unit:
    """Parse a unit as written in microscopy metadata.

    Parameters
    ----------
    text
        A unit string such as ``"micron"``, ``"\\u00B5m"``, ``"µm"``, ``"nm"`` or ``"sec"``.

    Returns
    -------
    pint.Unit
        The unit in :data:`ureg`.

    Raises
    ------
    MetadataError
        When the text is not a known unit.

    Examples
    --------
    >>> str(parse_unit("micron"))
    'micrometer'
    >>> str(parse_unit("\\\\u00B5m"))
    'micrometer'
    """
    key = text.strip()
    name = _ALIASES.get(key.lower(), _ALIASES.get(key, key))
    try:
        unit = ureg.Unit(name)
    except (pint.UndefinedUnitError, ValueError, AttributeError, TypeError) as exc:
        raise MetadataError(f"unknown unit {text!r}; use a pint unit name such as 'micrometer'") from exc
    return unit


def quantity(value: float, unit: str | pint.Unit) -> pint.Quantity:
    """Return ``value`` in ``unit`` as a quantity of :data:`ureg`."""
    u = parse_unit(unit) if isinstance(unit, str) else unit
    return ureg.Quantity(float(value), u)


def unit_name(unit: pint.Unit | str) -> str:
    """Return the canonical long pint name of a unit (``"micrometer"``)."""
    u = parse_unit(unit) if isinstance(unit, str) else unit
    return str(u)


@functools.cache
def _ome_length_table() -> dict[str, UnitsLength]:
    from ome_types.model import UnitsLength

    table: dict[str, UnitsLength] = {}
    for member in UnitsLength:
        try:
            table[str(ureg.Unit(member.value.replace(" ", "_")))] = member
        except (pint.UndefinedUnitError, ValueError, AttributeError):
            continue
    return table


@functools.cache
def _ome_time_table() -> dict[str, UnitsTime]:
    from ome_types.model import UnitsTime

    table: dict[str, UnitsTime] = {}
    for member in UnitsTime:
        try:
            table[str(ureg.Unit(member.value))] = member
        except (pint.UndefinedUnitError, ValueError, AttributeError):
            continue
    return table


def _ome_symbol(unit: pint.Unit) -> str:
    """pint's short symbol for ``unit`` written as OME writes it (micro sign, not Greek mu)."""
    return format(unit, "~").replace("\u03bc", "\u00b5")


def ome_length_unit(unit: pint.Unit | str) -> UnitsLength:
    """Return the OME length-unit enum member for a pint unit.

    Raises
    ------
    MetadataError
        When OME has no such length unit.
    """
    from ome_types.model import UnitsLength

    u = parse_unit(unit) if isinstance(unit, str) else unit
    try:  # OME's unit strings are mostly pint's symbols (with the micro sign): skip building the table
        return UnitsLength(_ome_symbol(u))
    except ValueError:
        pass
    name = str(u)
    try:
        return _ome_length_table()[name]
    except KeyError:
        raise MetadataError(f"{name!r} is not an OME length unit") from None


def ome_time_unit(unit: pint.Unit | str) -> UnitsTime:
    """Return the OME time-unit enum member for a pint unit."""
    from ome_types.model import UnitsTime

    u = parse_unit(unit) if isinstance(unit, str) else unit
    try:
        return UnitsTime(_ome_symbol(u))
    except ValueError:
        pass
    name = str(u)
    try:
        return _ome_time_table()[name]
    except KeyError:
        raise MetadataError(f"{name!r} is not an OME time unit") from None


def length_unit_from_ome(member: UnitsLength | str | None) -> pint.Unit:
    """Return the pint unit of an OME length unit (OME's default is micrometre)."""
    if member is None:
        return ureg.Unit("micrometer")
    value = str(getattr(member, "value", member))
    return ureg.Unit(value.replace(" ", "_"))


def time_unit_from_ome(member: UnitsTime | str | None) -> pint.Unit:
    """Return the pint unit of an OME time unit (OME's default is second)."""
    if member is None:
        return ureg.Unit("second")
    value = str(getattr(member, "value", member))
    return ureg.Unit(value)


def as_quantity(value: Any, default_unit: str) -> pint.Quantity | None:
    """Coerce a user value (number, string or quantity) to a quantity, ``None`` stays ``None``.

    A bare number is taken in ``default_unit``; a string is parsed by pint
    (``"0.2 um"``). Non-positive or non-finite values are rejected.
    """
    if value is None:
        return None
    if isinstance(value, pint.Quantity):
        q = ureg.Quantity(value.magnitude, str(value.units))
    elif isinstance(value, str):
        parts = value.strip().split(maxsplit=1)
        if len(parts) == 2:
            q = quantity(float(parts[0]), parts[1])
        else:
            q = quantity(float(parts[0]), default_unit)
    else:
        q = quantity(float(value), default_unit)
    if not math.isfinite(q.magnitude) or q.magnitude <= 0:
        raise MetadataError(f"a physical size or interval must be positive and finite, got {value!r}")
    return q


def from_ome_quantity(value: pint.Quantity) -> pint.Quantity:
    """Return a quantity from any pint registry as one of :data:`ureg`."""
    return ureg.Quantity(float(value.magnitude), str(value.units))


def quantify(data: Any) -> Any:
    """Return ``data.pint.quantify(unit_registry=ureg)`` for an xarray object (pint-xarray)."""
    import pint_xarray  # noqa: F401 - registers the accessor

    with _LOCK:
        previous = ureg.force_ndarray_like
        ureg.force_ndarray_like = True
        try:
            return data.pint.quantify(unit_registry=ureg)
        finally:
            ureg.force_ndarray_like = previous
