"""One function that turns a dataset into napari layer data.

The layers stay lazy (dask, one chunk read per displayed plane), squeeze the size-1
axes of the TZCYX model for display and record which ones they dropped, and carry
the physical scale and position of every displayed axis (micrometres for Z, Y, X,
seconds for T). napari is not imported here: layer data are plain tuples, which
``viewer.add_image(data, **kwargs)`` and napari's reader machinery both accept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np

from omio import units
from omio._scheduler import scheduler
from omio.dims import DIMS
from omio.errors import DimensionError

if TYPE_CHECKING:
    from omio.dataset import MicroscopyDataset

__all__ = ["LayerData", "layer_data"]

LayerData = tuple[Any, dict[str, Any], str]
"""napari's ``(data, kwargs, layer_type)`` tuple."""

_SINGLE_COLOR = "gray"
_TWO_COLORS = ("magenta", "green")
_MANY_COLORS = ("cyan", "yellow", "magenta", "red", "green", "blue")
"""napari's own defaults for ``channel_axis`` when the file states no colours."""

_SAMPLE_PLANES = 3
_SAMPLE_PIXELS = 512
_DISPLAY_UNITS = {"T": "second", "Z": "micrometer", "Y": "micrometer", "X": "micrometer"}


def layer_data(
    ds: MicroscopyDataset,
    *,
    channel_axis: bool = True,
    contrast_limits: tuple[float, float] | Sequence[tuple[float, float]] | None = None,
) -> list[LayerData]:
    """Describe a dataset as napari image layers (reads only a small subsample).

    Parameters
    ----------
    ds
        The dataset. When it is a whole image of a pyramidal file, every resolution
        level of the file becomes one level of a multiscale layer.
    channel_axis
        One layer per channel, named and coloured from the metadata (napari's
        default colours where the file states none), blended additively. With
        ``False``, one layer keeps C as a slider axis.
    contrast_limits
        ``(low, high)`` for every layer, or one pair per channel. By default the
        minimum and maximum of a few strided planes of the smallest level.

    Returns
    -------
    list of (data, kwargs, "image")
        ``data`` is a dask array (a list of them for a multiscale layer) with the
        size-1 axes squeezed; ``kwargs`` hold ``name``, ``colormap``, ``blending``,
        ``contrast_limits``, ``scale``, ``translate``, ``units``, ``axis_labels``,
        ``multiscale`` and ``metadata["omio"]``: the displayed ``dims`` and the
        ``squeezed`` axes with their coordinate.

    Examples
    --------
    >>> import numpy as np, omio
    >>> from omio.napari import layer_data
    >>> ds = omio.from_array(np.arange(2 * 3 * 8 * 8, dtype="uint16").reshape(2, 3, 8, 8), axes="CZYX",
    ...                      physical_pixel_sizes={"X": 0.5, "Y": 0.5, "Z": 2.0}, channel_names=["DAPI", "GFP"])
    >>> [(kw["name"], kw["colormap"], kw["scale"], kw["axis_labels"]) for _, kw, _ in layer_data(ds)]
    [('DAPI', 'magenta', (2.0, 0.5, 0.5), ('Z', 'Y', 'X')), ('GFP', 'green', (2.0, 0.5, 0.5), ('Z', 'Y', 'X'))]
    """
    levels = _levels(ds)
    n_c = ds.sizes["C"]
    split = channel_axis or n_c == 1
    shown = tuple(d for d in DIMS if d in "YX" or (ds.sizes[d] > 1 and (d != "C" or not split)))
    squeezed = {d: _origin(ds, d) for d in DIMS if d not in shown and d != "C"}
    geometry = _geometry(ds, shown)
    limits = _limits(contrast_limits, levels[-1], pooled=not split)
    labels = [str(v) for v in ds.xarray["C"].values]
    names = _layer_names(ds) if split else [ds.name or (Path(ds.path).name if ds.path is not None else "image")]
    colors = _colors(ds)
    out: list[LayerData] = []
    for i, name in enumerate(names):
        index = tuple(slice(None) if d in shown else (i if d == "C" else 0) for d in DIMS)
        data = [level[index] for level in levels]
        kwargs: dict[str, Any] = {
            "name": name,
            "contrast_limits": limits[i],
            "blending": "additive" if len(names) > 1 else "translucent",
            "multiscale": len(data) > 1,
            "metadata": {
                "omio": {"dims": "".join(shown), "squeezed": {**squeezed, **({"C": labels[i]} if split else {})}}
            },
            **geometry,
        }
        if split:
            kwargs["colormap"] = colors[i]
        out.append((data if len(data) > 1 else data[0], kwargs, "image"))
    return out


def _levels(ds: MicroscopyDataset) -> list[da.Array]:
    """The dataset's pixels, plus the file's lower resolution levels when it is a whole image of the file."""
    info = ds.source
    if len(info.levels) < 2 or info.path is None:
        return [ds.data]
    from omio._api import open as open_dataset

    whole = open_dataset(info.path, scene=info.scene)
    if not _built_alike(whole.data, ds.data):  # a selection or a computed result: the file's levels do not match
        return [ds.data]
    return [ds.data] + [open_dataset(info.path, scene=info.scene, level=i).data for i in range(1, len(info.levels))]


def _built_alike(a: da.Array, b: da.Array) -> bool:
    """True when two arrays have the same chunks and were built by the same steps (graph names up to tokens)."""

    def steps(arr: da.Array) -> list[str]:
        return [str(name).rsplit("-", 1)[0] for name in arr.dask.layers]

    return a.chunks == b.chunks and steps(a) == steps(b)


def _geometry(ds: MicroscopyDataset, shown: Sequence[str]) -> dict[str, Any]:
    """``scale``, ``translate``, ``units`` and ``axis_labels`` of the displayed axes."""
    steps = {"T": ds.time_increment, **ds.physical_pixel_sizes}
    scale: list[float] = []
    translate: list[float] = []
    unit_names: list[str] = []
    for dim in shown:
        step = None if dim == "C" else steps[dim]
        scale.append(1.0 if step is None else float(step.to(_DISPLAY_UNITS[dim]).magnitude))
        translate.append(0.0 if dim == "C" else _origin(ds, dim))
        unit_names.append("pixel" if step is None else _DISPLAY_UNITS[dim])
    return {
        "scale": tuple(scale),
        "translate": tuple(translate),
        "units": tuple(unit_names),
        "axis_labels": tuple(shown),
    }


def _origin(ds: MicroscopyDataset, dim: str) -> float:
    """The coordinate of the first element along T, Z, Y or X, in seconds or micrometres where it has a unit."""
    coord = ds.xarray[dim]
    value = float(coord.values[0])
    stated = coord.attrs.get("units")
    return float(units.quantity(value, str(stated)).to(_DISPLAY_UNITS[dim]).magnitude) if stated else value


def _layer_names(ds: MicroscopyDataset) -> list[str]:
    names = ds.channel_names
    base = ds.name or (Path(ds.path).name if ds.path is not None else None)
    out: list[str] = []
    for c, name in enumerate(names):
        if name:
            out.append(name)
        elif base is None:
            out.append(f"C{c}")
        else:
            out.append(base if len(names) == 1 else f"{base} C{c}")
    return out


def _colors(ds: MicroscopyDataset) -> list[str]:
    """A napari colormap per channel: the file's colour (black to it), else napari's defaults."""
    stated = ds.channel_colors
    n = len(stated)
    defaults = [_SINGLE_COLOR] if n == 1 else list(_TWO_COLORS) if n == 2 else list(_MANY_COLORS)
    out: list[str] = []
    for c, rgba in enumerate(stated):
        if rgba is None or tuple(rgba[:3]) == (0, 0, 0):  # black would hide the channel
            out.append(defaults[c % len(defaults)])
        elif tuple(rgba[:3]) == (255, 255, 255):
            out.append(_SINGLE_COLOR)
        else:
            out.append("#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgba[:3])))
    return out


def _limits(
    given: tuple[float, float] | Sequence[tuple[float, float]] | None,
    level: da.Array,
    *,
    pooled: bool,
) -> list[tuple[float, float]]:
    """Contrast limits per channel (one pair for all channels if ``pooled``): as given, else from a subsample."""
    n_c = 1 if pooled else int(level.shape[2])
    if given is not None:
        pairs = np.asarray(given, dtype=np.float64)
        if pairs.shape == (2,):
            return [(float(pairs[0]), float(pairs[1]))] * n_c
        if pairs.shape != (n_c, 2):
            raise DimensionError(f"contrast_limits must be one (low, high) pair or {n_c} pairs, got {given}")
        return [(float(lo), float(hi)) for lo, hi in pairs]
    if level.dtype == np.bool_:
        return [(0.0, 1.0)] * n_c
    sample = _subsample(level).astype(np.float64)
    columns = sample.reshape(-1, n_c)
    out = []
    for column in columns.T:
        finite = column[np.isfinite(column)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        out.append((low, high if high > low else low + 1.0))
    return out


def _subsample(level: da.Array) -> np.ndarray[Any, Any]:
    """A few planes (first, middle, last along T x Z), every channel, strided to about 512 x 512 pixels.

    Returns an array of shape ``(planes, Y', X', C)``; only these planes are read.
    """
    t, z, _, y, x = level.shape
    flat = np.unique(np.linspace(0, t * z - 1, num=min(_SAMPLE_PLANES, t * z)).round().astype(int))
    sy, sx = max(1, y // _SAMPLE_PIXELS), max(1, x // _SAMPLE_PIXELS)
    planes = [level[int(i) // z, int(i) % z, :, ::sy, ::sx] for i in flat]
    stacked = da.stack(planes).transpose(0, 2, 3, 1)
    return np.asarray(stacked.compute(scheduler=scheduler()))
