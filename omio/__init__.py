"""omio: Open Microscopy Image I/O.

Open microscopy files lazily as labelled TZCYX arrays with physical units, and
write valid OME-TIFF.

>>> import omio
>>> ds = omio.open("cells.ome.tif")  # doctest: +SKIP
"""

import typing as _typing

__version__ = "0.4.0"

from omio import (
    accessor,  # noqa: F401 - registers the ``.omio`` accessor on xarray DataArrays
    bids,
    errors,
    units,
)
from omio._api import open, open_all, scenes
from omio.compat import convert_bids_batch_to_ometiff, convert_to_ometiff
from omio.dataset import MicroscopyDataset
from omio.dims import DIMS
from omio.folders import open_folder, open_folder_stack
from omio.merge import concat
from omio.omio import (
    BatchErrorRecord,
    BatchImageRecord,
    BatchProcessedRecord,
    BatchProcessResult,
    BatchRawYamlTemplateRecord,
    BatchRawYamlTemplateResult,
    BatchSkippedRecord,
    OME_metadata_checkup,
    batch_create_thorlabs_raw_yaml_templates,
    bids_batch_convert,
    bids_batch_process,
    cleanup_omio_cache,
    create_empty_image,
    create_empty_metadata,
    create_thorlabs_raw_yaml,
    discover_bids_like_batch_images,
    hello_world,
    imconvert,
    imread,
    imwrite,
    open_in_napari,
    read_czi,
    read_thorlabs_raw,
    read_tif,
    update_metadata_from_image,
    version,
)

if _typing.TYPE_CHECKING:
    import pint

ureg: "pint.UnitRegistry"
"""The pint registry of every quantity omio returns (:data:`omio.units.ureg`; made on first use)."""


def __getattr__(name: str) -> _typing.Any:
    if name == "ureg":
        return units.registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names: exactly ``__all__`` (submodules and helpers stay reachable, but are not listed)."""
    return sorted(__all__)


from_array = MicroscopyDataset.from_array
from_xarray = MicroscopyDataset.from_xarray

__all__ = [
    "DIMS",
    "BatchErrorRecord",
    "BatchImageRecord",
    "BatchProcessResult",
    "BatchProcessedRecord",
    "BatchRawYamlTemplateRecord",
    "BatchRawYamlTemplateResult",
    "BatchSkippedRecord",
    "MicroscopyDataset",
    "OME_metadata_checkup",
    "__version__",
    "batch_create_thorlabs_raw_yaml_templates",
    "bids",
    "bids_batch_convert",
    "bids_batch_process",
    "cleanup_omio_cache",
    "concat",
    "convert_bids_batch_to_ometiff",
    "convert_to_ometiff",
    "create_empty_image",
    "create_empty_metadata",
    "create_thorlabs_raw_yaml",
    "discover_bids_like_batch_images",
    "errors",
    "from_array",
    "from_xarray",
    "hello_world",
    "imconvert",
    "imread",
    "imwrite",
    "open",
    "open_all",
    "open_folder",
    "open_folder_stack",
    "open_in_napari",
    "read_czi",
    "read_thorlabs_raw",
    "read_tif",
    "scenes",
    "units",
    "update_metadata_from_image",
    "ureg",
    "version",
]
