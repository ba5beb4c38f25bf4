"""pint-xarray's ``.pint`` accessor on xarray objects, with pint-xarray imported on first use.

Importing pint-xarray loads pint and builds pint's application registry, about a third
of a second; a dataset's :attr:`~omio.MicroscopyDataset.xarray` should not cost that
before ``.pint`` is used. :func:`with_pint_accessor` puts a stand-in ``pint`` attribute on
``xarray.DataArray`` and ``xarray.Dataset`` that imports pint-xarray when first read.
pint-xarray then registers its own accessor in the stand-in's place, so ``.pint`` is
pint-xarray's in every way; the stand-in reads as absent on the class, so importing
pint-xarray yourself, at any time, replaces it without an accessor-override warning.
"""

from __future__ import annotations

import sys
from typing import Any

import xarray as xr

__all__ = ["with_pint_accessor"]

_NAME = "pint"


class _ImportingAccessor:
    """The ``pint`` attribute until pint-xarray is imported: reading it imports pint-xarray."""

    def __get__(self, obj: object, owner: type) -> Any:
        if obj is None:  # the class attribute reads as absent, so pint-xarray's registration does not warn
            raise AttributeError(_NAME)
        import pint_xarray  # noqa: F401 - registers pint-xarray's accessor in this one's place

        if isinstance(vars(owner).get(_NAME), _ImportingAccessor):
            raise RuntimeError("importing pint-xarray did not register its .pint accessor")
        return getattr(obj, _NAME)


def with_pint_accessor[X: (xr.DataArray, xr.Dataset)](data: X) -> X:
    """``data``, with a ``.pint`` accessor on xarray objects (pint-xarray's, imported when first used)."""
    if "pint_xarray" not in sys.modules:
        for cls in (xr.DataArray, xr.Dataset):
            if _NAME not in vars(cls):
                setattr(cls, _NAME, _ImportingAccessor())
    return data
