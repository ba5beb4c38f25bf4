"""Lazy concatenation of datasets along T, Z or C under an explicit policy.

The policy (:mod:`omio.policies`) decides from metadata alone whether and how the
datasets fit together; this module then builds the result as a dask graph
(``dask.array.pad`` and ``dask.array.concatenate``), so no pixel is read until the
result is computed, viewed or written.

Provenance
----------
The result's OME carries MapAnnotations that survive writing and reading back:

``omio:merge``
    ``axis``, ``policy``, ``n_sources``, ``shape``, ``dtype``, ``promoted_from``,
    ``renamed_channels``, ``omio_version`` and ``extra`` (caller notes, e.g. skipped files).
``omio:merge:source:<i>`` (one per source, ``i`` from 0)
    ``label``, ``path``, ``format``, ``scene``, ``shape``, ``dtype``, ``start`` and
    ``stop`` (index range along the merge axis), ``offset`` and ``padding``
    (per dim, JSON) and ``annotations`` (the source's own MapAnnotations, JSON).

Record: the result's :class:`~omio.record.ImageRecord` is the first source's (pixel
sizes, time increment, origin) with the plane tables of all sources concatenated,
their indices moved along the merge axis (:func:`omio.record.concat_records`); its
coordinates and its OME Pixels and Planes derive from that record as a dataset's always
do. Along T the time coordinate thus continues with the time increment from the first
source's origin (or is the planes' ``DeltaT`` where every T index states one that
increases); along Z the Z coordinate continues with the Z pixel size. Along C the
channel names are concatenated (repeated names get ``_2``, ``_3``..., reported in
``renamed_channels``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dask.array as da

from omio.dataset import MicroscopyDataset, SourceInfo
from omio.dims import DIMS
from omio.errors import MergeError
from omio.lazy_ome import LazyOME
from omio.policies import Axis, MergePlan, Policy, SourceMeta, plan_merge
from omio.record import ImageRecord, build_xarray, concat_records

if TYPE_CHECKING:
    from ome_types import OME

__all__ = ["MERGE_NAMESPACE", "SOURCE_PREFIX", "concat", "merge_provenance"]

MERGE_NAMESPACE = "omio:merge"
SOURCE_PREFIX = "omio:merge:source:"


def concat(
    datasets: Sequence[MicroscopyDataset],
    *,
    axis: Axis = "T",
    policy: Policy = "strict",
    promote_dtype: bool = False,
    labels: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> MicroscopyDataset:
    """Concatenate datasets along T, Z or C (lazy: reads no pixels).

    Parameters
    ----------
    datasets
        Two or more datasets (one is allowed and gives a copy with provenance), in order.
    axis
        ``"T"``, ``"Z"`` or ``"C"``.
    policy
        ``"strict"``: all other axes, dtype, physical sizes, time increment and (for
        T/Z) channel names must agree. ``"pad"``: other axes are zero-padded at their
        end to the largest extent; scales must still agree.
    promote_dtype
        With ``policy="pad"``, allow different dtypes (``numpy.result_type``); never implicit.
    labels
        Names of the sources in messages and provenance (default: their paths).
    extra
        Further provenance (JSON-able values) stored in the ``omio:merge`` annotation.

    Returns
    -------
    MicroscopyDataset
        Lazy; metadata (physical sizes, instrument, channel details) from the first
        source (for T/Z merges, channels from the source with the most channels).

    Raises
    ------
    omio.errors.MergeError
        Listing every mismatch at once, with the source each came from.

    Examples
    --------
    >>> import numpy as np, omio
    >>> a = omio.MicroscopyDataset.from_array(np.ones((2, 8, 8), "uint8"), axes="TYX", time_increment=0.5)
    >>> b = omio.MicroscopyDataset.from_array(np.ones((3, 8, 8), "uint8"), axes="TYX", time_increment=0.5)
    >>> m = concat([a, b], axis="T")
    >>> m.sizes["T"], m.xarray["T"].values[-1], m.annotations["omio:merge"]["policy"]
    (5, np.float64(2.0), 'strict')
    """
    items = list(datasets)
    if not items:
        raise MergeError("concat needs at least one dataset")
    if not all(isinstance(ds, MicroscopyDataset) for ds in items):
        kinds = sorted({type(ds).__name__ for ds in items})
        raise MergeError(f"concat takes MicroscopyDataset objects, got {kinds}; wrap arrays with omio.from_array")
    if labels is not None and len(labels) != len(items):
        raise MergeError(f"{len(labels)} labels given for {len(items)} datasets")
    names = list(labels) if labels is not None else _default_labels(items)
    metas = [SourceMeta.from_dataset(ds, label) for ds, label in zip(items, names, strict=True)]
    plan = plan_merge(metas, axis=axis, policy=policy, promote_dtype=promote_dtype)
    data = _concat_data(items, plan)
    record = concat_records(
        [ds.record for ds in items],
        axis=axis,
        starts=[place.start for place in plan.placements],
        channel_names=plan.channel_names,
    )
    ome = _merged_ome(items, plan, extra or {}, record)
    arr = build_xarray(data, record)
    rule = f"concatenation of {len(items)} datasets along {axis} (policy {policy!r}); see the omio:merge annotations"
    return MicroscopyDataset(arr, LazyOME.ready(ome, record), SourceInfo(path=None, format="merged", axes_rule=rule))


def merge_provenance(ds: MicroscopyDataset) -> dict[str, Any] | None:
    """Return the merge provenance of a dataset as plain Python values, or ``None``.

    ``{"axis", "policy", "shape", "dtype", ..., "sources": [{"label", "path", "start",
    "stop", "offset", "padding", ...}, ...]}`` with JSON fields decoded.
    """
    anns = ds.annotations
    if MERGE_NAMESPACE not in anns:
        return None
    out: dict[str, Any] = {k: _decode(v) for k, v in anns[MERGE_NAMESPACE].items()}
    n = int(out.get("n_sources", 0))
    out["sources"] = [{k: _decode(v) for k, v in anns.get(f"{SOURCE_PREFIX}{i}", {}).items()} for i in range(n)]
    return out


# ---------------------------------------------------------------------- internals


def _default_labels(items: Sequence[MicroscopyDataset]) -> list[str]:
    out = []
    for i, ds in enumerate(items):
        if ds.path is None:
            out.append(f"dataset[{i}]")
        else:
            scene = f" (scene {ds.source.scene})" if len(ds.scenes) > 1 else ""
            out.append(f"{ds.path}{scene}")
    return out


def _decode(text: str) -> Any:
    """JSON values (lists, dicts, numbers) back to Python; other text stays text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _concat_data(items: Sequence[MicroscopyDataset], plan: MergePlan) -> da.Array:
    parts = []
    for ds, place in zip(items, plan.placements, strict=True):
        arr = ds.data
        if arr.dtype != plan.dtype:
            arr = arr.astype(plan.dtype)  # type: ignore[no-untyped-call, unused-ignore]
        widths = [(0, place.padding[d]) for d in DIMS]
        if any(after for _, after in widths):
            arr = da.pad(arr, widths, mode="constant", constant_values=0)
        parts.append(arr)
    if len(parts) == 1:
        return parts[0]
    merged: da.Array = da.concatenate(parts, axis=DIMS.index(plan.axis))  # type: ignore[no-untyped-call, unused-ignore]
    # One flat layer instead of a few per source: every compute of a slice (the writer computes
    # slab after slab) otherwise pays for optimizing all source layers (4x slower with 50 files).
    flat = da.Array(dict(merged.__dask_graph__()), merged.name, merged.chunks, dtype=merged.dtype)  # type: ignore[no-untyped-call, unused-ignore]
    return flat


def _merged_ome(
    items: Sequence[MicroscopyDataset], plan: MergePlan, extra: Mapping[str, Any], record: ImageRecord
) -> OME:
    """The first source's OME with merged channels, Pixels and Planes from ``record``, only the merge annotations."""
    from ome_types.model import AnnotationRef, MetadataOnly, StructuredAnnotations

    from omio import __version__, metadata
    from omio.ome_update import apply_record

    base = items[0].ome
    image = base.images[0]
    if plan.axis == "C":
        channels = [ch for ds in items for ch in ds.ome.images[0].pixels.channels]
        channels = [ch.model_copy(update={"name": n}) for ch, n in zip(channels, plan.channel_names, strict=True)]
    else:
        channels = list(items[plan.channel_source].ome.images[0].pixels.channels)
    # annotations of the sources move into the provenance; drop references to them
    channels = [ch.model_copy(update={"id": f"Channel:0:{i}", "annotation_refs": []}) for i, ch in enumerate(channels)]
    t, z, c, y, x = plan.shape
    pixels = image.pixels.model_copy(
        update={
            "size_t": t,
            "size_z": z,
            "size_c": c,
            "size_y": y,
            "size_x": x,
            "type": metadata.pixel_type(plan.dtype),
            "channels": channels,
            "planes": [],
            "tiff_data_blocks": [],
            "bin_data_blocks": [],
            "metadata_only": MetadataOnly(),
        }
    )
    summary: dict[str, Any] = {
        "axis": plan.axis,
        "policy": plan.policy,
        "n_sources": len(items),
        "shape": list(plan.shape),
        "dtype": plan.dtype.name,
        "promoted_from": list(plan.promoted_from),
        "renamed_channels": [list(r) for r in plan.renamed_channels],
        "omio_version": __version__,
        "extra": dict(extra),
    }
    anns = [metadata.map_annotation(MERGE_NAMESPACE, summary, index=0)]
    for i, (ds, place) in enumerate(zip(items, plan.placements, strict=True)):
        values = {
            "label": place.label,
            "path": "" if ds.path is None else str(ds.path),
            "format": ds.source.format,
            "scene": ds.source.scene,
            "shape": list(place.shape),
            "dtype": ds.dtype.name,
            "start": place.start,
            "stop": place.stop,
            "offset": place.offset,
            "padding": place.padding,
            "annotations": ds.annotations,
        }
        anns.append(metadata.map_annotation(f"{SOURCE_PREFIX}{i}", values, index=i + 1))
    image = image.model_copy(update={"pixels": pixels, "annotation_refs": [AnnotationRef(id=a.id) for a in anns]})
    merged = base.model_copy(
        update={"images": [image], "structured_annotations": StructuredAnnotations(map_annotations=anns)}
    )
    return apply_record(merged, record, plan.shape)
