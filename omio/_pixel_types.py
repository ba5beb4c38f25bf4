"""numpy dtypes and OME pixel types, by name (no ome-types import: writers check a dtype before anything else)."""

from __future__ import annotations

from typing import Any

import numpy as np

from omio.errors import MetadataError, PixelTypeError

__all__ = ["OME_PIXEL_TYPES", "numeric_name", "ome_name"]

OME_PIXEL_TYPES: dict[str, str] = {
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "float32": "float",
    "float64": "double",
    "complex64": "complex",
    "complex128": "double-complex",
    "bool": "bit",
}
"""The numpy name of each dtype OME's ``PixelType`` names, and that ``PixelType`` value."""

_CASTS = {
    "i": "'int32' (or 'int16', 'int8') if the values fit, or 'float64', which holds integers up to 2**53 exactly",
    "u": "'uint32' (or 'uint16', 'uint8') if the values fit, or 'float64', which holds integers up to 2**53 exactly",
    "f": "'float32' (exact for float16) or 'float64'",
    "c": "'complex128'",
}


def numeric_name(dtype: np.dtype[Any] | str | type) -> str:
    """The numpy name of a number or boolean dtype, whatever its byte order (``">u2"`` is ``"uint16"``).

    Raises
    ------
    MetadataError
        For dtypes that are not numbers (strings, objects, dates, records).
    """
    dt = np.dtype(dtype)
    if dt.kind in "biufc" and dt.fields is None and not dt.subdtype:
        return dt.name
    raise MetadataError(f"pixels must be numbers or booleans, not dtype {dt}")


def ome_name(dtype: np.dtype[Any] | str | type, *, writing: str) -> str:
    """The OME ``PixelType`` value of ``dtype``, or refuse a dtype OME cannot name.

    Parameters
    ----------
    dtype
        The pixels' dtype.
    writing
        What is being written, for the message (``"out.ome.tif: OME-TIFF"``).

    Raises
    ------
    PixelTypeError
        For int64, uint64, float16 and the other dtypes OME's ``PixelType`` lacks;
        the message names the dtype, a cast and the formats that keep it.

    Examples
    --------
    >>> ome_name(">u2", writing="a.ome.tif: OME-TIFF"), ome_name("float64", writing="a.ome.tif: OME-TIFF")
    ('uint16', 'double')
    """
    name = numeric_name(dtype)
    if name in OME_PIXEL_TYPES:
        return OME_PIXEL_TYPES[name]
    cast = _CASTS.get(np.dtype(dtype).kind, "one of " + ", ".join(OME_PIXEL_TYPES))
    raise PixelTypeError(
        f"{writing} cannot store {name} pixels: OME's PixelType has no {name} (it names "
        f"{', '.join(OME_PIXEL_TYPES)}); nothing was written. Cast first with "
        f"ds.apply(lambda a: a.astype(T), dtype=T), T being {cast}; or keep {name}: ds.to_omezarr() "
        f"stores integer and float16 pixels as they are, ds.xarray and ds.to_numpy() hold any dtype"
    )
