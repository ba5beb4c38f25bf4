"""MicroscopyDataset: one immutable, lazy, labelled TZCYX image with its OME model."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dask.array as da
import dask.local
import numpy as np
import pandas as pd
import xarray as xr

from omio import units
from omio._constructors import Constructors, DirectRead, SourceInfo
from omio._pint_accessor import with_pint_accessor
from omio._scheduler import scheduler
from omio._values import KEEP, Keep, indexer, stated_record
from omio.dims import DIMS, plane_chunks
from omio.errors import DimensionError
from omio.lazy_ome import LazyOME
from omio.record import ImageRecord, build_xarray

if TYPE_CHECKING:
    import pint
    from ome_types import OME

    from omio.writers.ometiff import Compression

__all__ = ["KEEP", "MicroscopyDataset", "SourceInfo"]


class MicroscopyDataset(Constructors):
    """An immutable, lazy TZCYX image with physical units and an OME model.

    It wraps (never subclasses) one ``xarray.DataArray`` with dims exactly
    ``("T", "Z", "C", "Y", "X")``, backed by dask, and one ``ome_types.OME`` model
    that always describes exactly that array. Every operation returns a new dataset;
    none reads pixel data unless it says so.

    Coordinates X, Y, Z and T are float positions carrying their unit in
    ``attrs["units"]`` (pint-xarray's convention); where the file states no pixel
    size they are pixel indices without a unit. C is labelled with the channel
    names (``"C<i>"`` for an unnamed channel; :attr:`channel_names` gives ``None``).

    Create one with :func:`omio.open`, :meth:`from_array` or :meth:`from_xarray`.

    Examples
    --------
    >>> import numpy as np, omio
    >>> ds = omio.MicroscopyDataset.from_array(
    ...     np.zeros((4, 32, 32), "uint16"), axes="ZYX",
    ...     physical_pixel_sizes={"X": 0.2, "Y": 0.2, "Z": 1.0}, channel_names=["GFP"])
    >>> ds.sizes
    {'T': 1, 'Z': 4, 'C': 1, 'Y': 32, 'X': 32}
    >>> ds.physical_pixel_sizes["X"]
    Quantity(0.2, "micrometer")
    >>> ds.isel(Z=slice(1, 3)).sel(C="GFP").sizes["Z"]
    2
    """

    __slots__ = ("__weakref__", "_data", "_info", "_meta")

    def __init__(self, data: xr.DataArray, ome: OME | LazyOME, info: SourceInfo) -> None:
        if tuple(data.dims) != DIMS:
            raise DimensionError(f"a MicroscopyDataset needs dims {DIMS}, got {tuple(data.dims)}")
        self._data = data
        self._meta = ome if isinstance(ome, LazyOME) else LazyOME.ready(ome)
        self._info = info
        _hold_files(self)

    def _model(self) -> OME:
        """The OME model (built on first use when the reader deferred it; see :mod:`omio.lazy_ome`)."""
        return self._meta.model()

    # ------------------------------------------------------------------ constructors
    # ------------------------------------------------------------------ properties
    @property
    def xarray(self) -> xr.DataArray:
        """The labelled lazy array, dims ``("T", "Z", "C", "Y", "X")``.

        Its coordinates' ``attrs["units"]`` work with pint-xarray's ``.pint`` accessor.
        """
        return with_pint_accessor(self._data)

    @property
    def data(self) -> da.Array:
        """The dask array behind :attr:`xarray`."""
        arr = self._data.data
        return arr if isinstance(arr, da.Array) else da.from_array(arr, chunks=plane_chunks(arr.shape, "TZCYX"))

    @property
    def ome(self) -> OME:
        """A copy of the OME model describing exactly this dataset."""
        return self._model().model_copy(deep=True)

    @property
    def dims(self) -> tuple[str, ...]:
        """Always ``("T", "Z", "C", "Y", "X")``."""
        return DIMS

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        """The TZCYX shape."""
        t, z, c, y, x = (int(s) for s in self._data.shape)
        return (t, z, c, y, x)

    @property
    def sizes(self) -> dict[str, int]:
        """``{"T": n, "Z": n, "C": n, "Y": n, "X": n}``."""
        return dict(zip(DIMS, self.shape, strict=True))

    @property
    def dtype(self) -> np.dtype[Any]:
        """The pixel dtype."""
        return np.dtype(self._data.dtype)

    @property
    def nbytes(self) -> int:
        """Size of the pixel data in bytes (uncompressed)."""
        return int(math.prod(self.shape) * self.dtype.itemsize)

    @property
    def name(self) -> str | None:
        """The image name, or ``None``."""
        return self._meta.record.name

    @property
    def physical_pixel_sizes(self) -> dict[str, pint.Quantity | None]:
        """``{"X": q, "Y": q, "Z": q}``: pint quantities, ``None`` where the file states none."""
        return {axis: None if m is None else m.quantity() for axis, m in self._meta.record.physical_sizes.items()}

    @property
    def time_increment(self) -> pint.Quantity | None:
        """The time between T points as a pint quantity, or ``None``."""
        m = self._meta.record.time_increment
        return None if m is None else m.quantity()

    @property
    def origin(self) -> dict[str, pint.Quantity | None]:
        """``{"X": q, "Y": q, "Z": q, "T": q}``: where the first pixel (the first time point) sits.

        The stage position the file states (OME ``Plane`` positions, an NGFF
        ``translation``...) in the unit of the pixel size; ``None`` where the file states
        none (the coordinates then start at 0). The X, Y and Z coordinates start here;
        selections move it (``isel(X=slice(5, None))`` adds 5 pixel sizes).
        """
        origin = self._meta.record.origin
        return {axis: None if (m := origin.get(axis)) is None else m.quantity() for axis in ("X", "Y", "Z", "T")}

    @property
    def planes(self) -> pd.DataFrame:
        """The plane table: what the file states per plane, as a pandas DataFrame.

        Indexed by ``(T, Z, C)`` (a MultiIndex of the dataset's own indices), one row
        per plane the file says something about, with a float column for each field
        it states: ``DeltaT`` (time since the start of the acquisition),
        ``ExposureTime``, ``PositionX``, ``PositionY``, ``PositionZ`` (stage position);
        ``NaN`` where a plane does not state a value. Each column's unit (a pint unit
        name, or OME's ``"reference frame"``) is in ``planes.attrs["units"]``, as a
        coordinate's is in its ``attrs["units"]``. Empty where the file states nothing.

        Selections keep the rows of the planes kept (re-indexed), merges concatenate
        them, and the OME-TIFF and OME-Zarr writers store them as OME ``Plane``
        elements. When a selection moves the X/Y origin, the positions move with it.

        Examples
        --------
        >>> import numpy as np, omio
        >>> omio.MicroscopyDataset.from_array(np.zeros((2, 4, 4), "uint8"), axes="TYX").planes.empty
        True
        """
        return self._meta.record.plane_table()

    @property
    def record(self) -> ImageRecord:
        """The metadata record (:class:`omio.record.ImageRecord`) the coordinates and the OME model derive from."""
        return self._meta.record

    @property
    def channel_names(self) -> list[str | None]:
        """One name per channel (``None`` where unnamed)."""
        return list(self._meta.record.channel_names)

    @property
    def channel_colors(self) -> list[tuple[int, int, int, int] | None]:
        """One RGBA colour per channel (``None`` where unset)."""
        from omio import metadata

        return metadata.channel_colors(self._model().images[0])

    @property
    def source(self) -> SourceInfo:
        """Where the dataset came from: path, format, scenes, axes rule."""
        return self._info

    @property
    def path(self) -> Path | str | None:
        """The file or folder the dataset was read from (a ``str`` URL for an OME-Zarr opened from a URL).

        ``None`` for in-memory data.
        """
        return self._info.path

    @property
    def scenes(self) -> list[str | None]:
        """Names of all images (scenes, series) in the source file."""
        return list(self._info.scenes)

    @property
    def axes_rule(self) -> str:
        """How the source's axes were mapped onto TZCYX."""
        return self._info.axes_rule

    @property
    def is_lazy(self) -> bool:
        """True while the pixels are a dask graph (not yet in memory)."""
        return isinstance(self._data.data, da.Array)

    @property
    def annotations(self) -> dict[str, dict[str, str]]:
        """MapAnnotations as ``{namespace: {key: value}}`` (later ones win on equal namespaces)."""
        from omio import metadata

        return {ns: values for ns, values in metadata.annotation_dicts(self._model())}

    @property
    def metadata(self) -> dict[str, Any]:
        """The flat normalized metadata dict OMIO users know.

        Keys: ``axes``, ``shape``, ``PhysicalSizeX/Y/Z`` and ``PhysicalSizeX/Y/ZUnit``,
        ``TimeIncrement`` and ``TimeIncrementUnit``, ``SizeT/Z/C/Y/X``, ``dtype``,
        ``channel_names``, ``name``, ``Annotations`` (namespace -> key -> value),
        ``source``, ``format``, ``axes_rule``. Missing values are ``None``.
        """
        from omio._display import flat_metadata

        return flat_metadata(self)

    # ------------------------------------------------------------------ selection
    def isel(self, indexers: Mapping[str, Any] | None = None, **kwargs: Any) -> MicroscopyDataset:
        """Select by position along T, Z, C, Y or X (lazy; dims are kept).

        An integer keeps its axis with size 1 (use :meth:`squeeze` to drop size-1
        axes for analysis). Slices with a step scale the physical size; an uneven
        selection along X, Y or Z is refused (it has no pixel size), along T it
        clears the time increment (the T coordinate keeps the true times, recorded as
        the planes' ``DeltaT``). The origin moves to the first pixel kept and the
        plane table keeps the rows of the planes kept (see :attr:`planes`).
        """
        selection = {**(indexers or {}), **kwargs}
        positions: dict[str, Any] = {}
        for dim, index in selection.items():
            if dim not in DIMS:
                raise DimensionError(f"unknown dim {dim!r}; a dataset has dims {DIMS}")
            positions[dim] = indexer(dim, index, self.sizes[dim])
        data = self._data.isel({d: p for d, p in positions.items()}).data
        record = self._meta.record.select(positions, self.sizes)
        shape = tuple(int(n) for n in data.shape)
        channels = np.arange(self.sizes["C"])[positions["C"]].tolist() if "C" in positions else None

        def update(ome: OME) -> OME:
            from omio.ome_update import apply_record

            return apply_record(ome, record, shape, channels=channels)

        return MicroscopyDataset(build_xarray(data, record), self._meta.then(update, record), self._info)

    def sel(
        self, indexers: Mapping[str, Any] | None = None, *, method: str | None = None, **kwargs: Any
    ) -> MicroscopyDataset:
        """Select by label: channel names for C, coordinate values for T, Z, Y, X (lazy).

        Parameters
        ----------
        indexers, **kwargs
            ``C="GFP"``, ``C=["GFP", "RFP"]``, ``Z=slice(0.0, 5.0)`` (physical units) ...
        method
            Passed to xarray for inexact matches (``"nearest"``).
        """
        selection = {**(indexers or {}), **kwargs}
        positions: dict[str, Any] = {}
        for dim, label in selection.items():
            if dim not in DIMS:
                raise DimensionError(f"unknown dim {dim!r}; a dataset has dims {DIMS}")
            n = self.sizes[dim]
            lookup = xr.DataArray(np.arange(n), dims=dim, coords={dim: self._data.indexes[dim]})
            try:
                picked = lookup.sel({dim: label}, method=method)
            except KeyError as exc:
                available = [str(v) for v in self._data[dim].values][:20]
                raise DimensionError(f"{dim}={label!r} not found; available labels: {available}") from exc
            values = np.atleast_1d(picked.values)
            positions[dim] = int(values[0]) if picked.ndim == 0 else values
        return self.isel(positions)

    def quantify(self) -> xr.DataArray:
        """Return the DataArray with pint-unit coordinates (pint-xarray, registry :data:`omio.ureg`).

        Lazy; the pixel values stay unitless.
        """
        quantified: xr.DataArray = units.quantify(self._data)
        return quantified

    def squeeze(self) -> xr.DataArray:
        """Return the DataArray with size-1 axes dropped, for analysis code (lazy).

        This leaves the TZCYX model on purpose: the result is an ``xarray.DataArray``
        whose remaining dims and coordinates (with units) are still labelled.
        """
        return with_pint_accessor(self._data.squeeze())

    # ------------------------------------------------------------------ computing
    def compute(self) -> MicroscopyDataset:
        """Load the pixels into memory (reads the whole selection) and return a new dataset."""
        out = self.to_numpy()
        return MicroscopyDataset(self._data.copy(data=out), self._meta, self._info)

    def to_numpy(self) -> np.ndarray[Any, Any]:
        """Read the pixels into one numpy array (loads the whole selection into memory).

        Chunks are written straight into a preallocated array, so peak memory is the
        result plus a few chunks.
        """
        arr = self._data.data
        if not isinstance(arr, da.Array):
            return np.asarray(arr)
        # Uninitialised (every element is written below): numpy asks the kernel for transparent huge pages for
        # large empty arrays, not for zeroed ones, and page faults dominate the read of data in the page cache.
        out = np.empty(arr.shape, dtype=arr.dtype)
        direct = self._direct_read()
        if direct is not None:
            direct.whole(out)  # the reader's own whole-array read: no task per chunk
        else:
            one_chunk = arr.npartitions == 1  # in this thread: a pool's hand-overs cost more than one task
            da.store(arr, out, lock=False, scheduler=scheduler(local=dask.local.get_sync if one_chunk else None))
        return out

    def _direct_read(self) -> DirectRead | None:
        """The reader's own reads of the pixels, while they are still exactly the array it returned."""
        direct = self._info.direct_read
        arr = self._data.data
        return direct if direct is not None and isinstance(arr, da.Array) and direct.name == arr.name else None

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        out = self.to_numpy()
        return out if dtype is None else out.astype(dtype)

    # ------------------------------------------------------------------ operations
    def pipe(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func(self.xarray, *args, **kwargs)`` and re-wrap a DataArray result.

        A result with dims from TZCYX becomes a new dataset whose metadata follows
        it (see :meth:`from_xarray` with ``like=self``); any other result is
        returned as it is.

        Examples
        --------
        >>> import numpy as np, omio
        >>> ds = omio.MicroscopyDataset.from_array(np.ones((3, 8, 8), "uint16"), axes="ZYX")
        >>> ds.pipe(lambda a: a.max("Z")).sizes["Z"]
        1
        """
        result = func(with_pint_accessor(self._data), *args, **kwargs)
        if isinstance(result, xr.DataArray) and set(map(str, result.dims)) <= set(DIMS):
            return MicroscopyDataset.from_xarray(result, like=self)
        return result

    def apply(self, func: Callable[..., Any], *args: Any, dtype: Any = None, **kwargs: Any) -> MicroscopyDataset:
        """Apply an element- or block-wise function to the pixels lazily (shape kept).

        ``func`` receives each numpy chunk (``dask.array.map_blocks``); all metadata is
        kept. Give ``dtype`` when the function changes it.
        """
        mapped: da.Array = da.map_blocks(func, self.data, *args, dtype=dtype, **kwargs)
        if mapped.shape != self.shape:
            raise DimensionError(f"apply must keep the shape {self.shape}; use pipe for reshaping operations")
        dtype = np.dtype(mapped.dtype)

        def retype(ome: OME) -> OME:
            from omio import metadata
            from omio.ome_update import with_pixels

            return with_pixels(ome, type=metadata.pixel_type(dtype))

        return MicroscopyDataset(self._data.copy(data=mapped), self._meta.then(retype), self._info)

    def with_metadata(
        self,
        *,
        physical_pixel_sizes: Mapping[str, Any] | None = None,
        time_increment: Any = KEEP,
        channel_names: Sequence[str | None] | None = None,
        name: str | Keep | None = KEEP,
        origin: Mapping[str, Any] | None = None,
    ) -> MicroscopyDataset:
        """Return a copy with metadata stated explicitly (what the file did not say, or said wrongly).

        What is not given is kept; ``None`` clears a value.

        Parameters
        ----------
        physical_pixel_sizes
            ``{"X": 0.2, "Z": "1 um", "Y": None}``: numbers are micrometres; a key with
            ``None`` clears that size (its coordinate becomes pixel indices); axes not
            named keep theirs. Keys are X, Y and Z.
        time_increment
            Seconds, or a quantity / string with a time unit; ``None`` clears it.
        channel_names
            One per channel (``None`` entries for unnamed channels).
        name
            The image name; ``None`` clears it.
        origin
            ``{"X": 100.0, "Z": None}``: where the first pixel sits, numbers in
            micrometres (seconds for ``"T"``); ``None`` clears an axis' origin (and the
            plane positions that state it). Keys are X, Y, Z and T.

        Raises
        ------
        omio.errors.MetadataError
            For an unknown key (naming the valid ones), a value of the wrong kind
            (a length for a time), or a number of channel names that is not the channel count.

        Examples
        --------
        >>> import numpy as np, omio
        >>> ds = omio.MicroscopyDataset.from_array(np.zeros((2, 4, 4), "uint8"), axes="ZYX")
        >>> ds = ds.with_metadata(physical_pixel_sizes={"X": 0.5, "Y": 0.5, "Z": 2}, origin={"X": 10})
        >>> float(ds.xarray["X"].values[1])
        10.5
        >>> ds.with_metadata(physical_pixel_sizes={"Z": None}).physical_pixel_sizes["Z"] is None
        True
        """
        new = stated_record(
            self._meta.record,
            self.sizes["C"],
            physical_pixel_sizes=physical_pixel_sizes,
            time_increment=time_increment,
            channel_names=channel_names,
            name=name,
            origin=origin,
        )
        shape = self.shape

        def update(ome: OME) -> OME:
            from omio.ome_update import apply_record

            return apply_record(ome, new, shape)

        return MicroscopyDataset(build_xarray(self._data.data, new), self._meta.then(update, new), self._info)

    def with_annotations(self, namespace: str, values: Mapping[str, Any]) -> MicroscopyDataset:
        """Return a copy with a MapAnnotation added (kept on writing)."""
        from omio.ome_update import add_annotations

        return MicroscopyDataset(
            self._data, self._meta.then(lambda ome: add_annotations(ome, [(namespace, values)])), self._info
        )

    def concat(
        self,
        others: MicroscopyDataset | Sequence[MicroscopyDataset],
        *,
        axis: Literal["T", "Z", "C"] = "T",
        policy: Literal["strict", "pad"] = "strict",
        promote_dtype: bool = False,
    ) -> MicroscopyDataset:
        """Concatenate this dataset with others along T, Z or C (lazy); see :func:`omio.merge.concat`."""
        from omio.merge import concat

        rest = [others] if isinstance(others, MicroscopyDataset) else list(others)
        return concat([self, *rest], axis=axis, policy=policy, promote_dtype=promote_dtype)

    # ------------------------------------------------------------------ output
    def to_ometiff(
        self,
        path: str | Path,
        *,
        compression: Compression | None = "zlib",
        level: int = 6,
        overwrite: bool = False,
        bigtiff: bool | None = None,
        tile: tuple[int, int] | None = None,
        pyramid: bool | int = False,
        progress: bool = False,
        maxworkers: int | None = None,
    ) -> Path:
        """Write an OME-TIFF (streamed chunk by chunk, atomic, never overwriting unless asked).

        Returns the path written: the one given, or, when it exists and
        ``overwrite`` is False, the first free ``<stem>_<n><suffix>``.
        See :func:`omio.writers.ometiff.write_ometiff` for the options.
        """
        from omio.writers.ometiff import write_ometiff

        return write_ometiff(
            self,
            path,
            compression=compression,
            level=level,
            overwrite=overwrite,
            bigtiff=bigtiff,
            tile=tile,
            pyramid=pyramid,
            progress=progress,
            maxworkers=maxworkers,
        )

    def to_omezarr(self, path: str | Path, **options: Any) -> Path:
        """Write an OME-Zarr image (NGFF 0.5 by default; parallel through dask, atomic, never overwriting unless asked).

        Returns the folder written. Options (``version``, ``levels``, ``chunks``,
        ``shards``, ``compression``, ``overwrite``, ...) are those of
        :func:`omio.writers.omezarr.write_omezarr`. Also spelled :meth:`to_ome_zarr`.
        """
        from omio.writers.omezarr import write_omezarr

        return write_omezarr(self, path, **options)

    to_ome_zarr = to_omezarr

    # ------------------------------------------------------------------ viewing
    def view(
        self,
        viewer: Any = None,
        *,
        channel_axis: bool = True,
        contrast_limits: tuple[float, float] | Sequence[tuple[float, float]] | None = None,
    ) -> Any:
        """Show the dataset in napari (a new viewer, or ``viewer``) and return the viewer.

        Lazy: one layer per channel (``channel_axis=False`` keeps C as a slider),
        named and coloured from the metadata, scaled in micrometres and seconds,
        multiscale for a pyramidal file; only a few planes are read for the contrast
        limits unless ``contrast_limits`` gives them. See :func:`omio.napari.layer_data`.

        Raises
        ------
        omio.errors.MissingDependencyError
            When napari is not installed (``pip install 'napari[pyqt6]'``, or the ``[napari]`` extra from a clone).
        """
        from omio.napari import view

        return view(self, viewer, channel_axis=channel_axis, contrast_limits=contrast_limits)

    def cache(self, path: str | Path | None = None, *, progress: bool = True) -> MicroscopyDataset:
        """Copy the pixels into a local Zarr store and return a dataset reading from it (reads everything once).

        A temporary store is removed once no dataset uses it; a store at ``path`` is
        kept and re-used while the source is unchanged. See :func:`omio.cache.cache`.
        """
        from omio.cache import cache

        return cache(self, path, progress=progress)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the files this dataset reads (its handles in omio's per-process handle cache).

        Closing does not change the dataset: computing it afterwards opens the files
        again, as a closed xarray dataset does. Files are also closed when the last
        dataset reading them is garbage collected; ``close()`` (or ``with``) does it
        now, e.g. before replacing or deleting the file. Handles of other datasets
        reading the same file are closed too; they reopen on their next read.

        Examples
        --------
        >>> import numpy as np, omio
        >>> with omio.MicroscopyDataset.from_array(np.zeros((2, 8, 8), "uint8"), axes="ZYX") as ds:
        ...     ds.shape
        (1, 2, 1, 8, 8)
        """
        from omio.readers._handles import close_cached_handles, files_read_by

        close_cached_handles(files_read_by(self._data.data))

    def __enter__(self) -> MicroscopyDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        state = "lazy" if self.is_lazy else "in memory"
        lines = [f"<omio.MicroscopyDataset{name} ({state})>"]
        for key, value in self._summary():
            lines.append(f"  {key + ':':<16}{value}")
        return "\n".join(lines)

    def _summary(self) -> list[tuple[str, str]]:
        from omio._display import summary

        return summary(self)

    def _repr_html_(self) -> str:
        from omio._display import html_summary

        return html_summary(self)


# ---------------------------------------------------------------------- helpers


def _hold_files(ds: MicroscopyDataset) -> None:
    """Count ``ds`` as a user of the files it reads until it is garbage collected.

    When the last dataset reading a file is gone, the file's cached handles are closed
    (see :mod:`omio.readers._handles`).
    """
    from omio.readers._handles import files_read_by, hold_files, release_files

    files = files_read_by(ds.data)
    if files:
        hold_files(files)
        weakref.finalize(ds, release_files, files)
