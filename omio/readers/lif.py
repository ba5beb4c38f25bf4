"""Reader for Leica LIF, LOF and XLIF files (through ``liffile``).

Each image element of the file is one scene, named by its path inside the file
(``"Collection/Series 1"``; the dataset's name is the element's own name). Opening
reads the XML only; pixels are read by dask tasks, one per stored frame (the two
innermost stored dims, usually Y and X, with their colour samples). Tasks capture the
path, the image index and the frame's indices, and fetch the open file from the
per-process handle cache, so graphs pickle and run on any worker.

Mapping onto TZCYX (stated in ``ImageSource.axes_rule``):

- LIF dims are mapped literally by their DimID: 1 = X, 2 = Y, 3 = Z, 4 = T; the
  channels are C; a dim the image lacks has size 1.
- XZ scans (X-Z frames without a Y dim) keep Z as Z: an ``xz`` image has Y = 1 and
  a Z-stack of one-pixel rows, an ``xzy`` image keeps its Y. (Bio-Formats instead
  swaps Y and Z for these; omio never renames a dim the file states. Use
  ``ds.xarray.transpose`` or ``isel`` to look at an XZ frame.)
- Wavelength sweeps (emission lambda, DimID 5, letter ``W`` in the rule; excitation
  lambda, DimID 9, letter ``V``) and the other LIF dims (rotation ``A``, XT slices
  ``N``, T slices ``K``, tile-scan mosaic positions ``M``, loops ``L``) follow the rule
  of :mod:`omio.dims`: folded into C channel-major (C outer, the extra dim inner);
  the sweep wavelengths become each channel's emission/excitation wavelength.
- RGB samples become C in R, G, B order.

Metadata: physical sizes and the time increment are a dim's ``Length / (N - 1)``
(as Bio-Formats does); channel colours from the LUT names. LIF channels carry no
names (``None``); the dye liffile resolves for a channel (``FITC``) is the OME
``Channel.fluor``. The image element's XML is kept as original metadata.

Plane table: ``DeltaT`` from ``Data/Image/TimeStampList`` (one time stamp per stored
frame, frames numbered in C order over the dims outside the frame; a plane takes its
first frame's, minus the image's earliest); ``PositionX/Y/Z`` from the ``TileScanInfo``
tile of the plane (tile scans), else ``PositionX/Y`` from the ``StagePosX``/``StagePosY``
of the ``HardwareSetting`` (metres, as Bio-Formats reads them).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from xml.etree import ElementTree

import numpy as np

from omio import units
from omio.dims import SAMPLE_COLORS, ChannelPart, to_tzcyx
from omio.errors import DimensionError, FileFormatError, MetadataError
from omio.lazy_ome import deferred_make_ome
from omio.readers._base import ImageSource, SceneSelector, select_scene
from omio.readers._handles import cached_handle
from omio.readers._lazy import array_from_chunks
from omio.readers._optional import library_errors, require
from omio.readers._planes import finite, plane_codes, plane_infos, plane_row, too_many_planes
from omio.record import PlaneInfo
from omio.units import Measure

if TYPE_CHECKING:
    import liffile

__all__ = ["LifReader"]

LIF_MAGIC = b"\x70\x00\x00\x00"
"""First bytes of a LIF or LOF file (test code 0x70); byte 8 is the memory test code 0x2A."""
XML_STARTS = (b"<?xm", b"\xef\xbb\xbf<", b"<\x00?\x00", b"\xff\xfe<\x00", b"<LMS", b"<\x00L\x00")
LETTERS = {"X": "X", "Y": "Y", "Z": "Z", "T": "T", "C": "C", "S": "S"}
LETTERS |= {"λ": "W", "Λ": "V", "A": "A", "N": "N", "Q": "K", "M": "M", "L": "L", "?": "U"}
"""liffile dim codes -> omio axis letters (extra dims get letters :mod:`omio.dims` folds into C)."""
SWEEPS = {"W": "emission_wavelength", "V": "excitation_wavelength"}
DIM_IDS = {1: "X", 2: "Y", 3: "Z", 4: "T"}
LUT_COLORS = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
    "yellow": (255, 255, 0),
    "gray": (255, 255, 255),
    "grey": (255, 255, 255),
}
_GENERIC_NAME = re.compile(r"^(Ch\d+|Red|Green|Blue|Gray)$")


# --------------------------------------------------------------------------- handles and tasks


class _LifHandle:
    """An open LifFile shared by the dask tasks of one process (liffile is not thread-safe)."""

    def __init__(self, path: str) -> None:
        import liffile

        self.lif = liffile.LifFile(path)
        self.lock = threading.Lock()

    def frame(self, image: int, indices: Mapping[str, int]) -> np.ndarray[Any, Any]:
        """Return one stored frame of an image."""
        import liffile

        with self.lock:
            element = self.lif.images[image]
            if not isinstance(element, liffile.LifImage):
                raise FileFormatError(f"{self.lif.filename}: image {image} is not a plain image")
            # the indices are dim codes (T, Z, C...), never the keyword `out`
            return np.asarray(element.frame(**indices))  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the file."""
        self.lif.close()


def _open_lif(path: str) -> _LifHandle:
    """Open a Leica file for the handle cache (module level, so its name is a stable key)."""
    return _LifHandle(path)


def _read_frame(
    path: str, image: int, indices: tuple[tuple[str, int], ...], shape: tuple[int, ...], dtype: str
) -> np.ndarray[Any, Any]:
    """Read one stored frame (a dask task)."""
    with _wrap_errors(path, f"reading image {image} frame {dict(indices)}"):
        frame = cached_handle(_open_lif, path).frame(image, dict(indices))
    return np.asarray(frame, dtype=dtype).reshape(shape)


def _wrap_errors(path: str | os.PathLike[str], doing: str) -> AbstractContextManager[None]:
    """Turn the library's exceptions into FileFormatError naming the file."""
    return library_errors(path, doing, what="Leica image file", hint="the file may be truncated or corrupt")


# --------------------------------------------------------------------------- checks

_DIM_NUMBERS: dict[str, type[int] | type[float]] = {
    "DimID": int,
    "NumberOfElements": int,
    "Origin": float,
    "Length": float,
    "BytesInc": int,
    "BitInc": int,
}
_CHANNEL_NUMBERS: dict[str, type[int] | type[float]] = {
    "DataType": int,
    "ChannelTag": int,
    "Resolution": int,
    "Min": float,
    "Max": float,
    "BytesInc": int,
    "BitInc": int,
}
KNOWN_DIM_IDS = frozenset(range(1, 12))
"""LIF DimIDs: 1 X, 2 Y, 3 Z, 4 T, 5 emission lambda, 6 rotation, 7 XT slices, 8 T slices, 9 excitation lambda,
10 mosaic position, 11 loop."""
_MAX_ROW_PADDING = 16
"""Largest padding (bytes) at the end of an RGB row that a Y stride may add (stride-aligned rows)."""


def _number(el: ElementTree.Element, attr: str, cast: type[int] | type[float], where: str) -> Any:
    """Return a numeric attribute of a Dimension/ChannelDescription; missing, non-numeric or non-finite raises."""
    text = el.get(attr)
    if text is None:
        raise FileFormatError(f"{where}: <{el.tag}> has no {attr}; the image's XML is damaged")
    try:
        value = cast(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise FileFormatError(f"{where}: <{el.tag} {attr}={text!r}> is not a valid number; the image's XML is damaged")
    return value


def _check_header(path: Path) -> None:
    """Check the LIF header's lengths against the file before liffile reads by them.

    The XML description and every memory block header's id must lie inside the file
    (liffile would otherwise try to read, and allocate, what a damaged length says).
    Files that are not LIF (XLIF, LOF) are left to liffile.
    """
    with open(path, "rb") as fh:
        head = fh.read(13)
        size = os.fstat(fh.fileno()).st_size
        if len(head) < 13 and LIF_MAGIC.startswith(head[:4]):
            raise FileFormatError(f"{path}: {size} bytes, shorter than a LIF header; the file is truncated")
        if head[:4] != LIF_MAGIC or head[8] != 0x2A:
            return
        end = 13 + 2 * int.from_bytes(head[9:13], "little")
        if end > size:
            raise FileFormatError(
                f"{path}: its header declares an XML description of {end - 13} bytes but the file ends at {size}; "
                "the file is truncated (copy it again from its source) or its header is damaged"
            )
        version = re.search(r'Version="(\d+)"', fh.read(400).decode("utf-16-le", errors="replace"))
        layout = _BLOCK_HEADERS.get(version.group(1) if version else "")
        if layout is not None:
            _check_block_headers(path, fh, end, size, layout)


_BLOCK_HEADERS = {"1": struct.Struct("<IIBIBI"), "2": struct.Struct("<IIBQBI")}
"""Memory block headers by LIF version: test code, size, 0x2A, block size, 0x2A, id length (UTF-16 units)."""


def _check_block_headers(path: Path, fh: BinaryIO, offset: int, size: int, header: struct.Struct) -> None:
    """Walk the memory block headers from ``offset``: each id must lie inside the file.

    The walk stops where liffile stops (a header that is not one); an image whose
    block lies beyond that point is reported by :func:`_check_block`.
    """
    while offset + header.size <= size:
        fh.seek(offset)
        code, _, mark1, nbytes, mark2, id_units = header.unpack(fh.read(header.size))
        if code != 0x70 or mark1 != 0x2A or mark2 != 0x2A:
            return
        offset += header.size + 2 * id_units
        if offset > size:
            raise FileFormatError(
                f"{path}: the memory block header at {offset - header.size - 2 * id_units} declares an id of "
                f"{2 * id_units} bytes, past the end of the file ({size}); the file is truncated or damaged"
            )
        offset += nbytes


def _check_layout(path: Path, lif: liffile.LifFile, image: liffile.LifImage) -> None:
    """Check the declared dims, channels and strides against the image's memory block, both ways.

    Run before anything is sized from the XML. The dims (by BytesInc) and the
    channels (by their BytesInc) must tile the memory block exactly: each dim's
    stride is the size of everything inside it, a gap between strides is filled by a
    factor of the channels (or is the end-of-row padding of RGB rows), the channel
    offsets are exactly the ones these factors generate, and the total is the block's
    size, which must lie inside the file. Anything else means a damaged
    NumberOfElements, BytesInc, DimID or channel list, or a truncated file.
    """
    where = f"{path}: image {image.path!r}"
    desc = image.xml_element.find("./Data/Image/ImageDescription")
    dims = [] if desc is None else desc.findall("./Dimensions/DimensionDescription")
    channels = [] if desc is None else desc.findall("./Channels/ChannelDescription")
    if not dims or not channels:
        raise FileFormatError(f"{where}: its XML lists no dimensions or no channels; the image's XML is damaged")
    axes: list[tuple[int, int, int]] = []  # (BytesInc, NumberOfElements, DimID) of dims longer than 1
    seen: set[int] = set()
    for el in dims:
        number = {attr: _number(el, attr, cast, where) for attr, cast in _DIM_NUMBERS.items()}
        dim_id, n, stride = number["DimID"], number["NumberOfElements"], number["BytesInc"]
        if dim_id not in KNOWN_DIM_IDS or dim_id in seen:
            problem = "repeats a DimID" if dim_id in seen else "has a DimID that is not a LIF dimension (1-11)"
            raise FileFormatError(f"{where}: <DimensionDescription DimID={dim_id}> {problem}; the XML is damaged")
        if n < 1 or stride < 0 or el.get("Unit") is None:
            raise FileFormatError(
                f"{where}: <DimensionDescription DimID={dim_id} NumberOfElements={n} BytesInc={stride}> is not a "
                "valid dimension (NumberOfElements >= 1, BytesInc >= 0, a Unit); the XML is damaged"
            )
        seen.add(dim_id)
        if n > 1:
            axes.append((stride, n, dim_id))
    strides = {dim_id: stride for stride, _, dim_id in axes}  # of the dims longer than 1
    if 1 not in seen or (1 in strides and strides[1] > min(strides.values())):
        raise FileFormatError(
            f"{where}: its XML has no X dimension (DimID 1) varying fastest (DimIDs and BytesInc {strides}); "
            "Leica images store X first, so a DimID is damaged"
        )
    kinds = set()
    offsets = []
    for el in channels:
        number = {attr: _number(el, attr, cast, where) for attr, cast in _CHANNEL_NUMBERS.items()}
        bits, kind = number["Resolution"], number["DataType"]
        if kind not in (0, 1) or not (8 if kind else 0) < bits <= 64 or number["BytesInc"] < 0:
            raise FileFormatError(
                f"{where}: <ChannelDescription DataType={kind} Resolution={bits} BytesInc={number['BytesInc']}> is "
                "not a valid channel (DataType 0 or 1, Resolution 1-64 bits); the XML is damaged"
            )
        kinds.add((kind, 1 if bits <= 8 else 2 if bits <= 16 else 4 if bits <= 32 else 8))
        offsets.append(number["BytesInc"])
    if len(kinds) != 1:
        raise FileFormatError(f"{where}: its channels have different sample types {sorted(kinds)}, not supported")
    itemsize = kinds.pop()[1]
    stated = " x ".join(f"{DIM_IDS.get(i, f'DimID {i}')}={n} (BytesInc {s})" for s, n, i in axes) or "one pixel"
    stated += f", {len(offsets)} channel(s) at BytesInc {sorted(offsets)[:8]}, {itemsize} byte(s) per sample"
    expected = itemsize
    factors: list[tuple[int, int]] = []  # (stride, count) of the channel factors the gaps imply
    for stride, n, dim_id in sorted(axes):
        if stride != expected:
            gap = stride // expected if stride > expected and stride % expected == 0 else 0
            padded = dim_id == 2 and factors == [(itemsize, len(offsets))] and 0 < stride - expected <= _MAX_ROW_PADDING
            if not (gap > 1 or padded):
                raise FileFormatError(
                    f"{where}: its strides do not describe a layout ({stated}): BytesInc {stride} where "
                    f"{expected} was expected; BytesInc or NumberOfElements is damaged"
                )
            if not padded:
                factors.append((expected, gap))
        expected = stride * n
    product = math.prod(count for _, count in factors)
    if len(offsets) % product:
        raise FileFormatError(
            f"{where}: its strides leave room for channels in groups of {product} but it has {len(offsets)} "
            f"channel(s) ({stated}); BytesInc, NumberOfElements or the channel list is damaged"
        )
    if len(offsets) > product:
        factors.append((expected, len(offsets) // product))
        expected *= len(offsets) // product
    generated = sorted(
        sum(i * s for i, (s, _) in zip(idx, factors, strict=True))
        for idx in itertools.product(*(range(c) for _, c in factors))
    )
    if generated != sorted(offsets):
        raise FileFormatError(
            f"{where}: its channel BytesInc {sorted(offsets)[:8]} do not fit its strides ({stated}), which place "
            f"channels at {generated[:8]}; the channel list or BytesInc is damaged"
        )
    _check_block(path, lif, image, expected, stated)


def _check_block(path: Path, lif: liffile.LifFile, image: liffile.LifImage, nbytes: int, stated: str) -> None:
    """Check that the image's memory block exists, lies inside the file and holds exactly ``nbytes``."""
    where = f"{path}: image {image.path!r}"
    memory = image.xml_element.find("./Memory")
    block_id = None if memory is None else memory.get("MemoryBlockID")
    try:
        block = image.memory_block
    except (KeyError, IndexError):
        raise FileFormatError(
            f"{where}: its memory block {block_id!r} is not in the file ({len(lif.memory_blocks)} block(s) "
            "found); the file is truncated or its XML is damaged"
        ) from None
    if block.offset < 0:  # XLIF: the pixels are in other files
        return
    size = os.stat(path).st_size
    if block.offset + block.size > size:
        raise FileFormatError(
            f"{where}: its memory block {block.id!r} declares {block.size} bytes from offset {block.offset} but "
            f"the file ends at {size}; the file is truncated (copy it again from its source)"
        )
    if block.size != nbytes:
        raise FileFormatError(
            f"{where}: its XML describes {nbytes} bytes ({stated}) but its memory block {block.id!r} holds "
            f"{block.size}; NumberOfElements, BytesInc or the block size is damaged"
        )


# --------------------------------------------------------------------------- metadata


def _dimensions(image: liffile.LifImageABC) -> dict[str, ElementTree.Element]:
    """Return the DimensionDescription elements of X, Y, Z and T by DimID."""
    out: dict[str, ElementTree.Element] = {}
    for el in image.xml_element.iterfind(".//ImageDescription/Dimensions/DimensionDescription"):
        axis = DIM_IDS.get(int(el.get("DimID", "0")))
        if axis is not None:
            out.setdefault(axis, el)
    return out


def _step(el: ElementTree.Element | None, unit: str, where: str) -> Measure | None:
    """Return ``|Length| / (N - 1)`` of a dimension in ``unit`` (``None`` for N < 2 or a zero length).

    The numbers were checked by :func:`_check_layout`; a unit that is not a unit of
    ``unit``'s kind, or a step beyond :data:`_MAX_STEP`, is damage and raises.
    """
    if el is None:
        return None
    n, length = int(el.get("NumberOfElements", "0")), abs(float(el.get("Length", "0")))
    if n < 2 or length == 0:
        return None
    stated = (el.get("Unit") or "").strip()
    kind = "length" if unit == "micrometer" else "time"
    try:  # the factor first, as pint converts
        factor = units.convert(Measure(1.0, units.unit_name(stated)), unit)
    except MetadataError:  # not a unit
        factor = None
    if factor is None:  # not a unit, or not one of this kind
        raise FileFormatError(
            f"{where}: <DimensionDescription DimID={el.get('DimID')} Unit={stated!r}> is not a unit of "
            f"{kind}; the XML is damaged"
        )
    magnitude = length / (n - 1) * factor
    if not magnitude <= _MAX_STEP:
        raise FileFormatError(
            f"{where}: <DimensionDescription DimID={el.get('DimID')} Length={el.get('Length')} Unit={stated!r}> "
            f"gives a step of {magnitude:g} {units.symbol(unit)}, more than {_MAX_STEP:g} {unit}; the XML is damaged"
        )
    return Measure(magnitude, unit)


_MAX_STEP = 1e6
"""Largest plausible pixel size (micrometres: a metre) or time step (seconds: 11 days)."""
_MAX_WAVELENGTH_NM = 1e5
"""Largest plausible sweep wavelength (nanometres: far infrared)."""


def _frame_times(image: liffile.LifImageABC, where: str) -> list[int] | None:
    """Return the ``Data/Image/TimeStampList`` of an image: one FILETIME (100 ns ticks) per stored frame.

    LAS X writes them as hexadecimal text, older versions as ``TimeStamp`` elements with
    ``HighInteger`` and ``LowInteger`` (as liffile reads them). ``None`` where absent.

    Raises
    ------
    MetadataError
        Where a stated time stamp is not a whole number.
    """
    element = image.xml_element.find("./Data/Image/TimeStampList")
    if element is None:
        return None
    try:
        stamps = element.findall("./TimeStamp")
        if stamps:
            return [(int(ts.get("HighInteger", "")) << 32) + int(ts.get("LowInteger", "")) for ts in stamps]
        return [int(word, 16) for word in (element.text or "").split()] or None
    except ValueError as exc:
        raise MetadataError(f"{where}: <TimeStampList> holds a value that is not a time stamp ({exc})") from None


def _stage_positions(
    image: liffile.LifImageABC, where: str
) -> tuple[list[tuple[float | None, float | None, float | None]], str]:
    """Return the stage positions an image states (micrometres) and where they come from.

    One per tile from the ``TileScanInfo`` attachment (``Tile`` ``PosX``/``PosY``/``PosZ``,
    metres), else one from the first ``ATLConfocalSettingDefinition`` or
    ``ATLCameraSettingDefinition`` of the ``HardwareSetting`` attachment (``StagePosX``,
    ``StagePosY``, metres), as Bio-Formats reads them; none where the image states none.

    Raises
    ------
    MetadataError
        Where a stated position is not a finite number.
    """

    def um(el: ElementTree.Element, attr: str) -> float | None:
        value = finite(el.get(attr), f"<{el.tag} {attr}>", where)
        return None if value is None else value * 1e6

    root = image.xml_element
    tiles = root.findall("./Data/Image/Attachment[@Name='TileScanInfo']/Tile")
    if tiles:
        return [(um(t, "PosX"), um(t, "PosY"), um(t, "PosZ")) for t in tiles], "TileScanInfo Tile PosX/PosY/PosZ"
    for tag in ("ATLConfocalSettingDefinition", "ATLCameraSettingDefinition"):
        setting = root.find(f"./Data/Image/Attachment[@Name='HardwareSetting']//{tag}")
        if setting is not None:
            x, y = um(setting, "StagePosX"), um(setting, "StagePosY")
            if x is not None or y is not None:
                return [(x, y, None)], f"{tag} StagePosX/StagePosY"
    return [], ""


def _plane_values(
    image: liffile.LifImageABC,
    where: str,
    outer: Sequence[str],
    frame_dims: Sequence[str],
    sizes: Mapping[str, int],
    tzc: Sequence[int],
) -> tuple[list[PlaneInfo], str]:
    """Return what an image states about each TZC plane, and the rule saying so.

    The stored frames are numbered in C order over the dims outside the frame (liffile's
    order, the order of ``TimeStampList``). A plane's ``DeltaT`` is the time stamp of its
    first frame minus the image's earliest (seconds; left out unless there is one time
    stamp per frame); its ``PositionX/Y/Z`` the stage position of its tile (tile scans,
    one ``Tile`` per M index) or of the image (:func:`_stage_positions`).
    """
    skipped = too_many_planes(tzc)
    if skipped:
        return [], skipped
    grid = [sizes[d] for d in outer]
    n_frames = math.prod(grid)
    numbers = np.arange(n_frames, dtype=np.int64).reshape(grid)
    inner = [1 if LETTERS[d] in "YX" else sizes[d] for d in frame_dims]
    numbers = np.broadcast_to(numbers.reshape(grid + [1] * len(inner)), grid + inner)
    letters = "".join(LETTERS[d] for d in [*outer, *frame_dims])
    frames = plane_codes(numbers, letters, tzc)
    ticks = _frame_times(image, where)
    positions, source = _stage_positions(image, where)
    notes = []
    if ticks is not None and len(ticks) != n_frames:
        notes.append(f"the {len(ticks)} time stamps are not one per stored frame ({n_frames}), so no DeltaT")
        ticks = None
    elif ticks is not None:
        notes.append("DeltaT = each plane's first frame's TimeStampList entry minus the earliest")
    n_tiles = sizes.get("M", 1)
    per_tile = source.startswith("TileScanInfo")
    if positions and per_tile and (len(positions) != n_tiles or (n_tiles > 1 and "M" not in outer)):
        notes.append(f"{len(positions)} tile positions for {n_tiles} stored tile(s), so no positions")
        positions = []
    elif positions:
        notes.append(f"PositionX/Y{'/Z' if source.startswith('TileScanInfo') else ''} from {source}")
    start = min(ticks) if ticks else 0
    values = []
    for (t, z, c), frame in np.ndenumerate(frames):
        delta = None if not ticks else (ticks[int(frame)] - start) * 1e-7
        x = y = pz = None
        if positions:
            tile = np.unravel_index(int(frame), grid)[list(outer).index("M")] if len(positions) > 1 else 0
            x, y, pz = positions[int(tile)]
        values.append(plane_row(int(t), int(z), int(c), delta, None, x, y, pz))
    return values, ("Plane metadata: " + "; ".join(notes) + ".") if notes else ""


def _channel_elements(image: liffile.LifImageABC) -> list[ElementTree.Element]:
    """Return the ChannelDescription elements in C order (by BytesInc, as liffile orders them)."""
    elements = image.xml_element.findall(".//ImageDescription/Channels/ChannelDescription")
    return sorted(elements, key=lambda el: int(el.get("BytesInc", "0")))


def _dyes(image: liffile.LifImageABC) -> list[str | None]:
    """Return the dye liffile resolves for each C index (``None`` for its generic names)."""
    if "C" not in image.coords:
        return []
    return [None if _GENERIC_NAME.match(str(n)) else str(n) for n in image.coords["C"]]


def _channel_fields(
    image: liffile.LifImageABC, parts: Sequence[ChannelPart]
) -> tuple[list[str | None], list[Any], list[dict[str, Any]]]:
    """Return the name, colour and OME Channel fields of every output channel."""
    elements = _channel_elements(image)
    dyes = _dyes(image)
    sweeps = {
        letter: np.asarray(image.coords[code], dtype=float) * 1e9
        for code, letter in LETTERS.items()
        if letter in SWEEPS and code in image.coords
    }
    for letter, values in sweeps.items():
        if not (np.isfinite(values).all() and (values > 0).all() and (values <= _MAX_WAVELENGTH_NM).all()):
            raise FileFormatError(
                f"{image.parent.filename}: image {image.path!r}: its wavelength sweep ({letter}) runs from "
                f"{values[0]:g} to {values[-1]:g} nm; its Origin or Length is damaged"
            )
    names: list[str | None] = []
    colors: list[Any] = []
    extras: list[dict[str, Any]] = []
    for part in parts:
        labels = dict((s[0], int(s[1:])) for s in part.suffix.split(":")) if part.suffix else {}
        sample = part.suffix if part.suffix in SAMPLE_COLORS else None
        names.append(sample)
        if sample is not None:
            colors.append(SAMPLE_COLORS[sample])
        else:
            el = elements[part.channel] if part.channel < len(elements) else None
            colors.append(LUT_COLORS.get((el.get("LUTName") or "").lower()) if el is not None else None)
        extra: dict[str, Any] = {}
        if part.channel < len(dyes) and dyes[part.channel] is not None:
            extra["fluor"] = dyes[part.channel]
        for letter, field in SWEEPS.items():
            if letter in labels and letter in sweeps:
                extra[field] = float(sweeps[letter][labels[letter]])
        extras.append(extra)
    return names, colors, extras


# --------------------------------------------------------------------------- the reader


class LifReader:
    """Reader for Leica LIF, LOF and XLIF files (needs ``pip install liffile``, or the ``[lif]`` extra).

    Examples
    --------
    >>> reader = LifReader()
    >>> reader.name, reader.suffixes
    ('lif', ('.lif', '.lof', '.xlif'))
    >>> reader.sniff(Path("a.lif"), LIF_MAGIC + bytes(4) + b"\\x2a")
    True
    """

    name = "lif"
    suffixes: tuple[str, ...] = (".lif", ".lof", ".xlif")

    def sniff(self, path: Path, head: bytes) -> bool:
        """Return True for the LIF/LOF header, or Leica XML in a ``.xlif`` file."""
        if head[:4] == LIF_MAGIC and len(head) > 8 and head[8] == 0x2A:
            return True
        if Path(path).suffix.lower() != ".xlif" or not head.startswith(XML_STARTS):
            return False
        text = head.decode("utf-16" if head[1:2] == b"\x00" or head[:2] == b"\xff\xfe" else "utf-8", errors="ignore")
        return "<LMSDataContainerHeader" in text or "<Data>" in text

    def scenes(self, path: Path) -> list[str | None]:
        """Return the paths of the image elements in file order."""
        with self._open(Path(path)) as lif, _wrap_errors(path, "reading the image list"):
            return [image.path for image in lif.images]

    def open(
        self,
        path: Path,
        *,
        scene: SceneSelector = 0,
        axes: str | None = None,
        level: int = 0,
    ) -> ImageSource:
        """Read the XML (never pixels) and return one image element lazily.

        Parameters
        ----------
        path
            The LIF, LOF or XLIF file.
        scene
            0-based image index or the image's path in the file.
        axes
            Not supported: LIF dims are named in the file (DimID).
        level
            Must be 0.

        Raises
        ------
        MissingDependencyError
            When ``liffile`` is not installed.
        DimensionError
            For ``axes``, a level other than 0, or an unknown scene.
        FileFormatError
            When the file is not a readable Leica image file.
        """
        path = Path(path)
        if axes is not None:
            raise DimensionError(
                f"{path}: axes={axes!r} is not supported for Leica files: their dims are named in the file "
                "(DimID) and mapped onto TZCYX by a fixed rule; select images with scene="
            )
        if level != 0:
            raise DimensionError(f"{path}: Leica images are read at one resolution; level={level} does not exist")
        with self._open(path) as lif, _wrap_errors(path, "reading the image metadata"):
            return self._open_image(lif, path, scene)

    # -- internals

    @staticmethod
    @contextmanager
    def _open(path: Path) -> Iterator[liffile.LifFile]:
        require("liffile", extra="lif", what="Leica LIF/LOF/XLIF", path=path)
        _check_header(path)
        with _wrap_errors(path, "reading the file header"):
            try:
                handle = _open_lif(os.fspath(path))
            except (ElementTree.ParseError, UnicodeDecodeError) as exc:
                raise FileFormatError(
                    f"{path}: its XML header is not well-formed ({type(exc).__name__}: {exc}); the header is "
                    "damaged, so no image of the file can be located"
                ) from exc
        try:
            yield handle.lif
        finally:
            handle.close()

    def _open_image(self, lif: liffile.LifFile, path: Path, scene: SceneSelector) -> ImageSource:
        import liffile

        paths: list[str | None] = [image.path for image in lif.images]
        index = select_scene(path, scene, paths)
        image = lif.images[index]
        if not isinstance(image, liffile.LifImage):
            raise FileFormatError(
                f"{path}: image {image.path!r} is a {type(image).__name__} (e.g. raw FLIM/TCSPC data), which omio "
                "does not read; open the intensity or lifetime images of the file instead"
            )
        _check_layout(path, lif, image)
        sizes = dict(image.sizes)
        unknown = sorted(set(sizes) - set(LETTERS))
        if unknown:
            raise FileFormatError(f"{path}: image {image.path!r} has dims {unknown} that omio cannot map onto TZCYX")
        frame_dims = [d for d in image.frames.frame_sizes if d in sizes]
        if not frame_dims:
            raise FileFormatError(f"{path}: image {image.path!r} stores no contiguous frames that omio can read")
        outer = [d for d in image.dims if d not in frame_dims]
        frame_shape = tuple(sizes[d] for d in frame_dims)
        dtype = np.dtype(image.dtype).newbyteorder("<").str
        grid = [sizes[d] for d in outer]
        args = np.empty(grid, dtype=object)
        for idx in itertools.product(*(range(n) for n in grid)):
            indices = tuple(zip(outer, idx, strict=True))
            args[idx] = (os.fspath(path), index, indices, frame_shape, dtype)
        st = os.stat(path)
        native = array_from_chunks(
            _read_frame,
            args,
            frame_shape,
            np.dtype(dtype),
            name="lif",
            source=str(path),
            token=(os.path.abspath(path), st.st_size, st.st_mtime_ns, index),
        )
        letters = "".join(LETTERS[d] for d in outer + frame_dims)
        mapping = to_tzcyx(native, letters)
        dims = _dimensions(image)
        where = f"{path}: image {image.path!r}"
        ch_names, ch_colors, ch_extra = _channel_fields(image, mapping.channels)
        planes, plane_rule = _plane_values(image, where, outer, frame_dims, sizes, mapping.data.shape[:3])
        ome = deferred_make_ome(
            mapping.data.shape,
            mapping.data.dtype,
            physical_sizes={axis: _step(dims.get(axis), "micrometer", where) for axis in ("X", "Y", "Z")},
            time_increment=_step(dims.get("T"), "second", where),
            channel_names=ch_names,
            name=image.name or None,
            planes=plane_infos(planes),
            later=lambda: {"channel_colors": ch_colors, "channel_extra": ch_extra},
        )
        stored = ", ".join(f"{d}={sizes[d]}" for d in image.dims)
        rule = f"LIF dims {stored} (stored order) mapped by DimID"
        if "Y" not in sizes and "Z" in sizes:
            rule += "; XZ scan: Z kept as Z, Y has size 1 (Bio-Formats would swap Y and Z)"
        renamed = [f"{d} as {LETTERS[d]}" for d in image.dims if LETTERS[d] != d]
        if renamed:
            rule += f"; {', '.join(renamed)}"
        return ImageSource(
            data=mapping.data,
            ome=ome,
            path=path,
            format=lif.type.name.lower(),
            scenes=paths,
            scene=index,
            axes_rule=f"{rule}; {mapping.rule}" + (f". {plane_rule}" if plane_rule else ""),
            original_metadata={
                "lif:path": image.path,
                "lif:xml": ElementTree.tostring(image.xml_element, encoding="unicode"),
            },
            levels=[tuple(mapping.data.shape)],
        )
