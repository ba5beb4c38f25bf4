"""Thorlabs ThorImageLS acquisitions (RAW and TIFF mode).

A ThorImageLS acquisition is a folder holding ``Experiment.xml`` (the layout and
the settings) and the pixel data, either one headerless ``Image_0001_0001.raw`` or
one TIFF per plane (``ChanA_0001_0001_0001_0001.tif`` ...). The reader accepts the
folder, the ``.raw`` file or the ``Experiment.xml`` file.

RAW layout
    Little-endian uint16. For each time point, for each Z plane (plus, with fast Z,
    the flyback frames that end every volume), the stored channels follow each
    other, each a row-major Y x X frame. The file size is checked against this
    layout before anything is read.

TIFF-mode names
    ``<channel>_<index>_<subwell>_<z>_<t>.tif``: the wavelength name (``ChanA``),
    then the 1-based sample-location index, sub-well (tile) index, Z index and time
    index, zero-padded to the configured digit count (4 by default). This is the
    format ThorImageLS itself writes (``imgNameFormat`` in ``AcquireMultiWavelength``
    and ``AcquireBleaching`` of the ThorImageLS source). ``ChanA_Preview.tif`` files
    are previews of the last time point and are ignored.

Time increment
    ``Timelapse intervalSec`` for Z/T series. Streaming acquisitions state no interval:
    it is derived from the frame rate (frames per time point / ``frameRate``) and the
    axes rule says so; with frame averaging it is left unset.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omio.errors import DimensionError, FileFormatError, MetadataError
from omio.lazy_ome import deferred_make_ome
from omio.readers._base import ImageSource, SceneSelector
from omio.readers._guard import reading
from omio.readers._handles import file_identity
from omio.readers._lazy import array_from_tasks
from omio.readers._pread import PlaneRun
from omio.units import Measure

if TYPE_CHECKING:
    import dask.array as da

__all__ = ["ThorlabsReader"]

XML_NAME = "Experiment.xml"
ROOT_TAG = "ThorImageExperiment"
RAW_DTYPE = np.dtype("<u2")
CHANNEL_LETTERS = "ABCD"
_RAW_NAME = re.compile(r"^Image_\d+_\d+\.raw$", re.IGNORECASE)
_TIFF_NAME = re.compile(r"^(?P<chan>[^_]+)_(?P<index>\d+)_(?P<sub>\d+)_(?P<z>\d+)_(?P<t>\d+)\.tiff?$", re.IGNORECASE)
_CHUNK_BYTES = 16 * 2**20
"""Largest chunk a RAW task reads (a single frame may exceed it)."""
_FRAME_CHUNK_BYTES = 2**20
"""Frames at least this big are one chunk each (one channel, one Z, one T)."""


@dataclass(frozen=True)
class _Layout:
    """What Experiment.xml says about the pixels."""

    size_t: int
    size_z: int
    size_y: int
    size_x: int
    channel_names: tuple[str, ...]
    channel_bits: tuple[int, ...]  # bit index (A=0 ... D=3) of each enabled channel, in order
    flyback: int  # extra frames at the end of every volume (fast Z only)
    streaming: bool
    pixel_size: float | None
    z_step: float | None
    interval: float | None
    only_enabled: bool  # RawData onlyEnabledChannels (True when absent)
    rule: str


class ThorlabsReader:
    """Reader for ThorImageLS acquisition folders (``Experiment.xml`` plus RAW or TIFF data).

    Examples
    --------
    >>> reader = ThorlabsReader()
    >>> reader.name, reader.suffixes
    ('thorlabs', ('.raw', '.xml'))

    """

    name: str = "thorlabs"
    suffixes: tuple[str, ...] = (".raw", ".xml")

    def sniff(self, path: Path, head: bytes) -> bool:
        """Return True for a ThorImageLS folder, its ``Image_*.raw`` or its ``Experiment.xml``.

        Parameters
        ----------
        path
            A folder or a file.
        head
            The first bytes of the file (empty for a folder).

        """
        path = Path(path)
        try:
            if path.is_dir():
                xml = path / XML_NAME
                return xml.is_file() and _has_root(xml) and bool(_data_files(path))
            if path.suffix.lower() == ".raw":
                xml = path.parent / XML_NAME
                return bool(_RAW_NAME.match(path.name)) and xml.is_file() and _has_root(xml)
            if path.suffix.lower() == ".xml":
                return f"<{ROOT_TAG}".encode() in (head or _head(path))
        except OSError:
            return False
        return False

    def scenes(self, path: Path) -> list[str | None]:
        """Return the images of the acquisition: always one, unnamed."""
        _resolve(Path(path))
        return [None]

    def open(
        self,
        path: Path,
        *,
        scene: SceneSelector = 0,
        axes: str | None = None,
        level: int = 0,
    ) -> ImageSource:
        """Read Experiment.xml (never pixels) and return the lazy TZCYX image.

        Parameters
        ----------
        path
            The acquisition folder, its ``Image_*.raw`` file or its ``Experiment.xml``.
        scene
            Must be 0: an acquisition is one image.
        axes
            Not accepted: the axes are stated by Experiment.xml.
        level
            Must be 0: there is one resolution level.

        Raises
        ------
        FileFormatError
            No Experiment.xml, malformed XML, no data file, or data that does not
            match the layout (the RAW size is checked; the message gives expected and
            actual bytes).
        MetadataError
            A field the layout needs is missing or invalid (the message names it).
        DimensionError
            ``axes`` given, or a scene or level other than 0.

        """
        if axes is not None:
            raise DimensionError(
                f"axes={axes!r} is not accepted for Thorlabs data: Experiment.xml states the axes; "
                "open without axes= and use the dataset's selection methods instead"
            )
        if scene not in (0, None) or level != 0:
            raise DimensionError(
                f"a ThorImageLS acquisition has one image and one level; got scene={scene!r}, level={level!r}"
            )
        path = Path(path)
        xml_path, raw = _resolve(path)
        text, root = _parse_xml(xml_path)
        layout = _layout(root, xml_path)
        date, unreadable = _date(root, xml_path)
        data = raw if raw is not None else _find_data(xml_path.parent, layout, xml_path)
        plane_run = None
        if isinstance(data, Path):
            array, rule, fmt = _raw_array(data, layout), layout.rule, "thorlabs-raw"
            plane_run = _raw_plane_run(data, layout, int(array.nbytes))
        else:
            array, rule, fmt = _tiff_array(data, layout, xml_path), layout.rule, "thorlabs-tiff"
        shape = tuple(int(s) for s in array.shape)
        px = Measure(layout.pixel_size, "micrometer") if layout.pixel_size else None
        sizes: dict[str, Measure | None] = {"X": px, "Y": px, "Z": None}
        if layout.z_step:
            sizes["Z"] = Measure(layout.z_step, "micrometer")
        ome = deferred_make_ome(
            shape,
            array.dtype,
            physical_sizes=sizes,
            time_increment=Measure(layout.interval, "second") if layout.interval else None,
            channel_names=list(layout.channel_names),
            later=lambda: {"acquisition_date": date},
        )
        return ImageSource(
            data=array,
            ome=ome,
            path=path,
            format=fmt,
            scenes=(None,),
            scene=0,
            axes_rule=rule,
            original_metadata={f"thorlabs:{XML_NAME}": text}
            | ({"thorlabs:unreadable": unreadable} if unreadable else {}),
            levels=(shape,),
            read_into=None if plane_run is None else plane_run.read,
            plane_reader=plane_run,
        )


# --- locating the files ---------------------------------------------------------------------------------


def _head(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def _has_root(xml: Path) -> bool:
    return f"<{ROOT_TAG}".encode() in _head(xml)


def _data_files(folder: Path) -> list[Path]:
    """Return the RAW files and TIFF-mode plane files in a folder (previews excluded)."""
    return sorted(p for p in folder.iterdir() if _RAW_NAME.match(p.name) or _TIFF_NAME.match(p.name))


def _resolve(path: Path) -> tuple[Path, Path | None]:
    """Return (Experiment.xml, the RAW file if the user named one)."""
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    if path.is_dir():
        xml = path / XML_NAME
        if not xml.is_file():
            raise FileFormatError(
                f"{path}: no {XML_NAME} in this folder; a ThorImageLS acquisition folder "
                f"holds {XML_NAME} next to its Image_*.raw or Chan*.tif data"
            )
        return xml, None
    if path.suffix.lower() == ".raw":
        xml = path.parent / XML_NAME
        if not xml.is_file():
            raise FileFormatError(
                f"{path}: no {XML_NAME} next to this RAW file; it defines the layout "
                "(copy it back from the acquisition folder)"
            )
        return xml, path
    return path, None


def _find_data(folder: Path, layout: _Layout, xml: Path) -> Path | dict[tuple[int, int, int], Path]:
    """Return the RAW file, or the TIFF-mode planes keyed by (t, z, c) indices."""
    raws = sorted(p for p in folder.iterdir() if _RAW_NAME.match(p.name))
    if len(raws) == 1:
        return raws[0]
    if len(raws) > 1:
        names = ", ".join(p.name for p in raws)
        raise FileFormatError(f"{folder}: several RAW files ({names}); open one of them by its path")
    planes = _tiff_planes(folder, layout)
    if not planes:
        raise FileFormatError(
            f"{xml}: no data next to it: expected Image_0001_0001.raw or "
            f"{layout.channel_names[0]}_0001_0001_0001_0001.tif ... in {folder}"
        )
    return planes


# --- Experiment.xml ---------------------------------------------------------------------------------------


def _parse_xml(xml: Path) -> tuple[str, ET.Element]:
    """Return the text and the root element of Experiment.xml."""
    raw = xml.read_bytes()
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise FileFormatError(f"{xml}: malformed XML ({exc}); Experiment.xml must be well-formed") from None
    if root.tag != ROOT_TAG:
        raise FileFormatError(f"{xml}: root element is <{root.tag}>, not <{ROOT_TAG}>; not a ThorImageLS file")
    for el in root.iter():  # ThorImageLS writes attributes only: text between elements is a garbled tag
        stray = [t.strip() for t in (el.tail, el.text if len(el) else None) if t and t.strip()]
        if stray:
            raise FileFormatError(
                f"{xml}: stray text {stray[0][:60]!r} next to <{el.tag}>; an element of Experiment.xml is "
                "damaged (restore the file from the acquisition)"
            )
    return raw.decode("utf-8", errors="replace"), root


_KNOWN_NAMES = frozenset(
    "LSM pixelX pixelY pixelSizeUM Wavelengths Wavelength ChannelEnable Set ZStage steps stepSizeUM enable "
    "Timelapse timepoints intervalSec Streaming frames zFastEnable flybackFrames CaptureMode mode RawData "
    "frameRate averageMode "
    "onlyEnabledChannels Date uTime".split()
)
"""The element and attribute names the reader uses (never taken for a damaged spelling of each other)."""


def _misspelt(name: str, present: Iterable[str]) -> str | None:
    """Return a name of ``present`` that differs from ``name`` in one character (a flipped byte), if any."""
    for other in present:
        if len(other) == len(name) and other not in _KNOWN_NAMES:
            if sum(a != b for a, b in zip(other, name, strict=True)) == 1:
                return other
    return None


def _find(parent: ET.Element, tag: str, xml: Path) -> ET.Element | None:
    """Return the child ``<tag>``, or ``None`` when absent; a damaged spelling of it raises."""
    el = parent.find(tag)
    if el is None and (near := _misspelt(tag, (c.tag for c in parent))) is not None:
        raise MetadataError(f"{xml}: no <{tag}> but a <{near}>: the element name is damaged")
    return el


def _attr(el: ET.Element, attr: str, xml: Path) -> str | None:
    """Return an attribute's text, or ``None`` when absent; a damaged spelling of its name raises."""
    text = el.get(attr)
    if text is None and (near := _misspelt(attr, el.keys())) is not None:
        raise MetadataError(f"{xml}: <{el.tag}> has no {attr!r} but a {near!r}: the attribute name is damaged")
    return text


def _element(root: ET.Element, tag: str, xml: Path) -> ET.Element:
    el = _find(root, tag, xml)
    if el is None:
        raise MetadataError(f"{xml}: missing element <{tag}>, needed for the image layout")
    return el


def _value(
    root: ET.Element, tag: str, attr: str, xml: Path, cast: Callable[[str], Any] = int, default: Any = ...
) -> Any:
    """Return ``<tag attr=...>`` cast to a type; a missing value raises unless a default is given."""
    el = _find(root, tag, xml)
    text = None if el is None else _attr(el, attr, xml)
    if text is None:
        if default is not ...:
            return default
        what = f"element <{tag}>" if el is None else f"attribute {attr!r} of <{tag}>"
        raise MetadataError(f"{xml}: missing {what}, needed for the image layout")
    try:
        return cast(text.strip())
    except ValueError:
        raise MetadataError(f"{xml}: <{tag} {attr}={text!r}> is not a valid {cast.__name__}") from None


_MAX_MEASURE = 1e6
"""Largest plausible pixel size, Z step (micrometres: a metre) or interval (seconds: 11 days)."""


def _measure(root: ET.Element, tag: str, attr: str, xml: Path, *, signed: bool = False) -> float | None:
    """Return a physical value of Experiment.xml, ``None`` when absent or 0 (unset).

    A value that is not a finite number, or negative where only a magnitude makes
    sense (``signed=False``), is damage and raises; it is never dropped in silence.
    """
    value: float | None = _value(root, tag, attr, xml, float, None)
    if value is None or value == 0:
        return None
    if not (math.isfinite(value) and abs(value) <= _MAX_MEASURE) or (value < 0 and not signed):
        raise MetadataError(
            f"{xml}: <{tag} {attr}={value!r}> is not a plausible {'' if signed else 'positive '}value "
            f"(at most {_MAX_MEASURE:g}); the field is damaged (restore Experiment.xml from the acquisition)"
        )
    return abs(value)


def _channels(root: ET.Element, xml: Path) -> tuple[tuple[str, ...], tuple[int, ...], str]:
    """Return the enabled channel names, their bit indices and a sentence saying how.

    ThorImageLS lists one ``<Wavelength>`` per enabled channel, so the listed names
    and ``ChannelEnable`` must agree both ways: a mask enabling a channel that is not
    listed, or a listed channel the mask does not enable, is an error.
    """
    waves = _element(root, "Wavelengths", xml)
    names = [(w.get("name") or "").strip() for w in waves.findall("Wavelength")]
    if not names:
        raise MetadataError(f"{xml}: <Wavelengths> lists no <Wavelength>; at least one channel is needed")
    if "" in names or len(set(n.lower() for n in names)) != len(names):
        raise MetadataError(
            f"{xml}: <Wavelength> names {names} are empty or repeated; each channel needs its own name "
            "(its TIFF files and the channel names depend on it)"
        )
    enable = _find(waves, "ChannelEnable", xml)
    if enable is None or _attr(enable, "Set", xml) is None:
        bits = tuple(_letter_bit(n, i) for i, n in enumerate(names))
        return tuple(names), bits, f"C = the {len(names)} listed Wavelength(s) {', '.join(names)}"
    mask = _value(waves, "ChannelEnable", "Set", xml)
    enabled = [b for b in range(len(CHANNEL_LETTERS)) if mask >> b & 1]
    if not enabled or mask >> len(CHANNEL_LETTERS):
        raise MetadataError(f"{xml}: <ChannelEnable Set={mask}> is not a channel mask (A=1, B=2, C=4, D=8)")
    by_letter = {n[-1].upper(): n for n in names if re.fullmatch(r"Chan[A-D]", n, re.IGNORECASE)}
    letters = "".join(CHANNEL_LETTERS[b] for b in enabled)
    if len(by_letter) == len(names):  # the usual ChanA ... ChanD names: the letters must be the enabled ones
        consistent = set(by_letter) == set(letters)
    else:  # other names: at least as many as the enabled channels
        consistent = len(names) == len(enabled)
    if not consistent:
        raise MetadataError(
            f"{xml}: <ChannelEnable Set={mask}> enables channel(s) {', '.join(letters)} but <Wavelengths> "
            f"lists {', '.join(names)}; the two must name the same channels (Experiment.xml damaged or "
            "edited: restore it from the acquisition)"
        )
    chosen = [by_letter[c] for c in letters] if len(by_letter) == len(names) else names
    rule = f"C = channels enabled by ChannelEnable Set={mask} (A=1,B=2,C=4,D=8): {', '.join(chosen)}"
    return tuple(chosen), tuple(enabled), rule


def _letter_bit(name: str, fallback: int) -> int:
    match = re.fullmatch(r"Chan([A-D])", name, re.IGNORECASE)
    return CHANNEL_LETTERS.index(match.group(1).upper()) if match else fallback


def _streaming_interval(root: ET.Element, xml: Path, frames_per_time_point: int) -> tuple[float | None, str]:
    """Return the time increment of a streaming acquisition, derived from its frame rate, and how.

    Streaming states no interval, but the scanner's frame rate (``<LSM frameRate>``, else
    ``<Streaming frameRate>``, frames per second): a time point takes one frame (all
    channels are scanned together), or with fast Z one frame per Z step plus the
    flyback frames of the volume, so the increment is ``frames_per_time_point /
    frameRate``. With frame averaging (``averageMode`` not 0) the number of scanned
    frames behind each stored one is not stated unambiguously, so nothing is derived.
    A frame rate that is not a positive finite number is damage and raises.
    """
    rate = _measure(root, "LSM", "frameRate", xml)
    tag = "LSM"
    if rate is None:
        rate, tag = _measure(root, "Streaming", "frameRate", xml), "Streaming"
    if rate is None:
        return None, "no interval and no frameRate are stated for streaming, so the time increment is unset"
    averaging = _value(root, "LSM", "averageMode", xml, default=0)
    if averaging != 0:
        return None, (
            f"no interval is stated for streaming and <LSM averageMode={averaging}> averages frames, so the time "
            f"increment is not derived from <{tag} frameRate={rate:g}> and is unset"
        )
    interval = frames_per_time_point / rate
    frames = "1 frame" if frames_per_time_point == 1 else f"{frames_per_time_point} frames (Z steps + flyback)"
    return interval, (
        f"no interval is stated for streaming: time increment derived as {frames} per time point / "
        f"<{tag} frameRate={rate:g}> (frames per second) = {interval:.6g} s"
    )


def _layout(root: ET.Element, xml: Path) -> _Layout:
    """Derive T, Z, C, Y, X and the physical metadata from Experiment.xml."""
    size_x = _value(root, "LSM", "pixelX", xml)
    size_y = _value(root, "LSM", "pixelY", xml)
    if size_x <= 0 or size_y <= 0:
        raise MetadataError(f"{xml}: <LSM pixelX={size_x} pixelY={size_y}> must be positive")
    names, bits, channel_rule = _channels(root, xml)
    mode = _value(root, "CaptureMode", "mode", xml)
    flyback = 0
    z_enabled = _value(root, "ZStage", "enable", xml, default=1) != 0
    if mode == 1:
        size_t = _value(root, "Streaming", "frames", xml)
        fast_z = _value(root, "Streaming", "zFastEnable", xml, default=0) == 1
        size_z = _value(root, "ZStage", "steps", xml) if fast_z else 1
        if fast_z:
            flyback = _value(root, "Streaming", "flybackFrames", xml)
        interval, interval_rule = _streaming_interval(root, xml, size_z + flyback if fast_z else 1)
        tz_rule = (
            f"CaptureMode 1 (streaming): T = Streaming frames ({size_t}); "
            + (
                f"Z = ZStage steps ({size_z}) with fast Z, {flyback} flyback frame(s) per volume skipped"
                if fast_z
                else "Z = 1 (zFastEnable=0)"
            )
            + f"; {interval_rule}"
        )
    elif mode == 0:
        size_t = _value(root, "Timelapse", "timepoints", xml)
        size_z = _value(root, "ZStage", "steps", xml) if z_enabled else 1
        interval = _measure(root, "Timelapse", "intervalSec", xml)
        tz_rule = (
            f"CaptureMode 0 (Z stack / time series): T = Timelapse timepoints ({size_t}); Z = ZStage steps ({size_z})"
        )
    else:
        raise MetadataError(f"{xml}: <CaptureMode mode={mode}> is not supported (0 = Z/T series, 1 = streaming)")
    if size_t <= 0 or size_z <= 0 or flyback < 0:
        raise MetadataError(f"{xml}: non-positive layout (T={size_t}, Z={size_z}, flybackFrames={flyback})")
    z_step = _measure(root, "ZStage", "stepSizeUM", xml, signed=True) if size_z > 1 else None
    rule = (
        f"ThorImageLS Experiment.xml: {tz_rule}; {channel_rule}; Y, X = LSM pixelY, pixelX "
        f"({size_y}, {size_x}); physical X/Y = LSM pixelSizeUM, Z = ZStage stepSizeUM only when Z > 1"
    )
    return _Layout(
        size_t=size_t,
        size_z=size_z,
        size_y=size_y,
        size_x=size_x,
        channel_names=names,
        channel_bits=bits,
        flyback=flyback,
        streaming=mode == 1,
        pixel_size=_measure(root, "LSM", "pixelSizeUM", xml),
        z_step=z_step,
        interval=interval,
        only_enabled=_value(root, "RawData", "onlyEnabledChannels", xml, default=1) != 0,
        rule=rule,
    )


def _date(root: ET.Element, xml: Path) -> tuple[datetime | None, str | None]:
    """Return the acquisition date (``<Date uTime>``, Unix seconds) and why it was left unset, if it was.

    The date is not needed for the pixels, so a damaged one does not fail the open:
    it is left unset and the reason is recorded. ``uTime`` is cross-checked against the
    ``date`` text next to it when that text can be read (it is local time, so up to
    14 hours apart); a disagreement means one of them is damaged.
    """
    try:
        el = _find(root, "Date", xml)
        text = None if el is None else _attr(el, "uTime", xml)
    except MetadataError as exc:
        return None, f"{exc}; the acquisition date is left unset"
    if el is None or text is None:
        return None, None
    try:
        when = datetime.fromtimestamp(int(text.strip()), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None, f"<Date uTime={text!r}> is not a Unix time in seconds; the acquisition date is left unset"
    local = _local_dates(el.get("date") or "")
    if local and all(abs(d - when.replace(tzinfo=None)) > _MAX_UTC_OFFSET for d in local):
        return None, (
            f"<Date uTime={text!r}> ({when:%Y-%m-%d %H:%M:%S} UTC) disagrees with date={el.get('date')!r}; "
            "one of them is damaged, so the acquisition date is left unset"
        )
    return when, None


_MAX_UTC_OFFSET = timedelta(hours=14)
_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%Y-%m-%d %H:%M:%S")


def _local_dates(text: str) -> list[datetime]:
    """Every reading of a ``<Date date=...>`` text under the formats ThorImageLS writes (none if unreadable)."""
    found = []
    for fmt in _DATE_FORMATS:
        try:
            found.append(datetime.strptime(text.strip(), fmt))
        except ValueError:
            continue
    return found


# --- RAW ---------------------------------------------------------------------------------------------------


def _raw_array(path: Path, layout: _Layout) -> da.Array:
    """Return the lazy TZCYX array of a RAW file after checking its size against the layout.

    The layout is the one Experiment.xml states: the enabled channels, or all four
    channel slots with ``RawData onlyEnabledChannels=0``. A file of any other size is
    an error whose message says which reading its size would fit, if any.
    """
    n_c = len(layout.channel_names)
    n_stored = n_c if layout.only_enabled else len(CHANNEL_LETTERS)
    frame = layout.size_y * layout.size_x * RAW_DTYPE.itemsize
    frames_per_t = layout.size_z + layout.flyback
    record = frames_per_t * n_stored * frame
    expected = layout.size_t * record
    actual = os.stat(path).st_size
    if actual == expected:
        slots = tuple(range(n_c)) if n_stored == n_c else layout.channel_bits
        return _raw_graph(path, layout, n_stored, slots)
    detail = (
        f"T={layout.size_t} x (Z={layout.size_z} + flyback={layout.flyback}) x C={n_stored} stored x "
        f"Y={layout.size_y} x X={layout.size_x} x 2 bytes"
    )
    msg = f"{path}: size is {actual} bytes but {XML_NAME} describes {expected} bytes ({detail})"
    other = n_c if n_stored != n_c else len(CHANNEL_LETTERS)
    if actual == layout.size_t * frames_per_t * other * frame:
        flag = "1" if other == n_c else "0"
        msg += (
            f"; the size fits {other} stored channel(s) per frame instead: if the file holds "
            f"{'only the enabled channels' if flag == '1' else 'all four channel slots'}, "
            f'<RawData onlyEnabledChannels="{flag}"> is what Experiment.xml should state'
        )
    elif actual < expected and actual % record == 0 and layout.streaming:
        whole = actual // record
        msg += (
            f"; the file holds {whole} whole time point(s) of {layout.size_t}: the acquisition was "
            f'probably stopped early. To read them, set <Streaming frames="{whole}"> in a copy of '
            f"{XML_NAME} next to a copy (or link) of the RAW file"
        )
    elif actual < expected:
        msg += "; the file is truncated or Experiment.xml states too large a layout"
    else:
        msg += "; the file holds more data than described (wrong or damaged Experiment.xml?)"
    raise FileFormatError(msg)


def _raw_plane_run(path: Path, layout: _Layout, nbytes: int) -> PlaneRun | None:
    """The RAW file as a run of TZCYX planes, where it holds exactly that array.

    That is the case without flyback frames and with only the enabled channels stored:
    the RAW file is then the TZCYX array in C order, any run of planes one byte range.
    """
    if layout.flyback or os.stat(path).st_size != nbytes:  # ``nbytes``: the TZCYX array the layout describes
        return None
    return PlaneRun(str(path), file_identity(path), 0, not RAW_DTYPE.isnative)


def _raw_graph(path: Path, layout: _Layout, n_stored: int, slots: Sequence[int]) -> da.Array:
    """Build the dask array; each task memory-maps only its own byte range."""
    n_t, n_z, n_y, n_x = layout.size_t, layout.size_z, layout.size_y, layout.size_x
    n_c = len(slots)
    frame_bytes = n_y * n_x * RAW_DTYPE.itemsize
    if frame_bytes >= _FRAME_CHUNK_BYTES:  # one chunk per frame, as TIFF pages: a shown plane reads itself only
        t_chunk = z_chunk = c_chunk = 1
    else:  # small frames: ~16 MB chunks of whole records, all channels
        plane_group = n_c * frame_bytes
        c_chunk = n_c
        z_chunk = n_z if n_z * plane_group <= _CHUNK_BYTES else max(1, _CHUNK_BYTES // plane_group)
        t_chunk = max(1, _CHUNK_BYTES // (n_z * plane_group)) if z_chunk == n_z else 1
    frames_per_t = n_z + layout.flyback
    record = frames_per_t * n_stored * frame_bytes
    st = os.stat(path)
    tasks: dict[tuple[int, ...], tuple[Any, ...]] = {}
    t_starts = range(0, n_t, t_chunk)
    z_starts = range(0, n_z, z_chunk)
    c_starts = range(0, n_c, c_chunk)
    for (i, t0), (j, z0), (k, c0) in itertools.product(enumerate(t_starts), enumerate(z_starts), enumerate(c_starts)):
        nt = min(t_chunk, n_t - t0)
        nz = min(z_chunk, n_z - z0)
        offset = t0 * record + z0 * n_stored * frame_bytes
        # rows of the memory map: nt records; only the first nz frames of each are used
        shape = (nt, frames_per_t, n_stored, n_y, n_x)
        kept = tuple(slots[c0 : c0 + c_chunk])
        tasks[(i, j, k, 0, 0)] = (_read_raw, str(path), offset, shape, RAW_DTYPE.str, nz, kept)
    chunks = (
        tuple(min(t_chunk, n_t - t) for t in t_starts),
        tuple(min(z_chunk, n_z - z) for z in z_starts),
        tuple(min(c_chunk, n_c - c) for c in c_starts),
        (n_y,),
        (n_x,),
    )
    token = (str(path), st.st_size, st.st_mtime_ns, tuple(slots))
    return array_from_tasks(
        tasks, chunks, RAW_DTYPE.newbyteorder("="), name="thorlabs-raw", token=token, source=str(path)
    )


def _read_raw(
    path: str, offset: int, shape: tuple[int, ...], dtype: str, nz: int, slots: tuple[int, ...]
) -> np.ndarray[Any, Any]:
    """Read one chunk: ``shape`` is (t, frames per record, stored channels, Y, X) from ``offset``.

    Only the bytes of this chunk are mapped (the last record's unused frames are not),
    and the map is dropped before returning, so nothing stays open after compute.
    """
    nt, per_t, n_stored, n_y, n_x = shape
    frame = n_y * n_x
    record = per_t * n_stored * frame
    count = (nt - 1) * record + nz * n_stored * frame
    mm = np.memmap(path, dtype=np.dtype(dtype), mode="r", offset=offset, shape=(count,))
    out = np.empty((nt, nz, len(slots), n_y, n_x), dtype=np.dtype(dtype).newbyteorder("="))
    for t in range(nt):
        block = mm[t * record : t * record + nz * n_stored * frame].reshape(nz, n_stored, n_y, n_x)
        for c, slot in enumerate(slots):  # basic indexing: copied once, no temporary
            out[t, :, c] = block[:, slot]
    del mm, block  # the copy in ``out`` holds no reference to the map, so the file is released
    return out


# --- TIFF mode ---------------------------------------------------------------------------------------------


def _tiff_planes(folder: Path, layout: _Layout) -> dict[tuple[int, int, int], Path]:
    """Return ``{(t, z, c): path}`` for the plane TIFFs of the enabled channels (0-based indices).

    Plane files of a channel that Experiment.xml does not enable are an error: the
    acquisition holds channels its metadata does not describe.
    """
    lookup = {n.lower(): i for i, n in enumerate(layout.channel_names)}
    found: dict[tuple[int, int, int], Path] = {}
    positions: set[tuple[int, int]] = set()
    others: dict[str, int] = {}
    for p in sorted(folder.iterdir()):
        m = _TIFF_NAME.match(p.name)
        if m is None:
            continue
        if m["chan"].lower() not in lookup:
            others[m["chan"]] = others.get(m["chan"], 0) + 1
            continue
        positions.add((int(m["index"]), int(m["sub"])))
        found[(int(m["t"]) - 1, int(m["z"]) - 1, lookup[m["chan"].lower()])] = p
    if others:
        listed = ", ".join(f"{name} ({n} file(s))" for name, n in sorted(others.items()))
        raise FileFormatError(
            f"{folder}: TIFF planes of channel(s) {listed} are present but {XML_NAME} enables only "
            f"{', '.join(layout.channel_names)}; its <ChannelEnable>/<Wavelengths> do not describe this folder "
            "(damaged Experiment.xml, or files of another acquisition copied in)"
        )
    if len(positions) > 1:
        raise DimensionError(
            f"{folder}: TIFF files of {len(positions)} sample positions (index, sub-well) "
            f"{sorted(positions)[:4]}...; move each position to its own folder"
        )
    return found


def _check_planes(planes: dict[tuple[int, int, int], Path], layout: _Layout, folder: Path) -> None:
    """Check the plane files present against the T x Z x C the layout states, both ways.

    The work is bounded by the number of files present, whatever sizes the layout
    states: a missing plane is looked for only among the first ``len(planes) + 5``
    positions of the layout.
    """
    n_t, n_z, n_c = layout.size_t, layout.size_z, len(layout.channel_names)
    extra = sorted(k for k in planes if not (k[0] < n_t and k[1] < n_z and k[2] < n_c and min(k) >= 0))
    n_missing = n_t * n_z * n_c - (len(planes) - len(extra))
    if not extra and n_missing == 0:
        return

    def show(keys: list[tuple[int, int, int]], total: int) -> str:
        text = ", ".join(f"{layout.channel_names[c]} z={z + 1} t={t + 1}" for t, z, c in keys[:5])
        return text + (", ..." if total > 5 else "")

    layout_keys = ((t, z, c) for t in range(n_t) for z in range(n_z) for c in range(n_c))  # lazy, unlike product
    missing = list(itertools.islice((k for k in layout_keys if k not in planes), 5)) if n_missing else []
    parts = [f"{n_missing} missing ({show(missing, n_missing)})"] if n_missing else []
    parts += [f"{len(extra)} beyond the layout ({show(extra, len(extra))})"] if extra else []
    raise FileFormatError(
        f"{folder}: {len(planes)} TIFF plane file(s) do not match {XML_NAME} (T={n_t} x Z={n_z} x C={n_c} "
        f"= {n_t * n_z * n_c} planes): " + "; ".join(parts) + "; files are missing or Experiment.xml states "
        "another layout"
    )


def _tiff_array(planes: dict[tuple[int, int, int], Path], layout: _Layout, xml: Path) -> da.Array:
    """Return the lazy TZCYX array of a TIFF-mode folder, one task per TIFF file."""
    import tifffile

    n_t, n_z, n_c = layout.size_t, layout.size_z, len(layout.channel_names)
    folder = xml.parent
    _check_planes(planes, layout, folder)
    first = planes[(0, 0, 0)]
    with reading(first, "read its first page (a TIFF-mode plane)"), tifffile.TiffFile(first) as tif:
        page = tif.pages.first
        shape, dtype = tuple(page.shape), np.dtype(page.dtype)
    if shape != (layout.size_y, layout.size_x):
        raise FileFormatError(
            f"{first}: plane shape {shape} differs from {XML_NAME} "
            f"(pixelY, pixelX) = ({layout.size_y}, {layout.size_x})"
        )
    token = [(str(p), p.stat().st_mtime_ns) for _, p in sorted(planes.items())[:1]]
    tasks: dict[tuple[int, ...], tuple[Any, ...]] = {
        (t, z, c, 0, 0): (_read_tiff, str(p), shape, dtype.newbyteorder("=").str) for (t, z, c), p in planes.items()
    }
    chunks = ((1,) * n_t, (1,) * n_z, (1,) * n_c, (shape[0],), (shape[1],))
    native = dtype.newbyteorder("=")
    return array_from_tasks(
        tasks, chunks, native, name="thorlabs-tiff", token=(str(folder), len(planes), token), source=str(folder)
    )


def _read_tiff(path: str, shape: tuple[int, int], dtype: str) -> np.ndarray[Any, Any]:
    """Read the first page of one TIFF-mode file as a (1, 1, 1, Y, X) block."""
    import tifffile

    with reading(path, "read its first page (a TIFF-mode plane)"):
        plane = tifffile.imread(path, key=0)
    if plane.shape != shape:
        raise FileFormatError(f"{path}: plane shape {plane.shape} differs from the other planes {shape}")
    return np.asarray(plane, dtype=np.dtype(dtype)).reshape((1, 1, 1, *shape))
