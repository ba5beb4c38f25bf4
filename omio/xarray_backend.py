"""``engine="omio"`` for :func:`xarray.open_dataset` and :func:`xarray.open_dataarray`.

Every format omio reads opens through xarray::

    xr.open_dataarray("cells.czi", engine="omio", scene=1, level=0)

The result has one variable (named after the image, else ``"image"``) with dims
``("T", "Z", "C", "Y", "X")``, coordinates carrying their unit in ``attrs["units"]``
and the image's flat metadata in the variable's attrs. The pixels stay lazy: the
variable is omio's dask array with the file's own chunks; xarray's ``chunks=``
rechunks it (``chunks={}`` keeps the stored chunks, which are also reported as
``encoding["preferred_chunks"]``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import xarray as xr
from xarray.backends import BackendEntrypoint

from omio.errors import OmioError
from omio.readers import SceneSelector, find_reader, is_url

__all__ = ["OmioBackendEntrypoint"]


class OmioBackendEntrypoint(BackendEntrypoint):
    """The xarray backend reading any file omio reads."""

    description = "Microscopy files (OME-TIFF, CZI, LSM, ND2, LIF, OME-Zarr, ...) as TZCYX through omio"
    url = "https://omio.readthedocs.io"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "scene", "level", "axes")

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[Any] | Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        scene: SceneSelector = 0,
        level: int = 0,
        axes: str | None = None,
    ) -> xr.Dataset:
        """Open one image (``scene``) at one resolution ``level`` lazily as a Dataset."""
        from omio._api import open as omio_open

        ds = omio_open(_path(filename_or_obj), scene=scene, axes=axes, level=level)
        array = ds.xarray.rename(ds.name or "image")
        array.attrs = _attrs(ds.metadata)
        array.encoding["preferred_chunks"] = dict(zip(ds.dims, ds.data.chunksize, strict=True))
        dropped = {drop_variables} if isinstance(drop_variables, str) else set(drop_variables or ())
        dataset = array.to_dataset()
        return dataset.drop_vars([v for v in dataset.variables if v in dropped])

    def guess_can_open(self, filename_or_obj: str | os.PathLike[Any] | Any) -> bool:
        """True when an omio reader recognises the file by its content."""
        try:
            find_reader(_path(filename_or_obj))
        except (OmioError, OSError, TypeError):
            return False
        return True


def _path(filename_or_obj: Any) -> Path | str:
    """A local path, or the URL of an OME-Zarr kept as the string given."""
    if is_url(filename_or_obj):
        return filename_or_obj
    if isinstance(filename_or_obj, (str, os.PathLike)):
        return Path(filename_or_obj)
    raise TypeError(f"engine='omio' opens paths, not {type(filename_or_obj).__name__} objects")


def _attrs(flat: dict[str, Any]) -> dict[str, Any]:
    """The dataset's flat metadata as netCDF-safe attributes (scalars and strings; None dropped)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None or key == "Annotations":
            continue
        out[key] = value if isinstance(value, (str, int, float)) else str(value)
    return out
