"""OME <-> dataset metadata.

Builds OME models for images (readers use :func:`make_ome`), reads sizes, units,
channels and time from an OME ``Image``, stores provenance and non-OME metadata as
``MapAnnotation`` objects, and produces the flat ``.metadata`` dict OMIO users know.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pint
from ome_types import OME
from ome_types.model import (
    AnnotationRef,
    Channel,
    Image,
    Instrument,
    InstrumentRef,
    Map,
    MapAnnotation,
    MetadataOnly,
    ObjectiveSettings,
    Pixels,
    Pixels_DimensionOrder,
    PixelType,
    Plane,
    StructuredAnnotations,
)
from ome_types.model import Color as OMEColor

from omio import units
from omio._pixel_types import OME_PIXEL_TYPES, numeric_name, ome_name
from omio.errors import MetadataError
from omio.readers._base import as_text
from omio.record import misplaced_plane

__all__ = [
    "MapAnnotationData",
    "annotation_dicts",
    "as_text",
    "carry_image_description",
    "channel_colors",
    "channel_descriptions",
    "channel_names",
    "make_ome",
    "map_annotation",
    "ome_pixel_type",
    "parse_ome_xml",
    "physical_pixel_measures",
    "physical_pixel_sizes",
    "pixel_type",
    "time_increment",
    "time_increment_measure",
]

SPATIAL = ("X", "Y", "Z")
OMIO_NAMESPACE = "omio"
"""Namespace prefix of the MapAnnotations omio writes (``omio:provenance``, ``omio:original-metadata``...)."""

MapAnnotationData = dict[str, str]


@functools.cache
def _xml_parser_kwargs() -> dict[str, Any]:
    """One xsdata context for every parse: it caches the OME classes' binding metadata."""
    from xsdata_pydantic_basemodel.bindings import XmlContext  # the binding ome-types parses with

    return {"context": XmlContext()}


def parse_ome_xml(xml: str | bytes) -> OME:
    """Parse OME-XML into an OME model (without schema validation).

    Equivalent to ``ome_types.from_xml(xml, validate=False)`` but about ten times
    faster on small documents, because the xsdata binding context is built once per
    process instead of once per call.

    Examples
    --------
    >>> ome = parse_ome_xml(make_ome((1, 1, 1, 4, 4), "uint8").to_xml())
    >>> ome.images[0].pixels.size_x
    4
    """
    from ome_types import from_xml

    return from_xml(xml, validate=False, parser_kwargs=_xml_parser_kwargs())  # type: ignore[arg-type]


_PIXEL_TYPES: dict[str, PixelType] = {name: PixelType(value) for name, value in OME_PIXEL_TYPES.items()}


def pixel_type(dtype: np.dtype[Any] | str | type) -> PixelType | str:
    """Return the OME pixel type of a numpy dtype, or the dtype's name where OME has none.

    OME's ``PixelType`` names int8-int32, uint8-uint32, float32, float64, complex64,
    complex128 and bool (``bit``). A dataset in memory may hold any other numeric dtype
    (int64, uint64, float16...): its OME model then states the numpy name (``"int64"``),
    which is outside the OME schema, and writers of OME formats refuse it
    (:func:`ome_pixel_type`). Byte order does not matter (``">u2"`` is ``uint16``).

    Raises
    ------
    MetadataError
        For dtypes that are not numbers (strings, objects, dates, records).

    Examples
    --------
    >>> pixel_type(">u2").value, pixel_type("int64")
    ('uint16', 'int64')
    """
    name = numeric_name(dtype)
    return _PIXEL_TYPES.get(name, name)


def ome_pixel_type(dtype: np.dtype[Any] | str | type, *, writing: str) -> PixelType:
    """Return the OME pixel type of ``dtype``, or refuse a dtype OME cannot name (:func:`omio._pixel_types.ome_name`).

    Writers call this before they write anything.
    """
    return PixelType(ome_name(dtype, writing=writing))


def _color(value: Any) -> OMEColor | None:
    if value is None:
        return None
    if isinstance(value, OMEColor):
        return value
    if isinstance(value, (tuple, list)):
        r, g, b = (int(v) for v in value[:3])
        if len(value) == 4:  # RGBA with alpha 0-255, as returned by channel_colors
            return OMEColor((r, g, b, float(value[3]) / 255.0))
        return OMEColor((r, g, b))
    return OMEColor(value)


def _checked_planes(planes: Iterable[Plane], tzc: tuple[int, int, int]) -> list[Plane]:
    """The planes, each within the image's T, Z and C sizes and none twice."""
    out = list(planes)
    index = misplaced_plane(((int(p.the_t), int(p.the_z), int(p.the_c)) for p in out), tzc)
    if index is not None:
        raise MetadataError(f"Plane T={index[0]} Z={index[1]} C={index[2]} is outside T, Z, C sizes {tzc} or twice")
    return out


def make_ome(
    shape: Sequence[int],
    dtype: np.dtype[Any] | str | type,
    *,
    physical_sizes: Mapping[str, pint.Quantity | units.Measure | None] | None = None,
    time_increment: pint.Quantity | units.Measure | None = None,
    channel_names: Sequence[str | None] | None = None,
    channel_colors: Sequence[Any] | None = None,
    channel_extra: Sequence[Mapping[str, Any]] | None = None,
    name: str | None = None,
    description: str | None = None,
    acquisition_date: datetime | None = None,
    instruments: Iterable[Instrument] = (),
    instrument_ref: str | None = None,
    objective_settings: ObjectiveSettings | None = None,
    annotations: Iterable[MapAnnotation] = (),
    planes: Iterable[Plane] = (),
) -> OME:
    """Build an OME model with one Image describing a TZCYX array.

    Parameters
    ----------
    shape
        The TZCYX shape.
    dtype
        The numpy dtype of the pixels: any numeric dtype (see :func:`pixel_type`).
    physical_sizes
        ``{"X": q, "Y": q, "Z": q}`` with pint quantities of length, or ``None`` where unknown.
    time_increment
        A pint quantity of time, or ``None``.
    channel_names, channel_colors
        One entry per C index; ``None`` entries stay unset. Colours are anything
        ``ome_types.model.Color`` accepts (``"red"``, ``(255, 0, 0)``, a signed RGBA int).
    channel_extra
        Extra ``Channel`` fields per C index (``emission_wavelength`` ...).
    name, description, acquisition_date
        Image fields.
    instruments, instrument_ref, objective_settings
        Instrument description and the image's reference to it.
    annotations
        MapAnnotations to attach to the image.
    planes
        OME ``Plane`` elements for what the file states per plane (``the_t``, ``the_z``,
        ``the_c`` indices within ``shape``; ``delta_t``, ``exposure_time``,
        ``position_x/y/z`` with their units), in any order; planes the file says nothing
        about are left out.

    Returns
    -------
    OME
        A model that validates against the OME 2016-06 schema.
    """
    if len(shape) != 5:
        raise MetadataError(f"make_ome needs a TZCYX shape, got {tuple(shape)}")
    size_t, size_z, size_c, size_y, size_x = (int(s) for s in shape)
    sizes = dict(physical_sizes or {})
    pixel_kwargs: dict[str, Any] = {}
    for axis in SPATIAL:
        q = sizes.get(axis)
        if q is None:
            continue
        key = f"physical_size_{axis.lower()}"
        pixel_kwargs[key] = float(q.magnitude)
        pixel_kwargs[f"{key}_unit"] = units.ome_length_unit(q.units)
    if time_increment is not None:
        pixel_kwargs["time_increment"] = float(time_increment.magnitude)
        pixel_kwargs["time_increment_unit"] = units.ome_time_unit(time_increment.units)
    names = list(channel_names) if channel_names is not None else [None] * size_c
    colors = list(channel_colors) if channel_colors is not None else [None] * size_c
    extra = list(channel_extra) if channel_extra is not None else [{}] * size_c
    if not (len(names) == len(colors) == len(extra) == size_c):
        raise MetadataError(
            f"{size_c} channels in the data but {len(names)} names, {len(colors)} colours, {len(extra)} extras"
        )
    channels = []
    for i, (n, c, e) in enumerate(zip(names, colors, extra, strict=True)):
        fields = dict(e)
        color = _color(c)
        if color is not None:
            fields["color"] = color
        channels.append(Channel(id=f"Channel:0:{i}", name=n, samples_per_pixel=1, **fields))
    ome_type = pixel_type(dtype)
    pixels = Pixels(
        id="Pixels:0",
        dimension_order=Pixels_DimensionOrder.XYCZT,
        type=ome_type if isinstance(ome_type, PixelType) else PixelType.DOUBLE,
        size_t=size_t,
        size_z=size_z,
        size_c=size_c,
        size_y=size_y,
        size_x=size_x,
        big_endian=False,
        interleaved=False,
        channels=channels,
        planes=_checked_planes(planes, (size_t, size_z, size_c)),
        metadata_only=MetadataOnly(),
        **pixel_kwargs,
    )
    if not isinstance(ome_type, PixelType):  # a dtype OME cannot name (int64...): its numpy name, unvalidated
        pixels = pixels.model_copy(update={"type": ome_type})
    anns = list(annotations)
    image = Image(
        id="Image:0",
        name=name,
        description=description,
        acquisition_date=acquisition_date,
        pixels=pixels,
        instrument_ref=InstrumentRef(id=instrument_ref) if instrument_ref else None,
        objective_settings=objective_settings,
        annotation_refs=[AnnotationRef(id=a.id) for a in anns],
    )
    return OME(
        uuid=f"urn:uuid:{uuid.uuid4()}",
        creator=_creator(),
        images=[image],
        instruments=list(instruments),
        structured_annotations=StructuredAnnotations(map_annotations=anns),
    )


def _creator() -> str:
    from omio import __version__

    return f"omio {__version__}"


def map_annotation(namespace: str, values: Mapping[str, Any], *, index: int = 0) -> MapAnnotation:
    """Return a MapAnnotation holding ``values`` (converted to strings) under ``namespace``."""
    items = [Map.M(k=str(k), value=as_text(v)) for k, v in values.items()]
    return MapAnnotation(id=f"Annotation:{index}", namespace=namespace, value=Map(ms=items))


def annotation_dicts(ome: OME) -> list[tuple[str, MapAnnotationData]]:
    """Return ``(namespace, {key: value})`` for every MapAnnotation in the model, in order."""
    out: list[tuple[str, MapAnnotationData]] = []
    sa = ome.structured_annotations or StructuredAnnotations()
    for ann in sa.map_annotations:
        values = {m.k or "": m.value for m in ann.value.ms}
        out.append((ann.namespace or "", values))
    return out


def physical_pixel_measures(image: Image) -> dict[str, units.Measure | None]:
    """Return ``{"X": m, "Y": m, "Z": m}`` from an OME Image (``None`` where unset or zero), without pint."""
    px = image.pixels
    out: dict[str, units.Measure | None] = {}
    for axis in SPATIAL:
        value = getattr(px, f"physical_size_{axis.lower()}")
        unit = getattr(px, f"physical_size_{axis.lower()}_unit")
        out[axis] = (
            None if value is None or value <= 0 else units.Measure(float(value), units.length_name_from_ome(unit))
        )
    return out


def physical_pixel_sizes(image: Image) -> dict[str, pint.Quantity | None]:
    """Return ``{"X": q, "Y": q, "Z": q}`` from an OME Image (``None`` where unset or zero)."""
    return {axis: None if m is None else m.quantity() for axis, m in physical_pixel_measures(image).items()}


def time_increment_measure(image: Image) -> units.Measure | None:
    """Return the time increment of an OME Image (``None`` where unset or zero), without pint."""
    px = image.pixels
    if px.time_increment is None or px.time_increment <= 0:
        return None
    return units.Measure(float(px.time_increment), units.time_name_from_ome(px.time_increment_unit))


def time_increment(image: Image) -> pint.Quantity | None:
    """Return the time increment of an OME Image, or ``None`` where unset or zero."""
    m = time_increment_measure(image)
    return None if m is None else m.quantity()


def channel_names(image: Image) -> list[str | None]:
    """Return one name per channel of an OME Image (``None`` where unnamed)."""
    return [c.name if c.name else None for c in image.pixels.channels]


def channel_colors(image: Image) -> list[tuple[int, int, int, int] | None]:
    """Return one RGBA colour per channel of an OME Image.

    OME's default colour is opaque white, which cannot be told apart from "unset";
    it is returned as ``None`` so that viewers choose their own default.
    """
    out: list[tuple[int, int, int, int] | None] = []
    for c in image.pixels.channels:
        r, g, b, *a = c.color.as_rgb_tuple(alpha=True)
        alpha = round(float(a[0]) * 255) if a else 255
        rgba = (int(r), int(g), int(b), alpha)
        out.append(None if rgba == (255, 255, 255, 255) else rgba)
    return out


def carry_image_description(built: OME, source: OME, index: int) -> OME:
    """Copy what a file's own OME says about one image onto an OME built for its array.

    ``built`` (from :func:`make_ome`) describes the pixels as read; ``source`` is the
    file's OME-XML. The image's description, acquisition date, instrument and
    objective settings, its annotation references, the instruments and all
    structured annotations are carried over, so writing the dataset loses none of them.

    Parameters
    ----------
    built
        OME with one Image describing the array.
    source
        The file's OME model.
    index
        Which of ``source``'s images ``built`` describes.

    Returns
    -------
    OME
        A copy of ``built`` with the source's descriptive content.
    """
    src = source.images[index]
    image = built.images[0].model_copy(
        update={
            "description": src.description,
            "acquisition_date": src.acquisition_date,
            "instrument_ref": src.instrument_ref,
            "objective_settings": src.objective_settings,
            "annotation_refs": list(src.annotation_refs),
        }
    )
    return built.model_copy(
        update={
            "images": [image],
            "instruments": list(source.instruments),
            "structured_annotations": source.structured_annotations,
        }
    )


_CHANNEL_FIELDS = frozenset(
    {
        "emission_wavelength",
        "emission_wavelength_unit",
        "excitation_wavelength",
        "excitation_wavelength_unit",
        "fluor",
        "nd_filter",
        "pinhole_size",
        "pinhole_size_unit",
        "contrast_method",
        "illumination_type",
        "acquisition_mode",
        "pockel_cell_setting",
    }
)


def channel_descriptions(image: Image) -> list[dict[str, Any]]:
    """The acquisition fields of each channel of an OME image (wavelengths, fluor, pinhole...).

    These are what :func:`make_ome` takes as ``channel_extra``: everything a file's OME says
    about a channel besides its id, name, colour and samples, which omio sets itself.

    Examples
    --------
    >>> ome = make_ome((1, 1, 1, 2, 2), "uint8", channel_extra=[{"fluor": "GFP"}])
    >>> channel_descriptions(ome.images[0])[0]["fluor"]
    'GFP'
    """
    return [
        {k: v for k, v in c.model_dump(exclude_none=True).items() if k in _CHANNEL_FIELDS}
        for c in image.pixels.channels
    ]
