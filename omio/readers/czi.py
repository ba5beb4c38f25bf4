"""Reader for Carl Zeiss CZI files (through czifile).

Each CZI scene is one image. Opening reads the subblock directory and the XML
metadata only; pixels are read by dask tasks, one per plane (one T, Z, C index,
the full Y, X of the scene's bounding box) or per tile region of very large
mosaics. Tasks capture only picklable values and fetch the open file from the
per-process handle cache, so graphs pickle and run on any worker.

Mapping onto TZCYX (stated in ``ImageSource.axes_rule``):

- T, Z and C keep their meaning; a dim the file lacks has size 1.
- Mosaic tiles (M) are stitched on the scene's own bounding box; uncovered pixels
  are 0 and overlapping tiles are drawn in file order (the later tile wins).
- Any other dim of size > 1 (Airyscan H, B, V, I, R...) is folded into C,
  channel-major (C outer, the extra dims inner); size-1 extra dims are dropped.
- RGB pixel types (Bgr24, Bgr48, Bgr96Float, Bgra32) become C samples in R, G, B(, A)
  order, innermost.

Plane table (OME ``Plane`` elements, stated in the axes rule): ``PositionX/Y`` = the
scene's bounding-box start times the ``Scaling`` pixel size (micrometres, in the pixel
frame all scenes share, so scenes lie side by side as acquired); ``PositionZ`` = the
``FocusPosition`` and ``DeltaT`` = the ``AcquisitionTime`` (minus the scene's earliest)
of each plane's first subblock, read from its metadata bytes only (never its pixels),
for scenes of at most ``MAX_PLANE_METADATA`` planes; ``ExposureTime`` = the camera
``ExposureTime`` in that subblock's ``DetectorState``, else the channel's (both nanoseconds).
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from xml.etree import ElementTree

import numpy as np

from omio._scheduler import cpu_count
from omio.dims import SAMPLE_COLORS, SAMPLE_NAMES
from omio.errors import DimensionError, FileFormatError, MetadataError
from omio.lazy_ome import deferred_make_ome
from omio.pyramid import level_factors, level_geometry, level_origin
from omio.readers._base import ImageSource, SceneSelector, select_scene
from omio.readers._handles import cached_handle
from omio.readers._lazy import array_from_tasks
from omio.readers._optional import library_errors
from omio.readers._planes import finite, parse_time, plane_infos, plane_row, too_many_planes
from omio.record import ImageRecord, PlaneInfo
from omio.units import Measure

if TYPE_CHECKING:
    import czifile
    import dask.array as da
    from ome_types.model import Instrument, ObjectiveSettings

__all__ = ["CziReader"]

MAGIC = b"ZISRAWFILE"
HEADER_SIZE = 32 + 512
"""The file header segment: a segment header and its 512 bytes of data."""
SPATIAL = ("Y", "X", "S")
"""czifile's plane dims: S holds the colour samples of a pixel (not the scene)."""
MAX_PLANE_METADATA = 16384
"""At most this many subblock metadata segments are read to open a scene (one per plane)."""
MAX_SUBBLOCK_METADATA = 2**20
"""Subblock metadata larger than this (bytes) is not read for the plane table."""
MAX_PLANE_BYTES = 256 * 2**20
"""Planes larger than this are split into tile regions of ``TILE`` x ``TILE`` pixels."""
TILE = 4096
type Dims = tuple[str, ...]
type Coords = tuple[int, ...]
_IMMERSIONS = frozenset({"Oil", "Water", "WaterDipping", "Air", "Multi", "Glycerol", "Other"})


# --------------------------------------------------------------------------- handles and tasks


class _CziHandle:
    """An open CziFile shared by the dask tasks of one process.

    The file is memory-mapped, so subblocks are decoded or copied straight from the
    page cache without an intermediate read buffer or a shared file position (czifile
    falls back to locked reads, ``set_lock``, where mapping is not possible). The lock
    here guards the per-plane index of directory entries, built once per scene and level.
    """

    def __init__(self, path: str) -> None:
        import czifile

        self.czi = czifile.CziFile(path, squeeze=False, memmap=True)
        self.czi.set_lock(True)
        self.lock = threading.Lock()
        self._index: dict[tuple[int, int, Dims], dict[Coords, list[Any]]] = {}

    def plane_entries(self, scene: int, level: int, dims: Dims, plane: Coords) -> list[Any]:
        """Return the directory entries of one plane, in drawing (file / M) order."""
        key = (scene, level, dims)
        with self.lock:
            index = self._index.get(key)
            if index is None:
                image = self.czi.scenes[scene].levels[level]
                index = _group_by_plane(image.directory_entries, dims)
                self._index[key] = index
        return index.get(plane, [])

    def close(self) -> None:
        """Close the file."""
        self.czi.close()


def _open_czi(path: str) -> _CziHandle:
    """Open a CZI file for the handle cache (module level, so its name is a stable key)."""
    return _CziHandle(path)


def _group_by_plane(entries: Sequence[Any], dims: Dims) -> dict[Coords, list[Any]]:
    """Group directory entries by their absolute start coordinates along ``dims``."""
    index: dict[Coords, list[Any]] = {}
    for entry in entries:
        start = dict(zip(entry.dims, entry.start, strict=True))
        index.setdefault(tuple(start.get(d, 0) for d in dims), []).append(entry)
    return index


@dataclass(frozen=True)
class _Block:
    """Everything a task needs to read one chunk: picklable values only."""

    path: str
    scene_key: int
    level: int
    dims: Dims
    plane: Coords
    present: bool
    roi: tuple[int, int, int, int]
    pixeltype: int
    shape: tuple[int, int, int]
    """Output shape (samples, Y, X)."""
    dtype: str


def _read_block(block: _Block) -> np.ndarray[Any, Any]:
    """Read one chunk (shape ``(1, 1, samples, Y, X)``); absent planes and tiles are 0.

    czifile composites the tiles straight into the returned buffer (no intermediate
    plane, no copy): the result is a view of that buffer in TZCYX order.
    """
    if not block.present:
        return np.zeros((1, 1, *block.shape), dtype=block.dtype)
    with _wrap_errors(
        block.path, f"reading scene {block.scene_key} plane {dict(zip(block.dims, block.plane, strict=True))}"
    ):
        import czifile

        handle = cached_handle(_open_czi, block.path)
        entries = handle.plane_entries(block.scene_key, block.level, block.dims, block.plane)
        entries = [e for e in entries if _overlaps(e, block.roi)]
        if not entries:
            return np.zeros((1, 1, *block.shape), dtype=block.dtype)
        _check_subblocks(handle.czi, entries, block.path)
        view = czifile.CziImage(
            handle.czi,
            tuple(entries),
            squeeze=False,
            roi=block.roi,
            pixeltype=czifile.CziPixelType(block.pixeltype),
        )
        buffer = np.zeros(view.shape, dtype=block.dtype)  # uncovered pixels stay 0
        view.asarray(maxworkers=1, fillvalue=None, out=buffer)
        dims = view.dims
        order = [d for d in dims if d not in SPATIAL] + [d for d in SPATIAL if d in dims]
        samples, ny, nx = block.shape
        plane = buffer.transpose([dims.index(d) for d in order]).reshape(ny, nx, samples)
    return np.moveaxis(plane, -1, 0)[np.newaxis, np.newaxis]


def _extent(entry: Any) -> tuple[int, int, int, int]:
    """A directory entry's logical extent in the scene's pixels: (x, y, w, h)."""
    start = dict(zip(entry.dims, entry.start, strict=True))
    shape = dict(zip(entry.dims, entry.shape, strict=True))
    return start.get("X", 0), start.get("Y", 0), shape.get("X", 1), shape.get("Y", 1)


def _overlaps(entry: Any, roi: tuple[int, int, int, int]) -> bool:
    """Return True if a directory entry's logical extent overlaps ``roi`` (x, y, w, h)."""
    ex, ey, ew, eh = _extent(entry)
    x, y, w, h = roi
    return bool(ex < x + w and ex + ew > x and ey < y + h and ey + eh > y)


def _covers(entry: Any, roi: tuple[int, int, int, int]) -> bool:
    """Return True if a directory entry's logical extent covers all of ``roi`` (x, y, w, h)."""
    ex, ey, ew, eh = _extent(entry)
    x, y, w, h = roi
    return bool(ex <= x and ey <= y and ex + ew >= x + w and ey + eh >= y + h)


def _check_subblocks(czi: czifile.CziFile, entries: Sequence[Any], path: str) -> None:
    """Check each entry's subblock: a subblock, described as its directory entry says, within the file.

    A subblock segment repeats its directory entry: the two must agree on pixel type,
    compression and every dimension (start, size, stored size), so an entry altered in
    the directory cannot draw the wrong pixels in silence.

    Raises
    ------
    FileFormatError
        Where an entry points at something that is not a subblock, at a subblock that
        describes other pixels, or at one whose data runs past its segment or the file.
    """

    size = czi.filesize
    for entry in entries:
        where = f"the subblock directory entry at offset {entry.offset} points at offset {entry.file_position}"
        sid = bytes(czi._read_at(entry.file_position, 16)).rstrip(b"\0")
        if sid == b"DELETED":
            continue
        if sid != b"ZISRAWSUBBLOCK":
            raise FileFormatError(
                f"{path}: {where}, but the segment there is {sid!r}, not a subblock; the file is corrupt"
            )
        segment = cast("czifile.CziSubBlockSegmentData", entry.read_segment_data(czi))
        n = entry.storage_size
        listed = bytes(czi._read_at(entry.offset, n))
        inline = bytes(czi._read_at(entry.file_position + 48, n))
        # schema and pixel type, compression and pyramid type, the dimensions (the file position,
        # file part and reserved bytes of the subblock's own copy are not compared)
        same = all(listed[a:b] == inline[a:b] for a, b in ((0, 6), (18, 23), (28, n)))
        end = segment.data_offset + segment.data_size
        stored = entry.stored_size * entry.dtype.itemsize
        if not same:
            raise _damaged(path, f"{where}, but that subblock describes other pixels (its own entry differs)")
        used_end = entry.file_position + 32 + segment.segment.used_size
        allocated_end = entry.file_position + 32 + segment.segment.allocated_size
        sizes = (segment.metadata_size, segment.attachment_size, segment.data_size)
        if min(sizes) < 0 or end > used_end or max(used_end, allocated_end) > size:
            raise _damaged(
                path, f"{where}, a subblock whose data ends at {end}, beyond its segment or the file ({size} bytes)"
            )
        if entry.compression == 0 and segment.data_size < stored:
            raise _damaged(
                path, f"{where}, an uncompressed subblock of {segment.data_size} bytes; its pixels need {stored}"
            )


def _wrap_errors(path: str | os.PathLike[str], doing: str) -> AbstractContextManager[None]:
    """Turn czifile's (and its decoders') exceptions into FileFormatError naming the file."""
    return library_errors(path, doing, what="CZI file", hint="the file may be truncated or corrupt")


# --------------------------------------------------------------------------- integrity checks
#
# Opening cross-checks the file's structure (header, segments, directory) and the
# XML's declared sizes against the subblock directory, both ways, before anything is
# sized from them; reading a chunk cross-checks each subblock against its entry.

PLANE_DIMS = frozenset("ZCTRIHVB")
"""Non-spatial dims a subblock may name besides Y and X (S and M are read apart)."""
MAX_ENTRY_DIMS = 16
MAX_TASKS = 2**20
"""At most this many dask tasks per scene."""
MAX_SPARSENESS = 64
"""A scene's bounding box may be at most this many times the area its tiles cover."""
_SEGMENT_IDS = {
    "subblock directory": "ZISRAWDIRECTORY",
    "metadata": "ZISRAWMETADATA",
    "attachment directory": "ZISRAWATTDIR",
}
_DAMAGED = "the file is damaged (edited, partly overwritten or not completely written)"


def _damaged(path: str | os.PathLike[str], what: str) -> FileFormatError:
    """A FileFormatError for a CZI file whose structure or metadata contradicts itself."""
    return FileFormatError(f"{os.fspath(path)}: damaged CZI file: {what}; {_DAMAGED}")


def _check_structure(czi: czifile.CziFile, path: Path) -> None:
    """Check the header's segments and the subblock directory against the file and each other.

    Raises
    ------
    FileFormatError
        When a segment is missing, of the wrong kind or beyond the end of the file, or
        when a directory entry cannot be a subblock of this file.
    """
    import czifile

    header = czi.header
    size = czi.filesize
    for what, pos in (
        ("subblock directory", header.directory_position),
        ("metadata", header.metadata_position),
        ("attachment directory", header.attachment_directory_position),
    ):
        if not pos and what == "attachment directory":
            continue
        if not 32 <= pos < size:
            raise FileFormatError(
                f"{path}: truncated or damaged CZI file: the file header places the {what} segment at offset {pos}, "
                f"outside the file ({size} bytes); the file was cut short or its header is damaged"
            )
        try:
            segment = czifile.CziSegment(czi, pos)
            sid = str(segment.sid.value)
        except ValueError:
            sid = repr(bytes(czi._read_at(pos, 16)).rstrip(b"\0"))
        if sid != _SEGMENT_IDS[what]:
            raise _damaged(
                path,
                f"the file header places the {what} at offset {pos}, but the segment there is {sid or 'empty'}, "
                f"not {_SEGMENT_IDS[what]}",
            )
        end = pos + 32 + max(segment.allocated_size, segment.used_size)
        if end > size:
            raise FileFormatError(
                f"{path}: truncated CZI file: the {what} segment at offset {pos} ends at {end}, "
                f"beyond the end of the file ({size} bytes); the file was cut short (incomplete copy or download)"
            )
    if header.attachment_directory_position:
        _check_attachments(czi, path)
    _check_metadata_segment(czi, path, header.metadata_position)
    _check_directory_segment(czi, path, header.directory_position)
    _check_entries(czi, path)


def _check_attachments(czi: czifile.CziFile, path: Path) -> None:
    """Check that every attachment the attachment directory lists lies within the file."""
    import czifile

    size = czi.filesize
    pos = czi.header.attachment_directory_position
    used = czifile.CziSegment(czi, pos).used_size
    count = int.from_bytes(czi._read_at(pos + 32, 4), "little", signed=True)
    room = (used - 256) // 128
    if not 0 <= count <= room:
        raise _damaged(
            path,
            f"the attachment directory at offset {pos} declares {count} entries, but its {used}-byte segment "
            f"has room for 0 to {max(room, 0)}",
        )
    for i, entry in enumerate(czi.attachment_directory):
        start = entry.file_position
        end = start + 32 if 32 <= start <= size - 32 else size + 1
        if end <= size:
            segment = czifile.CziSegment(czi, start)
            end += max(segment.allocated_size, segment.used_size)
        if end > size:
            raise FileFormatError(
                f"{path}: truncated or damaged CZI file: attachment {i} ({entry.filename!r}) at offset {start} "
                f"ends beyond the end of the file ({size} bytes); the file was cut short or its attachment "
                "directory is damaged"
            )


def _check_metadata_segment(czi: czifile.CziFile, path: Path, pos: int) -> None:
    """Check that the metadata segment holds a non-empty XML document within its bounds."""
    import czifile

    segment = czifile.CziSegment(czi, pos)
    xml_size, attachment_size = struct.unpack("<ii", czi._read_at(pos + 32, 8))
    room = segment.used_size - 256
    if not 0 < xml_size <= room or not 0 <= attachment_size <= room - xml_size:
        raise _damaged(
            path,
            f"the metadata segment at offset {pos} declares {xml_size} bytes of XML and {attachment_size} "
            f"bytes of attachment, but holds {max(room, 0)} bytes",
        )


def _check_directory_segment(czi: czifile.CziFile, path: Path, pos: int) -> None:
    """Walk the raw subblock directory: its entry count must match the entries its segment holds."""
    import czifile

    used = czifile.CziSegment(czi, pos).used_size
    raw = bytes(czi._read_at(pos + 32, used))
    count = int.from_bytes(raw[:4], "little", signed=True) if len(raw) >= 4 else -1
    room = (used - 128) // 32
    if not 0 < count <= room:
        raise _damaged(
            path,
            f"the subblock directory at offset {pos} declares {count} entries, but its {used}-byte segment "
            f"has room for 1 to {max(room, 0)}",
        )
    offset = 128
    pixel_types = {int(p) for p in czifile.CziPixelType if p >= 0}
    compressions = {int(c) for c in czifile.CziCompressionType if c >= 0}
    pyramids = {int(p) for p in czifile.CziPyramidType if p >= 0}
    for i in range(count):
        if offset + 32 > used:
            raise _damaged(
                path, f"the subblock directory declares {count} entries, but its {used}-byte segment ends after {i}"
            )
        schema, pixel_type, _, _, compression, pyramid, ndims = struct.unpack_from("<2siqiiB5xi", raw, offset)
        problem = (
            f"schema {schema!r}, not DV"
            if schema != b"DV"
            else f"{ndims} dimensions"
            if not 0 < ndims <= MAX_ENTRY_DIMS
            else f"pixel type {pixel_type}"
            if pixel_type not in pixel_types
            else f"compression {compression}"
            if compression not in compressions
            else f"pyramid type {pyramid}"
            if pyramid not in pyramids
            else None
        )
        if problem is not None:
            raise _damaged(path, f"subblock directory entry {i} (at offset {pos + 32 + offset}) is invalid: {problem}")
        offset += 32 + 20 * ndims
        if offset > used:
            raise _damaged(
                path,
                f"the subblock directory declares {count} entries, but its {used}-byte segment ends inside entry {i}",
            )
    if used - offset >= 32 and raw[offset : offset + 2] == b"DV":
        raise _damaged(
            path,
            f"the subblock directory declares {count} entries, but its segment holds more (another entry "
            f"follows at offset {pos + 32 + offset}): the entry count is wrong",
        )


def _check_entries(czi: czifile.CziFile, path: Path) -> None:
    """Check each directory entry's dims and that its subblock fits in the file."""
    size = czi.filesize
    seen: dict[int, int] = {}
    for i, entry in enumerate(czi.subblock_directory):
        names = entry.dims[:-1]  # czifile appends S, the samples of a pixel
        problem = None
        if len(set(names)) != len(names) or not {"X", "Y"} <= set(names) or not set(names) <= PLANE_DIMS | {"X", "Y"}:
            expected = "".join(sorted(PLANE_DIMS))
            problem = f"it names the dims {''.join(names)} (expected X, Y and some of {expected}, each once)"
        else:
            for d, n, stored in zip(names, entry.shape, entry.stored_shape, strict=False):
                if d in "XY" and not (n > 0 and stored > 0):
                    problem = f"its {d} size is {n} (stored {stored})"
                elif d not in "XY" and n != 1:
                    problem = f"it spans {n} {d} planes (a subblock holds one plane)"
        if problem is None and entry.file_position in seen:
            problem = (
                f"it points at the same subblock (offset {entry.file_position}) as entry {seen[entry.file_position]}"
            )
        if problem is not None:
            raise _damaged(path, f"subblock directory entry {i} is invalid: {problem}")
        seen[entry.file_position] = i
        end = entry.file_position + 48 + max(240, entry.storage_size)
        if entry.compression == 0:
            end += entry.stored_size * entry.dtype.itemsize
        if entry.file_position < 32 or end > size:
            raise FileFormatError(
                f"{path}: truncated or damaged CZI file: subblock directory entry {i} places a subblock at offset "
                f"{entry.file_position} that ends at {end}, beyond the end of the file ({size} bytes); the file was "
                "cut short or its directory is damaged"
            )


def _xml_root(czi: czifile.CziFile, path: Path) -> ElementTree.Element:
    """Return the parsed XML metadata (FileFormatError where it cannot be parsed)."""
    try:
        root = czi.xml_element
    except (ElementTree.ParseError, UnicodeDecodeError) as exc:
        raise _damaged(path, f"its XML metadata cannot be parsed ({type(exc).__name__}: {exc})") from exc
    if root is None or root.find("Metadata/Information/Image") is None:
        raise _damaged(path, "its XML metadata has no Metadata/Information/Image element (the image sizes)")
    return root


def _declared_sizes(root: ElementTree.Element, path: Path) -> dict[str, int]:
    """Return the ``Information/Image/Size?`` values (SizeX, SizeZ, SizeS, SizeM...)."""
    declared: dict[str, int] = {}
    for el in root.findall("Metadata/Information/Image/*"):
        if len(el.tag) == 5 and el.tag.startswith("Size"):
            text = (el.text or "").strip()
            if not text.isdigit():
                raise _damaged(path, f"its XML metadata declares {el.tag}={text!r}, not a whole number")
            declared[el.tag[4]] = int(text)
    return declared


def _found_sizes(czi: czifile.CziFile) -> dict[str, tuple[int, int, int]]:
    """Return ``dim: (count, first, last)`` spanned by the full-resolution subblocks.

    X and Y count pixels (the width of the bounding box of all scenes), other plane
    dims count planes, S the scenes and M the mosaic tiles (indices 0..last).
    """
    entries = [e for e in czi.subblock_directory if e.pyramid_type == 0] or list(czi.subblock_directory)
    low: dict[str, int] = {}
    high: dict[str, int] = {}
    for entry in entries:
        for d, start, stop in zip(entry.dims[:-1], entry.start, entry.stop, strict=False):
            low[d] = min(low.get(d, start), start)
            high[d] = max(high.get(d, stop), stop)
    found = {d: (high[d] - low[d], low[d], high[d] - 1) for d in low}
    scenes = sorted({e.scene_index for e in entries if e.scene_index >= 0})
    if scenes:
        found["S"] = (len(scenes), scenes[0], scenes[-1])
    tiles = [e.mosaic_index for e in entries if e.mosaic_index >= 0]
    if tiles:
        found["M"] = (max(tiles) + 1, 0, max(tiles))
    return found


def _check_sizes(czi: czifile.CziFile, root: ElementTree.Element, path: Path) -> None:
    """Cross-check the XML's declared sizes, scenes and channels with the subblock directory, both ways."""
    declared = _declared_sizes(root, path)
    found = _found_sizes(czi)
    for d in sorted(declared.keys() | found.keys()):
        count, first, last = found.get(d, (1, 0, 0))
        stated = declared.get(d)
        if stated == count or (stated is None and count == 1 and d not in "XY"):
            continue
        unit = {"X": "pixels", "Y": "pixels", "S": "scenes", "M": "mosaic tiles"}.get(d, "planes")
        held = f"{count} {unit} ({d} {first}..{last})" if d in found else f"no {d} dim"
        said = f"declares Size{d}={stated}" if stated is not None else f"declares no Size{d}"
        raise _damaged(
            path,
            f"its XML metadata (Information/Image) {said}, but the subblock directory holds {held}; "
            "planes, tiles or scenes are missing, or a size or subblock coordinate was altered",
        )
    n_scenes = found.get("S", (1, 0, 0))[0]
    listed = root.findall("Metadata/Information/Image/Dimensions/S/Scenes/Scene")
    if listed and len(listed) != n_scenes:
        raise _damaged(
            path, f"its XML metadata lists {len(listed)} scenes, but the subblock directory holds {n_scenes}"
        )
    channels = _channels(root)
    n_channels = found["C"][0] if "C" in found else len(channels)  # without a C dim, channels are optional
    if len(channels) != n_channels:
        raise _damaged(
            path, f"its XML metadata describes {len(channels)} channels, but the subblock directory holds {n_channels}"
        )


def _check_scene(path: Path, index: int, by_plane: dict[Coords, list[Any]], bbox: tuple[int, int, int, int]) -> None:
    """Check that every plane of a scene holds the same mosaic tiles, and bound its stitched area.

    Planes absent altogether are allowed (they read as 0): sparse acquisitions have them.
    """
    tiles = {plane: sorted(e.mosaic_index for e in entries) for plane, entries in by_plane.items()}
    reference = max(tiles.values(), key=len)
    for plane, held in tiles.items():
        if held != reference:
            raise _damaged(
                path,
                f"in scene {index}, plane {plane} holds the mosaic tiles {held} but another plane holds {reference}; "
                "a subblock directory entry was moved or lost",
            )
    footprints = {_extent(e) for entries in by_plane.values() for e in entries}
    covered = sum(w * h for _, _, w, h in footprints)
    _, _, width, height = bbox
    if width * height > MAX_SPARSENESS * covered:
        raise _damaged(
            path,
            f"scene {index} spans {width} x {height} pixels, but its subblocks cover only {covered} pixels; "
            "a subblock coordinate was altered",
        )


# --------------------------------------------------------------------------- metadata helpers


def _text(root: ElementTree.Element | None, path: str) -> str | None:
    """Return the stripped text at ``path`` under ``root`` (``None`` where absent or empty)."""
    if root is None:
        return None
    el = root.find(path)
    if el is None or el.text is None or not el.text.strip():
        return None
    return el.text.strip()


def _float(text: str | None) -> float | None:
    """Parse a float; ``None`` for absent, unparsable or non-finite text."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _stated(text: str | None, what: str) -> float | None:
    """A size or other non-negative number the XML states: None when absent or 0 (CZI's 'unset');
    a value that is not a finite number >= 0 is damage, never read as 'unset'."""
    if text is None or not text.strip():
        return None
    value = _float(text)
    if value is None or value < 0:
        raise MetadataError(f"the CZI XML's {what} is {text.strip()[:40]!r}, not a number >= 0; the XML is damaged")
    return value or None


def _physical_sizes(root: ElementTree.Element | None) -> dict[str, Measure | None]:
    """Return X, Y, Z pixel sizes from ``Metadata/Scaling/Items/Distance`` (metres) in micrometres."""
    sizes: dict[str, Measure | None] = {}
    for axis in ("X", "Y", "Z"):
        metres = _stated(_text(root, f"Metadata/Scaling/Items/Distance[@Id='{axis}']/Value"), f"{axis} pixel size")
        sizes[axis] = None if metres is None else Measure(metres * 1e6, "micrometer")
    return sizes


def _time_increment(root: ElementTree.Element | None) -> Measure | None:
    """Return the time increment: the stated T interval, else the activated experiment's interval."""
    increment = _stated(
        _text(root, "Metadata/Information/Image/Dimensions/T/Positions/Interval/Increment"), "T interval"
    )
    if increment is None and root is not None:
        path = (
            "Metadata/Experiment/ExperimentBlocks/AcquisitionBlock[@IsActivated='true']"
            "/SubDimensionSetups/TimeSeriesSetup[@IsActivated='true']/Interval/TimeSpan/Value"
        )
        for el in root.findall(path):
            increment = _stated(el.text, "experiment's time-series interval")
            if increment is not None:
                break
    return None if increment is None else Measure(increment, "second")


def _scene_names(root: ElementTree.Element | None, keys: Sequence[int], implicit: bool) -> list[str | None]:
    """Return one name per scene key from ``Information/Image/Dimensions/S/Scenes/Scene@Name``."""
    by_index: dict[int, str | None] = {}
    scenes = [] if root is None else root.findall("Metadata/Information/Image/Dimensions/S/Scenes/Scene")
    for position, el in enumerate(scenes):
        index = el.get("Index")
        key = int(index) if index is not None and index.strip().lstrip("-").isdigit() else position
        by_index.setdefault(key, el.get("Name") or None)
    if implicit:
        return [by_index.get(0)] if len(scenes) == 1 else [None]
    return [by_index.get(k) for k in keys]


def _channels(root: ElementTree.Element | None) -> list[ElementTree.Element]:
    """Return the ``Information/Image/Dimensions/Channels/Channel`` elements."""
    if root is None:
        return []
    return root.findall("Metadata/Information/Image/Dimensions/Channels/Channel")


def _layout_channels(root: ElementTree.Element | None, layout: _Layout) -> list[ElementTree.Element | None]:
    """The ``Channel`` element of each C index of the layout (``None`` where the XML lists none for it)."""
    elements = _channels(root)
    c0 = layout.start.get("C", 0)
    return [elements[c0 + c] if 0 <= c0 + c < len(elements) else None for c in range(layout.n_c)]


def _channel_color(el: ElementTree.Element | None) -> tuple[int, int, int] | None:
    """Parse a CZI ``#AARRGGBB`` (or ``#RRGGBB``) colour."""
    text = _text(el, "Color")
    if text is None or not text.startswith("#") or len(text) not in (7, 9):
        return None
    try:
        value = int(text[1:], 16)
    except ValueError:
        return None
    return ((value >> 16) & 255, (value >> 8) & 255, value & 255)


def _channel_extra(el: ElementTree.Element | None) -> dict[str, Any]:
    """Return OME Channel fields stated by a CZI channel (wavelengths in nm, fluor)."""
    extra: dict[str, Any] = {}
    excitation = _stated(_text(el, "ExcitationWavelength"), "channel ExcitationWavelength")
    emission = _stated(_text(el, "EmissionWavelength"), "channel EmissionWavelength")
    if excitation is not None:
        extra["excitation_wavelength"] = excitation
    if emission is not None:
        extra["emission_wavelength"] = emission
    fluor = _text(el, "Fluor")
    if fluor is not None:
        extra["fluor"] = fluor
    return extra


def _acquisition_date(root: ElementTree.Element | None) -> datetime | None:
    """Return ``Information/Image/AcquisitionDateAndTime`` (``None`` for ZEN's year-1 placeholder)."""
    text = _text(root, "Metadata/Information/Image/AcquisitionDateAndTime")
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if value.year <= 1 else value


def _ome_id(kind: str, raw: str | None, fallback: int) -> str:
    """Return a valid OME LSID ``Kind:suffix`` from a CZI Id such as ``Objective:1``."""
    suffix = (raw or "").split(":", 1)[-1] if raw and raw.startswith(f"{kind}:") else (raw or "")
    suffix = "_".join(suffix.split())
    return f"{kind}:{suffix or fallback}"


_OBJECTIVES = "Metadata/Information/Instrument/Objectives/Objective"


def _objective_numbers(root: ElementTree.Element | None) -> list[dict[str, float | None]]:
    """The lens NA and nominal magnification of each objective, checked when the file is opened.

    Raises
    ------
    MetadataError
        For a value that is not a finite number >= 0 (0 is CZI's "unset").
    """
    found = root.findall(_OBJECTIVES) if root is not None else []
    return [
        {
            "lens_na": _stated(_text(el, "LensNA"), f"objective {i} LensNA"),
            "nominal_magnification": _stated(_text(el, "NominalMagnification"), f"objective {i} NominalMagnification"),
        }
        for i, el in enumerate(found)
    ]


def _instrument(
    root: ElementTree.Element | None, numbers: list[dict[str, float | None]]
) -> tuple[list[Instrument], ObjectiveSettings | None]:
    """Return the OME instrument (microscope and objectives) and the image's objective settings.

    ``numbers`` are the objectives' values from :func:`_objective_numbers`.
    """
    from ome_types.model import Instrument, Microscope, Objective, ObjectiveSettings

    if root is None or root.find("Metadata/Information/Instrument") is None:
        return [], None
    objectives = []
    for i, (el, values) in enumerate(zip(root.findall(_OBJECTIVES), numbers, strict=True)):
        immersion = _text(el, "Immersion")
        fields: dict[str, Any] = {
            "id": _ome_id("Objective", el.get("Id"), i),
            "model": _text(el, "Manufacturer/Model") or el.get("Name") or None,
            **values,
            "immersion": immersion if immersion in _IMMERSIONS else None,
        }
        objectives.append(Objective(**fields))
    scope = root.find("Metadata/Information/Instrument/Microscopes/Microscope")
    microscope = None
    if scope is not None:
        model = scope.get("Name") or _text(scope, "System")
        microscope = Microscope(model=model) if model else None
    if not objectives and microscope is None:
        return [], None
    instrument = Instrument(id="Instrument:0", microscope=microscope, objectives=objectives)
    settings = ObjectiveSettings(id=objectives[0].id) if objectives else None
    return [instrument], settings


def _subblock_tags(czi: czifile.CziFile, entry: Any, path: str) -> ElementTree.Element | None:
    """Return the ``Tags`` of a subblock's own metadata XML (``None`` where it has none).

    Reads only the subblock's segment id, its metadata size and the metadata bytes
    (the ZISRAW layout: a 32-byte segment header, then the metadata, attachment and
    data sizes, the directory entry, padding to 256 bytes, then the metadata), never its
    pixels. A subblock that is not one, or whose metadata would run past its segment,
    is left to the pixel reads to report as damage (``None`` here).
    """
    start = entry.file_position
    head = bytes(czi._read_at(start, 48))
    if len(head) < 48 or head[:16].rstrip(b"\0") != b"ZISRAWSUBBLOCK":
        return None
    used = int.from_bytes(head[24:32], "little", signed=True)
    size = int.from_bytes(head[32:36], "little", signed=True)
    offset = start + 32 + max(256, 16 + entry.storage_size)
    if not 0 < size <= MAX_SUBBLOCK_METADATA or offset + size > min(start + 32 + used, czi.filesize):
        return None
    text = bytes(czi._read_at(offset, size)).rstrip(b"\0")
    if not text.strip():
        return None
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise MetadataError(f"{path}: the metadata of the subblock at offset {start} is not XML ({exc})") from None
    return root.find("Tags")


def _camera_exposure(tags: ElementTree.Element | None, where: str, path: str) -> float | None:
    """Seconds of the camera ``ExposureTime`` (nanoseconds) in a subblock's ``DetectorState``; ``None`` if unstated.

    Raises
    ------
    MetadataError
        Where the ``DetectorState`` is not XML or the exposure is not a number >= 0.
    """
    state = _text(tags, "DetectorState")
    if state is None:
        return None
    try:
        detector = ElementTree.fromstring(state)
    except ElementTree.ParseError:
        raise MetadataError(f"{path}: {where} a DetectorState that is not XML; the subblock is damaged") from None
    nanoseconds = finite(_text(detector, "ExposureTime"), f"{where} ExposureTime", path)
    if nanoseconds is not None and nanoseconds < 0:
        raise MetadataError(f"{path}: {where} ExposureTime {nanoseconds!r}, not a number >= 0")
    return nanoseconds * 1e-9 if nanoseconds else None


def _channel_exposures(root: ElementTree.Element | None, layout: _Layout) -> list[float | None]:
    """Seconds of each layout channel's ``Information/Image/.../Channel/ExposureTime`` (nanoseconds; 0 = unset)."""
    exposures: list[float | None] = []
    for c, el in enumerate(_layout_channels(root, layout)):
        nanoseconds = _stated(_text(el, "ExposureTime"), f"channel {c} ExposureTime")
        exposures.append(None if nanoseconds is None else nanoseconds * 1e-9)
    return exposures


def _plane_values(
    czi: czifile.CziFile,
    path: str,
    layout: _Layout,
    by_plane: dict[Coords, list[Any]],
    bbox: tuple[int, int, int, int],
    physical_sizes: dict[str, Measure | None],
    channel_exposures: Sequence[float | None],
) -> tuple[list[PlaneInfo], str]:
    """Return what the file states about each plane of a scene, and the rule saying where it comes from.

    - ``position_x``, ``position_y``: the scene's bounding-box start (the top-left pixel,
      in the pixel frame all scenes and tiles of the file share) times the ``Scaling``
      pixel size, in micrometres: so the scenes of a multi-position file lie side by side
      as they were acquired (czifile's ``coord_offsets``). Left out without a pixel size.
      The subblocks' ``StageXPosition``/``StageYPosition`` are not used: ZEN records them
      per tile and acquisition (they move between time points of the same tile), and
      they do not place the pixels; the subblock coordinates do.
    - ``position_z``: the ``FocusPosition`` (micrometres) of the plane's first subblock.
    - ``delta_t``: the ``AcquisitionTime`` of the plane's first subblock minus the
      earliest of the scene, in seconds.
    - ``exposure_time``: the camera ``ExposureTime`` in the ``DetectorState`` of the
      plane's first subblock, else the channel's ``ExposureTime``
      (``channel_exposures``, one per channel of the layout, seconds). ZEN states both
      in nanoseconds (the experiment's camera setting, in milliseconds, says the same).

    The last three need the metadata of one subblock per plane (a small read each, never
    pixel data); a scene of more than ``MAX_PLANE_METADATA`` planes is opened without
    them, and the rule says so.

    Raises
    ------
    MetadataError
        Where a subblock states a focus position or time that cannot be parsed.
    """
    size_x, size_y = physical_sizes.get("X"), physical_sizes.get("Y")
    x0 = None if size_x is None else bbox[0] * float(size_x.magnitude)
    y0 = None if size_y is None else bbox[1] * float(size_y.magnitude)
    planes = [(t, z, k) for t, z, k, _ in layout.planes()]
    firsts = [(t, z, k, by_plane[p][0]) for t, z, k, p in layout.planes() if by_plane.get(p)]
    samples = layout.samples
    skipped = too_many_planes((len(planes) * samples,))
    if skipped:
        return [], skipped
    read = len(firsts) <= MAX_PLANE_METADATA
    stated: dict[tuple[int, int, int], tuple[datetime | None, float | None, float | None]] = {}
    for t, z, k, entry in firsts if read else ():
        tags = _subblock_tags(czi, entry, path)
        where = f"the subblock at offset {entry.file_position} states"
        when = parse_time(_text(tags, "AcquisitionTime"), f"{where} AcquisitionTime", path)
        focus = finite(_text(tags, "FocusPosition"), f"{where} FocusPosition", path)
        stated[(t, z, k)] = (when, focus, _camera_exposure(tags, where, path))
    times = [when for when, _, _ in stated.values() if when is not None]
    start = min(times) if times else None
    values: list[PlaneInfo] = []
    for t, z, k in planes:
        when, focus, exposure = stated.get((t, z, k), (None, None, None))
        delta = None if when is None or start is None else (when - start).total_seconds()
        if exposure is None:  # the folded index k runs over the channels (outer) and the extra dims (inner)
            exposure = channel_exposures[k // layout.n_extra]
        values.extend(plane_row(t, z, k * samples + s, delta, exposure, x0, y0, focus) for s in range(samples))
    parts = []
    if x0 is not None or y0 is not None:
        parts.append(
            f"plane PositionX/Y = the scene's bounding-box start (x={bbox[0]}, y={bbox[1]} pixels) x the Scaling "
            "pixel size, in the pixel frame shared by all scenes and tiles (subblock StageX/YPosition not used)"
        )
    if not read:
        parts.append(
            f"plane DeltaT and PositionZ not read: {len(firsts)} planes, more than {MAX_PLANE_METADATA} subblock "
            "metadata segments"
        )
    elif any(value is not None for values_of in stated.values() for value in values_of):
        parts.append(
            "plane PositionZ = the FocusPosition, DeltaT = the AcquisitionTime (minus the scene's earliest) and "
            "ExposureTime = the camera ExposureTime (ns) of each plane's first subblock, where its metadata states them"
        )
    if any(exposure is not None for exposure in channel_exposures):
        parts.append("plane ExposureTime, where no subblock states it = the channel's ExposureTime (ns)")
    return values, ("Plane metadata: " + "; ".join(parts) + ".") if parts else ""


# --------------------------------------------------------------------------- the reader


@dataclass(frozen=True)
class _Layout:
    """How one scene's file dims map onto TZCYX."""

    dims: tuple[str, ...]
    """Non-spatial file dims (absolute coordinates of a plane, in this order)."""
    start: dict[str, int]
    sizes: dict[str, int]
    extra: tuple[str, ...]
    """Extra dims of size > 1, folded into C inside the channel."""
    samples: int

    @property
    def n_c(self) -> int:
        return self.sizes.get("C", 1)

    @property
    def n_extra(self) -> int:
        return math.prod(self.sizes[d] for d in self.extra)

    def planes(self) -> Iterator[tuple[int, int, int, tuple[int, ...]]]:
        """Yield ``(t, z, k, plane)``: TZ indices, the folded channel index and absolute coordinates."""
        ranges = {d: range(self.sizes[d]) for d in self.dims}
        outer = [d for d in ("T", "Z", "C") if d in ranges] + list(self.extra)
        fixed = {d: 0 for d in self.dims if d not in outer}
        for combo in itertools.product(*(ranges[d] for d in outer)):
            idx = dict(zip(outer, combo, strict=True)) | fixed
            k = idx.get("C", 0)
            for d in self.extra:
                k = k * self.sizes[d] + idx[d]
            plane = tuple(self.start[d] + idx[d] for d in self.dims)
            yield idx.get("T", 0), idx.get("Z", 0), k, plane


class CziReader:
    """Read Carl Zeiss CZI files lazily (one image per scene).

    Examples
    --------
    >>> reader = CziReader()
    >>> reader.sniff(Path("a.czi"), b"ZISRAWFILE" + bytes(22))
    True
    """

    name = "czi"
    suffixes: tuple[str, ...] = (".czi",)

    def sniff(self, path: Path, head: bytes) -> bool:
        """Return True if ``head`` starts with the ZISRAW file magic."""
        return head[: len(MAGIC)] == MAGIC

    def scenes(self, path: Path) -> list[str | None]:
        """Return the scene names (``Information/Image/Dimensions/S/Scenes/Scene@Name``) in S order."""
        handle = self._open(path)
        try:
            with _wrap_errors(path, "reading the scene list"):
                return self._scene_names(handle.czi)
        finally:
            handle.close()

    def open(
        self,
        path: Path,
        *,
        scene: SceneSelector = 0,
        axes: str | None = None,
        level: int = 0,
    ) -> ImageSource:
        """Read the directory and metadata (never pixels) and return one scene as a lazy TZCYX image.

        Parameters
        ----------
        path
            The CZI file.
        scene
            0-based scene index or scene name (``"P1"``).
        axes
            Not supported: CZI dims are named in the file; giving it raises DimensionError.
        level
            Pyramid level (0 = full resolution).

        Raises
        ------
        DimensionError
            For ``axes``, an unknown scene or an unknown level.
        FileFormatError
            When the file is not a readable CZI file (truncated, corrupt).
        """
        if axes is not None:
            raise DimensionError(
                f"{path}: axes={axes!r} is not supported for CZI files: CZI axes are self-describing (the "
                "file names its dims T, Z, C, H, M...) and are mapped onto TZCYX by a fixed rule; select "
                "scenes with scene= instead"
            )
        path = Path(path)
        handle = self._open(path)
        try:
            with _wrap_errors(path, "reading the directory and metadata"):
                return self._open_scene(handle.czi, path, scene, level)
        finally:
            handle.close()

    # -- internals

    @staticmethod
    def _open(path: Path) -> _CziHandle:
        """Open the file (not cached) and check its structure and declared sizes (see ``_check_structure``)."""
        import czifile

        size = os.stat(path).st_size
        if size < HEADER_SIZE:
            raise FileFormatError(
                f"{path}: truncated CZI file: {size} bytes, shorter than the {HEADER_SIZE}-byte file header; "
                "the file was cut short (incomplete copy or download)"
            )
        with _wrap_errors(path, "reading the file header"):
            try:
                handle = _open_czi(os.fspath(path))
            except czifile.CziFileError as exc:
                cause = exc.__cause__ or exc
                raise _damaged(path, f"its file header segment cannot be read ({cause})") from exc
        try:
            with _wrap_errors(path, "reading the file structure"):
                _check_structure(handle.czi, path)
                _check_sizes(handle.czi, _xml_root(handle.czi, path), path)
        except BaseException:
            handle.close()
            raise
        return handle

    @staticmethod
    def _scene_names(czi: czifile.CziFile) -> list[str | None]:
        """Return one name per czifile scene key (files without an S dim have one implicit scene)."""
        implicit = all(e.scene_index == -1 for e in czi.filtered_subblock_directory)
        return _scene_names(czi.xml_element, list(czi.scenes.keys()), implicit)

    def _open_scene(self, czi: czifile.CziFile, path: Path, scene: SceneSelector, level: int) -> ImageSource:
        names = self._scene_names(czi)
        index = select_scene(path, scene, names)
        scene_key = list(czi.scenes.keys())[index]
        image = czi.scenes[scene_key]
        if not 0 <= level < len(image.levels):
            n = len(image.levels)
            raise DimensionError(
                f"{path}: scene {index} has {n} pyramid level(s) (0..{n - 1}); level={level} does not exist"
            )
        layout = _layout(image)
        bbox = image.bbox
        level_shapes = [self._level_shape(czi, layout, lvl, bbox) for lvl in image.levels]
        shape = level_shapes[level]
        by_plane = _group_by_plane(image.levels[level].directory_entries, layout.dims)
        full = by_plane if level == 0 else _group_by_plane(image.directory_entries, layout.dims)
        _check_scene(path, index, full, bbox)
        present = set(by_plane)
        # every plane has a subblock spanning the whole scene (no mosaic gaps): a whole read writes every pixel
        covered = len(by_plane) == math.prod(layout.sizes[d] for d in layout.dims) and all(
            any(_covers(e, bbox) for e in entries) for entries in by_plane.values()
        )  # (subblocks only lie on the layout's planes: its sizes are the span of their coordinates)
        block = _Block(
            path=os.fspath(path),
            scene_key=scene_key,
            level=level,
            dims=layout.dims,
            plane=(),
            present=False,
            roi=bbox,
            pixeltype=int(image.pixeltype),
            shape=(layout.samples, shape[3], shape[4]),
            dtype=np.dtype(image.dtype).newbyteorder("<").str,
        )
        data = _lazy_array(block, layout, present, tiled=level == 0)

        root = czi.xml_element
        ch_names, ch_colors, ch_extra = _channel_fields(root, layout)
        objective_numbers = _objective_numbers(root)
        physical_sizes = _physical_sizes(root)
        exposures = _channel_exposures(root, layout)
        plane_values, plane_rule = _plane_values(czi, os.fspath(path), layout, full, bbox, physical_sizes, exposures)

        def later() -> dict[str, Any]:
            instruments, objective_settings = _instrument(root, objective_numbers)
            return {
                "channel_colors": ch_colors,
                "channel_extra": ch_extra,
                "acquisition_date": _acquisition_date(root),
                "instruments": instruments,
                "instrument_ref": instruments[0].id if instruments else None,
                "objective_settings": objective_settings,
            }

        # a pyramid level's pixels are level 0's times the level's integer factor, its first pixel centre
        # (f - 1) / 2 level-0 pixels after level 0's
        geometry = level_geometry(physical_sizes, level_factors(level_shapes[0], shape))
        planes = plane_infos(plane_values)
        origin = None
        if level:
            full_record = ImageRecord.stated(shape[2], physical_sizes=physical_sizes, planes=planes)
            origin = level_origin(full_record.origin, geometry.offsets)
        ome = deferred_make_ome(
            shape,
            data.dtype,
            physical_sizes=geometry.physical_sizes,
            time_increment=_time_increment(root),
            channel_names=ch_names,
            name=names[index],
            planes=planes,
            origin=origin,
            later=later,
        )
        return ImageSource(
            data=data,
            ome=ome,
            path=path,
            format="czi",
            scenes=names,
            scene=index,
            axes_rule=" ".join(filter(None, (_axes_rule(image, layout, index, bbox), plane_rule))),
            original_metadata={"czi:xml": czi.metadata()},
            levels=level_shapes,
            read_into=_direct_reader(os.fspath(path), scene_key, layout, level, covered),
        )

    @staticmethod
    def _level_shape(
        czi: czifile.CziFile, layout: _Layout, level: Any, bbox: tuple[int, int, int, int]
    ) -> tuple[int, int, int, int, int]:
        """Return the TZCYX shape of a pyramid level (Y, X of the scene's bounding box at that level)."""
        import czifile

        sizes = level.sizes
        if level.is_pyramid_level:
            sizes = czifile.CziImage(czi, level.directory_entries, squeeze=False, roi=bbox).sizes
        n_c = layout.n_c * layout.n_extra * layout.samples
        return (layout.sizes.get("T", 1), layout.sizes.get("Z", 1), n_c, sizes["Y"], sizes["X"])


def _direct_reader(
    path: str, scene_key: int, layout: _Layout, level: int, covered: bool
) -> Callable[[np.ndarray[Any, Any]], None] | None:
    """A whole-scene read straight into a TZCYX buffer, where czifile can fill it in place.

    Only for full resolution, one sample per pixel and no extra dims: then czifile
    composites every subblock directly into a view of the caller's buffer arranged in
    the file's dim order (decoding on all cores), with no task or copy per plane.
    ``covered``: every plane has a subblock spanning the whole scene, so the buffer
    needs no zero fill first (a full pass over fresh memory, on one core).
    """
    if level != 0 or layout.extra or layout.samples != 1:
        return None
    return functools.partial(_read_scene_into, path, scene_key, covered)


def _read_scene_into(path: str, scene_key: int, covered: bool, out: np.ndarray[Any, Any]) -> None:
    """Fill ``out`` (uninitialised, TZCYX, the scene's shape) with one whole scene; absent pixels are 0."""
    import czifile

    with _wrap_errors(path, f"reading scene {scene_key}"):
        with czifile.CziFile(path, squeeze=False, memmap=True) as czi:
            image = czi.scenes[scene_key]
            _check_subblocks(czi, image.directory_entries, path)
            image.asarray(  # decode compressed subblocks on every core
                fillvalue=None if covered else 0,
                out=_in_file_order(out, tuple(image.dims)),
                maxworkers=cpu_count(),
            )


def _in_file_order(out: np.ndarray[Any, Any], dims: tuple[str, ...]) -> np.ndarray[Any, Any]:
    """A view of a TZCYX array with the axes of a czifile image (``dims``; the others have size 1)."""
    view = out[tuple(slice(None) if d in dims else 0 for d in "TZCYX")]
    kept = [d for d in "TZCYX" if d in dims]
    extra = [d for d in dims if d not in kept]
    view = view[(..., *([np.newaxis] * len(extra)))]
    return view.transpose([(kept + extra).index(d) for d in dims])


def _lazy_array(template: _Block, layout: _Layout, present: set[Coords], *, tiled: bool) -> da.Array:
    """Build the TZCYX dask array: one task per plane (and per tile region of huge planes).

    ``template`` holds what all tasks share; ``present`` the plane coordinates that have
    subblocks (the other planes are 0 without touching the file).
    """
    samples, ny, nx = template.shape
    plane_bytes = ny * nx * samples * np.dtype(template.dtype).itemsize
    tile = TILE if tiled and plane_bytes > MAX_PLANE_BYTES else max(ny, nx, 1)
    y_edges = range(0, max(ny, 1), tile)
    x_edges = range(0, max(nx, 1), tile)
    y_chunks = tuple(min(tile, ny - y) for y in y_edges)
    x_chunks = tuple(min(tile, nx - x) for x in x_edges)
    st = os.stat(template.path)
    token = (os.path.abspath(template.path), st.st_size, st.st_mtime_ns, template.scene_key, template.level)
    n_tasks = math.prod(layout.sizes.values()) * len(y_edges) * len(x_edges)
    if n_tasks > MAX_TASKS:
        raise _damaged(
            template.path,
            f"scene {template.scene_key} would need {n_tasks} read tasks of {tile} x {tile} pixels "
            f"(at most {MAX_TASKS})",
        )
    x0, y0 = template.roi[:2]
    tasks: dict[tuple[int, ...], tuple[Any, ...]] = {}
    for t, z, k, plane in layout.planes():
        for (iy, y), (ix, x) in itertools.product(enumerate(y_edges), enumerate(x_edges)):
            h, w = y_chunks[iy], x_chunks[ix]
            block = replace(
                template,
                plane=plane,
                present=plane in present,
                roi=template.roi if tile >= max(ny, nx) else (x0 + x, y0 + y, w, h),
                shape=(samples, h, w),
            )
            tasks[(t, z, k, iy, ix)] = (_read_block, block)
    n_t, n_z = layout.sizes.get("T", 1), layout.sizes.get("Z", 1)
    chunks = ((1,) * n_t, (1,) * n_z, (samples,) * (layout.n_c * layout.n_extra), y_chunks, x_chunks)
    return array_from_tasks(tasks, chunks, template.dtype, name="czi", token=token, source=str(template.path))


def _layout(image: Any) -> _Layout:
    """Return the TZCYX layout of a czifile scene image (opened with ``squeeze=False``)."""
    sizes = {d: n for d, n in image.sizes.items() if d not in SPATIAL}
    start = dict(zip(image.sizes, image.start, strict=True))
    dims = tuple(sizes)
    extra = tuple(d for d in dims if d not in ("T", "Z", "C") and sizes[d] > 1)
    return _Layout(
        dims=dims,
        start={d: start[d] for d in dims},
        sizes=sizes,
        extra=extra,
        samples=int(image.pixeltype.samples),
    )


def _channel_fields(
    root: ElementTree.Element | None, layout: _Layout
) -> tuple[list[str | None], list[Any], list[dict[str, Any]]]:
    """Return names, colours and extra fields for every folded C index."""
    names: list[str | None] = []
    colors: list[Any] = []
    extras: list[dict[str, Any]] = []
    extra_labels = [
        ":".join(f"{d}{i}" for d, i in zip(layout.extra, combo, strict=True))
        for combo in itertools.product(*(range(layout.sizes[d]) for d in layout.extra))
    ]
    rgb = layout.samples > 1
    for el in _layout_channels(root, layout):
        base = (el.get("Name") or None) if el is not None else None
        color = _channel_color(el) if el is not None else None
        extra = _channel_extra(el)
        for label in extra_labels:
            name = base if not label or base is None else f"{base}:{label}"
            for s in range(layout.samples):
                if rgb:
                    sample = SAMPLE_NAMES[s]
                    names.append(sample if name is None else f"{name}:{sample}")
                    colors.append(SAMPLE_COLORS.get(SAMPLE_NAMES[s]))
                else:
                    names.append(name)
                    colors.append(color)
                extras.append(extra)
    return names, colors, extras


def _axes_rule(image: Any, layout: _Layout, index: int, bbox: tuple[int, int, int, int]) -> str:
    """Describe how this scene's CZI dims were mapped onto TZCYX."""
    file_dims = ",".join(f"{d}={n}" for d, n in image.sizes.items() if d != "S")
    samples = f"{layout.samples} sample(s) per pixel"
    parts = [f"CZI dims {file_dims} ({samples}) mapped by name onto T, Z, C, Y, X"]
    if layout.extra:
        inner = ",".join(layout.extra)
        parts.append(f"extra dims {inner} folded into C channel-major (C outer, {inner} inner)")
    if layout.samples > 1:
        parts.append(f"{layout.samples} colour samples folded into C innermost in R,G,B order")
    dropped = [d for d in layout.dims if d not in ("T", "Z", "C") and layout.sizes[d] == 1]
    if dropped:
        parts.append(f"size-1 dims {','.join(dropped)} dropped")
    parts.append(
        f"scene {index} stitched on its bounding box x={bbox[0]}, y={bbox[1]}, w={bbox[2]}, h={bbox[3]} "
        "(uncovered pixels 0, later tiles in file order win)"
    )
    return "; ".join(parts) + "."
