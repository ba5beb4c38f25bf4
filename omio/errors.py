"""The exception tree of omio.

Every error omio raises on purpose comes from here. Each class also subclasses a
builtin so that generic handlers (``except ValueError``) keep working.
``FileNotFoundError`` and ``PermissionError`` are never wrapped: they pass through
unchanged.
"""

from __future__ import annotations

__all__ = [
    "DimensionError",
    "FileFormatError",
    "MergeError",
    "MetadataError",
    "MetadataNotStoredWarning",
    "MissingDependencyError",
    "OmioError",
    "OutputError",
    "OutputExistsError",
    "PixelTypeError",
    "ScenesLeftOutWarning",
    "UnsupportedFormatError",
]


class OmioError(Exception):
    """Base class of every error raised by omio."""


class UnsupportedFormatError(OmioError, ValueError):
    """No reader recognises the file (by content or by suffix)."""


class FileFormatError(OmioError, ValueError):
    """The format was recognised, but the file is corrupt, truncated or inconsistent."""


class MetadataError(OmioError, ValueError):
    """Metadata is missing, malformed or contradicts the pixel data."""


class PixelTypeError(MetadataError, TypeError):
    """The pixels' dtype cannot be stored in the requested format.

    Raised by a writer before anything is written; the message names the dtype and
    the casts or formats that hold it. A dataset in memory holds any numeric dtype.
    """


class DimensionError(OmioError, ValueError):
    """An axis specification or a selection does not fit the TZCYX model."""


class MergeError(OmioError, ValueError):
    """Datasets cannot be merged under the requested policy."""


class OutputExistsError(OmioError, FileExistsError):
    """The output exists and overwriting it was not requested."""


class OutputError(OmioError, OSError):
    """An output cannot be written where asked.

    The disk or quota is full or the file system refused the data (``errno`` is the
    system's), or the path would lead outside the folder a batch writes into. The
    message names the requested output, not a temporary file, and nothing is left
    behind.
    """


class MissingDependencyError(OmioError, ImportError):
    """An optional dependency needed for this operation is not installed."""


class MetadataNotStoredWarning(UserWarning):
    """A writer stores the pixels but not all of the dataset's metadata.

    Raised as a warning by the OME-Zarr writer for pixel types OME-XML cannot name
    (int64, uint64, float16): the arrays and the NGFF metadata (sizes, units, origin,
    channel names and colours) are written, ``OME/METADATA.ome.xml`` is not, and the
    message names what only it would have held (the plane table, annotations...)
    and the cast that keeps it. It is issued before anything is written, so
    ``warnings.simplefilter("error", MetadataNotStoredWarning)`` turns it into a
    refusal.
    """


class ScenesLeftOutWarning(UserWarning):
    """A function that reads one scene per file left out the other scenes of a file.

    The OMIO 0.3-style functions (``imread``, ``imconvert``, ``convert_to_ometiff``,
    ``read_czi``...) and :func:`omio.open_folder` use the first scene of a file; the
    message names the file, the scenes left out and how to get them.
    """
