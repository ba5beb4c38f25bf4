"""The OME model of a dataset, derived from its record.

A dataset's meaning lives in its :class:`omio.record.ImageRecord`; the OME model keeps
what the record does not hold (channel colours and acquisition details, instruments,
annotations, the image description) and gets its ``Pixels`` sizes, physical sizes, time
increment, channel names and ``Plane`` elements from the record in one function,
:func:`apply_record`. The annotation helpers that the dataset's provenance needs are
here too. Everything here needs ome-types; nothing here is imported to read pixels.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omio import units
from omio.errors import MetadataError
from omio.record import ImageRecord

if TYPE_CHECKING:
    import numpy as np
    from ome_types import OME
    from ome_types.model import MapAnnotation, Plane, StructuredAnnotations, UnitsLength, UnitsTime

__all__ = [
    "add_annotations",
    "apply_record",
    "check_ome_matches",
    "keep_history",
    "ome_from_record",
    "ome_planes",
    "with_pixels",
    "with_pixels_of",
]

SOURCE_NAMESPACE = "omio:source"
DERIVED_NAMESPACE = "omio:derived-from"
_LENGTH_FIELDS = ("position_x", "position_y", "position_z")


def with_pixels(ome: OME, **update: Any) -> OME:
    """A copy of ``ome`` whose first image's Pixels have ``update``."""
    image = ome.images[0]
    pixels = image.pixels.model_copy(update=update)
    return ome.model_copy(update={"images": [image.model_copy(update={"pixels": pixels}), *ome.images[1:]]})


@functools.cache
def _ome_length(name: str) -> UnitsLength:
    from ome_types.model import UnitsLength

    try:
        return units.ome_length_unit(name)
    except (MetadataError, ValueError, AttributeError):
        return UnitsLength(name)  # an OME unit pint has no name for ("reference frame")


@functools.cache
def _ome_time(name: str) -> UnitsTime:
    from ome_types.model import UnitsTime

    try:
        return units.ome_time_unit(name)
    except (MetadataError, ValueError, AttributeError):
        return UnitsTime(name)


def ome_planes(record: ImageRecord, shape: Sequence[int]) -> list[Plane]:
    """The OME ``Plane`` elements of a record's plane table, for an image of TZCYX ``shape``.

    The record states its origin on its planes (see :meth:`omio.record.ImageRecord.settled`),
    so reading a file written from these planes gives the same origin back.
    """
    from ome_types.model import Plane

    out = []
    for p in record.planes:
        if not (p.t < shape[0] and p.z < shape[1] and p.c < shape[2]):
            continue
        fields: dict[str, Any] = {}
        for attribute in ("delta_t", "exposure_time", *_LENGTH_FIELDS):
            m = getattr(p, attribute)
            if m is None:
                continue
            fields[attribute] = float(m.magnitude)
            fields[f"{attribute}_unit"] = _ome_length(m.units) if attribute in _LENGTH_FIELDS else _ome_time(m.units)
        out.append(Plane(the_t=p.t, the_z=p.z, the_c=p.c, **fields))
    return out


def apply_record(
    ome: OME,
    record: ImageRecord,
    shape: Sequence[int],
    *,
    channels: Sequence[int] | None = None,
    dtype: np.dtype[Any] | None = None,
) -> OME:
    """``ome`` with its first image's name, Pixels and Planes set from ``record`` (the one place that does it).

    Parameters
    ----------
    ome
        The model whose other content (instruments, annotations, channel details) is kept.
    record
        What the image's Pixels say: sizes, units, time increment, channel names, planes.
    shape
        The TZCYX shape of the pixels.
    channels
        The indices of ``ome``'s channels the image keeps, in order (all by default).
    dtype
        The pixel type, where it changed.
    """
    from ome_types.model import MetadataOnly

    from omio import metadata

    image = ome.images[0]
    px = image.pixels
    t, z, c, y, x = (int(s) for s in shape)
    update: dict[str, Any] = {
        "size_t": t,
        "size_z": z,
        "size_c": c,
        "size_y": y,
        "size_x": x,
        "planes": ome_planes(record, shape),
        "tiff_data_blocks": [],
    }
    if dtype is not None:
        update["type"] = metadata.pixel_type(dtype)
    for axis in "XYZ":
        key = f"physical_size_{axis.lower()}"
        m = record.physical_sizes.get(axis)
        current = metadata.physical_pixel_measures(image).get(axis)
        if m is None:
            update[key] = None
        elif current != m:
            update[key] = float(m.magnitude)
            update[f"{key}_unit"] = units.ome_length_unit(m.units)
    increment = record.time_increment
    if increment is None:
        update["time_increment"] = None
    elif metadata.time_increment_measure(image) != increment:
        update["time_increment"] = float(increment.magnitude)
        update["time_increment_unit"] = units.ome_time_unit(increment.units)
    kept = list(px.channels) if channels is None else [px.channels[int(i)] for i in channels]
    if len(kept) != c or len(record.channel_names) != c:
        raise MetadataError(f"{len(kept)} channels and {len(record.channel_names)} names for SizeC={c}")
    update["channels"] = [
        ch.model_copy(update={"id": f"Channel:0:{i}", "name": name})
        for i, (ch, name) in enumerate(zip(kept, record.channel_names, strict=True))
    ]
    if px.metadata_only is None and not px.bin_data_blocks:  # the TiffData mapping was dropped above
        update["metadata_only"] = MetadataOnly()
    ome = with_pixels(ome, **update)
    if (image.name or None) != record.name:
        renamed = ome.images[0].model_copy(update={"name": record.name})
        ome = ome.model_copy(update={"images": [renamed, *ome.images[1:]]})
    return ome


def ome_from_record(record: ImageRecord, shape: Sequence[int], dtype: Any, **fields: Any) -> OME:
    """A new OME model describing pixels of ``shape`` and ``dtype`` labelled by ``record``.

    ``fields`` are further :func:`omio.metadata.make_ome` arguments (``channel_colors``...).
    """
    from omio import metadata

    return metadata.make_ome(
        shape,
        dtype,
        name=record.name,
        physical_sizes=record.physical_sizes,
        time_increment=record.time_increment,
        channel_names=list(record.channel_names),
        planes=ome_planes(record, shape),
        **fields,
    )


def check_ome_matches(ome: OME, shape: Sequence[int], path: Path | str | None) -> None:
    """The model's Pixels must declare the TZCYX ``shape`` and one Channel per C index.

    Raises
    ------
    MetadataError
        Naming ``path`` and both shapes.
    """
    px = ome.images[0].pixels
    declared = (px.size_t, px.size_z, px.size_c, px.size_y, px.size_x)
    if tuple(int(s) for s in shape) != declared:
        raise MetadataError(f"{path}: metadata declares TZCYX {declared} but the data has {tuple(shape)}")
    if len(px.channels) != px.size_c:
        raise MetadataError(f"{path}: metadata has {len(px.channels)} channels for SizeC={px.size_c}")


def add_annotations(
    ome: OME, items: Sequence[tuple[str, Mapping[str, Any]]], *, replace_namespaces: Sequence[str] = ()
) -> OME:
    """``ome`` with a MapAnnotation per ``(namespace, values)`` referenced by its image.

    MapAnnotations in ``replace_namespaces`` are removed first.
    """
    from ome_types.model import AnnotationRef

    from omio import metadata

    sa = _sa(ome)
    kept = [a for a in sa.map_annotations if (a.namespace or "") not in replace_namespaces]
    used = {a.id for a in _all_annotations(ome)}
    new: list[MapAnnotation] = []
    k = 0
    for namespace, values in items:
        while f"Annotation:{k}" in used:
            k += 1
        ann = metadata.map_annotation(namespace, values, index=k)
        used.add(ann.id)
        new.append(ann)
    sa = sa.model_copy(update={"map_annotations": kept + new})
    image = ome.images[0]
    live = {a.id for a in kept} | {a.id for a in _other_annotations(ome)}
    refs = [r for r in image.annotation_refs if r.id in live] + [AnnotationRef(id=a.id) for a in new]
    image = image.model_copy(update={"annotation_refs": refs})
    return ome.model_copy(update={"structured_annotations": sa, "images": [image, *ome.images[1:]]})


def _sa(ome: OME) -> StructuredAnnotations:
    from ome_types.model import StructuredAnnotations

    return ome.structured_annotations or StructuredAnnotations()


def keep_history(ome: OME) -> OME:
    """Rename an earlier ``omio:source`` annotation (a file omio wrote) to ``omio:derived-from``."""
    sa = _sa(ome)
    if not any(a.namespace == SOURCE_NAMESPACE for a in sa.map_annotations):
        return ome
    anns = [
        a.model_copy(update={"namespace": DERIVED_NAMESPACE}) if a.namespace == SOURCE_NAMESPACE else a
        for a in sa.map_annotations
    ]
    return ome.model_copy(update={"structured_annotations": sa.model_copy(update={"map_annotations": anns})})


def _all_annotations(ome: OME) -> list[Any]:
    return list(_sa(ome).map_annotations) + _other_annotations(ome)


def _other_annotations(ome: OME) -> list[Any]:
    sa = _sa(ome)
    out: list[Any] = []
    for name in type(sa).model_fields:
        if name == "map_annotations":
            continue
        value = getattr(sa, name)
        if isinstance(value, list):
            out.extend(value)
    return out


def with_pixels_of(template: OME, fresh: OME) -> OME:
    """``template`` (instruments, annotations, description) with the Pixels of ``fresh``."""
    image = template.images[0].model_copy(update={"pixels": fresh.images[0].pixels, "name": fresh.images[0].name})
    return template.model_copy(update={"images": [image]})
