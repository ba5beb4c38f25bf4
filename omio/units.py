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

Readers state sizes as :class:`Measure` (a magnitude and a canonical unit name), and
the usual unit spellings are named from a table, so opening a file and reading its
pixels import neither pint nor the registry (about 6 MB and 0.15 s): both are made
the first time a quantity is asked for.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from omio.errors import MetadataError

if TYPE_CHECKING:
    import pint
    from ome_types.model import UnitsLength, UnitsTime


_REGISTRY: pint.UnitRegistry | None = None
_REGISTRY_LOCK = threading.Lock()


def registry() -> pint.UnitRegistry:
    """The registry of every quantity omio returns (:data:`ureg`), made on first use.

    Made once even when threads ask at the same time: quantities of two registries
    cannot be combined.
    """
    global _REGISTRY
    if _REGISTRY is None:
        with _REGISTRY_LOCK:
            if _REGISTRY is None:
                _REGISTRY = _build_registry()
    return _REGISTRY


def _build_registry() -> pint.UnitRegistry:
    """A registry defined as ome-types defines its own (``ome_types.units``)."""
    import pint

    made = pint.UnitRegistry(auto_reduce_dimensions=True, on_redefinition="ignore")
    for definition in (
        "reference_frame = [_reference_frame]",
        "@alias grade = gradian",
        "@alias astronomical_unit = ua",
        "line = inch / 12",
        "millitorr = torr / 1000 = mTorr",
        "@alias torr = Torr",
        "@alias point = pt",
    ):
        made.define(definition)
    return made


ureg: pint.UnitRegistry
"""The registry of every quantity omio returns (made on first use, see :func:`registry`)."""
Quantity: type[pint.Quantity]
"""The quantity type returned by omio (pint's)."""


def __getattr__(name: str) -> Any:
    """:data:`ureg` and :data:`Quantity`, made on first use."""
    if name == "ureg":
        return registry()
    if name == "Quantity":
        import pint

        return pint.Quantity
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_LOCK = threading.Lock()

__all__ = [
    "Measure",
    "Quantity",
    "convert",
    "from_ome_quantity",
    "length_name_from_ome",
    "length_unit_from_ome",
    "measure",
    "ome_length_symbol",
    "ome_length_unit",
    "ome_time_symbol",
    "ome_time_unit",
    "parse_unit",
    "quantity",
    "registry",
    "symbol",
    "time_name_from_ome",
    "time_unit_from_ome",
    "unit_name",
    "ureg",
]


class Measure(NamedTuple):
    """A magnitude in a unit named as pint names it (``Measure(0.2, "micrometer")``).

    What readers state while opening a file, without pint; :meth:`quantity` gives the
    pint quantity.
    """

    magnitude: float
    units: str
    """A canonical pint unit name (see :func:`unit_name`)."""

    def quantity(self) -> pint.Quantity:
        """This measure as a quantity of :data:`ureg`."""
        return registry().Quantity(self.magnitude, self.units)

    def scaled(self, factor: float) -> Measure:
        """This measure times ``factor``, in the same unit."""
        return Measure(self.magnitude * factor, self.units)


def measure(value: pint.Quantity | Measure | None) -> Measure | None:
    """``value`` as a :class:`Measure` (``None`` stays ``None``)."""
    if value is None or isinstance(value, Measure):
        return value
    return Measure(float(value.magnitude), str(value.units))


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
    "Å": "angstrom",
    "angstrom": "angstrom",
    "sec": "second",
    "s": "second",
    "ms": "millisecond",
    "msec": "millisecond",
    "us": "microsecond",
    "µs": "microsecond",
    "ns": "nanosecond",
    "pm": "picometer",
    "min": "minute",
    "h": "hour",
    "hr": "hour",
}
# Canonical pint names (``str(ureg.Unit(name)) == name``; a test checks this) that :func:`unit_name` returns
# without pint: those the aliases give, and every spelled-out name of the units above.
_CANONICAL: frozenset[str] = frozenset(_ALIASES.values()) | {"inch"}


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
    import pint

    try:
        unit = registry().Unit(_alias(text))
    except (pint.UndefinedUnitError, ValueError, AttributeError, TypeError) as exc:
        raise MetadataError(f"unknown unit {text!r}; use a pint unit name such as 'micrometer'") from exc
    return unit


def _alias(text: str, *, exact: bool = False) -> str:
    """The pint name of a spelling in :data:`_ALIASES` (case-blind unless ``exact``), else the text itself."""
    key = text.strip()
    if key in _ALIASES or exact:
        return _ALIASES.get(key, key)
    return _ALIASES.get(key.lower(), key)


def quantity(value: float, unit: str | pint.Unit) -> pint.Quantity:
    """Return ``value`` in ``unit`` as a quantity of :data:`ureg`."""
    u = parse_unit(unit) if isinstance(unit, str) else unit
    return registry().Quantity(float(value), u)


def unit_name(unit: pint.Unit | str) -> str:
    """Return the canonical long pint name of a unit (``"micrometer"``).

    The usual spellings (``"µm"``, ``"micron"``, ``"sec"``...) are named without pint.

    Examples
    --------
    >>> unit_name("µm"), unit_name("um"), unit_name("sec")
    ('micrometer', 'micrometer', 'second')
    """
    if isinstance(unit, str):
        name = _alias(unit)
        return name if name in _CANONICAL else str(parse_unit(unit))
    return str(unit)


def _symbol_name(symbol: str) -> str:
    """The canonical pint name of a unit symbol, case kept (OME's ``"Mm"`` is megametre, not ``"mm"``)."""
    name = _alias(symbol, exact=True)
    return name if name in _CANONICAL or name in _OWN_DIMENSION else str(registry().Unit(symbol))


@functools.cache
def _ome_length_table() -> dict[str, UnitsLength]:
    import pint
    from ome_types.model import UnitsLength

    table: dict[str, UnitsLength] = {}
    for member in UnitsLength:
        try:
            table[str(registry().Unit(member.value.replace(" ", "_")))] = member
        except (pint.UndefinedUnitError, ValueError, AttributeError):
            continue
    return table


@functools.cache
def _ome_time_table() -> dict[str, UnitsTime]:
    import pint
    from ome_types.model import UnitsTime

    table: dict[str, UnitsTime] = {}
    for member in UnitsTime:
        try:
            table[str(registry().Unit(member.value))] = member
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

    if isinstance(unit, str) and (usual := _usual_ome_symbol(_alias(unit), "[length]")) is not None:
        return UnitsLength(usual)  # a usual unit: no pint registry (building it takes a core ~0.2 s)
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

    if isinstance(unit, str) and (usual := _usual_ome_symbol(_alias(unit), "[time]")) is not None:
        return UnitsTime(usual)
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


def ome_length_symbol(unit: str) -> str:
    """The OME length-unit string of a canonical unit name (``"µm"``), without ome-types for the usual units.

    Raises
    ------
    MetadataError
        When OME has no such length unit.

    Examples
    --------
    >>> ome_length_symbol("micrometer")
    'µm'
    """
    return _usual_ome_symbol(unit, "[length]") or ome_length_unit(unit).value


def ome_time_symbol(unit: str) -> str:
    """The OME time-unit string of a canonical unit name (``"ms"``), without ome-types for the usual units.

    Raises
    ------
    MetadataError
        When OME has no such time unit.
    """
    return _usual_ome_symbol(unit, "[time]") or ome_time_unit(unit).value


def _usual_ome_symbol(unit: str, kind: str) -> str | None:
    """OME's string for a usual unit of dimension ``kind`` (pint's symbol with OME's micro sign), else ``None``."""
    usual = _USUAL.get(unit)
    return None if usual is None or usual[0] != kind else usual[2].replace("\u03bc", "\u00b5")


def length_unit_from_ome(member: UnitsLength | str | None) -> pint.Unit:
    """Return the pint unit of an OME length unit (OME's default is micrometre)."""
    return registry().Unit(length_name_from_ome(member))


def time_unit_from_ome(member: UnitsTime | str | None) -> pint.Unit:
    """Return the pint unit of an OME time unit (OME's default is second)."""
    return registry().Unit(time_name_from_ome(member))


def length_name_from_ome(member: UnitsLength | str | None) -> str:
    """The canonical pint name of an OME length unit (OME's default is micrometre), without pint where usual."""
    if member is None:
        return "micrometer"
    return _symbol_name(str(getattr(member, "value", member)).replace(" ", "_"))


def time_name_from_ome(member: UnitsTime | str | None) -> str:
    """The canonical pint name of an OME time unit (OME's default is second), without pint where usual."""
    if member is None:
        return "second"
    return _symbol_name(str(getattr(member, "value", member)))


def as_quantity(value: Any, default_unit: str) -> pint.Quantity | None:
    """Coerce a user value (number, string or quantity) to a quantity, ``None`` stays ``None``.

    A bare number is taken in ``default_unit``; a string is parsed by pint
    (``"0.2 um"``). Non-positive or non-finite values are rejected.
    """
    import pint

    if value is None:
        return None
    if isinstance(value, Measure):
        value = value.quantity()
    if isinstance(value, pint.Quantity):
        q = registry().Quantity(value.magnitude, str(value.units))
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
    return registry().Quantity(float(value.magnitude), str(value.units))


def quantify(data: Any) -> Any:
    """Return ``data.pint.quantify(unit_registry=ureg)`` for an xarray object (pint-xarray)."""
    import pint_xarray  # noqa: F401 - registers the accessor

    reg = registry()
    with _LOCK:
        previous = reg.force_ndarray_like
        reg.force_ndarray_like = True
        try:
            return data.pint.quantify(unit_registry=reg)
        finally:
            reg.force_ndarray_like = previous


# The canonical names readers give, with their dimension, factor to metres or seconds (so that converting a
# position or an interval between usual units needs no pint) and pint's short symbol (``format(unit, "~P")``;
# a test checks them).
_USUAL: dict[str, tuple[str, float, str]] = {
    "meter": ("[length]", 1.0, "m"),
    "centimeter": ("[length]", 1e-2, "cm"),
    "millimeter": ("[length]", 1e-3, "mm"),
    "micrometer": ("[length]", 1e-6, "\u03bcm"),
    "nanometer": ("[length]", 1e-9, "nm"),
    "picometer": ("[length]", 1e-12, "pm"),
    "angstrom": ("[length]", 1e-10, "\u00c5"),
    "inch": ("[length]", 0.0254, "in"),
    "second": ("[time]", 1.0, "s"),
    "millisecond": ("[time]", 1e-3, "ms"),
    "microsecond": ("[time]", 1e-6, "\u03bcs"),
    "nanosecond": ("[time]", 1e-9, "ns"),
    "minute": ("[time]", 60.0, "min"),
    "hour": ("[time]", 3600.0, "h"),
}


def symbol(unit: str) -> str:
    """The short symbol of a canonical unit name, as pint prints it (``"μm"``), without pint.

    A unit outside the usual ones keeps its name.

    Examples
    --------
    >>> symbol("micrometer"), symbol("second"), symbol("reference_frame")
    ('μm', 's', 'reference_frame')
    """
    usual = _USUAL.get(unit)
    return unit if usual is None else usual[2]


_OWN_DIMENSION = frozenset({"reference_frame"})
"""Units of a dimension of their own (OME's ``"reference frame"``): convertible to nothing else."""


def convert(value: Measure, unit: str) -> float | None:
    """The magnitude of ``value`` in ``unit`` (a canonical pint name), or ``None`` where it cannot be converted.

    Usual length and time units are converted from a table; others through pint.
    A unit pint does not know (OME's ``"reference frame"``) converts only to itself.

    Examples
    --------
    >>> convert(Measure(1.5, "millimeter"), "micrometer")
    1500.0
    >>> convert(Measure(2.0, "second"), "micrometer") is None
    True
    """
    if value.units == unit:
        return float(value.magnitude)
    if value.units in _OWN_DIMENSION or unit in _OWN_DIMENSION:
        return None
    a, b = _USUAL.get(value.units), _USUAL.get(unit)
    if a is not None and b is not None:
        return float(value.magnitude) * a[1] / b[1] if a[0] == b[0] else None
    import pint

    try:
        return float(registry().Quantity(value.magnitude, value.units).to(unit).magnitude)
    except (pint.errors.PintError, ValueError, AttributeError, TypeError):
        return None
