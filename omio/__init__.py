"""omio: Open Microscopy Image I/O.

Open microscopy files lazily as labelled TZCYX arrays with physical units, and
write valid OME-TIFF.

>>> import omio
>>> ds = omio.open("cells.ome.tif")  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from omio import errors, units
from omio._api import open, open_all, scenes
from omio.dataset import MicroscopyDataset
from omio.dims import DIMS
from omio.units import ureg

from_array = MicroscopyDataset.from_array
from_xarray = MicroscopyDataset.from_xarray

__all__ = [
    "DIMS",
    "MicroscopyDataset",
    "__version__",
    "errors",
    "from_array",
    "from_xarray",
    "open",
    "open_all",
    "scenes",
    "units",
    "ureg",
]
