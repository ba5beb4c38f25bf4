"""The ``.omio`` accessor on xarray DataArrays: re-wrap a labelled array as a dataset.

Registered when omio is imported. It keeps no state (xarray may create accessors
anew at any time): every call builds a new :class:`~omio.MicroscopyDataset` from the
DataArray as it is now.

Examples
--------
>>> import numpy as np, xarray as xr, omio
>>> da = xr.DataArray(np.zeros((2, 4, 5), "uint8"), dims=("Z", "Y", "X"),
...                   coords={"X": ("X", np.arange(5) * 0.5, {"units": "micrometer"})})
>>> ds = da.omio.dataset()
>>> ds.shape, ds.physical_pixel_sizes["X"].magnitude
((1, 2, 1, 4, 5), 0.5)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import xarray as xr

if TYPE_CHECKING:
    from omio.dataset import MicroscopyDataset

__all__ = ["OmioAccessor"]


@xr.register_dataarray_accessor("omio")  # type: ignore[no-untyped-call, unused-ignore]
class OmioAccessor:
    """``da.omio``: omio's view of a DataArray whose dims are a subset of TZCYX."""

    def __init__(self, data: xr.DataArray) -> None:
        self._data = data

    def dataset(self, *, like: MicroscopyDataset | None = None) -> MicroscopyDataset:
        """The DataArray as a :class:`~omio.MicroscopyDataset` (see :meth:`~omio.MicroscopyDataset.from_xarray`).

        Physical sizes come from evenly spaced X/Y/Z/T coordinates with a ``units``
        attribute and channel names from string C labels; with ``like``, what the array
        does not state is taken from that dataset. Lazy: nothing is computed.

        Raises
        ------
        omio.errors.DimensionError
            When the DataArray has a dim outside TZCYX.
        """
        from omio.dataset import MicroscopyDataset

        return MicroscopyDataset.from_xarray(self._data, like=like)
