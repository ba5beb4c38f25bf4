"""The summaries of a dataset: its ``repr``, its notebook display and the flat ``metadata`` dict."""

from __future__ import annotations

import base64
import html
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from omio._scheduler import scheduler
from omio.dims import DIMS
from omio.record import PLANE_FIELDS
from omio.units import Measure, ome_length_symbol, ome_time_symbol, symbol

if TYPE_CHECKING:
    from omio.dataset import MicroscopyDataset

__all__ = ["flat_metadata", "html_summary", "summary", "thumbnail_png"]


def _fmt_q(m: Measure | None) -> str:
    return "None" if m is None else f"{m.magnitude:.6g} {symbol(m.units)}"


def _fmt_bytes(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            return f"{value:.3g} {unit}"
    return f"{value / 1000:.3g} TB"


def summary(ds: MicroscopyDataset) -> list[tuple[str, str]]:
    """The rows of a dataset's summary: dims, dtype, pixel size, origin (where stated), time, channels, source."""
    sizes = "  ".join(f"{d}: {n}" for d, n in ds.sizes.items())
    record = ds.record
    ps = ", ".join(f"{a} {_fmt_q(record.physical_sizes.get(a))}" for a in "XYZ")
    rows = [
        ("dims", sizes),
        ("dtype", f"{ds.dtype.name} ({_fmt_bytes(ds.nbytes)})"),
        ("pixel size", ps),
    ]
    origin = {a: record.origin.get(a) for a in "XYZT"}
    if any(m is not None for m in origin.values()):
        rows.append(("origin", ", ".join(f"{a} {_fmt_q(m)}" for a, m in origin.items() if m is not None)))
    rows += [
        ("time increment", _fmt_q(record.time_increment)),
        ("channels", str(ds.channel_names)),
    ]
    if record.planes:
        stated = [f for f in PLANE_FIELDS if any(p.value(f) is not None for p in record.planes)]
        rows.append(("planes", f"{len(record.planes)} stated ({', '.join(stated)}): ds.planes"))
    info = ds.source
    if ds.path is not None:
        scene = "" if len(info.scenes) <= 1 else f", scene {info.scene} of {len(info.scenes)}"
        rows.append(("source", f"{ds.path} ({info.format}{scene})"))
    if ds.axes_rule:
        rows.append(("axes rule", ds.axes_rule))
    if ds.is_lazy:
        chunks = ds.data.chunksize
        rows.append(("chunks", f"{ds.data.npartitions} of {chunks}"))
    return rows


def html_summary(ds: MicroscopyDataset) -> str:
    """The notebook display: the summary table and a thumbnail (reads one plane)."""
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in summary(ds)
    )
    thumb = thumbnail_png(ds)
    img = (
        f"<img src='data:image/png;base64,{thumb}' style='image-rendering:pixelated;max-width:192px'/>" if thumb else ""
    )
    title = html.escape(f"omio.MicroscopyDataset {ds.name or ''}".strip())
    return (
        f"<div><strong>{title}</strong><div style='display:flex;gap:1em;align-items:flex-start'>"
        f"<table>{rows}</table>{img}</div></div>"
    )


def thumbnail_png(ds: MicroscopyDataset, size: int = 192) -> str | None:
    """A small PNG (base64) of the middle Z plane of T0/C0 (reads one plane; ``None`` for huge planes)."""
    _, z, _, y, x = ds.shape
    if y * x * ds.dtype.itemsize > 64 * 2**20 or ds.dtype.kind not in "uif":
        return None
    step = max(1, math.ceil(max(y, x) / size))
    plane = np.asarray(ds.data[0, z // 2, 0, ::step, ::step].compute(scheduler=scheduler()), dtype=np.float64)
    finite = plane[np.isfinite(plane)]
    if finite.size == 0:
        return None
    lo, hi = np.percentile(finite, [0.5, 99.5])
    scaled = np.clip((plane - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    img = (np.nan_to_num(scaled) * 255).astype(np.uint8)
    import imagecodecs

    return base64.b64encode(imagecodecs.png_encode(img)).decode("ascii")


def flat_metadata(ds: MicroscopyDataset, *, annotations: bool = True) -> dict[str, Any]:
    """The flat metadata dict of :attr:`omio.MicroscopyDataset.metadata`.

    Without ``annotations`` (the ``Annotations`` key), the OME model is not built.
    """
    record = ds.record
    out: dict[str, Any] = {"axes": "".join(DIMS), "shape": ds.shape}
    for axis in ("X", "Y", "Z"):
        m = record.physical_sizes.get(axis)
        out[f"PhysicalSize{axis}"] = None if m is None else float(m.magnitude)
        out[f"PhysicalSize{axis}Unit"] = None if m is None else ome_length_symbol(m.units)
    inc = record.time_increment
    out["TimeIncrement"] = None if inc is None else float(inc.magnitude)
    out["TimeIncrementUnit"] = None if inc is None else ome_time_symbol(inc.units)
    for d, n in ds.sizes.items():
        out[f"Size{d}"] = n
    out["dtype"] = ds.dtype.name
    out["channel_names"] = ds.channel_names
    out["name"] = ds.name
    if annotations:
        out["Annotations"] = ds.annotations
    out["source"] = None if ds.path is None else str(ds.path)
    out["format"] = ds.source.format
    out["axes_rule"] = ds.axes_rule
    return out
