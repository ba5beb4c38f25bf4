"""OMIO 0.3 metadata dicts <-> omio datasets, and OMIO 0.3's metadata and image templates.

An OMIO 0.3 metadata dict is flat: ``axes``, ``shape``, ``SizeT/Z/C/Y/X``,
``PhysicalSizeX/Y/Z`` (+ ``Unit``, spelled ``"micron"``), ``TimeIncrement`` (+ ``Unit``,
spelled ``"seconds"``) and an ``Annotations`` dict whose ``Namespace`` key names the
namespace of its other keys. Values a file does not state stay ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np

from omio import units
from omio.dims import DIMS
from omio.errors import DimensionError, MetadataError

if TYPE_CHECKING:
    from omio.dataset import MicroscopyDataset

NAMESPACE = "omio:metadata"
"""The namespace of the flat keys of an OMIO 0.3 ``Annotations`` dict."""

CORE_KEYS = frozenset(
    {
        "axes",
        "shape",
        *(f"Size{d}" for d in DIMS),
        *(f"PhysicalSize{a}" for a in "XYZ"),
        *(f"PhysicalSize{a}Unit" for a in "XYZ"),
        "TimeIncrement",
        "TimeIncrementUnit",
        "Channel_Count",
        "channel_names",
        "dtype",
        "name",
        "Annotations",
    }
)
"""Keys OMIO 0.3 keeps at the top level of a metadata dict (the rest go to ``Annotations``)."""

_LEGACY_UNITS = {"µm": "micron", "s": "seconds"}


def legacy_unit(symbol: str | None) -> str | None:
    """OMIO 0.3's spelling of an OME unit symbol (``"µm"`` -> ``"micron"``, ``"s"`` -> ``"seconds"``)."""
    return None if symbol is None else _LEGACY_UNITS.get(symbol, symbol)


def _flat_annotations(ds: MicroscopyDataset) -> dict[str, Any]:
    path = Path(ds.path) if ds.path is not None else None
    out: dict[str, Any] = {"Namespace": NAMESPACE}
    for namespace, values in ds.annotations.items():
        if namespace == NAMESPACE:
            out.update(values)
        else:
            out.update({f"{namespace}:{key}": value for key, value in values.items()})
    from omio import __version__

    out["OMIO_VERSION"] = __version__
    if path is not None:
        out["original_filename"] = path.name
        out["original_parentfolder"] = path.parent.name
        out["original_filetype"] = path.suffix.lstrip(".").lower()
        out["original_metadata_type"] = ds.metadata["format"]
    out["unit"] = legacy_unit(ds.metadata["PhysicalSizeXUnit"]) or "micron"
    return out


def legacy_metadata(ds: MicroscopyDataset) -> dict[str, Any]:
    """The OMIO 0.3 metadata dict of a dataset (reads no pixels)."""
    md = ds.metadata
    out: dict[str, Any] = {"axes": md["axes"], "shape": md["shape"]}
    out.update({f"Size{d}": md[f"Size{d}"] for d in DIMS})
    for axis in "XYZ":
        out[f"PhysicalSize{axis}"] = md[f"PhysicalSize{axis}"]
        out[f"PhysicalSize{axis}Unit"] = legacy_unit(md[f"PhysicalSize{axis}Unit"])
    out["TimeIncrement"] = md["TimeIncrement"]
    out["TimeIncrementUnit"] = legacy_unit(md["TimeIncrementUnit"])
    out["channel_names"] = md["channel_names"]
    out["dtype"] = md["dtype"]
    out["name"] = md["name"]
    out["Annotations"] = _flat_annotations(ds)
    return out


def split_annotations(annotations: Mapping[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """``(namespace, values)`` pairs of an ``Annotations`` dict, flat (OMIO 0.3) or by namespace."""
    if not annotations:
        return []
    flat = {k: v for k, v in annotations.items() if not isinstance(v, Mapping) and k != "Namespace"}
    pairs = [(str(k), dict(v)) for k, v in annotations.items() if isinstance(v, Mapping)]
    if flat:
        pairs.insert(0, (str(annotations.get("Namespace") or NAMESPACE), flat))
    return pairs


def _quantity(md: Mapping[str, Any], key: str, default_unit: str) -> Any:
    value = md.get(key)
    if value is None or (key == "TimeIncrement" and float(value) == 0.0):
        return None  # OMIO 0.3 writes 0.0 for an unknown time increment
    unit = md.get(f"{key}Unit") or default_unit
    return units.quantity(float(value), str(unit))


def as_array(image: Any) -> Any:
    """A numpy or dask array as it is; any other array (zarr) as a dask array by its own chunks (stays lazy)."""
    if isinstance(image, (np.ndarray, da.Array)):
        return image
    chunks = getattr(image, "chunks", None)
    return da.from_array(image, chunks=chunks if chunks is not None else "auto")


def dataset_from_legacy(image: Any, md: Mapping[str, Any]) -> MicroscopyDataset:
    """A dataset from an image and an OMIO 0.3 (or omio) metadata dict.

    Sizes and ``shape`` come from the image; ``axes`` (default ``"TZCYX"``) must name
    one axis per image dimension.
    """
    from omio.dataset import MicroscopyDataset

    axes = str(md.get("axes") or "TZCYX")
    ndim = getattr(image, "ndim", None)
    if ndim is None or len(axes) != ndim:
        raise MetadataError(
            f"the image has {ndim if ndim is not None else '?'} dims but metadata axes is {axes!r}; "
            "give metadata['axes'] with one letter per dim (e.g. 'TZCYX')"
        )
    annotations = md.get("Annotations") if isinstance(md.get("Annotations"), Mapping) else {}
    length_unit = str((annotations or {}).get("unit") or "micron")
    sizes = {a: _quantity(md, f"PhysicalSize{a}", length_unit) for a in "XYZ"}
    names = md.get("channel_names")
    array = as_array(image)
    c_size = array.shape[axes.index("C")] if "C" in axes else 1
    ds = MicroscopyDataset.from_array(
        array,
        axes=axes,
        physical_pixel_sizes={k: v for k, v in sizes.items() if v is not None},
        time_increment=_quantity(md, "TimeIncrement", "second"),
        channel_names=list(names) if names is not None and len(names) == c_size else None,
        name=md.get("name"),
    )
    for namespace, values in split_annotations(annotations):
        ds = ds.with_annotations(namespace, {k: _text(v) for k, v in values.items()})
    return ds


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


# --------------------------------------------------------------------------- templates


def OME_metadata_checkup(metadata: dict[str, Any], namespace: str = NAMESPACE, verbose: bool = True) -> dict[str, Any]:
    """Move every key that is not an OME core key into ``metadata["Annotations"]``.

    Parameters
    ----------
    metadata
        An OMIO 0.3 metadata dict (not modified).
    namespace
        The ``Namespace`` the ``Annotations`` get when they have none.
    verbose
        Print the keys moved.

    Returns
    -------
    dict
        A new dict: the core keys, and ``Annotations`` holding all other keys.
    """
    out = {k: v for k, v in metadata.items() if k in CORE_KEYS}
    annotations = dict(metadata.get("Annotations") or {})
    annotations.setdefault("Namespace", namespace)
    moved = {k: v for k, v in metadata.items() if k not in CORE_KEYS}
    annotations.update(moved)
    out["Annotations"] = annotations
    if verbose and moved:
        print(f"OME_metadata_checkup: moved {sorted(moved)} into Annotations")
    return out


def _check_shape(shape: Any, what: str) -> tuple[int, int, int, int, int]:
    dims = tuple(int(n) for n in shape)
    if len(dims) != 5:
        raise DimensionError(f"{what}: expected a 5D (T, Z, C, Y, X) shape, got {tuple(shape)}")
    return dims  # type: ignore[return-value]


def create_empty_metadata(
    physicalsize_xyz: tuple[float, float, float] | None = None,
    pixelunit: str = "micron",
    time_increment: float | None = None,
    time_increment_unit: str | None = None,
    shape: tuple[int, int, int, int, int] | None = None,
    annotations: dict[str, Any] | None = None,
    input_metadata: dict[str, Any] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """A new OMIO 0.3 metadata dict; what is not given stays ``None`` (OMIO 0.3 filled in 1).

    Parameters
    ----------
    physicalsize_xyz
        ``(X, Y, Z)`` pixel sizes in ``pixelunit``.
    pixelunit
        The length unit (``"micron"``, ``"nm"``, ...).
    time_increment, time_increment_unit
        The time step and its unit (default ``"seconds"`` when a step is given).
    shape
        The TZCYX shape (sets ``shape`` and ``SizeT/Z/C/Y/X``).
    annotations
        Keys added to ``Annotations``.
    input_metadata
        A dict whose values override the new ones (non-core keys go to ``Annotations``).
    verbose
        Print what was created.

    Returns
    -------
    dict
    """
    from omio import __version__

    sizes = tuple(physicalsize_xyz) if physicalsize_xyz is not None else (None, None, None)
    md: dict[str, Any] = {"axes": "".join(DIMS), "shape": None, **{f"Size{d}": None for d in DIMS}}
    for axis, value in zip("XYZ", sizes, strict=True):
        md[f"PhysicalSize{axis}"] = None if value is None else float(value)
        md[f"PhysicalSize{axis}Unit"] = None if value is None else pixelunit
    md["TimeIncrement"] = None if time_increment is None else float(time_increment)
    md["TimeIncrementUnit"] = None if time_increment is None else (time_increment_unit or "seconds")
    md["Annotations"] = {"Namespace": NAMESPACE, "OMIO_VERSION": __version__, "unit": pixelunit, **(annotations or {})}
    if shape is not None:
        md.update(_size_keys(_check_shape(shape, "create_empty_metadata")))
    if input_metadata:
        given = OME_metadata_checkup(input_metadata, verbose=False)
        extra = given.pop("Annotations")
        md.update(given)
        md["Annotations"].update({k: v for k, v in extra.items() if k != "Namespace"})
    if verbose:
        print(f"create_empty_metadata: axes {md['axes']}, shape {md['shape']}")
    return md


def _size_keys(shape: tuple[int, int, int, int, int]) -> dict[str, Any]:
    return {"axes": "".join(DIMS), "shape": shape, **{f"Size{d}": n for d, n in zip(DIMS, shape, strict=True)}}


def update_metadata_from_image(
    metadata: dict[str, Any], image: Any, run_checkup: bool = True, verbose: bool = True
) -> dict[str, Any]:
    """Set ``axes``, ``shape`` and ``SizeT/Z/C/Y/X`` of a metadata dict from a 5D TZCYX image.

    Parameters
    ----------
    metadata
        An OMIO 0.3 metadata dict (not modified).
    image
        A numpy, dask or zarr array in TZCYX.
    run_checkup
        Also move non-core keys into ``Annotations`` (:func:`OME_metadata_checkup`).
    verbose
        Print the new shape.

    Returns
    -------
    dict

    Raises
    ------
    omio.errors.DimensionError
        When the image is not 5D (a ``ValueError``, as in OMIO 0.3).
    """
    shape = _check_shape(np.shape(image) if not hasattr(image, "shape") else image.shape, "update_metadata_from_image")
    md = OME_metadata_checkup(metadata, verbose=False) if run_checkup else dict(metadata)
    md.update(_size_keys(shape))
    if verbose:
        print(f"update_metadata_from_image: shape {shape}")
    return md


def create_empty_image(
    shape: tuple[int, int, int, int, int] = (1, 1, 1, 1, 1),
    dtype: Any = np.uint16,
    fill_value: Any = 0,
    zarr_store: str | None = None,
    zarr_store_path: str | None = None,
    zarr_store_name: str | None = None,
    return_metadata: bool = False,
    input_metadata: dict[str, Any] | None = None,
    verbose: bool = True,
) -> Any:
    """A TZCYX image filled with ``fill_value``: numpy, or zarr with ``zarr_store="memory"|"disk"``.

    Parameters
    ----------
    shape
        ``(T, Z, C, Y, X)``.
    dtype, fill_value
        Pixel type and value.
    zarr_store
        ``None`` (numpy), ``"memory"`` or ``"disk"`` (``<zarr_store_path>/.omio_cache/<zarr_store_name>.zarr``).
    zarr_store_path, zarr_store_name
        Where a disk store goes (default: the current folder, ``"empty_image"``).
    return_metadata
        Also return a metadata dict for the image (:func:`create_empty_metadata`).
    input_metadata
        Passed to :func:`create_empty_metadata`.
    verbose
        Print what was created.

    Returns
    -------
    numpy.ndarray or zarr.Array, or ``(image, metadata)``

    Raises
    ------
    omio.errors.DimensionError
        When ``shape`` is not 5D.
    ValueError
        For an unknown ``zarr_store``.
    """
    dims = _check_shape(shape, "create_empty_image")
    check_zarr_store(zarr_store)
    image: Any
    if zarr_store is None:
        image = np.full(dims, fill_value, dtype=dtype)
    else:
        import zarr

        store: Any = {}
        if zarr_store == "disk":
            store = Path(zarr_store_path or ".") / CACHE_FOLDER / f"{zarr_store_name or 'empty_image'}.zarr"
        chunks = (1, 1, 1, *dims[3:])
        image = zarr.create_array(store, shape=dims, chunks=chunks, dtype=dtype, fill_value=fill_value, overwrite=True)
    if verbose:
        print(f"create_empty_image: {type(image).__name__} {dims} {np.dtype(dtype).name}")
    if return_metadata:
        md = create_empty_metadata(shape=dims, input_metadata=input_metadata, verbose=False)
        return image, md
    return image


CACHE_FOLDER = ".omio_cache"
"""The folder next to an input that ``zarr_store="disk"`` stores go into, as in OMIO 0.3."""


def check_zarr_store(zarr_store: str | None) -> None:
    """Raise ``ValueError`` unless ``zarr_store`` is ``None``, ``"memory"`` or ``"disk"``."""
    if zarr_store not in (None, "memory", "disk"):
        raise ValueError(f"zarr_store must be None, 'memory' or 'disk', got {zarr_store!r}")
