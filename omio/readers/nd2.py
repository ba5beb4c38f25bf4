"""Reader for Nikon NIS-Elements ND2 files (through the ``nd2`` package).

Each XY position (the ``P`` loop) is one scene, named after the experiment's
position names where the file gives them. Opening reads the experiment and the
metadata only; pixels are read by dask tasks, one per plane (one loop position and
one channel: a full Y, X frame with its colour samples). Tasks capture the path and
the frame's sequence index and fetch the open file from the per-process handle
cache, so graphs pickle and run on any worker.

Mapping onto TZCYX (stated in ``ImageSource.axes_rule``):

- The time loops (``TimeLoop``, ``NETimeLoop``) are T, the Z-stack loop is Z, the
  frame's channels are C; a loop the file lacks has size 1.
- Colour samples of RGB files become C in R, G, B order (``<channel>:R`` ...).
- Any other loop (custom loops) follows the rule of :mod:`omio.dims`: folded into C
  channel-major.
- Frames the experiment plans but the file does not hold (an acquisition stopped
  early) are 0.

Metadata: physical sizes from ``voxel_size()`` (micrometres) for the axes the file
marks as calibrated; the time increment from the time loop's period (milliseconds,
``None`` when the period is 0, i.e. not set); channel names, colours and
wavelengths from ``metadata.channels``. ``text_info`` and the experiment loops are
kept as original metadata. Plane table: ``DeltaT`` and ``PositionX/Y/Z`` of every
frame channel from ``frame_metadata`` (``time.relativeTimeMs``,
``position.stagePositionUm``), the exposure time from the picture planes'
``SampleSetting`` (as the ``nd2`` package's OME export reads them).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omio.dims import SAMPLE_COLORS, ChannelPart, to_tzcyx
from omio.errors import DimensionError
from omio.lazy_ome import deferred_make_ome
from omio.readers._base import ImageSource, SceneSelector, select_scene
from omio.readers._handles import cached_handle
from omio.readers._lazy import array_from_chunks
from omio.readers._optional import library_errors, require
from omio.readers._planes import finite, plane_codes, plane_infos, plane_row, too_many_planes
from omio.record import PlaneInfo
from omio.units import Measure

if TYPE_CHECKING:
    import nd2

__all__ = ["Nd2Reader"]

MAGIC = b"\xda\xce\xbe\x0a"
"""First bytes of a modern ND2 file (chunk magic 0x0ABECEDA, little-endian)."""
JP2_MAGIC = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
"""First bytes of a legacy (JPEG 2000) ND2 file; only claimed with the ``.nd2`` suffix."""
FRAME_AXES = frozenset({"C", "Y", "X", "S"})
TIME_LOOPS = ("TimeLoop", "NETimeLoop")
MAX_FRAME_METADATA = 20000
"""At most this many frames' metadata are read to open one XY position (for the plane table)."""


# --------------------------------------------------------------------------- handles and tasks


class _Nd2Handle:
    """An open ND2File shared by the dask tasks of one process (reads are serialised)."""

    def __init__(self, path: str) -> None:
        import nd2

        self.file = nd2.ND2File(path)
        self.lock = threading.Lock()
        # close on collection or at exit, before nd2 warns about an unclosed file
        weakref.finalize(self, self.file.close)

    def frame(self, index: int) -> np.ndarray[Any, Any]:
        """Return one frame as an array (a copy, never a view of the file)."""
        with self.lock:
            return np.array(self.file.read_frame(index))

    def close(self) -> None:
        """Close the file."""
        self.file.close()


def _open_nd2(path: str) -> _Nd2Handle:
    """Open an ND2 file for the handle cache (module level, so its name is a stable key)."""
    return _Nd2Handle(path)


def _read_plane(
    path: str, seq_index: int, channel: int, frame_shape: tuple[int, int, int, int], dtype: str
) -> np.ndarray[Any, Any]:
    """Read one channel of one frame as ``(samples, Y, X)``; ``seq_index`` -1 is a missing frame (0)."""
    ny, nx, samples = frame_shape[1:]
    if seq_index < 0:
        return np.zeros((samples, ny, nx), dtype=dtype)
    with _wrap_errors(path, f"reading frame {seq_index}"):
        frame = cached_handle(_open_nd2, path).frame(seq_index)
        plane = frame.reshape(frame_shape)[channel]
    return np.ascontiguousarray(np.moveaxis(plane, -1, 0), dtype=dtype)


def _wrap_errors(path: str | os.PathLike[str], doing: str) -> AbstractContextManager[None]:
    """Turn the library's exceptions into FileFormatError naming the file."""
    return library_errors(path, doing, what="ND2 file", hint="the file may be truncated or corrupt")


# --------------------------------------------------------------------------- metadata


def _loops(f: nd2.ND2File) -> list[tuple[str, int]]:
    """Return ``(axis, size)`` of the loops that index frames, in nd2's order (sizes > 1 only)."""
    return [(axis, n) for axis, n in f.sizes.items() if axis not in FRAME_AXES]


def _position_names(f: nd2.ND2File) -> list[str | None]:
    """Return one name per XY position (``None`` where unnamed); one unnamed scene without a P loop."""
    for loop in f.experiment:
        if loop.type == "XYPosLoop":
            points = loop.parameters.points
            names: list[str | None] = [p.name or None for p in points]
            return names[: loop.count] + [None] * (loop.count - len(names))
    return [None]


def _time_increment(f: nd2.ND2File) -> Measure | None:
    """Return the period of the time loop in ms (``None`` when 0/unset or when NE phases differ)."""
    for loop in f.experiment:
        if loop.type == "TimeLoop":
            periods = [loop.parameters.periodMs]
        elif loop.type == "NETimeLoop":
            periods = [p.periodMs for p in loop.parameters.periods if p.count > 0]
        else:
            continue
        distinct = {float(p) for p in periods}
        if len(distinct) == 1:
            (period,) = distinct
            return Measure(period, "millisecond") if period > 0 else None
        return None
    return None


def _physical_sizes(f: nd2.ND2File) -> dict[str, Measure | None]:
    """Return X, Y, Z from ``voxel_size()`` (µm) for the axes the file marks as calibrated."""
    channels = f.metadata.channels or []
    if not channels:
        return {"X": None, "Y": None, "Z": None}
    volume = channels[0].volume
    calibrated = volume.axesCalibrated or (False, False, False)
    size = f.voxel_size()
    out: dict[str, Measure | None] = {}
    for axis, ok, value in zip(("X", "Y", "Z"), calibrated, (size.x, size.y, size.z), strict=True):
        out[axis] = Measure(float(value), "micrometer") if ok and value and value > 0 else None
    return out


def _channel_fields(
    f: nd2.ND2File, parts: Sequence[ChannelPart]
) -> tuple[list[str | None], list[Any], list[dict[str, Any]]]:
    """Return the name, colour and wavelengths of every output channel."""
    meta = [c.channel for c in f.metadata.channels or []]
    names: list[str | None] = []
    colors: list[Any] = []
    extras: list[dict[str, Any]] = []
    base_names = [m.name or None for m in meta]
    for part in parts:
        ch = meta[part.channel] if part.channel < len(meta) else None
        names.append(part.name(base_names) if ch is not None or part.suffix else None)
        if part.suffix in SAMPLE_COLORS:
            colors.append(SAMPLE_COLORS[part.suffix])
        else:
            colors.append(None if ch is None else (ch.color.r, ch.color.g, ch.color.b))
        extra: dict[str, Any] = {}
        if ch is not None and ch.emissionLambdaNm:
            extra["emission_wavelength"] = float(ch.emissionLambdaNm)
        if ch is not None and ch.excitationLambdaNm:
            extra["excitation_wavelength"] = float(ch.excitationLambdaNm)
        extras.append(extra)
    return names, colors, extras


def _exposures(f: nd2.ND2File, n_channels: int, path: Path) -> list[float | None]:
    """Return each channel's exposure time in seconds (``PicturePlanes/SampleSetting/*/ExposureTime``, ms).

    As the ``nd2`` package's own OME export reads it: one setting for all channels
    (laser-scanning systems), or one per channel; 0 means unset. Other counts give none.
    """
    try:
        raw = f.unstructured_metadata()
    except Exception:  # legacy files and files without it: nothing stated
        return [None] * n_channels
    sequence = next((v for k, v in raw.items() if k.startswith("ImageMetadataSeqLV")), None)
    planes = ((sequence or {}).get("SLxPictureMetadata") or {}).get("PicturePlanes") or {}
    settings = planes.get("SampleSetting") if isinstance(planes, dict) else None
    items = list(settings.values()) if isinstance(settings, dict) else list(settings or [])
    if len(items) not in (1, n_channels):
        return [None] * n_channels
    out: list[float | None] = []
    for c in range(n_channels):
        item = items[c if len(items) > 1 else 0]
        value = item.get("ExposureTime") if isinstance(item, dict) else None
        ms = finite(value, f"SampleSetting {c} ExposureTime", path)
        out.append(ms / 1000.0 if ms else None)
    return out


def _plane_values(
    f: nd2.ND2File, path: Path, codes: np.ndarray[Any, Any], n_channels: int
) -> tuple[list[PlaneInfo], str]:
    """Return what the file states about each TZC plane, and the rule saying so.

    ``codes`` holds, per T, Z, C index of the dataset, ``frame * n_channels + channel``
    of the stored frame and channel it comes from (-1 for frames the file lacks). Per
    plane: ``DeltaT`` = the frame channel's ``time.relativeTimeMs`` (time since the start
    of the acquisition), ``PositionX/Y/Z`` = its ``position.stagePositionUm``, and the
    channel's exposure time; as ``frame_metadata`` gives them and the ``nd2`` package's
    OME export writes them. PositionZ is the stage (focus drive) position: a piezo
    Z-stack moves the sample without changing it. At most ``MAX_FRAME_METADATA`` frames
    are read; past that the position has no plane table and the rule says so.

    Raises
    ------
    MetadataError
        Where a stated time or position is not a finite number.
    """
    if f.is_legacy:
        return [], "Plane metadata: none (legacy JPEG 2000 ND2 files give no per-frame metadata)."
    skipped = too_many_planes(codes.shape)
    if skipped:
        return [], skipped
    frames = sorted({int(code) // n_channels for code in codes.flat if code >= 0})
    if len(frames) > MAX_FRAME_METADATA:
        return [], f"Plane metadata: not read ({len(frames)} frames, more than {MAX_FRAME_METADATA})."
    exposures = _exposures(f, n_channels, path)
    stated: dict[int, tuple[float | None, ...]] = {}
    for frame in frames:
        meta = f.frame_metadata(frame)
        if isinstance(meta, dict):  # legacy layout: no per-frame metadata
            continue
        for c, channel in enumerate(meta.channels[:n_channels]):
            where = f"frame {frame} channel {c}"
            stage = channel.position.stagePositionUm
            ms = finite(channel.time.relativeTimeMs, f"{where} relativeTimeMs", path)
            stated[frame * n_channels + c] = (
                None if ms is None else ms / 1000.0,
                exposures[c],
                *(finite(v, f"{where} stagePositionUm {a}", path) for a, v in zip("xyz", stage, strict=True)),
            )
    values: list[PlaneInfo] = []
    n_t, n_z, n_c = codes.shape
    for t, z, c in itertools.product(range(n_t), range(n_z), range(n_c)):
        row = stated.get(int(codes[t, z, c]))
        if row is not None:
            values.append(plane_row(t, z, c, *row))
    rule = (
        "Plane metadata: DeltaT = relativeTimeMs, PositionX/Y/Z = stagePositionUm of each frame's channel "
        "(frame_metadata), ExposureTime = the channel's SampleSetting ExposureTime."
    )
    return values, rule if values else ""


def _original_metadata(f: nd2.ND2File) -> dict[str, str]:
    """Return ``text_info`` and the experiment loops as flat text."""
    out = {f"nd2:text_info:{k}": str(v) for k, v in f.text_info.items()}
    out["nd2:experiment"] = json.dumps([_plain(loop) for loop in f.experiment], default=str)
    out["nd2:version"] = ".".join(str(v) for v in f.version)
    return out


def _plain(value: Any) -> Any:
    """Return a dataclass as a dict (for JSON)."""
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


# --------------------------------------------------------------------------- the reader


class Nd2Reader:
    """Reader for Nikon ND2 files (needs ``pip install nd2``).

    Examples
    --------
    >>> reader = Nd2Reader()
    >>> reader.name, reader.suffixes
    ('nd2', ('.nd2',))
    >>> reader.sniff(Path("a.nd2"), MAGIC + bytes(12))
    True
    """

    name = "nd2"
    suffixes: tuple[str, ...] = (".nd2",)

    def sniff(self, path: Path, head: bytes) -> bool:
        """Return True for the ND2 chunk magic, or a JPEG 2000 header in a ``.nd2`` file."""
        if head[: len(MAGIC)] == MAGIC:
            return True
        return head[: len(JP2_MAGIC)] == JP2_MAGIC and Path(path).suffix.lower() == ".nd2"

    def scenes(self, path: Path) -> list[str | None]:
        """Return one name per XY position (``None`` where unnamed)."""
        with self._open(Path(path)) as f, _wrap_errors(path, "reading the experiment"):
            return _position_names(f)

    def open(
        self,
        path: Path,
        *,
        scene: SceneSelector = 0,
        axes: str | None = None,
        level: int = 0,
    ) -> ImageSource:
        """Read the experiment and metadata (never pixels) and return one XY position lazily.

        Parameters
        ----------
        path
            The ND2 file.
        scene
            0-based XY position or its name.
        axes
            Not supported: ND2 loops are named in the file.
        level
            Must be 0: ND2 stores one resolution.

        Raises
        ------
        MissingDependencyError
            When the ``nd2`` package is not installed.
        DimensionError
            For ``axes``, a level other than 0, or an unknown scene.
        FileFormatError
            When the file is not a readable ND2 file.
        """
        path = Path(path)
        if axes is not None:
            raise DimensionError(
                f"{path}: axes={axes!r} is not supported for ND2 files: their loops (T, P, Z) and channels are "
                "named in the file; select an XY position with scene="
            )
        if level != 0:
            raise DimensionError(f"{path}: ND2 files have one resolution level; level={level} does not exist")
        with self._open(path) as f, _wrap_errors(path, "reading the metadata"):
            return self._open_position(f, path, scene)

    # -- internals

    @staticmethod
    @contextmanager
    def _open(path: Path) -> Iterator[nd2.ND2File]:
        require("nd2", extra="nd2", what="ND2", path=path)
        with _wrap_errors(path, "reading the file header"):
            handle = _open_nd2(os.fspath(path))
        try:
            yield handle.file
        finally:
            handle.close()

    def _open_position(self, f: nd2.ND2File, path: Path, scene: SceneSelector) -> ImageSource:
        names = _position_names(f)
        index = select_scene(path, scene, names)
        loops = _loops(f)
        kept = [(axis, n) for axis, n in loops if axis != "P"]
        attrs = f.attributes
        n_channels = attrs.channelCount or 1
        samples = attrs.componentCount // n_channels
        frame_shape = (n_channels, int(attrs.heightPx), int(attrs.widthPx or 0), samples)
        dtype = np.dtype(f.dtype).newbyteorder("<").str
        seq = self._sequence_indices(f, loops)
        n_frames = attrs.sequenceCount
        grid = [n for _, n in kept] + [n_channels]
        args = np.empty(grid, dtype=object)
        codes = np.empty([*grid, samples, 1, 1], dtype=np.int64)  # frame * n_channels + channel, as the pixels
        for idx in itertools.product(*(range(n) for n in grid)):
            coords = dict(zip([a for a, _ in kept], idx[:-1], strict=True))
            if "P" in dict(loops):
                coords["P"] = index
            s = seq.get(tuple(coords.get(a, 0) for a, _ in loops), -1)
            args[idx] = (os.fspath(path), s if 0 <= s < n_frames else -1, idx[-1], frame_shape, dtype)
            codes[idx] = s * n_channels + idx[-1] if 0 <= s < n_frames else -1
        st = os.stat(path)
        native = array_from_chunks(
            _read_plane,
            args,
            (samples, frame_shape[1], frame_shape[2]),
            np.dtype(dtype),
            name="nd2",
            source=str(path),
            token=(os.path.abspath(path), st.st_size, st.st_mtime_ns, index),
        )
        letters = "".join(a for a, _ in kept) + "CSYX"
        mapping = to_tzcyx(native, letters)
        ch_names, ch_colors, ch_extra = _channel_fields(f, mapping.channels)
        frame_codes = plane_codes(codes, letters, mapping.data.shape[:3])
        planes, plane_rule = _plane_values(f, path, frame_codes, n_channels)
        ome = deferred_make_ome(
            mapping.data.shape,
            mapping.data.dtype,
            physical_sizes=_physical_sizes(f),
            time_increment=_time_increment(f),
            channel_names=ch_names,
            name=names[index],
            planes=plane_infos(planes),
            later=lambda: {"channel_colors": ch_colors, "channel_extra": ch_extra},
        )
        loop_text = ", ".join(f"{a}={n}" for a, n in loops) or "none"
        rule = (
            f"ND2 loops {loop_text} (P = XY position = scene {index}), {n_channels} channel(s) of "
            f"{samples} sample(s); {mapping.rule}" + (f". {plane_rule}" if plane_rule else "")
        )
        return ImageSource(
            data=mapping.data,
            ome=ome,
            path=path,
            format="nd2",
            scenes=names,
            scene=index,
            axes_rule=rule,
            original_metadata=_original_metadata(f),
            levels=[tuple(mapping.data.shape)],
        )

    @staticmethod
    def _sequence_indices(f: nd2.ND2File, loops: Sequence[tuple[str, int]]) -> dict[tuple[int, ...], int]:
        """Map loop coordinates (in ``loops`` order) to the frame's sequence index."""
        axes = [a for a, _ in loops]
        return {tuple(li.get(a, 0) for a in axes): s for s, li in enumerate(f.loop_indices)}
