"""Tests of the Thorlabs ThorImageLS reader (RAW and TIFF-mode folders)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omio
from omio.errors import DimensionError, FileFormatError, MetadataError
from omio.readers import _pread as pread_module
from omio.readers import thorlabs
from omio.readers._base import ImageSource
from omio.readers.thorlabs import ThorlabsReader

SAMPLES = Path(os.environ.get("OMIO_SAMPLES", Path(__file__).parents[2] / "shared" / "samples"))
SAMPLE_KEY = "thorlabs/utils2p_mouse_kidney_raw_T5_C2"
LIVEVIEWER_XML = SAMPLES / "thorlabs" / "experiment_xml_only" / "thorlabsLiveViewer_Experiment.xml"
needs_samples = pytest.mark.skipif(not (SAMPLES / SAMPLE_KEY).is_dir(), reason="shared samples not available")


def sha256(a: np.ndarray[Any, Any]) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()


def px(src: ImageSource) -> Any:
    return src.ome.model().images[0].pixels


# --- generated acquisitions ---


def experiment_xml(
    *,
    x: int = 6,
    y: int = 4,
    pixel_size: str = "0.5",
    waves: tuple[str, ...] = ("ChanA",),
    enable: int | None = 1,
    mode: int = 1,
    frames: int = 3,
    fast_z: int = 0,
    flyback: int = 0,
    steps: int = 1,
    step_um: str = "2",
    timepoints: int = 1,
    interval: str = "0",
    only_enabled: str = "1",
    lsm_extra: str = ' frameRate="10"',
    streaming_extra: str = "",
) -> str:
    """Return an Experiment.xml describing a small acquisition."""
    wl = "".join(f'    <Wavelength name="{w}" exposureTimeMS="0" />\n' for w in waves)
    ce = f'    <ChannelEnable Set="{enable}" />\n' if enable is not None else ""
    text = (
        '<?xml version="1.0"?>\n<ThorImageExperiment>\n'
        '  <Date date="05/05/2020 17:14:26" uTime="1588691666" />\n'
        f"  <Wavelengths>\n{wl}{ce}  </Wavelengths>\n"
        f'  <ZStage name="Z" steps="{steps}" stepSizeUM="{step_um}" enable="1" />\n'
        f'  <Timelapse timepoints="{timepoints}" intervalSec="{interval}" triggerMode="0" />\n'
        f'  <LSM name="GG" pixelX="{x}" pixelY="{y}" pixelSizeUM="{pixel_size}"{lsm_extra} />\n'
        f'  <Streaming enable="1" frames="{frames}" zFastEnable="{fast_z}" '
        f'flybackFrames="{flyback}"{streaming_extra} />\n'
        f'  <CaptureMode mode="{mode}" />\n'
        f'  <RawData onlyEnabledChannels="{only_enabled}" />\n'
        "</ThorImageExperiment>\n"
    )
    return text


def write_raw(folder: Path, stored: np.ndarray[Any, Any], xml: str) -> Path:
    """Write ``stored`` (T, frames per time point, stored channels, Y, X) as a RAW acquisition."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Experiment.xml").write_text(xml)
    raw = folder / "Image_0001_0001.raw"
    stored.astype("<u2").tofile(raw)
    return raw


def random_stored(shape: tuple[int, ...], seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).integers(0, 60000, size=shape, dtype=np.uint16)


def test_streaming_one_channel(tmp_path: Path) -> None:
    stored = random_stored((3, 1, 1, 4, 6))
    write_raw(tmp_path, stored, experiment_xml())
    src = ThorlabsReader().open(tmp_path)
    assert src.data.shape == (3, 1, 1, 4, 6)
    assert src.data.dtype == np.uint16
    np.testing.assert_array_equal(src.data.compute(), stored)
    assert px(src).physical_size_x == 0.5 and px(src).physical_size_y == 0.5
    assert px(src).physical_size_z is None
    assert px(src).time_increment == pytest.approx(0.1)  # 1 frame / frameRate 10 Hz, derived and said so
    assert "time increment derived as 1 frame per time point / <LSM frameRate=10>" in src.axes_rule
    assert [c.name for c in px(src).channels] == ["ChanA"]
    assert src.format == "thorlabs-raw"
    assert "Streaming frames" in src.axes_rule


def test_streaming_two_channels_values_at_known_positions(tmp_path: Path) -> None:
    stored = np.zeros((4, 1, 2, 4, 6), dtype=np.uint16)
    for t in range(4):
        for c in range(2):
            stored[t, 0, c] = 1000 * t + 100 * c + np.arange(24).reshape(4, 6)
    write_raw(tmp_path, stored, experiment_xml(waves=("ChanA", "ChanB"), enable=3, frames=4))
    data = ThorlabsReader().open(tmp_path).data
    assert data.shape == (4, 1, 2, 4, 6)
    assert int(data[2, 0, 1, 3, 5]) == 2000 + 100 + 23
    assert int(data[3, 0, 0, 0, 1]) == 3001
    assert int(data[0, 0, 1, 1, 0]) == 106


def test_fast_z_skips_flyback_frames(tmp_path: Path) -> None:
    t, z, fb, c = 2, 3, 2, 2
    stored = random_stored((t, z + fb, c, 4, 6), seed=1)
    stored[:, z:] = 65535  # flyback frames: never part of the image
    xml = experiment_xml(waves=("ChanA", "ChanB"), enable=3, frames=t, fast_z=1, flyback=fb, steps=z)
    write_raw(tmp_path, stored, xml)
    src = ThorlabsReader().open(tmp_path)
    assert src.data.shape == (t, z, c, 4, 6)
    out = src.data.compute()
    np.testing.assert_array_equal(out, stored[:, :z])
    assert out.max() < 65535
    assert px(src).physical_size_z == 2.0
    assert px(src).time_increment == pytest.approx(0.5)  # (3 Z steps + 2 flyback frames) / 10 Hz
    assert "5 frames (Z steps + flyback) per time point" in src.axes_rule
    assert "flyback" in src.axes_rule


def test_chunking_across_frames_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thorlabs, "_CHUNK_BYTES", 4 * 6 * 2)  # one frame per chunk
    t, z, fb, c = 3, 4, 1, 2
    stored = random_stored((t, z + fb, c, 4, 6), seed=2)
    xml = experiment_xml(waves=("ChanA", "ChanB"), enable=3, frames=t, fast_z=1, flyback=fb, steps=z)
    write_raw(tmp_path, stored, xml)
    data = ThorlabsReader().open(tmp_path).data
    assert data.numblocks == (3, 4, 1, 1, 1)
    np.testing.assert_array_equal(data.compute(), stored[:, :z])
    np.testing.assert_array_equal(data[1:3, 2:4, 1].compute(), stored[1:3, 2:4, 1])


def test_large_frames_are_one_chunk_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames from 1 MB up are chunked as TIFF pages are: reading one plane reads that frame only."""
    monkeypatch.setattr(thorlabs, "_FRAME_CHUNK_BYTES", 4 * 6 * 2)  # these 4 x 6 frames count as large
    t, z, fb = 3, 2, 1
    stored = random_stored((t, z + fb, 4, 4, 6), seed=16)  # four channel slots stored, B and D enabled
    xml = experiment_xml(waves=("ChanB", "ChanD"), enable=10, frames=t, fast_z=1, flyback=fb, steps=z, only_enabled="0")
    write_raw(tmp_path, stored, xml)
    data = ThorlabsReader().open(tmp_path).data
    assert data.numblocks == (t, z, 2, 1, 1)
    expected = stored[:, :z][:, :, [1, 3]]
    np.testing.assert_array_equal(data.compute(), expected)
    np.testing.assert_array_equal(data[2, 1, 1].compute(), expected[2, 1, 1])
    read: list[tuple[Any, ...]] = []
    real = thorlabs._read_raw
    monkeypatch.setattr(thorlabs, "_read_raw", lambda *a: (read.append(a), real(*a))[1])
    np.testing.assert_array_equal(omio.open(tmp_path).isel(T=1, Z=0, C=1).to_numpy()[0, 0, 0], expected[1, 0, 1])
    assert [(a[4], a[5]) for a in read] == [(1, (3,))]  # one frame (nz=1) of one stored slot (D)


def test_timelapse_with_interval_and_z_stack(tmp_path: Path) -> None:
    stored = random_stored((2, 4, 1, 4, 6), seed=3)
    xml = experiment_xml(mode=0, timepoints=2, steps=4, step_um="-1.5", interval="2.5", frames=99)
    write_raw(tmp_path, stored, xml)
    src = ThorlabsReader().open(tmp_path)
    assert src.data.shape == (2, 4, 1, 4, 6)
    np.testing.assert_array_equal(src.data.compute(), stored)
    assert px(src).time_increment == 2.5
    assert px(src).time_increment_unit.value == "s"
    assert px(src).physical_size_z == 1.5
    assert "Timelapse timepoints" in src.axes_rule


@pytest.mark.parametrize(
    ("lsm_extra", "streaming_extra", "expected", "said"),
    [
        ("", "", None, "no interval and no frameRate are stated"),
        ("", ' frameRate="4"', 0.25, "<Streaming frameRate=4>"),
        (' frameRate="8" averageMode="1" averageNum="4"', "", None, "averageMode=1> averages frames"),
        (' frameRate="8" averageMode="0" averageNum="4"', "", 0.125, "<LSM frameRate=8>"),
        (' frameRate="0"', "", None, "no interval and no frameRate are stated"),
    ],
)
def test_streaming_interval_from_frame_rate(
    tmp_path: Path, lsm_extra: str, streaming_extra: str, expected: float | None, said: str
) -> None:
    xml = experiment_xml(lsm_extra=lsm_extra, streaming_extra=streaming_extra)
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), xml)
    src = ThorlabsReader().open(tmp_path)
    assert px(src).time_increment == (None if expected is None else pytest.approx(expected))
    assert said in src.axes_rule


@pytest.mark.parametrize("rate", ["fast", "nan", "-5", "1e9"])
def test_streaming_frame_rate_that_is_no_rate_is_an_error(tmp_path: Path, rate: str) -> None:
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml(lsm_extra=f' frameRate="{rate}"'))
    with pytest.raises(MetadataError, match=r"Experiment\.xml.*frameRate"):
        ThorlabsReader().open(tmp_path)


def test_timelapse_ignores_frame_rate(tmp_path: Path) -> None:
    write_raw(tmp_path, random_stored((2, 1, 1, 4, 6)), experiment_xml(mode=0, timepoints=2, interval="0"))
    src = ThorlabsReader().open(tmp_path)
    assert px(src).time_increment is None and "frameRate" not in src.axes_rule


def test_timelapse_interval_zero_is_unset(tmp_path: Path) -> None:
    write_raw(tmp_path, random_stored((2, 1, 1, 4, 6)), experiment_xml(mode=0, timepoints=2, interval="0"))
    src = ThorlabsReader().open(tmp_path)
    assert px(src).time_increment is None
    assert px(src).physical_size_z is None


def test_channel_mask_selects_named_channels(tmp_path: Path) -> None:
    stored = random_stored((2, 1, 2, 4, 6), seed=4)
    xml = experiment_xml(waves=("ChanA", "ChanC"), enable=5, frames=2)
    write_raw(tmp_path, stored, xml)
    src = ThorlabsReader().open(tmp_path)
    assert [c.name for c in px(src).channels] == ["ChanA", "ChanC"]
    np.testing.assert_array_equal(src.data.compute(), stored)


def test_without_channel_enable_all_listed_wavelengths(tmp_path: Path) -> None:
    stored = random_stored((1, 1, 2, 4, 6), seed=5)
    write_raw(tmp_path, stored, experiment_xml(waves=("ChanB", "ChanD"), enable=None, frames=1))
    src = ThorlabsReader().open(tmp_path)
    assert [c.name for c in px(src).channels] == ["ChanB", "ChanD"]
    np.testing.assert_array_equal(src.data.compute(), stored)


def test_all_channel_slots_stored(tmp_path: Path) -> None:
    """RawData onlyEnabledChannels=0: four slots per frame, the enabled ones are picked by bit."""
    stored = random_stored((2, 1, 4, 4, 6), seed=6)
    xml = experiment_xml(waves=("ChanB", "ChanD"), enable=10, frames=2, only_enabled="0")
    write_raw(tmp_path, stored, xml)
    src = ThorlabsReader().open(tmp_path)
    assert src.data.shape == (2, 1, 2, 4, 6)
    np.testing.assert_array_equal(src.data.compute(), stored[:, :, [1, 3]])


def test_accepts_raw_and_xml_paths(tmp_path: Path) -> None:
    stored = random_stored((3, 1, 1, 4, 6), seed=7)
    raw = write_raw(tmp_path, stored, experiment_xml())
    for p in (raw, tmp_path / "Experiment.xml"):
        src = ThorlabsReader().open(p)
        assert src.path == p
        np.testing.assert_array_equal(src.data.compute(), stored)
    assert ThorlabsReader().scenes(tmp_path) == [None]


# --- TIFF mode ---


def write_tiff_folder(folder: Path, planes: np.ndarray[Any, Any], names: tuple[str, ...]) -> None:
    """Write TIFF-mode files ``<chan>_0001_0001_<z>_<t>.tif`` for a (T, Z, C, Y, X) array."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    n_t, n_z = planes.shape[:2]
    xml = experiment_xml(waves=names, enable=(1 << len(names)) - 1, mode=0, timepoints=n_t, steps=n_z)
    (folder / "Experiment.xml").write_text(xml)
    for t in range(n_t):
        for z in range(n_z):
            for c, name in enumerate(names):
                tifffile.imwrite(folder / f"{name}_0001_0001_{z + 1:04d}_{t + 1:04d}.tif", planes[t, z, c])
    for name in names:  # previews equal the last time point; they must be ignored
        tifffile.imwrite(folder / f"{name}_Preview.tif", np.full((4, 6), 7, np.uint16))


def test_tiff_mode_folder(tmp_path: Path) -> None:
    planes = random_stored((2, 3, 2, 4, 6), seed=8)
    write_tiff_folder(tmp_path, planes, ("ChanA", "ChanB"))
    reader = ThorlabsReader()
    assert reader.sniff(tmp_path, b"")
    src = reader.open(tmp_path)
    assert src.format == "thorlabs-tiff"
    assert src.data.shape == (2, 3, 2, 4, 6)
    assert src.data.numblocks == (2, 3, 2, 1, 1)  # one task per TIFF file
    np.testing.assert_array_equal(src.data.compute(), planes)
    assert [c.name for c in px(src).channels] == ["ChanA", "ChanB"]
    assert px(src).physical_size_z == 2.0
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(src.data)).compute(), planes)


def test_tiff_mode_missing_plane(tmp_path: Path) -> None:
    write_tiff_folder(tmp_path, random_stored((2, 2, 1, 4, 6)), ("ChanA",))
    (tmp_path / "ChanA_0001_0001_0002_0001.tif").unlink()
    with pytest.raises(FileFormatError, match=r"1 missing \(ChanA z=2 t=1\)"):
        ThorlabsReader().open(tmp_path)


def test_tiff_mode_wrong_plane_shape(tmp_path: Path) -> None:
    import tifffile

    write_tiff_folder(tmp_path, random_stored((1, 1, 1, 4, 6)), ("ChanA",))
    tifffile.imwrite(tmp_path / "ChanA_0001_0001_0001_0001.tif", np.zeros((5, 6), np.uint16))
    with pytest.raises(FileFormatError, match=r"plane shape \(5, 6\)"):
        ThorlabsReader().open(tmp_path)


# --- laziness, pickling, handles ---


def test_open_reads_no_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tifffile

    write_raw(tmp_path / "raw", random_stored((3, 1, 1, 4, 6)), experiment_xml())
    write_tiff_folder(tmp_path / "tif", random_stored((2, 1, 1, 4, 6)), ("ChanA",))
    calls: list[str] = []
    real_memmap, real_imread = np.memmap, tifffile.imread

    def memmap(*args: Any, **kwargs: Any) -> Any:
        calls.append("memmap")
        return real_memmap(*args, **kwargs)

    def imread(*args: Any, **kwargs: Any) -> Any:
        calls.append("imread")
        return real_imread(*args, **kwargs)

    monkeypatch.setattr(np, "memmap", memmap)
    monkeypatch.setattr(tifffile, "imread", imread)
    raw_src = ThorlabsReader().open(tmp_path / "raw")
    tif_src = ThorlabsReader().open(tmp_path / "tif")
    assert calls == []
    raw_src.data.compute()
    tif_src.data.compute()
    assert calls.count("memmap") == 1 and calls.count("imread") == 2


def test_graph_pickles_and_releases_the_file(tmp_path: Path) -> None:
    stored = random_stored((3, 1, 2, 4, 6), seed=9)
    raw = write_raw(tmp_path, stored, experiment_xml(waves=("ChanA", "ChanB"), enable=3))
    data = ThorlabsReader().open(tmp_path).data
    graph = dict(data.__dask_graph__())
    assert pickle.loads(pickle.dumps(graph)).keys() == graph.keys()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(data)).compute(), stored)
    fd_dir = Path("/proc/self/fd")
    if fd_dir.is_dir():
        open_paths = {os.path.realpath(fd_dir / fd) for fd in os.listdir(fd_dir) if (fd_dir / fd).exists()}
        assert str(raw.resolve()) not in open_paths
    maps = Path("/proc/self/maps")
    if maps.is_file():
        assert str(raw.resolve()) not in maps.read_text()


# --- bad input ---


def test_raw_shorter_than_layout(tmp_path: Path) -> None:
    raw = write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml())
    with open(raw, "r+b") as fh:
        fh.truncate(3 * 48 - 10)
    with pytest.raises(FileFormatError, match=r"size is 134 bytes but Experiment.xml describes 144 bytes") as err:
        ThorlabsReader().open(tmp_path)
    assert "truncated" in str(err.value) and str(raw) in str(err.value)


def test_raw_longer_than_layout(tmp_path: Path) -> None:
    raw = write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml())
    with open(raw, "ab") as fh:
        fh.write(b"\0\0")
    with pytest.raises(FileFormatError, match=r"size is 146 bytes .* describes 144 bytes.*more data"):
        ThorlabsReader().open(raw)


def test_streaming_stopped_early(tmp_path: Path) -> None:
    write_raw(tmp_path, random_stored((2, 1, 1, 4, 6)), experiment_xml(frames=5))
    with pytest.raises(FileFormatError, match=r"holds 2 whole time point\(s\) of 5.*stopped early") as err:
        ThorlabsReader().open(tmp_path)
    assert '<Streaming frames="2">' in str(err.value)


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        (r'pixelX="6" ', "missing attribute 'pixelX' of <LSM>"),
        (r' frames="3"', "missing attribute 'frames' of <Streaming>"),
        (r" *<LSM .*\n", "missing element <LSM>"),
        (r" *<CaptureMode .*\n", "missing element <CaptureMode>"),
        (r" *<Streaming .*\n", "missing element <Streaming>"),
        (r"(?s) *<Wavelengths>.*</Wavelengths>\n", "missing element <Wavelengths>"),
        (r" *<Wavelength .*\n", "lists no <Wavelength>"),
    ],
)
def test_missing_fields_are_named(tmp_path: Path, remove: str, named: str) -> None:
    xml = re.sub(remove, "", experiment_xml())
    assert xml != experiment_xml()
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), xml)
    with pytest.raises(MetadataError, match=named) as err:
        ThorlabsReader().open(tmp_path)
    assert "Experiment.xml" in str(err.value)


def test_invalid_values(tmp_path: Path) -> None:
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml().replace('pixelX="6"', 'pixelX="six"'))
    with pytest.raises(MetadataError, match=r"<LSM pixelX='six'> is not a valid int"):
        ThorlabsReader().open(tmp_path)
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml(mode=2))
    with pytest.raises(MetadataError, match=r"CaptureMode mode=2"):
        ThorlabsReader().open(tmp_path)
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml(waves=("Green",), enable=6))
    with pytest.raises(MetadataError, match=r"ChannelEnable Set=6"):
        ThorlabsReader().open(tmp_path)


def test_malformed_xml(tmp_path: Path) -> None:
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml()[:-30])
    with pytest.raises(FileFormatError, match=r"Experiment.xml: malformed XML"):
        ThorlabsReader().open(tmp_path)


def test_wrong_root(tmp_path: Path) -> None:
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), "<Other><LSM/></Other>")
    with pytest.raises(FileFormatError, match=r"root element is <Other>"):
        ThorlabsReader().open(tmp_path)


def test_folder_without_xml(tmp_path: Path) -> None:
    random_stored((3, 1, 1, 4, 6)).tofile(tmp_path / "Image_0001_0001.raw")
    with pytest.raises(FileFormatError, match=r"no Experiment.xml in this folder"):
        ThorlabsReader().open(tmp_path)
    with pytest.raises(FileFormatError, match=r"no Experiment.xml next to this RAW file"):
        ThorlabsReader().open(tmp_path / "Image_0001_0001.raw")


def test_xml_without_data(tmp_path: Path) -> None:
    (tmp_path / "Experiment.xml").write_text(experiment_xml())
    with pytest.raises(FileFormatError, match=r"no data next to it"):
        ThorlabsReader().open(tmp_path)


def test_several_raw_files(tmp_path: Path) -> None:
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml())
    random_stored((3, 1, 1, 4, 6)).tofile(tmp_path / "Image_0002_0001.raw")
    with pytest.raises(FileFormatError, match=r"several RAW files"):
        ThorlabsReader().open(tmp_path)
    assert ThorlabsReader().open(tmp_path / "Image_0002_0001.raw").data.shape == (3, 1, 1, 4, 6)


def test_missing_path_and_permissions_pass_through(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ThorlabsReader().open(tmp_path / "nope")
    if os.name != "posix" or os.geteuid() == 0:
        return  # root reads unreadable files
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml())
    xml = tmp_path / "Experiment.xml"
    xml.chmod(0)
    try:
        with pytest.raises(PermissionError):
            ThorlabsReader().open(tmp_path)
    finally:
        xml.chmod(0o644)


def test_options_not_meaningful(tmp_path: Path) -> None:
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml())
    with pytest.raises(DimensionError, match="axes="):
        ThorlabsReader().open(tmp_path, axes="TYX")
    with pytest.raises(DimensionError, match="one image"):
        ThorlabsReader().open(tmp_path, scene=1)


def test_sniff(tmp_path: Path) -> None:
    reader = ThorlabsReader()
    raw = write_raw(tmp_path / "acq", random_stored((3, 1, 1, 4, 6)), experiment_xml())
    xml = tmp_path / "acq" / "Experiment.xml"
    assert reader.sniff(tmp_path / "acq", b"")
    assert reader.sniff(raw, raw.read_bytes()[:64])
    assert reader.sniff(xml, xml.read_bytes()[:64])
    other = tmp_path / "other.xml"
    other.write_text("<OME/>")
    assert not reader.sniff(other, b"<OME/>")
    assert not reader.sniff(tmp_path, b"")  # no Experiment.xml
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "Experiment.xml").write_text(experiment_xml())
    assert not reader.sniff(tmp_path / "empty", b"")  # no data file
    stray = tmp_path / "Image_0001_0001.raw"
    stray.write_bytes(b"\0" * 8)
    assert not reader.sniff(stray, b"\0" * 8)  # no Experiment.xml beside it


# --- real files ---


@needs_samples
@pytest.mark.parametrize("target", ["", "Image_0001_0001.raw", "Experiment.xml"], ids=["folder", "raw", "xml"])
def test_sample_matches_manifest(target: str) -> None:
    entry = json.loads((SAMPLES / "MANIFEST.json").read_text())["files"][SAMPLE_KEY]
    expected = entry["images"][0]
    path = SAMPLES / SAMPLE_KEY / target if target else SAMPLES / SAMPLE_KEY
    reader = ThorlabsReader()
    assert reader.sniff(path, b"" if path.is_dir() else path.read_bytes()[:512])
    assert reader.scenes(path) == [None]
    src = reader.open(path)
    assert src.format == entry["format"] == "thorlabs-raw"
    sizes = expected["sizes"]
    assert src.data.shape == tuple(sizes[d] for d in "TZCYX") == tuple(expected["full_array"]["shape_TZCYX"])
    assert src.data.dtype == np.dtype(expected["dtype"])
    image = src.ome.model().images[0]
    assert image.name == expected["name"]
    pixels = image.pixels
    assert (pixels.size_t, pixels.size_z, pixels.size_c, pixels.size_y, pixels.size_x) == src.data.shape
    for axis in "XYZ":
        want = expected["physical_size_um"][axis]
        got = getattr(pixels, f"physical_size_{axis.lower()}")
        if want is None:
            assert got is None
        else:
            assert got == pytest.approx(want, rel=1e-6)
            assert getattr(pixels, f"physical_size_{axis.lower()}_unit").value == "µm"
    # the file states no interval (the expected value is null) but a frame rate, from which the reader
    # derives one and says so; the expected notes give the same derivation (1 / frameRate)
    assert expected["time_increment_s"] is None and "1/frameRate=0.701262 s" in expected["notes"]
    assert pixels.time_increment == pytest.approx(1 / 1.426) and pixels.time_increment_unit.value == "s"
    assert "/ <LSM frameRate=1.426>" in src.axes_rule
    assert [c.name for c in pixels.channels] == expected["channel_names"]
    data = src.data.compute()
    plane = expected["plane_T0_Z0_C0"]
    assert sha256(data[0, 0, 0]) == plane["sha256_le_c_order"]
    assert (int(data[0, 0, 0].min()), int(data[0, 0, 0].max())) == (plane["min"], plane["max"])
    assert round(float(data[0, 0, 0].mean()), 6) == pytest.approx(plane["mean"])
    assert sha256(data) == expected["full_array"]["sha256_le_c_order"]
    assert "<ThorImageExperiment>" in src.original_metadata["thorlabs:Experiment.xml"]
    assert "ChannelEnable Set=3" in src.axes_rule and "Streaming frames (5)" in src.axes_rule


@needs_samples
def test_sample_preview_is_not_data() -> None:
    """The preview TIFFs equal the last time point but are not opened as data."""
    import tifffile

    folder = SAMPLES / SAMPLE_KEY
    data = ThorlabsReader().open(folder).data
    np.testing.assert_array_equal(tifffile.imread(folder / "ChanB_Preview.tif"), data[4, 0, 1].compute())


@needs_samples
def test_xml_without_data_sample() -> None:
    reader = ThorlabsReader()
    assert reader.sniff(LIVEVIEWER_XML, LIVEVIEWER_XML.read_bytes()[:512])
    with pytest.raises(FileFormatError, match=r"no data next to it: expected Image_0001_0001.raw or ChanC_"):
        reader.open(LIVEVIEWER_XML)


@pytest.mark.parametrize(
    ("case", "direct"),
    [("streaming", True), ("fast-z-flyback", False), ("all-slots-stored", False), ("two-channels", True)],
)
def test_whole_file_read_matches_the_chunked_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, direct: bool
) -> None:
    if case == "streaming":
        stored = random_stored((5, 1, 1, 4, 6), seed=11)
        xml = experiment_xml(frames=5)
    elif case == "fast-z-flyback":
        stored = random_stored((2, 4, 2, 4, 6), seed=12)
        xml = experiment_xml(waves=("ChanA", "ChanB"), enable=3, frames=2, fast_z=1, flyback=1, steps=3)
    elif case == "all-slots-stored":
        stored = random_stored((2, 1, 4, 4, 6), seed=13)
        xml = experiment_xml(waves=("ChanB", "ChanD"), enable=10, frames=2, only_enabled="0")
    else:
        stored = random_stored((3, 1, 2, 4, 6), seed=14)
        xml = experiment_xml(waves=("ChanA", "ChanB"), enable=3, frames=3)
    write_raw(tmp_path, stored, xml)
    calls: list[str] = []
    real = pread_module.fill_from_file
    monkeypatch.setattr(pread_module, "fill_from_file", lambda path, *a: (calls.append(path), real(path, *a)))
    ds = omio.open(tmp_path)
    np.testing.assert_array_equal(ds.to_numpy(), ds.data.compute(scheduler="sync"))
    assert bool(calls) is direct


def test_raw_file_shrunk_after_opening_raises(tmp_path: Path) -> None:
    raw = write_raw(tmp_path, random_stored((4, 1, 1, 4, 6), seed=15), experiment_xml(frames=4))
    ds = omio.open(tmp_path)
    with open(raw, "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(FileFormatError, match=r"needs 192 bytes, has 100"):
        ds.to_numpy()


# --- damaged acquisitions ---


@pytest.mark.parametrize(
    ("waves", "enable"),
    [(("ChanA", "ChanB"), 1), (("ChanA", "ChanB"), 7), (("ChanA", "ChanC"), 3), (("ChanA",), 2), (("Red",), 3)],
)
def test_channel_enable_must_match_the_listed_wavelengths(tmp_path: Path, waves: tuple[str, ...], enable: int) -> None:
    write_raw(tmp_path, random_stored((2, 1, 2, 4, 6)), experiment_xml(waves=waves, enable=enable, frames=2))
    with pytest.raises(MetadataError, match=f"ChannelEnable Set={enable}"):
        ThorlabsReader().open(tmp_path)


def test_tiff_planes_of_a_channel_not_enabled_are_an_error(tmp_path: Path) -> None:
    write_tiff_folder(tmp_path, random_stored((1, 2, 2, 4, 6)), ("ChanA", "ChanB"))
    xml = experiment_xml(waves=("ChanA",), enable=1, mode=0, timepoints=1, steps=2)
    (tmp_path / "Experiment.xml").write_text(xml)
    with pytest.raises(FileFormatError, match=r"channel\(s\) ChanB \(2 file\(s\)\) are present"):
        ThorlabsReader().open(tmp_path)


@pytest.mark.parametrize("field", ["timepoints", "steps"])
@pytest.mark.parametrize("value", [10**9, 10**20])
def test_absurd_tiff_layout_is_refused_at_once(tmp_path: Path, field: str, value: int) -> None:
    write_tiff_folder(tmp_path, random_stored((2, 2, 1, 4, 6)), ("ChanA",))
    xml = experiment_xml(mode=0, **{"timepoints": 2, "steps": 2, field: value})  # type: ignore[arg-type]
    (tmp_path / "Experiment.xml").write_text(xml)
    start = time.perf_counter()
    with pytest.raises(FileFormatError, match="missing"):
        ThorlabsReader().open(tmp_path)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("only_enabled", ["0", "1"])
def test_raw_size_of_the_other_channel_storage_is_an_error(tmp_path: Path, only_enabled: str) -> None:
    """The layout RawData states is the one read; a size fitting the other is reported, not read."""
    stored = 2 if only_enabled == "0" else 4
    xml = experiment_xml(waves=("ChanA", "ChanC"), enable=5, frames=2, only_enabled=only_enabled)
    write_raw(tmp_path, random_stored((2, 1, stored, 4, 6)), xml)
    with pytest.raises(FileFormatError, match=f'onlyEnabledChannels="{"1" if stored == 2 else "0"}"'):
        ThorlabsReader().open(tmp_path)


@pytest.mark.parametrize("delta", [-2 * 24 * 2, -1, 1, 2 * 24 * 2])
def test_raw_one_frame_or_byte_off_is_an_error(tmp_path: Path, delta: int) -> None:
    raw = write_raw(tmp_path, random_stored((3, 1, 2, 4, 6)), experiment_xml(waves=("ChanA", "ChanB"), enable=3))
    data = raw.read_bytes()
    raw.write_bytes(data[:delta] if delta < 0 else data + bytes(delta))
    with pytest.raises(FileFormatError, match=r"size is \d+ bytes but Experiment.xml describes 288 bytes"):
        ThorlabsReader().open(tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ('pixelSizeUM="0.5"', 'pixelSizeUM="-0.5"', "pixelSizeUM"),
        ('pixelSizeUM="0.5"', 'pixelSizeUM="inf"', "pixelSizeUM"),
        ('pixelSizeUM="0.5"', 'pixelSizeUM="1e20"', "pixelSizeUM"),
        ('pixelSizeUM="0.5"', 'pixelSizeUX="0.5"', "'pixelSizeUX'"),  # a damaged attribute name
        ("<Streaming enable", "<Strfaming enable", "<Strfaming>"),  # a damaged element name
        ("<LSM name", "xLSM name", "stray text"),  # a damaged tag
        ('frames="3"', 'frames="3x"', "frames"),
        ('onlyEnabledChannels="1"', 'onlyEnabledChannels="yes"', "onlyEnabledChannels"),
    ],
)
def test_damaged_experiment_xml_fields_are_errors(tmp_path: Path, old: str, new: str, match: str) -> None:
    xml = experiment_xml()
    assert old in xml
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), xml.replace(old, new))
    with pytest.raises((MetadataError, FileFormatError), match=match):
        ThorlabsReader().open(tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ('uTime="1588691666"', 'uTime="abc"', "not a Unix time"),
        ('uTime="1588691666"', 'uTime="99999999999999999999"', "not a Unix time"),
        ('uTime="1588691666"', 'uTime="1588091666"', "disagrees with date"),
        ('uTime="1588691666"', 'uTim8="1588691666"', "attribute name is damaged"),
    ],
)
def test_damaged_date_is_left_unset_with_the_reason(tmp_path: Path, old: str, new: str, reason: str) -> None:
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml().replace(old, new))
    src = ThorlabsReader().open(tmp_path)
    assert reason in src.original_metadata["thorlabs:unreadable"]
    assert src.ome.model().images[0].acquisition_date is None


def test_intact_date_is_read_at_open(tmp_path: Path) -> None:
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), experiment_xml())
    src = ThorlabsReader().open(tmp_path)
    assert "thorlabs:unreadable" not in src.original_metadata
    assert src.ome.model().images[0].acquisition_date is not None


@pytest.mark.parametrize("cut", [0, 1, 40, 120, 250, 400, -30, -2])
def test_truncated_experiment_xml_is_an_error(tmp_path: Path, cut: int) -> None:
    xml = experiment_xml()
    write_raw(tmp_path, random_stored((3, 1, 1, 4, 6)), xml[:cut])
    with pytest.raises((FileFormatError, MetadataError)):
        ThorlabsReader().open(tmp_path)
