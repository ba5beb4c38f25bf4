"""The TIFF family through tifffile: OME-TIFF, ImageJ hyperstacks, LSM and plain TIFF.

Opening reads the TIFF structure and metadata only. The dask array has one chunk per
TIFF page (a plane, or a plane of colour samples); each task captures the file path
and the page index and reads through a per-process handle cache. Reduced-resolution
levels stored as SubIFDs (``level=``) are read the same way, each page at its IFD offset.
When the pages are pages ``k, k + 1, ...`` of one file, as writers store them, a
chunk's page is ``k`` plus the chunk's number and the graph is not materialised (a
file of 100,000 pages opens without building 100,000 tasks).

Axis rules
----------
- OME-TIFF, ImageJ and LSM state their axes; tifffile resolves them and omio maps
  them onto TZCYX (``omio.dims``).
- A plain multi-page TIFF has an unnamed page axis: it is taken as T (as Bio-Formats
  does), stated in the dataset's axes rule; pass ``axes="ZYX"`` (any order and
  subset of TZCYX, one letter per axis of the file's series) to say otherwise.
- Colour samples (RGB) become C in R, G, B order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import logging
import math
import operator
import os
import re
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import numpy as np

from omio import units
from omio._pixel_types import OME_PIXEL_TYPES
from omio.dims import SAMPLE_COLORS, ChannelPart, normalize_axes, to_tzcyx
from omio.errors import DimensionError, FileFormatError, MetadataError, OmioError
from omio.lazy_ome import LazyOME
from omio.pyramid import LevelGeometry, level_factors, level_geometry, level_origin
from omio.readers._base import ImageSource, SceneSelector, as_text, select_scene
from omio.readers._handles import cached_handle, file_identity
from omio.readers._lazy import array_from_chunks, array_from_indexed_chunks
from omio.readers._pread import OpenedFile, PlaneReader, PlaneRun
from omio.record import ImageRecord, PlaneInfo, misplaced_plane, planes_from_xml
from omio.units import Measure

if TYPE_CHECKING:
    import tifffile
    from ome_types import OME

__all__ = ["TiffReader"]

_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@dataclass
class _SharedTiff:
    """An open TiffFile shared by the tasks of one process (its file handle is locked)."""

    tif: tifffile.TiffFile

    def close(self) -> None:
        self.tif.close()


def _open_tiff(path: str) -> _SharedTiff:
    import tifffile

    tif = tifffile.TiffFile(path)
    tif.filehandle.set_lock(True)
    tif.pages.cache = True  # parse each page's tags once per process, not once per chunk read
    return _SharedTiff(tif)


def _open_series_tiff(path: str) -> _SharedTiff:
    """An open TiffFile whose series are parsed, for :class:`_SeriesPages` (apart from the page tasks' handle).

    Parsing a series makes its pages frames of its first page; the page tasks' handle
    must keep parsing each page on its own.
    """
    return _open_tiff(path)


def _read_page(
    path: str, index: int, shape: tuple[int, ...], dtype: str, subifd: tuple[int, int] | None = None
) -> np.ndarray[Any, Any]:
    """Read one page of a TIFF file (a dask task).

    The page is page ``index`` of the main IFD chain or, with ``subifd=(level, offset)``,
    that page's reduced-resolution SubIFD of that level, whose IFD is at ``offset``.
    """
    import tifffile

    shared = cached_handle(_open_tiff, path)
    try:
        with shared.tif.filehandle.lock:  # page lookup seeks the shared file handle
            if subifd is None:
                page = shared.tif.pages[index]
            else:
                shared.tif.filehandle.seek(subifd[1])
                page = tifffile.TiffPage(shared.tif, (index, subifd[0]))
        if page is None:
            raise FileFormatError(f"{path}: page {index} is missing")
        with _damage_reported(f"{path}: page {index} is damaged"):
            data = page.asarray(lock=shared.tif.filehandle.lock)  # type: ignore[union-attr]
    except (OSError, ValueError, IndexError, RuntimeError, struct.error, tifffile.TiffFileError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, FileFormatError)):
            raise
        raise FileFormatError(f"{path}: cannot decode page {index}: {exc}") from exc
    return np.asarray(data, dtype=dtype).reshape(shape)


class TiffReader:
    """Reader for OME-TIFF, ImageJ hyperstack, Zeiss LSM and plain TIFF files."""

    name = "tiff"
    suffixes = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".ome.tf2", ".ome.tf8", ".ome.btf", ".lsm", ".btf")

    def sniff(self, path: Path, head: bytes) -> bool:
        """Return True for any TIFF or BigTIFF header."""
        return head[:4] in _MAGIC

    def scenes(self, path: Path) -> list[str | None]:
        """Return the names of the image series in the file."""
        opener = _open(path)
        with opener as tif:
            names = [_series_name(tif, s) for s in _image_series(tif)]
            opener.check()
        return names

    def open(
        self,
        path: Path,
        *,
        scene: SceneSelector = 0,
        axes: str | None = None,
        level: int = 0,
    ) -> ImageSource:
        """Open one series lazily; see the module docstring for the axis rules."""
        opener = _open(path)
        with opener as tif:
            series_list = _image_series(tif)
            names = [_series_name(tif, s) for s in series_list]
            index = select_scene(path, scene, names)
            base = series_list[index]
            user_axes = None if axes is None else normalize_axes(axes, len(base.shape), allowed="TZCYXS")
            _check_levels(path, base)
            levels = [_tzcyx_shape(lvl, user_axes) for lvl in base.levels]
            if not 0 <= level < len(levels):
                raise DimensionError(
                    f"{path}: level={level} does not exist; the image has {len(levels)} resolution level(s), "
                    f"0..{len(levels) - 1}, of TZCYX shapes {levels}"
                )
            series = base.levels[level]
            kind = _kind(tif)
            raw, file_axes, table = _lazy_series(path, series)
            if user_axes is not None:
                mapping = to_tzcyx(raw, user_axes, stated_by="user")
            else:
                mapping = to_tzcyx(raw, file_axes)
            info = _metadata(tif, base, kind, index, mapping.channels, path)
            _check_stated_values(info, path)
            geometry = _level_geometry(info.physical_sizes, levels[0], levels[level])
            info.physical_sizes = geometry.physical_sizes
            read_into, plane_reader = _direct_reader(
                tif, series_list[index], series, table, mapping.data.shape[2], mapping.keeps_order, level
            )
            opener.check()
        labels = ImageRecord.stated(
            mapping.data.shape[2],
            name=names[index],
            physical_sizes=info.physical_sizes,
            time_increment=info.time_increment,
            channel_names=[p.name(info.channel_names) for p in mapping.channels],
            planes=() if user_axes is not None else _channel_planes(info.planes, mapping.channels),
        )
        if level:  # a level's first pixel centre lies (f - 1) / 2 level-0 pixels after level 0's
            labels = dataclasses.replace(labels, origin=level_origin(labels.origin, geometry.offsets)).settled()
        build = functools.partial(
            _build_ome, path, index, mapping.data.shape, mapping.data.dtype, mapping.channels, labels, info.ome_xml
        )
        return ImageSource(
            data=mapping.data,
            ome=LazyOME(labels, build),
            path=path,
            format=kind,
            scenes=names,
            scene=index,
            axes_rule=mapping.rule,
            original_metadata=info.original,
            levels=levels,
            read_into=read_into,
            plane_reader=plane_reader,
        )


def _check_levels(path: Path, series: tifffile.TiffPageSeries) -> None:
    """Every reduced-resolution level must hold a page for each page of the full resolution."""
    full = len(series.pages)
    for number, level in enumerate(series.levels[1:], start=1):
        held = sum(page is not None for page in level.pages)
        if held != full:
            raise FileFormatError(
                f"{path}: resolution level {number} holds {held} of the {full} pages of the full resolution; "
                "its SubIFD chain is cut or damaged"
            )


def _build_ome(
    path: Path,
    index: int,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    parts: tuple[ChannelPart, ...],
    labels: ImageRecord,
    ome_xml: str | None,
) -> OME:
    """The OME model of one opened series (built on first use; see :mod:`omio.lazy_ome`).

    Its ``Plane`` elements are those of the record (the file's, read in :func:`_ome_info`).

    For an OME-TIFF the file's own OME-XML is parsed with ome-types, and its channel
    colours and descriptions and everything it says about the image are carried over.
    The colour samples of an RGB channel (``SamplesPerPixel="3"``) are shown red, green
    and blue, as in a plain RGB TIFF: one OME channel colour cannot tell three apart.
    """
    from omio import metadata
    from omio.ome_update import ome_planes

    colors: list[Any] | None = _sample_colors(parts)
    extra = None
    source = None
    if ome_xml is not None:
        try:
            source = metadata.parse_ome_xml(ome_xml)
            image = source.images[index]
        except Exception as exc:  # ome-types raises several pydantic/xsdata error types
            raise MetadataError(f"{path}: the OME-XML cannot be parsed ({exc})") from exc
        one_to_one = all(p.suffix is None for p in parts) and len(parts) == len(image.pixels.channels)
        source_colors = metadata.channel_colors(image)
        samples = colors or [None] * len(parts)
        colors = [source_colors[p.channel] if one_to_one else s for p, s in zip(parts, samples, strict=True)]
        extra = metadata.channel_descriptions(image) if one_to_one else None
    ome = metadata.make_ome(
        shape,
        dtype,
        physical_sizes=labels.physical_sizes,
        time_increment=labels.time_increment,
        channel_names=list(labels.channel_names),
        channel_colors=colors,
        channel_extra=extra,
        name=labels.name,
        planes=ome_planes(labels, shape),
    )
    if source is not None:
        ome = metadata.carry_image_description(ome, source, index)
    return ome


def _channel_planes(planes: tuple[PlaneInfo, ...], parts: tuple[ChannelPart, ...]) -> tuple[PlaneInfo, ...]:
    """The file's planes on the dataset's channels: a file channel's plane for each channel made from it."""
    out = []
    for plane in planes:
        for c, part in enumerate(parts):
            if part.channel == plane.c:
                out.append(dataclasses.replace(plane, c=c))
    return tuple(out)


def _sample_colors(parts: tuple[ChannelPart, ...]) -> list[tuple[int, int, int] | None] | None:
    """Red, green and blue for the channels that are a photometric-RGB file's colour samples."""
    if not any(p.suffix in SAMPLE_COLORS for p in parts):
        return None
    return [SAMPLE_COLORS.get(p.suffix or "") for p in parts]


def _direct_reader(
    tif: tifffile.TiffFile,
    top: tifffile.TiffPageSeries,
    series: tifffile.TiffPageSeries,
    table: _PageTable,
    channels: int,
    keeps_order: bool,
    level: int,
) -> tuple[Callable[[np.ndarray[Any, Any]], None] | None, PlaneReader | None]:
    """A whole-series read into a TZCYX buffer where it can be done in place, and the series' plane reads.

    Only for a series stored in this one file whose axes map onto TZCYX without
    reordering. Pixels stored uncompressed in one run of bytes (a :class:`PlaneRun`,
    from the offset found now) are read straight into the caller's buffer by several
    threads (:func:`~omio.readers._pread.fill_from_file`); others are decoded into it
    by tifffile (:class:`_SeriesPages`). Either way there is no task or copy per page,
    and every page is decoded with the layout of the series' first page, as tifffile
    reads a series (a page read alone, as a dask task, is parsed on its own).
    """
    if not keeps_order:
        return None, None
    if table.files != [tif]:  # (``table``: the series' pages, all present)
        return None, None
    path, index, identity = str(tif.filehandle.path), tif.series.index(top), file_identity(tif.filehandle.path)
    decode = functools.partial(_read_series_into, path, index, level)
    offset = series.dataoffset  # set when the pixels are stored uncompressed in one run of bytes
    if offset is None:
        page_planes = math.prod(series.keyframe.shape[:-2])  # planes per page: 1, or planar samples
        whole_pages = page_planes > 0 and channels % page_planes == 0  # slabs of whole C are then whole pages
        return decode, _SeriesPages(path, identity, index, level, page_planes) if whole_pages else None
    swap = not np.dtype(tif.byteorder + series.dtype.char).isnative
    run = PlaneRun(path, identity, int(offset), swap)
    return functools.partial(_read_contiguous_into, run, decode), run


@dataclass(frozen=True)
class _SeriesPages(OpenedFile):
    """Runs of a series' pages decoded by tifffile into a buffer (a :class:`~omio.readers._pread.PlaneReader`).

    Through this process's shared handle of the file (its series parsed once), each
    page decoded with the layout of the series' first page, as tifffile reads a series.
    """

    series: int
    level: int
    page_planes: int

    def read(self, out: np.ndarray[Any, Any], first: int = 0) -> None:
        """Fill ``out`` with the planes from ``first`` on (whole pages: ``first`` and the count are multiples)."""
        count = out.size // (out.shape[-1] * out.shape[-2])
        if first % self.page_planes or count % self.page_planes:
            raise ValueError(f"planes {first}..{first + count} are not whole pages of {self.page_planes} planes")
        shared = cached_handle(_open_series_tiff, self.path)
        with shared.tif.filehandle.lock:  # parsing the series seeks the shared handle
            series = _level_series(shared.tif, self.series, self.level)
        start, stop = first // self.page_planes, (first + count) // self.page_planes
        target = out.reshape((stop - start, *series.keyframe.shape) if stop - start > 1 else series.keyframe.shape)
        with _decoding(self.path, series):
            shared.tif.asarray(key=slice(start, stop), series=series, out=target, maxworkers=1)


def _read_contiguous_into(
    run: PlaneRun, decode: Callable[[np.ndarray[Any, Any]], None], out: np.ndarray[Any, Any]
) -> None:
    """Fill ``out`` with the series' plane run, if the file is still the one opened (else parse it again)."""
    if run.unchanged():
        run.read(out)
    else:
        decode(out)


def _read_series_into(path: str, series_index: int, level: int, out: np.ndarray[Any, Any]) -> None:
    """Fill ``out`` (C-contiguous, any shape with the series' size) with one whole series."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = _level_series(tif, series_index, level)
        with _decoding(path, series):
            series.asarray(out=out.reshape(series.shape))


def _level_series(tif: tifffile.TiffFile, series_index: int, level: int) -> tifffile.TiffPageSeries:
    """Resolution ``level`` of series ``series_index`` (the series itself for level 0)."""
    series = tif.series[series_index]
    return series.levels[level] if level else series


@contextlib.contextmanager
def _decoding(path: str, series: tifffile.TiffPageSeries) -> Iterator[None]:
    """Around tifffile decoding pages of ``series``: damage is a FileFormatError naming the first bad page."""
    try:
        with _damage_reported(f"{path}: the pixel data is damaged"):
            yield
    except _DECODE_ERRORS as exc:
        raise FileFormatError(f"{path}: cannot decode {_first_bad_page(series)}: {exc}") from exc


_DECODE_ERRORS = (OSError, ValueError, IndexError, RuntimeError)


def _first_bad_page(series: tifffile.TiffPageSeries) -> str:
    """Name the first page of ``series`` that fails to decode (for the error message)."""
    for page in series.pages:
        try:
            page.asarray()  # type: ignore[union-attr]
        except _DECODE_ERRORS:
            return f"page {page.index}"  # type: ignore[union-attr]
    return "the series"


class _open:
    """Open a TiffFile, turning tifffile's errors into FileFormatError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tif: tifffile.TiffFile | None = None

    def __enter__(self) -> tifffile.TiffFile:
        import tifffile

        self.problems = _Collect()
        self.logger = logging.getLogger("tifffile")
        self.logger.addHandler(self.problems)
        try:
            self.tif = tifffile.TiffFile(self.path)
            _check_structure(self.tif, self.path)
        except (FileNotFoundError, PermissionError, OmioError):
            self.__exit__()
            raise
        except Exception as exc:  # tifffile raises many types on bad bytes (RuntimeError, KeyError, struct.error...)
            self.__exit__()
            raise FileFormatError(f"{self.path}: not a readable TIFF file ({type(exc).__name__}: {exc})") from exc
        return self.tif

    def check(self) -> None:
        """Raise if tifffile reported damage it worked around (it logs and returns less data)."""
        if self.problems.messages:
            raise FileFormatError(
                f"{self.path}: the TIFF structure is damaged ({'; '.join(self.problems.messages)}); "
                "the file is probably truncated or was not written completely"
            )

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.problems)
        if self.tif is not None:
            self.tif.close()


@contextlib.contextmanager
def _damage_reported(what: str) -> Iterator[None]:
    """Raise FileFormatError (``what``: tifffile's words) if tifffile reports damage in this thread meanwhile.

    tifffile decodes a strip it finds short or garbled by padding it and logging a
    warning; the pixels it returns are then not the file's.
    """
    problems = _Collect()
    logger = logging.getLogger("tifffile")
    logger.addHandler(problems)
    try:
        yield
    finally:
        logger.removeHandler(problems)
    if problems.messages:
        raise FileFormatError(f"{what} ({'; '.join(problems.messages)}); the file is truncated or corrupt")


class _Collect(logging.Handler):
    """Collect tifffile's log records that report damage it worked around (errors, and warnings of damage).

    Only the records of the thread that opens the file: tifffile's logger is shared by
    the whole process, and another thread's damaged file must not be blamed on this one.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        message = record.getMessage()
        if record.levelno >= logging.ERROR or any(word in message for word in _DAMAGE_WORDS):
            self.messages.append(message.split("> ", 1)[-1])


_DAMAGE_WORDS = ("TiffFileError", "invalid", "not a valid", "raised", "corrupt", "truncated", "padded")
"""Words of tifffile's warnings that report damage it worked around (a tag whose value lies beyond the end
of the file is dropped with a warning, a tag whose value is not one TIFF defines "raised" an error that
tifffile logged; an unreadable ImageJ description falls back to a plain reading)."""


_OME_MARKERS = ("<OME", "openmicroscopy.org/Schemas/OME")
_OME_SUFFIXES = (".ome.tif", ".ome.tiff", ".ome.tf2", ".ome.tf8", ".ome.btf")
_IMAGEJ_TAGS = {50838, 50839}  # IJMetadataByteCounts, IJMetadata
_IMAGEJ_LINES = re.compile(r"^(images|channels|slices|frames|hyperstack)=", re.MULTILINE)
_IMAGEJ_COUNTS = ("images", "channels", "slices", "frames")
_IMAGEJ_NUMBERS = ("spacing", "finterval", "min", "max", "xorigin", "yorigin", "zorigin")


def _check_structure(tif: tifffile.TiffFile, path: Path) -> None:
    """Check what the file's metadata declares against the pages tifffile found.

    A file whose first page carries OME-XML or an ImageJ description is read under
    that description or not at all: when tifffile could not build the series from it
    (it would fall back to a plain reading of the pages, other axes and no metadata),
    the file is damaged. Every page of the main IFD chain must belong to a series
    (an OME ``SizeZ`` smaller than the pages would otherwise drop planes silently).
    """
    series = list(tif.series)
    first = tif.pages.first
    description = first.description or ""
    if any(marker in description for marker in _OME_MARKERS):
        _check_ome_series(tif, series, description, path)
    elif description.startswith("ImageJ="):
        _check_imagej_series(tif, series, path)
    elif description.startswith('{"shape":'):
        _check_shaped_series(series, description, path)
    elif path.name.lower().endswith(_OME_SUFFIXES):
        raise FileFormatError(
            f"{path}: the name says OME-TIFF but the first page carries no OME-XML (its ImageDescription is "
            f"{'missing' if 'ImageDescription' not in first.tags else 'not OME-XML'}); the metadata is damaged or "
            "lost; rename the file without '.ome' to read its pages as a plain TIFF"
        )
    elif _IMAGEJ_TAGS & set(first.tags.keys()) or _IMAGEJ_LINES.search(description):
        raise FileFormatError(
            f"{path}: the first page has ImageJ's metadata tags or counts but no valid ImageJ description (it must "
            "start with 'ImageJ='); the description is damaged or lost, and a plain reading would lose its axes "
            "and calibration"
        )
    _check_layout_tags(series, path)
    chains = [_chain_indices(tif, list(level.pages)) for s in series for level in s.levels]
    used = np.unique(np.concatenate(chains)) if chains else ()
    n_pages = len(tif.pages)
    if len(used) != n_pages:
        raise FileFormatError(
            f"{path}: the file holds {n_pages} pages (IFDs) but its metadata accounts for {len(used)} of them "
            f"({_kind(tif)} series of shapes {[tuple(s.shape) for s in series]}); the metadata (OME-XML sizes, "
            "ImageJ counts) does not describe the file's pages: it is damaged or was edited"
        )


def _check_layout_tags(series: list[tifffile.TiffPageSeries], path: Path) -> None:
    """The strip and tile sizes of every series' first page must be ones TIFF 6.0 allows,
    and an uncompressed first page must store the bytes its sizes take.

    ``RowsPerStrip`` and the tile sizes are at least 1 (TIFF asks multiples of 16 of
    tiles; files from writers that ignore this read fine and are accepted): a zero
    (a flipped or cleared field) would otherwise make tifffile split the pages into
    series of their own, and one image would come back as several.
    """
    for s in series:
        for level in s.levels:
            page = level.keyframe
            tags = page.tags
            rows = tags.valueof("RowsPerStrip")
            tile = (tags.valueof("TileLength"), tags.valueof("TileWidth"))
            bad = []
            if not page.is_tiled and rows is not None and int(rows) < 1:
                bad.append(f"RowsPerStrip={rows}")
            if page.is_tiled and any(t is None or int(t) < 1 for t in tile):
                bad.append(f"TileLength, TileWidth={tile}")
            if bad:
                raise FileFormatError(
                    f"{path}: page {page.index} has {', '.join(bad)}, which TIFF does not allow; "
                    "the file's directory is damaged"
                )
            _check_stored_bytes(
                path, page.index, tuple(page.shape), sum(page.databytecounts), _uncompressed_bytes(page)
            )


def _check_ome_series(
    tif: tifffile.TiffFile, series: list[tifffile.TiffPageSeries], description: str, path: Path
) -> None:
    """The OME-XML of the first page must be what tifffile built every series from."""
    if tif.is_ome and all(s.kind == "ome" for s in series):
        return
    try:
        ElementTree.fromstring(description)
    except ElementTree.ParseError as exc:
        why = f"cannot be parsed ({exc}); it is truncated or garbled"
    else:
        why = "does not describe the file's pages (sizes, TiffData or Pixels do not fit them)"
    raise FileFormatError(
        f"{path}: the file carries OME-XML that {why}; it is not read as a plain TIFF instead, which would lose "
        "its axes, sizes and channels (restore the file from a good copy, or rewrite its OME-XML)"
    )


def _check_shaped_series(series: list[tifffile.TiffPageSeries], description: str, path: Path) -> None:
    """tifffile's own ``{"shape": [...]}`` description must be the shape of the first series it built."""
    import json

    try:
        declared = tuple(int(n) for n in json.loads(description)["shape"])
    except (ValueError, TypeError, KeyError) as exc:
        raise FileFormatError(f"{path}: its shape description {description[:80]!r} is damaged ({exc})") from exc
    found = tuple(int(n) for n in series[0].shape)
    if series[0].kind != "shaped" or found != declared:
        raise FileFormatError(
            f"{path}: its description declares the shape {declared} but the pages make {found} "
            f"({len(series)} series); a page's size or layout tags are damaged"
        )


_IMAGEJ_KEY = re.compile(r"\s*[A-Za-z][A-Za-z0-9_]*\s*=")


def _check_imagej_series(tif: tifffile.TiffFile, series: list[tifffile.TiffPageSeries], path: Path) -> None:
    """The ImageJ description must be well formed and its counts must be the series' planes."""
    md = _imagej_metadata(tif, path)
    if not series or series[0].kind != "imagej":
        raise FileFormatError(
            f"{path}: the ImageJ description ({_imagej_counts(md)}) does not fit the file's pages; "
            "the file is damaged or its description was edited"
        )
    first = series[0]
    planes = math.prod(first.shape) // math.prod(first.keyframe.shape)
    samples = math.prod(first.keyframe.shape) // (first.keyframe.imagelength * first.keyframe.imagewidth)
    fits = {planes, planes * samples}  # an RGB image's channels may count its colour samples
    declared = [int(md[k]) for k in ("channels", "slices", "frames") if k in md]
    if int(md.get("images", planes)) not in fits or (declared and math.prod(declared) not in fits | {1}):
        raise FileFormatError(
            f"{path}: the ImageJ description declares {_imagej_counts(md)} but the file holds {planes} planes "
            f"of {tuple(first.keyframe.shape)}; the file is damaged or its description was edited"
        )


def _imagej_counts(md: dict[str, Any]) -> str:
    return ", ".join(f"{k}={md[k]}" for k in _IMAGEJ_COUNTS if k in md) or "no counts"


def _imagej_metadata(tif: tifffile.TiffFile, path: Path) -> dict[str, Any]:
    """The ImageJ description as a dict, after checking that it is well formed.

    Every line is ``key=value`` with an ASCII name for its key; the counts are
    positive integers and the numbers numbers. A line without ``=``, a key with other
    characters (a flipped byte in ``spacing``) or a count that is not a number is
    damage: tifffile skips or keeps such lines under another name, which loses what
    they said.
    """
    description = tif.pages.first.description or ""
    if not _raw_description(tif).rstrip(b"\0").endswith(b"\n"):
        raise FileFormatError(
            f"{path}: the ImageJ description ends inside a line ({description[-40:]!r}); ImageJ ends every line "
            "with a newline, so the description is truncated and what it said last is lost"
        )
    lines = [line for line in description.splitlines() if line.strip(" \t\r\0")]
    bad = [line for line in lines if not _IMAGEJ_KEY.match(line)]
    md = dict(tif.imagej_metadata or {})
    bad += [f"{k}={md[k]}" for k in _IMAGEJ_COUNTS if k in md and not (isinstance(md[k], int) and md[k] > 0)]
    bad += [f"{k}={md[k]}" for k in _IMAGEJ_NUMBERS if k in md and not isinstance(md[k], (int, float))]
    if bad:
        raise MetadataError(
            f"{path}: the ImageJ description has unreadable lines {bad[:3]}; it is damaged "
            "(re-save the image in ImageJ/Fiji or restore it from a good copy)"
        )
    return md


def _read_at(fh: Any, offset: int, count: int) -> bytes:
    """``count`` bytes of a tifffile file handle from ``offset`` (under its lock: the handle may be shared)."""
    with fh.lock:
        fh.seek(offset)
        return bytes(fh.read(count))


def _raw_description(tif: tifffile.TiffFile) -> bytes:
    """The first page's ImageDescription as stored (tifffile's text drops the trailing newline and NUL)."""
    tag = tif.pages.first.tags[270]
    return _read_at(tif.filehandle, tag.valueoffset, tag.count)


def _kind(tif: tifffile.TiffFile) -> str:
    if tif.is_ome:
        return "ome-tiff"
    if tif.is_lsm:
        return "lsm"
    if tif.is_imagej:
        return "imagej-tiff"
    return "tiff"


def _image_series(tif: tifffile.TiffFile) -> list[tifffile.TiffPageSeries]:
    """The series that are images (not thumbnails or reduced-resolution pages)."""
    out = [s for s in tif.series if not getattr(s.keyframe, "is_reduced", False)]
    if not out:
        raise FileFormatError(f"{tif.filehandle.path}: the TIFF file contains no image")
    return out


def _series_name(tif: tifffile.TiffFile, series: tifffile.TiffPageSeries) -> str | None:
    if tif.is_ome and series.name:
        return str(series.name)
    return None


def _lazy_series(path: Path, series: tifffile.TiffPageSeries) -> tuple[Any, str, _PageTable]:
    """Return the series as a lazy array (one chunk per page), its axes and its pages' table.

    Every page is checked first, with numpy over the offsets and byte counts tifffile
    parsed: an uncompressed page must store the bytes its size takes, no strip or tile
    may end beyond its file, and none may overlap another or the first page's directory.
    """
    pages: list[Any] = list(series.pages)
    shape = tuple(int(s) for s in series.shape)
    page_shape = tuple(int(s) for s in series.keyframe.shape)
    n_lead = len(shape) - len(page_shape)
    if n_lead < 0 or shape[n_lead:] != page_shape:
        raise FileFormatError(f"{path}: series shape {shape} does not end with the page shape {page_shape}")
    lead = shape[:n_lead]
    expected = math.prod(lead)
    present = len(pages) - pages.count(None)
    if len(pages) != expected or present != expected:
        raise FileFormatError(
            f"{path}: the metadata declares {expected} planes of {page_shape} but the file holds "
            f"{present}; the file is truncated or its metadata is wrong"
        )
    dtype = np.dtype(series.dtype).newbyteorder("=")
    table = _PageTable(pages)
    table.check(page_shape, _uncompressed_bytes(series.keyframe), series.keyframe)
    first = table.first_of_run()
    if first is not None:  # pages one after another in one file, as writers store them: no table per page
        array = array_from_indexed_chunks(
            _read_page,
            (table.paths[0],),
            first,
            (page_shape, dtype.str),
            lead,
            page_shape,
            dtype,
            name="omio-tiff",
            source=str(path),
            token=(str(path), table.stamps(), first, len(pages), page_shape, dtype.str),
        )
        return array, str(series.axes), table
    args = np.empty(len(pages), dtype=object)
    for i, page in enumerate(pages):
        tree = page.treeindex  # (page,) or (page, level) for a SubIFD
        subifd = () if len(tree) == 1 else ((tree[1], int(page.offset)),)
        args[i] = (table.paths[table.codes[i]], tree[0], page_shape, dtype.str, *subifd)
    array = array_from_chunks(
        _read_page,
        args.reshape(lead) if lead else args.reshape(()),
        page_shape,
        dtype,
        name="omio-tiff",
        source=str(path),
        # stable across processes (a cache keyed by graph names finds the same array again); a str hashes fast
        token=(str(path), table.stamps(), repr([a[1:] for a in args])),
    )
    return array, str(series.axes), table


class _PageTable:
    """Which file holds each page of a series, and every strip or tile's offset and byte count, as numpy arrays.

    Gathered once from tifffile's pages (TiffPage or TiffFrame objects, all present),
    so that the checks of every page are numpy operations, not Python per page.
    """

    def __init__(self, pages: list[Any]) -> None:
        self.pages = pages
        n = len(pages)
        parents = list(map(operator.attrgetter("parent"), pages))
        files = list(dict.fromkeys(parents))
        if len(files) == 1:
            self.codes: np.ndarray[Any, Any] = np.zeros(n, dtype=np.intp)
        else:
            number = {f: i for i, f in enumerate(files)}
            self.codes = np.fromiter(map(number.__getitem__, parents), dtype=np.intp, count=n)
        self.files = files
        self.paths = [str(Path(f.filehandle.dirname) / f.filehandle.name) for f in files]
        self.sizes = np.array([int(f.filehandle.size) for f in files], dtype=np.int64)
        offsets = list(map(operator.attrgetter("dataoffsets"), pages))
        counts = list(map(operator.attrgetter("databytecounts"), pages))
        n_offsets = np.fromiter(map(len, offsets), dtype=np.intp, count=n)
        n_counts = np.fromiter(map(len, counts), dtype=np.intp, count=n)
        flat_counts = _flat(counts, int(n_counts.sum()))
        bounds = np.concatenate(([0], np.cumsum(n_counts)))
        sums = np.concatenate(([0], np.cumsum(flat_counts)))
        self.stored = sums[bounds[1:]] - sums[bounds[:-1]]  # bytes each page stores
        paired = np.minimum(n_offsets, n_counts)  # an offset without a byte count (or one more) has no extent
        if not np.array_equal(paired, n_offsets):
            offsets = [o[:k] for o, k in zip(offsets, paired.tolist(), strict=True)]
        if not np.array_equal(paired, n_counts):
            counts = [c[:k] for c, k in zip(counts, paired.tolist(), strict=True)]
            flat_counts = _flat(counts, int(paired.sum()))
        self.offsets = _flat(offsets, int(paired.sum()))
        self.counts = flat_counts
        self.page_of = np.repeat(np.arange(n, dtype=np.intp), paired)  # the page of each strip or tile

    def check(self, page_shape: tuple[int, ...], needed: tuple[int, int] | None, keyframe: Any) -> None:
        """Raise FileFormatError for the first damaged page, then for overlapping extents in any file.

        ``needed``: see :func:`_uncompressed_bytes`. No strip or tile may overlap the
        directory and tag values of ``keyframe``, the series' first page, in its file.
        """
        n = len(self.pages)
        bad_size = np.flatnonzero((self.stored < needed[0]) | (self.stored > needed[1])) if needed else self.stored[:0]
        ends = self.offsets + self.counts
        beyond = np.flatnonzero(ends > self.sizes[self.codes[self.page_of]])
        first_size = int(bad_size[0]) if len(bad_size) else n
        first_end = int(self.page_of[beyond[0]]) if len(beyond) else n
        if first_size < n and first_size <= first_end:
            page = self.pages[first_size]
            path = self.paths[self.codes[first_size]]
            _check_stored_bytes(path, page.index, page_shape, int(self.stored[first_size]), needed)
        if first_end < n:
            page = self.pages[first_end]
            path = self.paths[self.codes[first_end]]
            end = int(ends[self.page_of == first_end].max())
            size = int(self.sizes[self.codes[first_end]])
            raise FileFormatError(
                f"{path}: page {page.index} needs bytes up to {end} but the file has {size}; the file is truncated"
            )
        seg_file = self.codes[self.page_of]
        for code, path in enumerate(self.paths):
            mask = seg_file == code
            extents = np.stack([self.offsets[mask], self.counts[mask]], axis=1)
            if keyframe.parent is not None and self.files[code] is keyframe.parent:
                directory = np.asarray(_directory_extents(keyframe), dtype=np.int64).reshape(-1, 2)
                extents = np.concatenate([extents, directory])
            _check_disjoint(path, extents)

    def first_of_run(self) -> int | None:
        """The first page's index when the pages are pages ``k, k + 1, ...`` of one file's main IFD chain."""
        if len(self.files) != 1:
            return None
        trees = list(map(operator.attrgetter("treeindex"), self.pages))
        if max(map(len, trees), default=1) != 1:  # a SubIFD
            return None
        indices = np.fromiter(map(operator.itemgetter(0), trees), dtype=np.int64, count=len(trees))
        first = int(indices[0]) if len(indices) else 0
        if not np.array_equal(indices, np.arange(first, first + len(indices))):
            return None
        return first

    def stamps(self) -> list[tuple[str, int, int]]:
        """Each file's path, size and modification time (for the dask graph's name)."""
        return sorted((p, int(n), os.stat(p).st_mtime_ns) for p, n in zip(self.paths, self.sizes, strict=True))


def _chain_indices(tif: tifffile.TiffFile, pages: list[Any]) -> np.ndarray[Any, Any]:
    """The main IFD chain indices of the pages that are ``tif``'s own (not SubIFDs, not other files' pages)."""
    if None in pages:
        pages = [p for p in pages if p is not None]
    trees = list(map(operator.attrgetter("treeindex"), pages))
    parents = list(map(operator.attrgetter("parent"), pages))
    if max(map(len, trees), default=1) == 1 and parents.count(tif) == len(parents):
        return np.fromiter(map(operator.itemgetter(0), trees), dtype=np.int64, count=len(trees))
    own = [t[0] for t, parent in zip(trees, parents, strict=True) if parent is tif and len(t) == 1]
    return np.asarray(own, dtype=np.int64)


def _flat(values: list[tuple[int, ...]], count: int) -> np.ndarray[Any, Any]:
    """The concatenated tuples as one int64 array."""
    return np.fromiter(itertools.chain.from_iterable(values), dtype=np.int64, count=count)


def _directory_extents(keyframe: Any) -> list[tuple[int, int]]:
    """The bytes of a page's directory and of its tag values stored outside it (offset, byte count)."""
    entry, frame = (20, 16) if keyframe.parent.is_bigtiff else (12, 6)  # entry size, count + next offset
    start, end = int(keyframe.offset), int(keyframe.offset) + frame + entry * len(keyframe.tags)
    return [(start, end - start)] + [
        (int(tag.valueoffset), int(tag.valuebytecount))
        for tag in keyframe.tags
        if not start <= tag.valueoffset < end and tag.code not in _POINTER_TAGS
    ]


_POINTER_TAGS = {273, 279, 324, 325, 330}
"""Tags whose values are offsets to or sizes of other data (checked themselves as pixel extents or SubIFDs)."""


def _check_stored_bytes(
    path: str | Path, index: Any, shape: tuple[int, ...], stored: int, needed: tuple[int, int] | None
) -> None:
    """An uncompressed page must store the bytes its sizes take (``needed``: see :func:`_uncompressed_bytes`)."""
    if needed is not None and not needed[0] <= stored <= needed[1]:
        raise FileFormatError(
            f"{path}: page {index} stores {stored} bytes of uncompressed pixels but its declared size {shape} "
            f"takes {needed[0]}; its size, bit-depth or byte-count tags are damaged"
        )


def _check_disjoint(path: str, extents: list[tuple[int, int]] | np.ndarray[Any, Any]) -> None:
    """Refuse strips or tiles whose bytes overlap (a damaged offset reads another plane's pixels).

    The same extent given twice is allowed (writers store identical empty tiles once).
    """
    if len(extents) < 2:
        return
    table = np.asarray(extents, dtype=np.int64).reshape(-1, 2)
    table = table[table[:, 1] > 0]
    if not np.all(table[1:, 0] > table[:-1, 0]):  # not in order of offset already (as pages are mostly written)
        table = table[np.lexsort((table[:, 1], table[:, 0]))]
        repeated = np.all(table[1:] == table[:-1], axis=1)
        table = table[np.concatenate(([True], ~repeated))]
    ends = table[:-1, 0] + table[:-1, 1]
    clash = np.flatnonzero(ends > table[1:, 0])
    if clash.size:
        (a, n), (b, m) = table[clash[0]], table[clash[0] + 1]
        raise FileFormatError(
            f"{path}: pixel data at bytes {a}..{a + n} and {b}..{b + m} overlap (with each other or with the "
            "first page's directory); a strip or tile offset is damaged, and its plane would show other bytes"
        )


def _uncompressed_bytes(keyframe: Any) -> tuple[int, int] | None:
    """The least and most bytes an uncompressed page may store (``None`` for compressed pages).

    From the page's size tags: rows of ``ceil(width * samples * bits / 8)`` bytes, the
    last strip exact or padded to whole strips (a byte of slack per strip), tiles always
    whole. Size, sample or bit-depth tags that disagree with the stored byte counts are
    damage: the pixels would be read with another meaning.
    """
    if keyframe.compression != 1:
        return None
    planes = keyframe.samplesperpixel if keyframe.planarconfig == 2 else 1
    samples = keyframe.samplesperpixel // planes
    depth, bits = keyframe.imagedepth, keyframe.bitspersample
    if keyframe.is_tiled:
        tiles = (
            -(-keyframe.imagewidth // keyframe.tilewidth)
            * -(-keyframe.imagelength // keyframe.tilelength)
            * -(-depth // keyframe.tiledepth)
        )
        tile = -(-keyframe.tilewidth * samples * bits // 8) * keyframe.tilelength * keyframe.tiledepth
        return tiles * tile * planes, tiles * tile * planes
    row = -(-keyframe.imagewidth * samples * bits // 8)
    rows_per_strip = max(1, min(keyframe.rowsperstrip or keyframe.imagelength, keyframe.imagelength))
    strips = -(-keyframe.imagelength // rows_per_strip) * depth * planes
    exact = row * keyframe.imagelength * depth * planes
    return exact, strips * (rows_per_strip * row + 1)


def _tzcyx_shape(series: tifffile.TiffPageSeries, user_axes: str | None) -> tuple[int, ...]:
    """The TZCYX shape a series maps to (by the file's axes, or the user's)."""
    import dask.array as da

    # never computed: a fixed name spares hashing a graph on every open
    placeholder = da.empty(series.shape, dtype=series.dtype, chunks=-1, name="omio-shape-probe")
    mapping = to_tzcyx(placeholder, user_axes or str(series.axes), stated_by="user" if user_axes else "file")
    return tuple(int(n) for n in mapping.data.shape)


def _level_geometry(sizes: dict[str, Measure | None], full: tuple[int, ...], reduced: tuple[int, ...]) -> LevelGeometry:
    """Pixel sizes and origin offsets of a reduced level from the full level's (see :mod:`omio.pyramid`)."""
    return level_geometry(sizes, level_factors(full, reduced))


@dataclass
class _Info:
    physical_sizes: dict[str, Measure | None]
    time_increment: Measure | None
    channel_names: list[str | None] | None
    original: dict[str, str]
    ome_xml: str | None = None
    planes: tuple[PlaneInfo, ...] = ()


def _metadata(
    tif: tifffile.TiffFile,
    series: tifffile.TiffPageSeries,
    kind: str,
    index: int,
    parts: tuple[ChannelPart, ...],
    path: Path,
) -> _Info:
    if kind == "ome-tiff":
        return _ome_info(tif, index, path, series)
    if kind == "imagej-tiff":
        return _imagej_info(tif, series, path)
    if kind == "lsm":
        return _lsm_info(tif, path)
    return _plain_info(series)


def _check_stated_values(info: _Info, path: Path) -> None:
    """A stated pixel size or interval must be a positive finite number (0 means unset and is ``None`` already)."""
    stated = {f"physical size {axis}": m for axis, m in info.physical_sizes.items()}
    stated["time increment"] = info.time_increment
    bad = [f"{what} {m.magnitude} {m.units}" for what, m in stated.items() if m and not 0 < m.magnitude < math.inf]
    if bad:
        raise MetadataError(
            f"{path}: the metadata states {', '.join(bad)}; sizes and intervals are positive, so the metadata is "
            "damaged (state the right values with ds.with_metadata after opening a repaired copy)"
        )


def _resolution_um(page: Any, axis: str) -> float | None:
    tag = page.tags.get(f"{axis}Resolution")
    if tag is None:
        return None
    num, den = tag.value
    if not num or not den:
        return None
    return float(den) / float(num)


def _plain_info(series: tifffile.TiffPageSeries) -> _Info:
    """Plain TIFF: X/Y only from XResolution/YResolution in inch or cm (as Bio-Formats)."""
    page = series.keyframe
    unit_tag = page.tags.get("ResolutionUnit")
    per_unit = {2: 25400.0, 3: 10000.0}.get(int(unit_tag.value) if unit_tag is not None else 2)
    sizes: dict[str, Measure | None] = {"X": None, "Y": None, "Z": None}
    if per_unit is not None and unit_tag is not None:
        for axis in ("X", "Y"):
            value = _resolution_um(page, axis)
            sizes[axis] = Measure(value * per_unit, "micrometer") if value else None
    return _Info(sizes, None, None, {})


def _imagej_info(tif: tifffile.TiffFile, series: tifffile.TiffPageSeries, path: Path) -> _Info:
    md = _imagej_metadata(tif, path)
    unit_text = md.get("unit")
    sizes: dict[str, Measure | None] = {"X": None, "Y": None, "Z": None}
    if unit_text is not None and str(unit_text).strip().lower() not in ("pixel", "pixels", ""):
        unit = units.unit_name(
            str(unit_text).encode().decode("unicode_escape") if "\\u" in str(unit_text) else str(unit_text)
        )
        for axis in ("X", "Y"):
            value = _resolution_um(series.keyframe, axis)
            sizes[axis] = Measure(value, unit) if value else None
        spacing = md.get("spacing")
        if spacing is not None:  # ImageJ writes it only for a depth other than 1: a 0 is damage, not 'unset'
            sizes["Z"] = Measure(float(spacing), unit)
    finterval = md.get("finterval")
    increment = None
    if finterval is not None:  # written only when not 0
        increment = Measure(float(finterval), units.unit_name(str(md.get("tunit", "sec"))))
    original = {f"imagej:{k}": as_text(v) for k, v in md.items() if _is_small(v)}
    return _Info(sizes, increment, None, original)


def _lsm_info(tif: tifffile.TiffFile, path: Path) -> _Info:
    lsm = dict(tif.lsm_metadata or {})
    sizes: dict[str, Measure | None] = {}
    for axis in ("X", "Y", "Z"):
        value = float(lsm.get(f"VoxelSize{axis}") or 0)
        if not math.isfinite(value) or value < 0:
            raise MetadataError(f"{path}: the LSM header's VoxelSize{axis} is {value}; the header is damaged")
        placeholder = value <= 1e-12  # unset, or Zeiss' 1e-19 m
        sizes[axis] = None if placeholder else Measure(value * 1e6, "micrometer")  # metres
    if (sizes["X"] is None) != (sizes["Y"] is None):
        raise MetadataError(
            f"{path}: the LSM header states a pixel size for only one of X and Y (VoxelSizeX "
            f"{lsm.get('VoxelSizeX')}, VoxelSizeY {lsm.get('VoxelSizeY')}); a scan has both, so the header is damaged"
        )
    interval = lsm.get("TimeIntervall")
    increment = Measure(float(interval), "second") if interval else None
    colors = lsm.get("ChannelColors") or {}
    names = [str(n) if n else None for n in colors.get("ColorNames", [])] or None
    n_c = int(lsm.get("DimensionChannels", 1))
    if names is not None and len(names) != n_c:
        names = None
    original = {f"lsm:{k}": as_text(v) for k, v in lsm.items() if _is_small(v)}
    return _Info(sizes, increment, names, original)


def _is_small(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool)):
        return len(str(value)) < 10_000
    if isinstance(value, (list, tuple)):
        return len(value) < 1000 and all(isinstance(v, (str, int, float)) for v in value)
    if isinstance(value, dict):
        return len(str(value)) < 10_000
    return False


def _ome_info(tif: tifffile.TiffFile, index: int, path: Path, series: tifffile.TiffPageSeries) -> _Info:
    """Pixel sizes, time increment, channel names and Plane elements of one image of the OME-XML.

    Read with ElementTree: the full model is parsed with ome-types only when it is
    needed (:func:`_build_ome`).
    """
    xml = tif.ome_metadata or ""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise MetadataError(f"{path}: the OME-XML cannot be parsed ({exc})") from exc
    images = root.findall("{*}Image")
    if index >= len(images):
        raise MetadataError(f"{path}: the OME-XML describes {len(images)} images, series {index} has none")
    pixels = images[index].find("{*}Pixels")
    if pixels is None:
        raise MetadataError(f"{path}: the OME-XML's image {index} has no Pixels element")
    try:
        sizes = {axis: _ome_measure(pixels, f"PhysicalSize{axis}", units.length_name_from_ome) for axis in "XYZ"}
        increment = _ome_measure(pixels, "TimeIncrement", units.time_name_from_ome)
    except (ValueError, TypeError, AttributeError) as exc:  # pint's unit errors are ValueErrors and AttributeErrors
        raise MetadataError(f"{path}: the OME-XML's image {index} has an unreadable size or unit ({exc})") from exc
    _check_ome_pixel_type(pixels, series, index, path)
    planes = _ome_planes(pixels, index, path)
    channels = pixels.findall("{*}Channel")
    _check_ome_channels(pixels, channels, index, path)
    _check_utf8(tif, path)
    names = [channel.get("Name") or None for channel in channels]
    return _Info(sizes, increment, names, {}, ome_xml=xml, planes=planes)


_OME_TYPES = {ome: numpy for numpy, ome in OME_PIXEL_TYPES.items()}
"""The numpy dtype name of each OME pixel ``Type``."""


def _check_ome_pixel_type(pixels: ElementTree.Element, series: tifffile.TiffPageSeries, index: int, path: Path) -> None:
    """The OME-XML's pixel ``Type`` must be what the pages store (their sample format and bits per sample)."""
    stated = pixels.get("Type", "")
    expected = _OME_TYPES.get(stated)
    page = series.keyframe
    stored = np.dtype(series.dtype)
    bits = int(page.bitspersample)
    if expected is None:
        raise MetadataError(f"{path}: the OME-XML's image {index} has pixel Type {stated!r}, which OME does not define")
    want = np.dtype(expected)
    fits = stored.kind == want.kind and stored.itemsize == want.itemsize and _packed_bits_fit(page)
    if want.kind == "b":
        fits = stored.kind in "bu" and stored.itemsize == 1 and bits in (1, 8)
    if not fits:
        raise FileFormatError(
            f"{path}: the OME-XML says image {index} holds {stated} pixels but its pages store {bits}-bit "
            f"{stored} samples; the pages' BitsPerSample or SampleFormat, or the OME-XML, is damaged"
        )


_BYTE_CODECS = {5, 8, 32946, 32773, 50000, 34925}
"""Compressions whose decoded bytes are the samples as stored (LZW, Deflate, PackBits, Zstd, LZMA), unlike JPEG."""


def _packed_bits_fit(page: Any) -> bool:
    """Whether a page's bits per sample fit its stored bytes (checked on its first strip or tile).

    Samples of 12 or 13 bits are stored packed; a BitsPerSample that was changed would
    unpack the bytes into other numbers. Whole-byte depths and codecs that decode to
    samples (JPEG) are taken as stated; uncompressed pages are checked by their byte counts.
    """
    bits = int(page.bitspersample)
    if bits % 8 == 0 or page.compression not in _BYTE_CODECS or not page.databytecounts:
        return True
    import tifffile

    raw = _read_at(page.parent.filehandle, page.dataoffsets[0], page.databytecounts[0])
    try:
        decoded = tifffile.TIFF.DECOMPRESSORS[page.compression](raw)
    except Exception:  # a segment that does not decode is reported when it is read
        return True
    samples = page.samplesperpixel if page.planarconfig == 1 else 1
    width, rows = (page.tilewidth, page.tilelength) if page.is_tiled else (page.imagewidth, page.rowsperstrip)
    rows = min(rows or page.imagelength, page.imagelength) if not page.is_tiled else rows
    return bool(len(decoded) == -(-width * samples * bits // 8) * rows)


def _ome_planes(pixels: ElementTree.Element, index: int, path: Path) -> tuple[PlaneInfo, ...]:
    """The Plane elements of an OME-XML Pixels element, each within SizeT, SizeZ and SizeC and none twice."""
    where = f"{path}: the OME-XML's image {index}"
    try:
        planes = planes_from_xml(pixels)
        sizes = tuple(int(pixels.get(f"Size{d}") or 1) for d in "TZC")
    except ValueError as exc:
        raise MetadataError(f"{where} has a Plane with an unreadable value ({exc})") from exc
    misplaced = misplaced_plane((plane.index for plane in planes), sizes)
    if misplaced is not None:
        t, z, c = misplaced
        raise MetadataError(
            f"{where} has a Plane TheT={t} TheZ={z} TheC={c} outside SizeT, SizeZ, SizeC {sizes} or twice; "
            "the OME-XML is damaged"
        )
    return planes


def _check_ome_channels(
    pixels: ElementTree.Element, channels: list[ElementTree.Element], index: int, path: Path
) -> None:
    """The Channel elements (with their samples) must add up to SizeC, or names would land on other channels."""
    if not channels:
        return
    try:
        samples = sum(int(c.get("SamplesPerPixel") or 1) for c in channels)
        size_c = int(pixels.get("SizeC") or 0)
    except ValueError as exc:
        raise MetadataError(f"{path}: the OME-XML's image {index} has an unreadable channel count ({exc})") from exc
    if samples != size_c:
        raise MetadataError(
            f"{path}: the OME-XML's image {index} declares SizeC={size_c} but its {len(channels)} Channel elements "
            f"hold {samples}; the OME-XML is damaged (a channel's names and colours cannot be assigned)"
        )


def _check_utf8(tif: tifffile.TiffFile, path: Path) -> None:
    """OME-XML is UTF-8: bytes that are not (tifffile reads them as another encoding) are damage."""
    tag = tif.pages.first.tags.get("ImageDescription")
    if tag is None:
        return
    raw = _read_at(tif.filehandle, tag.valueoffset, tag.count)
    try:
        raw.rstrip(b"\0").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"{path}: the OME-XML is not valid UTF-8 ({exc}); it is damaged") from exc


def _ome_measure(pixels: ElementTree.Element, attribute: str, unit_of: Callable[[str | None], str]) -> Measure | None:
    """An OME size or interval attribute with its unit attribute (the schema's default unit when absent).

    ``None`` where it is missing or not positive, as :func:`omio.metadata.physical_pixel_sizes`.
    """
    text = pixels.get(attribute)
    if text is None:
        return None
    value = float(text)
    if value == 0:
        return None
    return Measure(value, unit_of(pixels.get(f"{attribute}Unit")))
