"""Explicit local copies of a dataset's pixels in a Zarr store, for smooth browsing of slow sources.

A cache holds only the pixel array (Zarr v3), copied from dask in chunks aligned
with the source's own Y/X chunks, one plane deep. The dataset returned reads from
it and keeps the original metadata unchanged. A marker file written last
(``omio-cache.json``) states that the copy is complete and what it is a copy of:
the source file (path, size, modification time), the selection (shape, dtype,
coordinates) and the steps of the dask graph. A complete cache with the same
fingerprint is re-used; a stale one is replaced; a folder that is not an omio
cache is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
from tqdm.dask import TqdmCallback

from omio._scheduler import scheduler
from omio.errors import OutputExistsError

if TYPE_CHECKING:
    from omio.dataset import MicroscopyDataset

__all__ = ["MARKER", "cache"]

MARKER = "omio-cache.json"
"""Name of the completion marker inside a cache store."""

_FORMAT = 1
_MAX_CHUNK_SIDE = 4096


def cache(
    ds: MicroscopyDataset, path: str | os.PathLike[str] | None = None, *, progress: bool = True
) -> MicroscopyDataset:
    """Copy the pixels into a local Zarr store and return a dataset reading from it (reads the whole selection).

    Parameters
    ----------
    ds
        The dataset to copy (streamed chunk by chunk; memory stays bounded).
    path
        The store folder. It is kept, and re-used by a later call when it holds a
        complete copy of the same data. By default a temporary folder is used and
        removed once no dataset reads from it any more (at the latest when Python exits).
    progress
        Show a progress bar over the copy tasks.

    Returns
    -------
    MicroscopyDataset
        The same metadata (``ome``, source information) with lazy pixels read from the store.

    Raises
    ------
    omio.errors.OutputExistsError
        When ``path`` exists and is not an omio cache.
    """
    import zarr

    fingerprint = _fingerprint(ds)
    if path is None:
        folder = Path(tempfile.mkdtemp(prefix="omio-cache-"))
        try:
            _write(ds, folder, fingerprint, progress=progress)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        array = zarr.open_array(folder, mode="r")
        # every dataset derived from the cache holds this array in its graph: remove the store after the last one
        weakref.finalize(array, shutil.rmtree, folder, ignore_errors=True)
    else:
        target = Path(path).expanduser().absolute()
        if not _is_complete(target, fingerprint):
            _replace(ds, target, fingerprint, progress=progress)
        array = zarr.open_array(target, mode="r")
    data = da.from_zarr(array)
    from omio.dataset import MicroscopyDataset

    return MicroscopyDataset(ds.xarray.copy(data=data), ds.ome, ds.source)


def _chunks(data: da.Array) -> tuple[int, ...]:
    """One plane deep, and the source's Y/X chunking (capped) within the plane."""
    y, x = (min(int(n), _MAX_CHUNK_SIDE) for n in data.chunksize[-2:])
    return (1, 1, 1, max(y, 1), max(x, 1))


def _write(ds: MicroscopyDataset, folder: Path, fingerprint: dict[str, Any], *, progress: bool) -> None:
    """Write the array into ``folder`` (an empty folder), then the marker."""
    import zarr

    data = ds.data
    chunks = _chunks(data)
    target: Any = zarr.create_array(store=str(folder), shape=data.shape, dtype=data.dtype, chunks=chunks, zarr_format=3)
    label = ds.name or (Path(ds.path).name if ds.path is not None else "dataset")
    with TqdmCallback(desc=f"caching {label}", unit="task") if progress else contextlib.nullcontext():
        da.store(data.rechunk(chunks), target, lock=False, scheduler=scheduler())
    (folder / MARKER).write_text(json.dumps(fingerprint, indent=1))


def _replace(ds: MicroscopyDataset, target: Path, fingerprint: dict[str, Any], *, progress: bool) -> None:
    """Write a new cache next to ``target`` and move it into place (a stale cache there is removed)."""
    if not target.parent.is_dir():
        raise FileNotFoundError(f"No such directory for the cache: '{target.parent}'")
    if target.exists() and not (target / MARKER).is_file():
        raise OutputExistsError(f"{target} exists and is not an omio cache; choose another path for the cache")
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        _write(ds, partial, fingerprint, progress=progress)
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _is_complete(target: Path, fingerprint: dict[str, Any]) -> bool:
    marker = target / MARKER
    if not marker.is_file():
        return False
    try:
        stored = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return bool(stored == fingerprint)


def _fingerprint(ds: MicroscopyDataset) -> dict[str, Any]:
    """What the cached pixels are a copy of (JSON-safe)."""
    data = ds.data
    coords = hashlib.sha256()
    for dim in ds.dims:
        coords.update(np.asarray(ds.xarray[dim].values).astype(str).tobytes())
    out: dict[str, Any] = {
        "omio_cache": _FORMAT,
        "source": None if ds.path is None else str(ds.path if isinstance(ds.path, str) else ds.path.absolute()),
        "shape": list(ds.shape),
        "dtype": ds.dtype.str,
        "coordinates": coords.hexdigest(),
        "steps": [str(name).rsplit("-", 1)[0] for name in data.dask.layers],
    }
    if ds.path is None or isinstance(ds.path, str):
        out["graph"] = data.name  # in-memory data by content; a URL's OME-Zarr by its URL and array metadata
    else:
        out.update(_stat(ds.path))
    return out


def _stat(path: Path) -> dict[str, int]:
    """Size and modification time of a source file, or of the entries of a source folder."""
    entries = [path] if path.is_file() else sorted(path.iterdir())
    stats = [p.stat() for p in entries]
    return {"size": sum(s.st_size for s in stats), "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}
