"""``engine="omio"`` for :func:`xarray.open_dataset` and :func:`xarray.open_dataarray`.

Every format omio reads opens through xarray::

    xr.open_dataarray("cells.czi", engine="omio", scene=1, level=0)

The result has one variable (named after the image, else ``"image"``) with dims
``("T", "Z", "C", "Y", "X")``, coordinates carrying their unit in ``attrs["units"]``
and the image's flat metadata in the variable's attrs. The pixels stay lazy: the
variable is omio's dask array with the file's own chunks; xarray's ``chunks=``
rechunks it (``chunks={}`` keeps the stored chunks, which are also reported as
``encoding["preferred_chunks"]``).

Closing
-------
``ds.close()``, ``with xr.open_dataset(...) as ds:`` and closing the result of
:func:`xarray.open_mfdataset` close the files the dataset read (omio's cached
handles). As with any xarray dataset, computing a closed dataset opens them again.

Which files xarray opens with omio without ``engine="omio"``
------------------------------------------------------------
xarray asks each installed engine whether it can open a file, in order, and omio
comes before some of the others, so :meth:`OmioBackendEntrypoint.guess_can_open`
claims only what is unmistakably microscopy, from names and the first bytes,
without ever raising or touching the network:

* OME-TIFF (``.ome.tif``, ``.ome.tiff``, ``.ome.tf2``, ``.ome.tf8``, ``.ome.btf``) and
  Zeiss LSM (``.lsm``) with a TIFF header; any other TIFF only when its first
  image description is OME-XML or ImageJ's, or it carries LSM's tag. A plain TIFF
  (e.g. a GeoTIFF) is left to other engines such as rioxarray's.
* A local Zarr group whose ``.zattrs`` or ``zarr.json`` holds OME-NGFF
  ``multiscales`` or the ``bioformats2raw.layout`` marker; a plain Zarr store is left
  to xarray's ``zarr`` engine. A URL is claimed when its path ends in ``.ome.zarr``.
* CZI, ND2, LIF, OIB/OIF and ThorImageLS files or folders, by their readers' checks of
  the name and first bytes. Formats added by reader plugins are not guessed.

``engine="omio"`` opens every format omio reads, whatever the guess.
"""

from __future__ import annotations

import functools
import json
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import xarray as xr
from xarray.backends import BackendEntrypoint

from omio.errors import OmioError
from omio.readers import SceneSelector, is_url

__all__ = ["OmioBackendEntrypoint"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_MICROSCOPY_TIFF_SUFFIXES = (".ome.tif", ".ome.tiff", ".ome.tf2", ".ome.tf8", ".ome.btf", ".lsm")
_GUESSED_READERS = ("czi", "nd2", "lif", "oif", "thorlabs")  # recognised by name and magic bytes only
_HEAD_BYTES = 512


class OmioBackendEntrypoint(BackendEntrypoint):
    """The xarray backend reading any file omio reads."""

    description = "Microscopy files (OME-TIFF, CZI, LSM, ND2, LIF, OME-Zarr, ...) as TZCYX through omio"
    url = "https://omio.readthedocs.io"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "mask_and_scale",
        "decode_times",
        "concat_characters",
        "decode_coords",
        "use_cftime",
        "decode_timedelta",
        "scene",
        "level",
        "axes",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[Any] | Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        mask_and_scale: bool | None = None,
        decode_times: bool | None = None,
        concat_characters: bool | None = None,
        decode_coords: bool | str | None = None,
        use_cftime: bool | None = None,
        decode_timedelta: bool | None = None,
        scene: SceneSelector = 0,
        level: int = 0,
        axes: str | None = None,
    ) -> xr.Dataset:
        """Open one image (``scene``) at one resolution ``level`` lazily as a Dataset.

        The CF decoding options xarray passes (``mask_and_scale``, ``decode_times``,
        ``concat_characters``, ``decode_coords``, ``use_cftime``, ``decode_timedelta``)
        are accepted and change nothing: the pixels carry no fill value or scale
        factor, and T is a float coordinate with its unit in ``attrs["units"]``.
        """
        from omio._api import open as omio_open
        from omio.readers._handles import close_cached_handles, files_read_by

        ds = omio_open(_path(filename_or_obj), scene=scene, axes=axes, level=level)
        array = ds.xarray.rename(ds.name or "image")
        array.attrs = _attrs(ds.metadata)
        array.encoding["preferred_chunks"] = dict(zip(ds.dims, ds.data.chunksize, strict=True))
        dropped = {drop_variables} if isinstance(drop_variables, str) else set(drop_variables or ())
        dataset = array.to_dataset()
        dataset = dataset.drop_vars([v for v in dataset.variables if v in dropped])
        dataset.set_close(functools.partial(close_cached_handles, files_read_by(ds.data)))
        return dataset

    def guess_can_open(self, filename_or_obj: str | os.PathLike[Any] | Any) -> bool:
        """True for what is unmistakably a microscopy file omio reads (see the module's rule).

        Looks at the name and the first bytes only (the root metadata of a local Zarr
        group), never raises and never accesses the network.
        """
        if is_url(filename_or_obj):
            location = filename_or_obj.split("?", 1)[0].split("#", 1)[0].rstrip("/")
            return location.lower().endswith(".ome.zarr")
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            return False
        try:
            path = Path(filename_or_obj)
            if path.is_dir():
                return _is_ome_zarr(path) or _recognised(path, b"")
            if not path.is_file():
                return False
            with open(path, "rb") as fh:
                head = fh.read(_HEAD_BYTES)
            if head[:4] in _TIFF_MAGIC:
                return path.name.lower().endswith(_MICROSCOPY_TIFF_SUFFIXES) or _is_microscopy_tiff(path)
            return _recognised(path, head)
        except (OSError, ValueError, struct.error, OmioError):
            return False


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


def _recognised(path: Path, head: bytes) -> bool:
    """True when one of the built-in readers guessed from names and magic bytes recognises ``path``."""
    from omio.readers import _builtin_readers

    return any(r.sniff(path, head) for r in _builtin_readers() if r.name in _GUESSED_READERS)


def _is_ome_zarr(path: Path) -> bool:
    """True for a local Zarr group whose root attributes are OME-NGFF or bioformats2raw's."""
    for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
        meta = path / name
        if not meta.is_file():
            continue
        with open(meta, "rb") as fh:
            doc = json.loads(fh.read(1 << 20))
        attrs = doc.get(key, {}) if key is not None and isinstance(doc, dict) else doc
        if not isinstance(attrs, dict):
            continue
        ome = attrs.get("ome")
        for group in (attrs, ome if isinstance(ome, dict) else {}):
            if "multiscales" in group or "bioformats2raw.layout" in group:
                return True
    return False


def _is_microscopy_tiff(path: Path) -> bool:
    """True when the first IFD's ImageDescription is OME-XML or ImageJ's, or the IFD has LSM's tag."""
    with open(path, "rb") as fh:
        header = fh.read(16)
        order = "<" if header[:2] == b"II" else ">"
        big = struct.unpack(order + "H", header[2:4])[0] == 43
        offset = struct.unpack(order + ("Q" if big else "I"), header[8:16] if big else header[4:8])[0]
        fh.seek(offset)
        count_fmt, entry_size = (order + "Q", 20) if big else (order + "H", 12)
        count = struct.unpack(count_fmt, fh.read(struct.calcsize(count_fmt)))[0]
        entries = fh.read(min(count, 4096) * entry_size)
        description = b""
        for i in range(0, len(entries) - entry_size + 1, entry_size):
            entry = entries[i : i + entry_size]
            tag = struct.unpack(order + "H", entry[:2])[0]
            if tag == 34412:  # CZ_LSMINFO
                return True
            if tag == 270 and not description:  # the first ImageDescription (ASCII)
                n, value = struct.unpack(order + "QQ", entry[4:20]) if big else struct.unpack(order + "II", entry[4:12])
                if n <= (8 if big else 4):
                    description = entry[12 : 12 + n] if big else entry[8 : 8 + n]
                else:
                    fh.seek(value)
                    description = fh.read(min(n, 4096))
    text = description.lstrip()
    return text.startswith(b"ImageJ=") or (text.startswith((b"<?xml", b"<OME")) and b"<OME" in text)
