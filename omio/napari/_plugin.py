"""The npe2 plugin functions: open files through omio, save image layers as OME-TIFF.

napari finds them through ``napari.yaml`` in this package (entry point
``napari.manifest``). The reader declines (returns ``None``) every path no omio
reader recognises, so napari falls back to other plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omio.dims import SAMPLE_COLORS, SAMPLE_NAMES
from omio.errors import DimensionError, FileFormatError, UnsupportedFormatError
from omio.napari._layers import LayerData, layer_data
from omio.napari._scenes import dock_scene_list

if TYPE_CHECKING:
    from omio.dataset import MicroscopyDataset

__all__ = ["get_reader", "write_ometiff"]

ReaderFunction = Callable[[str | Sequence[str]], list[LayerData]]
_SCALE_AXES = "TZYX"


def get_reader(path: str | Sequence[str]) -> ReaderFunction | None:
    """Return a function that opens ``path`` through omio, or ``None`` when omio cannot read it.

    Only the content is checked here (the first bytes, or the folder); nothing is
    read beyond that until napari calls the returned function. A list of paths is
    accepted when omio reads every one of them; each becomes its own layers.
    """
    from omio.readers import find_reader

    paths = [path] if isinstance(path, str) else list(path)
    if not paths:
        return None
    for p in paths:
        try:
            find_reader(Path(p))
        except (UnsupportedFormatError, FileFormatError, FileNotFoundError, PermissionError):
            return None
    return read


def read(path: str | Sequence[str]) -> list[LayerData]:
    """Open the first image of each path lazily and describe it as layers (see :func:`omio.napari.layer_data`).

    For a file with several scenes, a list of them is docked in the current viewer:
    activating one adds its layers (see :mod:`omio.napari._scenes`).
    """
    from omio._api import open as open_dataset

    paths = [path] if isinstance(path, str) else list(path)
    out: list[LayerData] = []
    for p in paths:
        ds = open_dataset(p)
        out.extend(layer_data(ds))
        if len(ds.scenes) > 1:
            dock_scene_list(p, ds.scenes)
    return out


def write_ometiff(path: str, layers: Sequence[LayerData]) -> list[str]:
    """Write image layers as one OME-TIFF (each layer one channel) and return the path written.

    The layers must have the same shape. Their axes come from their axis labels
    when those are T, Z, Y, X (as omio's reader sets them), otherwise from the last
    axes (``YX``, ``ZYX``, ``TZYX``). A layer's ``scale`` gives the physical pixel
    sizes (in its units; napari's default unit ``pixel`` is taken as micrometres
    unless the scale is 1, which stays unknown) and the time increment; its name
    and colormap give the channel name and colour. RGB layers become three channels.

    Raises
    ------
    omio.errors.DimensionError
        When the layers differ in shape or have more axes than T, Z, Y, X.
    """
    ds = dataset_from_layers(layers)
    return [str(ds.to_ometiff(path, overwrite=True))]


def dataset_from_layers(layers: Sequence[LayerData]) -> MicroscopyDataset:
    """Build one dataset (channels = layers) from napari image layer data; see :func:`write_ometiff`."""
    import dask.array as da

    from omio.dataset import MicroscopyDataset

    if not layers:
        raise DimensionError("no layers to write")
    arrays: list[da.Array] = []
    names: list[str | None] = []
    colors: list[Any] = []
    axes = ""
    for data, meta, _ in layers:
        level0 = data[0] if meta.get("multiscale") else data
        arr = level0 if isinstance(level0, da.Array) else da.from_array(np.asarray(level0))
        if meta.get("rgb"):
            if len(layers) > 1:
                raise DimensionError("an RGB layer can only be written on its own; convert it to channels first")
            arr = da.moveaxis(arr, -1, 0)
            layer_axes = "C" + _axes(meta, arr.ndim - 1)
            names = [f"{meta.get('name') or 'image'}:{c}" for c in "RGBA"[: arr.shape[0]]]
            colors = [SAMPLE_COLORS.get(n) for n in SAMPLE_NAMES][: arr.shape[0]]
        else:
            layer_axes = _axes(meta, arr.ndim)
            names.append(meta.get("name") or None)
            colors.append(_color(meta.get("colormap")))
        if arrays and (arr.shape != arrays[0].shape or layer_axes != axes):
            raise DimensionError(
                f"layer {meta.get('name')!r} has shape {arr.shape} ({layer_axes}) but the first layer has "
                f"{arrays[0].shape} ({axes}); save layers of one shape together"
            )
        arrays.append(arr)
        axes = layer_axes
    first = layers[0][1]
    stacked = arrays[0] if axes.startswith("C") else da.stack(arrays)
    sizes, increment = _physical(first, axes.removeprefix("C"))
    return MicroscopyDataset.from_array(
        stacked,
        axes=axes if axes.startswith("C") else "C" + axes,
        physical_pixel_sizes=sizes,
        time_increment=increment,
        channel_names=names,
        channel_colors=colors,
        name=first.get("name") if len(layers) == 1 else None,
    )


def _axes(meta: Mapping[str, Any], ndim: int) -> str:
    """A layer's axes: its labels when they are distinct T, Z, Y, X ending in Y, X, else the last ``ndim`` of TZYX."""
    labels = "".join(str(a) for a in meta.get("axis_labels") or ())
    if len(labels) == ndim and set(labels) <= set(_SCALE_AXES) and len(set(labels)) == ndim and labels.endswith("YX"):
        return labels
    if not 2 <= ndim <= len(_SCALE_AXES):
        raise DimensionError(f"a layer with {ndim} axes cannot be written as TZYX; give it 2 to 4 axes")
    return _SCALE_AXES[-ndim:]


def _physical(meta: Mapping[str, Any], axes: str) -> tuple[dict[str, Any], Any]:
    """Physical pixel sizes and time increment from a layer's scale and units."""
    from omio import units

    scale = [float(s) for s in meta.get("scale") or [1.0] * len(axes)]
    layer_units = [str(u) for u in meta.get("units") or ["pixel"] * len(axes)]
    sizes: dict[str, Any] = {}
    increment: Any = None
    for axis, step, unit in zip(axes, scale, layer_units, strict=True):
        if unit == "pixel":
            if step == 1.0:
                continue
            unit = "second" if axis == "T" else "micrometer"
        quantity = units.quantity(step, unit)
        if axis == "T":
            increment = quantity
        else:
            sizes[axis] = quantity
    return sizes, increment


def _color(colormap: Any) -> tuple[int, int, int] | None:
    """The end colour of a napari colormap (its state dict or a name), as 8-bit RGB; None for grey."""
    if isinstance(colormap, Mapping) and colormap.get("colors") is not None:
        rgb = np.asarray(colormap["colors"], dtype=np.float64)[-1][:3]
        r, g, b = (round(float(v) * 255) for v in rgb)
        return None if r == g == b else (r, g, b)
    return None
