"""The constructors of :class:`omio.MicroscopyDataset`: from a file, an array or a DataArray.

:class:`Constructors` (a mixin of the dataset class) holds ``from_source`` (what a reader
returned: :func:`source_parts` turns it into the three parts a dataset wraps, the
labelled array, the OME model built on first use and :class:`SourceInfo`), the
``from_<format>`` constructors that open a file with one reader, ``from_array`` and
``from_xarray``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import dask.array as da
import numpy as np
import xarray as xr

from omio import ome_update, units
from omio._values import LENGTH_DEFAULT, TIME_DEFAULT, check_dimensionality
from omio.dims import DIMS, normalize_axes, plane_chunks, to_tzcyx
from omio.errors import DimensionError, MetadataError, UnsupportedFormatError
from omio.lazy_ome import LazyOME
from omio.readers import open_source
from omio.record import build_xarray, record_from_xarray

if TYPE_CHECKING:
    from ome_types import OME

    from omio.dataset import MicroscopyDataset
    from omio.readers._base import ImageSource
    from omio.readers._pread import PlaneReader

__all__ = ["ORIGINAL_NAMESPACE", "Constructors", "DirectRead", "SourceInfo", "source_parts"]

ORIGINAL_NAMESPACE = "omio:original-metadata"


@dataclass(frozen=True)
class DirectRead:
    """The reader's own reads of the array it returned, used while a dataset's pixels are still that array.

    Attributes
    ----------
    name
        The dask name of that array.
    whole
        Fills a TZCYX buffer with the whole array (one read instead of a task per chunk).
    planes
        Reads runs of consecutive planes straight into a buffer, where the reader can.
    """

    name: str
    whole: Callable[[np.ndarray[Any, Any]], None]
    planes: PlaneReader | None


@dataclass(frozen=True)
class SourceInfo:
    """Where a dataset came from and how its axes were mapped."""

    path: Path | str | None = None
    format: str = "array"
    scenes: tuple[str | None, ...] = (None,)
    scene: int = 0
    axes_rule: str = ""
    levels: tuple[tuple[int, ...], ...] = ()
    direct_read: DirectRead | None = field(default=None, compare=False)
    """The reader's own reads of the array it returned."""


def source_parts(source: ImageSource) -> tuple[xr.DataArray, LazyOME, SourceInfo]:
    """The labelled array, the (deferred) OME model and the source info of what a reader returned.

    The OME model, built on first use, is checked against the array's shape, records
    where it came from (an ``omio:source`` MapAnnotation, the file's original metadata)
    and gets its ``Pixels`` from the reader's record.
    """
    info = SourceInfo(
        path=source.path,
        format=source.format,
        scenes=tuple(source.scenes),
        scene=source.scene,
        axes_rule=source.axes_rule,
        levels=tuple(tuple(s) for s in source.levels),
        direct_read=None
        if source.read_into is None
        else DirectRead(source.data.name, source.read_into, source.plane_reader),
    )
    extra = [
        (
            ome_update.SOURCE_NAMESPACE,
            {
                "path": str(source.path),
                "format": source.format,
                "scene": str(source.scene),
                "scene_name": str(source.scenes[source.scene]) if source.scenes else "None",
                "axes_rule": source.axes_rule,
            },
        )
    ]
    replaced = [ome_update.SOURCE_NAMESPACE]
    if source.original_metadata:
        extra.append((ORIGINAL_NAMESPACE, dict(source.original_metadata)))
        replaced.append(ORIGINAL_NAMESPACE)

    meta = source.ome if isinstance(source.ome, LazyOME) else LazyOME.ready(source.ome)
    record, shape = meta.record, source.data.shape

    def finish(ome: OME) -> OME:
        ome_update.check_ome_matches(ome, shape, source.path)
        ome = ome_update.add_annotations(ome_update.keep_history(ome), extra, replace_namespaces=replaced)
        if record.planes or not ome.images[0].pixels.planes:  # else: Planes the reader gave the model only
            ome = ome_update.apply_record(ome, record, shape)
        return ome

    return build_xarray(source.data, record), meta.then(finish), info


class Constructors:
    """The constructors of :class:`omio.MicroscopyDataset` (a mixin of the dataset class)."""

    __slots__ = ()

    if TYPE_CHECKING:

        def __init__(self, data: xr.DataArray, ome: OME | LazyOME, info: SourceInfo) -> None: ...

    @classmethod
    def from_source(cls, source: ImageSource) -> Self:
        """Build a dataset from what a reader returned (used by :func:`omio.open`)."""
        return cls(*source_parts(source))

    @classmethod
    def _from_reader(
        cls,
        reader: str,
        path: str | Path,
        *,
        scene: int | str,
        axes: str | None,
        level: int,
        formats: tuple[str, ...] = (),
    ) -> Self:
        """Open ``path`` with the reader called ``reader`` only; ``formats`` narrows the formats it may be."""
        source = open_source(path, scene=scene, axes=axes, level=level, reader=reader)
        if formats and source.format not in formats:
            raise UnsupportedFormatError(
                f"{path}: a {source.format} file, not {' or '.join(formats)}; omio.open(path) opens it as what it is"
            )
        return cls.from_source(source)

    @classmethod
    def from_tiff(cls, path: str | Path, *, scene: int | str = 0, axes: str | None = None, level: int = 0) -> Self:
        """Open a TIFF-family file (OME-TIFF, ImageJ hyperstack, LSM or plain TIFF) with the TIFF reader.

        Parameters
        ----------
        path
            The file; anything that is not a TIFF is an :class:`~omio.errors.UnsupportedFormatError`.
        scene
            The series (an OME-TIFF image) by index or OME image name.
        axes
            The file's axes, one letter per axis of the stored series (``"ZYX"`` makes a
            plain multi-page TIFF a Z stack instead of a time series).
        level
            The SubIFD resolution level (0 = full resolution).
        """
        return cls._from_reader("tiff", path, scene=scene, axes=axes, level=level)

    @classmethod
    def from_lsm(cls, path: str | Path, *, scene: int | str = 0, axes: str | None = None, level: int = 0) -> Self:
        """Open a Zeiss LSM file (the TIFF reader, refusing other TIFFs); options as :meth:`from_tiff`."""
        return cls._from_reader("tiff", path, scene=scene, axes=axes, level=level, formats=("lsm",))

    @classmethod
    def from_czi(cls, path: str | Path, *, scene: int | str = 0, axes: str | None = None, level: int = 0) -> Self:
        """Open a Zeiss CZI file with the CZI reader.

        Parameters
        ----------
        path
            The ``.czi`` file.
        scene
            The scene by index (S order) or by its name in the metadata; a mosaic scene is stitched.
        axes
            Not used by CZI files (their dimensions are named); must be ``None``.
        level
            The pyramid level (0 = full resolution).
        """
        return cls._from_reader("czi", path, scene=scene, axes=axes, level=level)

    @classmethod
    def from_thorlabs_raw(
        cls, path: str | Path, *, scene: int | str = 0, axes: str | None = None, level: int = 0
    ) -> Self:
        """Open a Thorlabs ThorImageLS acquisition (RAW or TIFF mode) with the Thorlabs reader.

        Parameters
        ----------
        path
            The acquisition folder, its ``.raw`` file or its ``Experiment.xml``.
        scene, axes, level
            As :meth:`from_tiff`; an acquisition is one image of one level.
        """
        return cls._from_reader("thorlabs", path, scene=scene, axes=axes, level=level)

    @classmethod
    def from_nd2(cls, path: str | Path, *, scene: int | str = 0, axes: str | None = None, level: int = 0) -> Self:
        """Open a Nikon ND2 file with the ND2 reader (needs the ``nd2`` package).

        Parameters
        ----------
        path
            The ``.nd2`` file.
        scene
            The XY position by index or by its position name.
        axes, level
            As :meth:`from_tiff`.
        """
        return cls._from_reader("nd2", path, scene=scene, axes=axes, level=level)

    @classmethod
    def from_lif(cls, path: str | Path, *, scene: int | str = 0, axes: str | None = None, level: int = 0) -> Self:
        """Open a Leica LIF, LOF or XLIF file with the Leica reader (needs the ``liffile`` package).

        Parameters
        ----------
        path
            The file.
        scene
            The image element by index or by its path in the file (``"Collection/Image 1"``).
        axes, level
            As :meth:`from_tiff`.
        """
        return cls._from_reader("lif", path, scene=scene, axes=axes, level=level)

    @classmethod
    def from_oif(cls, path: str | Path, *, scene: int | str = 0, axes: str | None = None, level: int = 0) -> Self:
        """Open an Olympus OIB or OIF file with the Olympus reader (needs the ``oiffile`` package).

        Options as :meth:`from_tiff`.
        """
        return cls._from_reader("olympus", path, scene=scene, axes=axes, level=level)

    @classmethod
    def from_ome_zarr(cls, path: str | Path, *, scene: int | str = 0, axes: str | None = None, level: int = 0) -> Self:
        """Open an OME-Zarr (NGFF 0.4 or 0.5) folder or URL with the OME-Zarr reader.

        Parameters
        ----------
        path
            The store: a local folder or a URL zarr reaches through fsspec (``"s3://..."``).
        scene
            The series of a bioformats2raw layout by index or name.
        axes
            The axes, one letter per array dimension, where the NGFF axes are missing or wrong.
        level
            The multiscale level (0 = full resolution).
        """
        return cls._from_reader("ome-zarr", path, scene=scene, axes=axes, level=level)

    @classmethod
    def from_array(
        cls,
        array: Any,
        axes: str = "TZCYX",
        *,
        physical_pixel_sizes: Mapping[str, Any] | None = None,
        time_increment: Any = None,
        channel_names: Sequence[str | None] | None = None,
        channel_colors: Sequence[Any] | None = None,
        name: str | None = None,
    ) -> Self:
        """Wrap a numpy or dask array.

        Parameters
        ----------
        array
            A numpy or dask array (kept lazy; a numpy array is wrapped, not copied).
        axes
            One letter per axis of ``array``, any order and any subset of TZCYX that
            includes Y and X (``"ZYX"``, ``"YXC"``...). Missing axes get size 1.
        physical_pixel_sizes
            ``{"X": 0.2, "Y": 0.2, "Z": 1.0}``: numbers are micrometres; pint
            quantities or strings such as ``"200 nm"`` keep their unit. Missing keys
            stay unknown (``None``).
        time_increment
            Seconds as a number, or a quantity / string with a time unit.
        channel_names, channel_colors
            One per channel.
        name
            The image name.
        """
        up = normalize_axes(axes, len(np.shape(array)))
        arr = (
            array
            if isinstance(array, da.Array)
            else da.from_array(np.asarray(array), chunks=plane_chunks(np.shape(array), up))
        )
        mapping = to_tzcyx(arr, up, stated_by="user")
        sizes = {k.upper(): units.as_quantity(v, LENGTH_DEFAULT) for k, v in (physical_pixel_sizes or {}).items()}
        unknown = set(sizes) - {"X", "Y", "Z"}
        if unknown:
            raise DimensionError(f"physical_pixel_sizes has keys {sorted(unknown)}; use X, Y and Z")
        increment = units.as_quantity(time_increment, TIME_DEFAULT)
        check_dimensionality(sizes, increment)
        n_c = mapping.data.shape[2]
        names = list(channel_names) if channel_names is not None else None
        if names is not None and len(names) != n_c:
            raise MetadataError(f"{len(names)} channel names given for {n_c} channels")
        from omio import metadata

        ome = metadata.make_ome(
            mapping.data.shape,
            mapping.data.dtype,
            physical_sizes=sizes,
            time_increment=increment,
            channel_names=names,
            channel_colors=channel_colors,
            name=name,
        )
        info = SourceInfo(axes_rule=mapping.rule)
        meta = LazyOME.ready(ome)
        return cls(build_xarray(mapping.data, meta.record), meta, info)

    @classmethod
    def from_xarray(cls, data: xr.DataArray, *, like: MicroscopyDataset | None = None) -> Self:
        """Wrap a DataArray whose dims are a subset of TZCYX (any order).

        Physical sizes, origins and the time increment come from evenly spaced
        X/Y/Z/T coordinates with a ``units`` attribute (the origin is the first
        value); channel names from string C labels. With ``like``, coordinates that
        are some of ``like``'s (a selection, a reduction) select ``like``'s record
        (sizes, origin, plane table: see :meth:`isel`), and everything the array does
        not state (sizes of collapsed axes, channel details, annotations,
        instrument) is taken from that dataset.

        Raises
        ------
        omio.errors.DimensionError
            For X, Y or Z coordinates that are not evenly spaced: no pixel size
            describes them (select a range or a step, or interpolate onto a grid).
        """
        dims = [str(d) for d in data.dims]
        bad = [d for d in dims if d not in DIMS]
        if bad:
            raise DimensionError(f"from_xarray needs dims from {DIMS}, got {tuple(dims)}; rename or transpose first")
        arr = data.expand_dims([d for d in DIMS if d not in dims]).transpose(*DIMS)
        if not isinstance(arr.data, da.Array):
            arr = arr.chunk(dict(zip(DIMS, plane_chunks(arr.shape, "TZCYX"), strict=True)))
        shape, dtype = tuple(int(s) for s in arr.shape), np.dtype(arr.dtype)
        if like is None:
            record, _ = record_from_xarray(arr, None)
            ome = ome_update.ome_from_record(record, shape, dtype)
            info = SourceInfo(axes_rule="dims as named in the DataArray")
            return cls(build_xarray(arr.data, record), LazyOME.ready(ome, record), info)
        record, channels = record_from_xarray(arr, like._meta.record, like.shape)
        if channels is None and len(like.channel_names) != shape[2]:  # channels the template cannot describe
            fresh = ome_update.ome_from_record(record, shape, dtype)
            meta = like._meta.then(lambda ome: ome_update.with_pixels_of(ome, fresh), record)
        else:
            meta = like._meta.then(
                lambda ome: ome_update.apply_record(ome, record, shape, channels=channels, dtype=dtype), record
            )
        return cls(build_xarray(arr.data, record), meta, like._info)
