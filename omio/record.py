"""The one record of what a dataset's pixels mean.

:class:`ImageRecord` holds what labels the pixels: the image name, the physical pixel
sizes, the time increment, the channel names, the **origin** (where the first pixel
sits, per axis) and the **plane table** (what the file states per T/Z/C plane: the
time since the start of the acquisition ``DeltaT``, the ``ExposureTime`` and the stage
position ``PositionX/Y/Z``, each with its unit). Readers fill it (from an OME model's
``Plane`` elements with :meth:`ImageRecord.of`, or straight from the file's metadata),
every operation on a dataset computes the new record once (:meth:`ImageRecord.select`,
:func:`concat_records`, :func:`record_from_xarray`), and both the xarray coordinates
(:func:`xarray_coords`) and the OME model's Pixels and Planes
(:func:`omio.ome_update.apply_record`) are derived from it, each in one place.

Rules
-----
- The origin of X, Y and Z is the stage position of the first plane (in T, Z, C order)
  that states one, in the unit of the pixel size (for Z, minus that plane's Z index
  times the Z pixel size); the origin of T is likewise the first stated ``DeltaT``. An
  axis without a stated position (or with one in a unit that is not convertible into
  the pixel size's, such as OME's ``"reference frame"``) has origin ``None``, read as 0.
- The X, Y and Z coordinates are ``origin + index * pixel size``. The T coordinate is
  the plane table's ``DeltaT`` where every T index states one and the values increase
  (or decrease, after a reversed selection),
  else ``origin + index * time increment``. Axes without a step are pixel indices.
- The record keeps the plane positions and the origin consistent: when a selection
  moves the origin (``isel(X=slice(5, None))`` moves it by 5 pixels), the positions of
  the plane table move with it, so that a file written from the record gives the same
  origin when read back.

Nothing here imports ome-types or pint for the usual units; opening a file and reading
its pixels stays cheap.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from omio import units
from omio.dims import DIMS
from omio.errors import DimensionError
from omio.units import Measure, measure

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

    import pandas as pd
    import pint
    import xarray as xr
    from ome_types import OME
    from ome_types.model import Plane

__all__ = [
    "PLANE_FIELDS",
    "ImageRecord",
    "PlaneInfo",
    "build_xarray",
    "concat_records",
    "misplaced_plane",
    "origin_from_planes",
    "plane_index",
    "planes_from_ome",
    "planes_from_xml",
    "record_from_xarray",
    "xarray_coords",
]

PLANE_FIELDS = ("DeltaT", "ExposureTime", "PositionX", "PositionY", "PositionZ")
"""The columns of a plane table, named as the OME ``Plane`` attributes."""
_ATTRIBUTE = {
    "DeltaT": "delta_t",
    "ExposureTime": "exposure_time",
    "PositionX": "position_x",
    "PositionY": "position_y",
    "PositionZ": "position_z",
}
_TIME_FIELDS = frozenset({"DeltaT", "ExposureTime"})
_AXIS_FIELD = {"X": "position_x", "Y": "position_y", "Z": "position_z", "T": "delta_t"}
"""The plane attribute that places each axis' first pixel."""
_AXIS_INDEX = {"X": None, "Y": None, "Z": "z", "T": "t"}
ORIGIN_AXES = ("T", "Z", "Y", "X")


@dataclass(frozen=True)
class PlaneInfo:
    """What a file states about one plane (``t``, ``z``, ``c`` are 0-based indices).

    Each value is a :class:`~omio.units.Measure` (magnitude and canonical unit name) or
    ``None`` where the file states nothing.
    """

    t: int
    z: int
    c: int
    delta_t: Measure | None = None
    exposure_time: Measure | None = None
    position_x: Measure | None = None
    position_y: Measure | None = None
    position_z: Measure | None = None

    @property
    def index(self) -> tuple[int, int, int]:
        """``(t, z, c)``."""
        return (self.t, self.z, self.c)

    def value(self, name: str) -> Measure | None:
        """The value of a field by its OME name (``"DeltaT"``) or attribute name (``"delta_t"``)."""
        value: Measure | None = getattr(self, _ATTRIBUTE.get(name, name))
        return value

    def is_empty(self) -> bool:
        """True when the plane states nothing."""
        return all(getattr(self, a) is None for a in _ATTRIBUTE.values())


def _no_origin() -> dict[str, Measure | None]:
    return {axis: None for axis in ORIGIN_AXES}


@dataclass(frozen=True)
class ImageRecord:
    """What a dataset's coordinates, summary and OME model are derived from.

    Attributes
    ----------
    name
        The image name, or ``None``.
    physical_sizes
        ``{"X": m, "Y": m, "Z": m}``; ``None`` where unknown.
    time_increment
        The time between T points, or ``None``.
    channel_names
        One per channel (``None`` where unnamed).
    origin
        ``{"T": m, "Z": m, "Y": m, "X": m}``: the position of the first pixel (the first
        time point) in the unit of the pixel size (time increment) where that is known;
        ``None`` where the file states none (coordinates then start at 0).
    planes
        The plane table: one :class:`PlaneInfo` per plane the file says something
        about, sorted by ``(t, z, c)``.
    """

    name: str | None
    physical_sizes: Mapping[str, Measure | None]
    time_increment: Measure | None
    channel_names: tuple[str | None, ...]
    origin: Mapping[str, Measure | None] = field(default_factory=_no_origin)
    planes: tuple[PlaneInfo, ...] = ()

    @classmethod
    def stated(
        cls,
        n_channels: int,
        *,
        name: str | None = None,
        physical_sizes: Mapping[str, pint.Quantity | Measure | None] | None = None,
        time_increment: pint.Quantity | Measure | None = None,
        channel_names: Sequence[str | None] | None = None,
        planes: Iterable[PlaneInfo] = (),
        origin: Mapping[str, pint.Quantity | Measure | None] | None = None,
    ) -> ImageRecord:
        """The record of :func:`omio.metadata.make_ome` called with these values (``None`` where not positive).

        The origin is that of the planes unless ``origin`` states it (an NGFF translation).
        """
        sizes = physical_sizes or {}
        names = tuple(n or None for n in channel_names) if channel_names is not None else (None,) * n_channels
        record = cls(
            name or None,
            {axis: _positive(sizes.get(axis)) for axis in "XYZ"},
            _positive(time_increment),
            names,
            planes=_sorted(planes),
        )
        derived = origin_from_planes(record.planes, record.steps())
        if origin:
            derived.update({axis: measure(value) for axis, value in origin.items() if value is not None})
        return dataclasses.replace(record, origin=derived).settled()

    @classmethod
    def of(cls, ome: OME) -> ImageRecord:
        """The record of the first image of an OME model (the origin from its planes)."""
        from omio import metadata

        image = ome.images[0]
        return cls.stated(
            len(image.pixels.channels),
            name=image.name,
            physical_sizes=metadata.physical_pixel_measures(image),
            time_increment=metadata.time_increment_measure(image),
            channel_names=metadata.channel_names(image),
            planes=planes_from_ome(image.pixels.planes),
        )

    def steps(self) -> dict[str, Measure | None]:
        """The spacing of the T, Z, Y and X coordinates (``None`` where unknown)."""
        return {"T": self.time_increment, **{axis: self.physical_sizes.get(axis) for axis in "ZYX"}}

    def replace(self, **changes: Any) -> ImageRecord:
        """A copy with ``changes``, its origin and plane positions made consistent again."""
        return dataclasses.replace(self, **changes).settled()

    def settled(self) -> ImageRecord:
        """This record with the origin in the units of the steps and the plane positions agreeing with it.

        Where the origin differs from the one the planes give, the planes' values move
        by the difference; where the origin is unset, the planes give it; a non-zero
        origin that no plane states is stated on the plane ``T=0, Z=0, C=0`` (so the OME
        model and a file written from it give it back).
        """
        steps = self.steps()
        origin: dict[str, Measure | None] = {}
        for axis in ORIGIN_AXES:
            value, step = self.origin.get(axis), steps[axis]
            if value is not None and step is not None and value.units != step.units:
                converted = units.convert(value, step.units)
                value = None if converted is None else Measure(converted, step.units)
            origin[axis] = value
        planes = list(self.planes)
        derived = origin_from_planes(planes, steps)
        for axis in ORIGIN_AXES:
            value = origin[axis]
            if value is not None and value.magnitude == 0 and derived[axis] is None:
                origin[axis] = None  # 0 is what no origin means
        for axis in ORIGIN_AXES:
            want, have = origin[axis], derived[axis]
            attribute = _AXIS_FIELD[axis]
            if want is None and have is not None:
                origin[axis] = have  # (clearing an origin clears the planes' values: see without_origin)
            elif want is not None and have is not None and want.units == have.units and want != have:
                shift = Measure(want.magnitude - have.magnitude, want.units)
                planes = [_shifted(p, attribute, shift) for p in planes]
            elif want is not None and want.magnitude != 0 and all(getattr(p, attribute) is None for p in planes):
                first = next((p for p in planes if p.index == (0, 0, 0)), PlaneInfo(0, 0, 0))
                planes = [p for p in planes if p.index != (0, 0, 0)]
                planes.append(_set(first, attribute, want))
                planes.sort(key=lambda p: p.index)
        kept = tuple(p for p in planes if not p.is_empty())
        if origin == dict(self.origin) and kept == self.planes:
            return self
        return dataclasses.replace(self, origin=origin, planes=kept)

    def without_origin(self, axes: Iterable[str]) -> ImageRecord:
        """This record with no origin along ``axes`` (and none of the plane values that would state one)."""
        gone = [a for a in axes if a in _AXIS_FIELD]
        planes = self.planes
        for axis in gone:
            planes = tuple(_set(p, _AXIS_FIELD[axis], None) for p in planes)
        origin = {**self.origin, **dict.fromkeys(gone)}
        return dataclasses.replace(self, origin=origin, planes=_sorted(planes)).settled()

    def select(self, positions: Mapping[str, Any], sizes: Mapping[str, int]) -> ImageRecord:
        """The record of the selection ``positions`` (per dim: a slice or an index array) of an image of ``sizes``.

        A stride scales the pixel size; an uneven selection along T clears the time
        increment and keeps the true times as ``DeltaT``, as does a reversed one
        (which keeps the increment); uneven or reversed X, Y or Z selections are
        refused. The origin moves to the first pixel kept.

        Raises
        ------
        DimensionError
            For an uneven or reversed selection along X, Y or Z.
        """
        kept = {dim: np.arange(sizes[dim])[positions[dim]] if dim in positions else None for dim in DIMS}
        steps = self.steps()
        physical = dict(self.physical_sizes)
        increment = self.time_increment
        reordered = False  # along T: the times no longer follow the indices
        for dim in ("T", "Z", "Y", "X"):
            if dim not in positions:
                continue
            stride = _step(dim, kept[dim])
            if dim == "T":
                reordered = stride is not None and stride <= 0
                if increment is not None and stride is not None and stride != 1:
                    increment = None if stride == 0 else increment.scaled(abs(stride))
            elif stride and stride != 1 and physical.get(dim) is not None:
                value = physical[dim]
                assert value is not None
                physical[dim] = value.scaled(stride)
        names = self.channel_names
        if kept["C"] is not None:
            names = tuple(names[int(i)] for i in kept["C"])
        times = None
        if kept["T"] is not None and (increment is None or reordered) and self.time_increment is not None:
            times = {int(t): _at(self.origin.get("T"), self.time_increment, int(t)) for t in kept["T"]}
        planes = _subset(self.planes, kept, sizes, times)
        origin = dict(self.origin)
        stated = origin_from_planes(planes, {**steps, "T": increment, **physical})
        for dim in ("T", "Z", "Y", "X"):
            picked, step = kept[dim], steps[dim]
            if dim in "TZ" and stated[dim] is not None:
                origin[dim] = stated[dim]  # the planes' own times and Z positions
            elif picked is None or int(picked[0]) == 0:
                continue
            elif step is not None:
                origin[dim] = _at(origin.get(dim), step, int(picked[0]))
            else:  # a position that no pixel size can move: it no longer holds
                origin[dim] = None
                planes = tuple(_set(p, _AXIS_FIELD[dim], None) for p in planes)
        return dataclasses.replace(
            self, physical_sizes=physical, time_increment=increment, channel_names=names, origin=origin, planes=planes
        ).settled()

    def plane_table(self) -> pd.DataFrame:
        """The plane table as a DataFrame (see :attr:`omio.MicroscopyDataset.planes`)."""
        import pandas as pd

        index = pd.MultiIndex.from_tuples([p.index for p in self.planes], names=["T", "Z", "C"])
        columns: dict[str, list[float]] = {}
        unit_of: dict[str, str] = {}
        for name in PLANE_FIELDS:
            stated = [p.value(name) for p in self.planes]
            first = next((m for m in stated if m is not None), None)
            if first is None:
                continue
            values = []
            for m in stated:
                converted = None if m is None else units.convert(m, first.units)
                values.append(float("nan") if converted is None else converted)
            columns[name] = values
            unit_of[name] = first.units
        frame = pd.DataFrame(columns, index=index, dtype=np.float64)
        frame.attrs["units"] = unit_of
        return frame


def _positive(q: pint.Quantity | Measure | None) -> Measure | None:
    m = measure(q)
    return m if m is not None and m.magnitude > 0 else None


def _sorted(planes: Iterable[PlaneInfo]) -> tuple[PlaneInfo, ...]:
    return tuple(sorted((p for p in planes if not p.is_empty()), key=lambda p: p.index))


def _at(origin: Measure | None, step: Measure, index: int) -> Measure:
    """The position of ``index`` steps from ``origin`` (0 when ``None``), in the step's unit."""
    start = 0.0 if origin is None else units.convert(origin, step.units)
    return Measure((start or 0.0) + index * step.magnitude, step.units)


def _set(plane: PlaneInfo, attribute: str, value: Measure | None) -> PlaneInfo:
    """``plane`` with one of its values replaced."""
    changes: dict[str, Any] = {attribute: value}
    return dataclasses.replace(plane, **changes)


def _shifted(plane: PlaneInfo, attribute: str, shift: Measure) -> PlaneInfo:
    value: Measure | None = getattr(plane, attribute)
    if value is None:
        return plane
    delta = units.convert(shift, value.units)
    if delta is None:
        return plane
    return _set(plane, attribute, Measure(value.magnitude + delta, value.units))


def _step(dim: str, picked: Any) -> int | None:
    """The even step of picked indices (``None`` for one element; along T, 0 when uneven, negative when reversed)."""
    if picked is None or len(picked) < 2:
        return None
    diffs = np.diff(picked)
    if np.all(diffs == diffs[0]) and diffs[0] < 0 and dim in "XYZ":
        raise DimensionError(
            f"a reversed selection along {dim} would run its coordinates backwards, which no pixel size "
            "describes; select in increasing order (flip the pixels in your analysis if needed)"
        )
    if np.all(diffs == diffs[0]):
        return int(diffs[0])
    if dim in "XYZ":
        raise DimensionError(f"an uneven selection along {dim} has no pixel size; select a range or a step instead")
    return 0


def _subset(
    planes: Sequence[PlaneInfo],
    kept: Mapping[str, Any],
    sizes: Mapping[str, int],
    times: Mapping[int, Measure] | None,
) -> tuple[PlaneInfo, ...]:
    """The planes of a selection, re-indexed; ``times`` (old T index -> time) fill ``DeltaT`` where unstated."""
    new_of: dict[str, dict[int, list[int]]] = {}
    for dim in ("T", "Z", "C"):
        picked = kept[dim] if kept[dim] is not None else np.arange(sizes[dim])
        table: dict[int, list[int]] = {}
        for new, old in enumerate(int(i) for i in picked):
            table.setdefault(old, []).append(new)
        new_of[dim] = table
    by_index = {p.index: p for p in planes}
    if times is not None:  # every plane of the selection gets its time
        for t, z, c in itertools.product(new_of["T"], new_of["Z"], new_of["C"]):
            plane = by_index.get((t, z, c), PlaneInfo(t, z, c))
            if plane.delta_t is None:
                by_index[(t, z, c)] = dataclasses.replace(plane, delta_t=times[t])
    out = []
    for (t, z, c), plane in by_index.items():
        for nt, nz, nc in itertools.product(new_of["T"].get(t, ()), new_of["Z"].get(z, ()), new_of["C"].get(c, ())):
            out.append(dataclasses.replace(plane, t=nt, z=nz, c=nc))
    return _sorted(out)


def origin_from_planes(planes: Iterable[PlaneInfo], steps: Mapping[str, Measure | None]) -> dict[str, Measure | None]:
    """The origin the planes state, per axis (see the module's rules).

    ``steps`` are the record's :meth:`ImageRecord.steps`: the origin is given in the
    step's unit (``None`` where the stated unit is not convertible); without a step,
    in the stated unit (a length, or a time for T), and only from a plane at index 0
    of that axis.
    """
    ordered = sorted(planes, key=lambda p: p.index)
    out: dict[str, Measure | None] = {}
    for axis in ORIGIN_AXES:
        attribute, index_name = _AXIS_FIELD[axis], _AXIS_INDEX[axis]
        first = next((p for p in ordered if getattr(p, attribute) is not None), None)
        out[axis] = None
        if first is None:
            continue
        value: Measure = getattr(first, attribute)
        index = 0 if index_name is None else int(getattr(first, index_name))
        step = steps.get(axis)
        if step is None:  # a position in a length (time) unit, where the axis has no step to place it by
            usable = units.convert(value, "second" if axis == "T" else "micrometer") is not None
            out[axis] = value if index == 0 and usable else None
            continue
        converted = units.convert(value, step.units)
        if converted is not None:
            out[axis] = Measure(converted - index * step.magnitude, step.units)
    return out


def _unit(member: Any, time: bool) -> str:
    """The canonical pint name of an OME unit (kept as OME spells it where pint has none: ``"reference frame"``)."""
    text = None if member is None else str(getattr(member, "value", member))
    try:
        return units.time_name_from_ome(text) if time else units.length_name_from_ome(text)
    except (AttributeError, ValueError, TypeError, SyntaxError):  # pint's errors for a name it does not know
        return str(text)


def misplaced_plane(indices: Iterable[tuple[int, int, int]], tzc: Sequence[int]) -> tuple[int, int, int] | None:
    """The first plane index ``(t, z, c)`` outside the T, Z and C sizes ``tzc`` or given twice, else ``None``.

    Examples
    --------
    >>> misplaced_plane([(0, 0, 0), (0, 1, 0)], (1, 2, 1)), misplaced_plane([(0, 0, 0), (0, 0, 0)], (1, 1, 1))
    (None, (0, 0, 0))
    """
    seen: set[tuple[int, int, int]] = set()
    for index in indices:
        if any(not 0 <= i < n for i, n in zip(index, tzc, strict=True)) or index in seen:
            return index
        seen.add(index)
    return None


def planes_from_ome(planes: Iterable[Plane]) -> tuple[PlaneInfo, ...]:
    """The plane table of OME ``Plane`` elements (ome-types objects)."""
    out = []
    for plane in planes:
        values: dict[str, Any] = {}
        for name, attribute in _ATTRIBUTE.items():
            value = getattr(plane, attribute)
            if value is not None:
                values[attribute] = Measure(
                    float(value), _unit(getattr(plane, f"{attribute}_unit"), name in _TIME_FIELDS)
                )
        out.append(PlaneInfo(int(plane.the_t), int(plane.the_z), int(plane.the_c), **values))
    return _sorted(out)


def plane_index(plane: Element) -> tuple[int, int, int]:
    """The ``(TheT, TheZ, TheC)`` of an OME-XML ``Plane`` element parsed with ElementTree (0 where absent).

    Raises
    ------
    ValueError
        For an index that is not an integer.
    """
    return int(plane.get("TheT") or 0), int(plane.get("TheZ") or 0), int(plane.get("TheC") or 0)


def planes_from_xml(pixels: Element) -> tuple[PlaneInfo, ...]:
    """The plane table of an OME-XML ``Pixels`` element parsed with ElementTree (no ome-types needed).

    Raises
    ------
    ValueError
        For an attribute that is not a finite number (NaN and infinities included: a
        stated time or position is a number; a plane that knows none leaves it out).
    """
    out = []
    for plane in pixels.findall("{*}Plane"):
        values: dict[str, Any] = {}
        for name, attribute in _ATTRIBUTE.items():
            text = plane.get(name)
            if text is not None:
                try:
                    value = float(text)
                except ValueError:
                    raise ValueError(f"{name}={text!r} is not a number") from None
                if not math.isfinite(value):
                    raise ValueError(f"{name}={text!r} is not a finite number")
                values[attribute] = Measure(value, _unit(plane.get(f"{name}Unit"), name in _TIME_FIELDS))
        out.append(PlaneInfo(*plane_index(plane), **values))
    return _sorted(out)


def concat_records(
    records: Sequence[ImageRecord],
    *,
    axis: str,
    starts: Sequence[int],
    channel_names: Sequence[str | None],
    base: ImageRecord | None = None,
) -> ImageRecord:
    """The record of sources concatenated along ``axis`` (``T``, ``Z`` or ``C``), each starting at ``starts[i]``.

    Sizes, time increment, name and origin are those of ``base`` (default: the first
    record); the plane tables are concatenated with their indices moved along ``axis``.
    """
    attribute = axis.lower()
    planes = [
        dataclasses.replace(p, **{attribute: getattr(p, attribute) + start})
        for record, start in zip(records, starts, strict=True)
        for p in record.planes
    ]
    first = base if base is not None else records[0]
    return first.replace(channel_names=tuple(channel_names), planes=_sorted(planes))


def xarray_coords(record: ImageRecord, shape: Sequence[int]) -> dict[str, xr.Variable]:
    """The coordinates of a TZCYX array of ``shape`` labelled by ``record`` (the module's rules).

    Coordinates are handed to xarray as pandas indexes: from plain arrays, xarray
    would import pint (if installed) to check whether they are quantities.
    """
    import pandas as pd
    import xarray as xr

    coords: dict[str, xr.Variable] = {}
    for dim, step in record.steps().items():
        n = int(shape[DIMS.index(dim)])
        index = np.arange(n, dtype=np.float64)
        unit = None if step is None else step.units
        values = index
        if step is not None:
            start = record.origin.get(dim)
            offset = 0.0 if start is None else units.convert(start, step.units) or 0.0
            values = offset + index * float(step.magnitude)
        if dim == "T":
            times = _stated_times(record, n)
            if times is not None:
                values, unit = times
        coords[dim] = xr.Variable(dim, pd.Index(values), attrs={} if unit is None else {"units": unit})
    labels = [n if n else f"C{i}" for i, n in enumerate(record.channel_names)]
    coords["C"] = xr.Variable("C", pd.Index(np.array(labels, dtype=object), dtype=object))
    return coords


def build_xarray(data: Any, record: ImageRecord) -> xr.DataArray:
    """Label TZCYX data with the coordinates of its record (see :func:`omio.record.xarray_coords`)."""
    import xarray as xr

    coords: dict[Hashable, Any] = dict(xarray_coords(record, data.shape).items())
    return xr.DataArray(data, dims=DIMS, coords=coords, name=record.name)


def _stated_times(record: ImageRecord, n: int) -> tuple[np.ndarray[Any, Any], str] | None:
    """The ``DeltaT`` of each T index (in the time increment's unit), where every index states one, monotonic.

    They increase, or decrease after a reversed selection; times that restart (a merge of
    two time series) are not a coordinate.
    """
    first: dict[int, Measure] = {}
    for p in record.planes:  # sorted: the first plane of each T index comes first
        if p.delta_t is not None and p.t not in first:
            first[p.t] = p.delta_t
    if len(first) != n:
        return None
    unit = record.time_increment.units if record.time_increment is not None else first[0].units
    values = [units.convert(first[t], unit) for t in range(n)]
    if any(v is None for v in values):
        return None
    out = np.asarray(values, dtype=np.float64)
    if n > 1 and not (np.all(np.diff(out) > 0) or np.all(np.diff(out) < 0)):
        return None
    return out, unit


def _coord_step(values: np.ndarray[Any, Any]) -> float | None:
    """The spacing of evenly spaced values (``None`` for fewer than two)."""
    if values.size < 2:
        return None
    diffs = np.diff(values)
    if not np.allclose(diffs, diffs[0], rtol=1e-6, atol=0) or diffs[0] == 0:
        return float("nan")
    return float(abs(diffs[0]))


def record_from_xarray(
    arr: xr.DataArray, template: ImageRecord | None, template_shape: Sequence[int] | None = None
) -> tuple[ImageRecord, list[int] | None]:
    """The record of a TZCYX DataArray, from ``template`` where its coordinates are the template's, else from them.

    Where the coordinate values along a dim are some of the template's (a selection,
    a reduction that dropped the dim), the record is the template's
    :meth:`ImageRecord.select` of them: sizes, origin and planes follow. Otherwise
    evenly spaced X, Y, Z coordinates with a ``units`` attribute give the pixel size
    and the origin, and unitless ones (pixel indices) with a stride scale the
    template's size; the T coordinate gives the time increment where evenly spaced,
    else its values become the planes' ``DeltaT``. C labels found among the
    template's pick its channels (returned as indices into the template's channels,
    else ``None``).

    Raises
    ------
    DimensionError
        For X, Y or Z coordinates that are not evenly spaced (no pixel size describes them).
    """
    shape = tuple(int(s) for s in arr.shape)
    labels = [str(v) for v in arr.coords["C"].values] if "C" in arr.coords else None
    channels: list[int] | None = None
    record = ImageRecord.stated(shape[2]) if template is None else template
    if template is not None and template_shape is not None:
        old = xarray_coords(template, template_shape)
        positions: dict[str, Any] = {}
        for dim in ("T", "Z", "Y", "X"):
            coord = arr.coords.get(dim)
            matched = _matched(coord, old[dim]) if coord is not None or shape[DIMS.index(dim)] == 1 else None
            if matched is not None:
                positions[dim] = matched
        old_labels = [n if n else f"C{i}" for i, n in enumerate(template.channel_names)]
        if labels is not None and len(labels) == shape[2] and all(lbl in old_labels for lbl in labels):
            channels = [old_labels.index(lbl) for lbl in labels]
        elif labels is None and len(old_labels) == shape[2]:
            channels = list(range(shape[2]))
        if channels is not None:
            positions["C"] = np.asarray(channels, dtype=np.int64)
        sizes = dict(zip(DIMS, (int(s) for s in template_shape), strict=True))
        record = template.select(positions, sizes)
        if any(d not in positions for d in ("T", "Z", "C")):
            record = dataclasses.replace(record, planes=())
        unmatched = [d for d in ("T", "Z", "Y", "X") if d not in positions]
    else:
        unmatched = [d for d in ("T", "Z", "Y", "X") if d in arr.coords]
        record = dataclasses.replace(record, name=str(arr.name) if arr.name is not None else None)
    if channels is None:
        names: tuple[str | None, ...] = (None,) * shape[2]
        if labels is not None and len(labels) == shape[2]:
            names = tuple(None if (lbl.startswith("C") and lbl[1:].isdigit()) else lbl for lbl in labels)
        record = dataclasses.replace(record, channel_names=names)
    for dim in unmatched:
        record = _from_coordinate(record, dim, arr.coords.get(dim), shape)
    return record.settled(), channels


def _from_coordinate(record: ImageRecord, dim: str, coord: xr.DataArray | None, shape: Sequence[int]) -> ImageRecord:
    """``record`` with the step and origin of ``dim`` read from its coordinate values."""
    if coord is None:
        return record
    values = np.asarray(coord.values, dtype=np.float64)
    unit = coord.attrs.get("units")
    name = units.unit_name(str(unit)) if unit else None
    step = _coord_step(values)
    uneven = step is not None and np.isnan(step)
    origin = dict(record.origin)
    if dim == "T":
        increment = record.time_increment
        planes = record.planes
        if name is not None and not uneven:
            if step is not None:
                increment = Measure(step, name)
            origin["T"] = Measure(float(values[0]), name)
            planes = tuple(dataclasses.replace(p, delta_t=None) for p in planes)
        elif name is not None:
            increment, origin["T"] = None, None
            by_index = {p.index: p for p in planes}
            for t, value in enumerate(values):
                for z in range(int(shape[1])):
                    for c in range(int(shape[2])):
                        plane = by_index.get((t, z, c), PlaneInfo(t, z, c))
                        by_index[(t, z, c)] = dataclasses.replace(plane, delta_t=Measure(float(value), name))
            planes = _sorted(by_index.values())
        elif step is not None and not uneven and increment is not None:
            increment = increment.scaled(step) if step != 1 else increment
        else:
            increment = None
        if increment is not None:
            _check_kind(increment, "[time]", "time increment")
        return dataclasses.replace(record, time_increment=increment, origin=origin, planes=planes)
    if uneven:
        raise DimensionError(
            f"the {dim} coordinate is not evenly spaced ({values[:4].tolist()}...); no pixel size describes it: "
            "select a range or a step instead, or interpolate onto a regular grid"
        )
    physical = dict(record.physical_sizes)
    if name is not None:
        if step is not None:
            physical[dim] = Measure(step, name)
            _check_kind(Measure(step, name), "[length]", f"physical size {dim}")
        origin[dim] = Measure(float(values[0]), name)
    elif step is not None and physical.get(dim) is not None:
        known = physical[dim]
        assert known is not None
        physical[dim] = known.scaled(step) if step != 1 else known
        origin[dim] = _at(origin.get(dim), known, round(float(values[0])))
    return dataclasses.replace(record, physical_sizes=physical, origin=origin)


def _matched(coord: xr.DataArray | None, old: xr.Variable) -> np.ndarray[Any, Any] | None:
    """The template indices of a coordinate's values (``None`` where some are not the template's)."""
    if coord is None:
        return np.zeros(1, dtype=np.int64)  # a dim the operation reduced or added: index 0 of the template
    values = np.asarray(coord.values, dtype=np.float64)
    if coord.attrs.get("units") != old.attrs.get("units"):
        return None
    reference = np.asarray(old.values, dtype=np.float64)
    if values.size == 0 or np.unique(reference).size != reference.size:
        return None
    order = np.argsort(reference, kind="stable")
    ranked = reference[order]
    at = np.clip(np.searchsorted(ranked, values), 0, ranked.size - 1)
    nearest = np.where(
        (at > 0) & (np.abs(ranked[at - 1] - values) < np.abs(ranked[at] - values)), at - 1, at
    )  # the closest template value to each
    if not np.all(np.isclose(ranked[nearest], values, rtol=1e-9, atol=1e-12)):
        return None
    return np.asarray(order[nearest], dtype=np.int64)


def _check_kind(value: Measure, kind: str, what: str) -> None:
    from omio.errors import MetadataError

    if not value.quantity().check(kind):
        raise MetadataError(f"{what} {value.magnitude} {value.units} is not a {kind.strip('[]')}")
