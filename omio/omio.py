"""OMIO 0.3's module ``omio.omio``: ``from omio.omio import imread`` keeps working.

Every public function and record type of OMIO 0.3, implemented on omio's objects
(see :mod:`omio.compat` and the migration page of the documentation).
"""

from omio._compat_batch import (
    BatchErrorRecord,
    BatchImageRecord,
    BatchProcessedRecord,
    BatchProcessResult,
    BatchRawYamlTemplateRecord,
    BatchRawYamlTemplateResult,
    BatchSkippedRecord,
    batch_create_thorlabs_raw_yaml_templates,
    bids_batch_convert,
    bids_batch_process,
    discover_bids_like_batch_images,
)
from omio._compat_meta import (
    OME_metadata_checkup,
    create_empty_image,
    create_empty_metadata,
    update_metadata_from_image,
)
from omio._compat_raw import create_thorlabs_raw_yaml
from omio.compat import (
    cleanup_omio_cache,
    hello_world,
    imconvert,
    imread,
    imwrite,
    open_in_napari,
    read_czi,
    read_thorlabs_raw,
    read_tif,
    version,
)

__all__ = [
    "BatchErrorRecord",
    "BatchImageRecord",
    "BatchProcessResult",
    "BatchProcessedRecord",
    "BatchRawYamlTemplateRecord",
    "BatchRawYamlTemplateResult",
    "BatchSkippedRecord",
    "OME_metadata_checkup",
    "batch_create_thorlabs_raw_yaml_templates",
    "bids_batch_convert",
    "bids_batch_process",
    "cleanup_omio_cache",
    "create_empty_image",
    "create_empty_metadata",
    "create_thorlabs_raw_yaml",
    "discover_bids_like_batch_images",
    "hello_world",
    "imconvert",
    "imread",
    "imwrite",
    "open_in_napari",
    "read_czi",
    "read_thorlabs_raw",
    "read_tif",
    "update_metadata_from_image",
    "version",
]
