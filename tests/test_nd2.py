"""Tests of the ND2 reader: the real sample, and synthetic experiments through a stand-in ND2File.

The ``nd2`` package cannot write ND2 files, so positions, RGB, NE time loops and
missing frames are exercised with a stand-in for ``nd2.ND2File`` that exposes the
same attributes the reader uses and returns known frames.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

import omio
from omio.errors import DimensionError, FileFormatError, MetadataError, MissingDependencyError
from omio.readers import find_reader
from omio.readers._handles import close_cached_handles
from omio.readers.nd2 import MAGIC, Nd2Reader
from omio.testing import check_reader_conformance

SAMPLE = "nd2/pims_cluster.nd2"


@pytest.fixture(autouse=True)
def _no_cached_handles() -> Iterator[None]:
    yield
    close_cached_handles()


# --------------------------------------------------------------------------- the real sample


def test_sample_metadata_beyond_the_manifest(samples: Path) -> None:
    ds = omio.open(samples / SAMPLE)
    channels = ds.ome.images[0].pixels.channels
    assert [c.color.as_rgb_tuple()[:3] if c.color else None for c in channels] == [(120, 233, 15), (254, 1, 0)]
    assert [(c.excitation_wavelength, c.emission_wavelength) for c in channels] == [(488.0, 525.0), (561.0, 700.0)]
    assert ds.time_increment is None  # the TimeLoop period is 0 (not set): never invented
    assert ds.scenes == [None]
    assert "T=3, Z=10" in ds.axes_rule
    original = ds.annotations["omio:original-metadata"]
    assert "Nikon A1plus" in original["nd2:text_info:capturing"]
    assert '"ZStackLoop"' in original["nd2:experiment"]
    assert ds.xarray.data.chunks[2:] == ((1, 1), (31,), (38,))  # one plane per chunk


def test_sample_options_are_refused(samples: Path) -> None:
    with pytest.raises(DimensionError, match="axes"):
        Nd2Reader().open(samples / SAMPLE, axes="TZCYX")
    with pytest.raises(DimensionError, match="level=1"):
        Nd2Reader().open(samples / SAMPLE, level=1)
    with pytest.raises(DimensionError, match="scene 1 does not exist"):
        Nd2Reader().open(samples / SAMPLE, scene=1)


def test_missing_nd2_package_names_the_extra(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nd2", None)
    with pytest.raises(MissingDependencyError, match=r"pip install nd2 .*'\.\[nd2\]'") as info:
        omio.open(samples / SAMPLE)
    assert str(samples / SAMPLE) in str(info.value)
    assert isinstance(info.value, ImportError)


def test_corrupt_file_with_nd2_magic(tmp_path: Path) -> None:
    path = tmp_path / "broken.nd2"
    path.write_bytes(MAGIC + bytes(range(256)) * 4)
    assert isinstance(find_reader(path), Nd2Reader)
    with pytest.raises(FileFormatError, match=r"broken\.nd2"):
        omio.open(path)


# --------------------------------------------------------------------------- synthetic experiments


def _loop(kind: str, count: int, **parameters: Any) -> SimpleNamespace:
    return SimpleNamespace(type=kind, count=count, parameters=SimpleNamespace(**parameters))


def _channel(name: str, rgb: tuple[int, int, int], calibrated: tuple[bool, bool, bool]) -> SimpleNamespace:
    meta = SimpleNamespace(
        name=name, color=SimpleNamespace(r=rgb[0], g=rgb[1], b=rgb[2]), emissionLambdaNm=None, excitationLambdaNm=0
    )
    volume = SimpleNamespace(axesCalibrated=calibrated, axesCalibration=(0.25, 0.25, 2.0))
    return SimpleNamespace(channel=meta, volume=volume)


def _channels(n: int) -> list[SimpleNamespace]:
    return [_channel(f"Ch{i}", (255, 255, 255), (True, True, True)) for i in range(n)]


class FakeND2File:
    """Stands in for nd2.ND2File: loops, channels and frames whose pixels encode their position."""

    spec: ClassVar[dict[str, Any]] = {}

    def __init__(self, path: str) -> None:
        spec = self.spec
        self.experiment = spec["experiment"]
        n_c, cpc = spec["channels"], spec["components"]
        self.attributes = SimpleNamespace(
            channelCount=n_c,
            componentCount=n_c * cpc,
            heightPx=4,
            widthPx=5,
            sequenceCount=spec.get("stored", int(np.prod([lp.count for lp in self.experiment]))),
        )
        sizes: dict[str, int] = {}
        codes = {"TimeLoop": "T", "NETimeLoop": "T", "XYPosLoop": "P", "ZStackLoop": "Z", "CustomLoop": "U"}
        for lp in self.experiment:
            sizes[codes[lp.type]] = lp.count
        sizes |= {"C": n_c * (1 if cpc == 3 else cpc), "Y": 4, "X": 5}
        if cpc == 3:
            sizes["S"] = 3
        self.sizes = {k: v for k, v in sizes.items() if v != 1}
        self.dtype = np.dtype("uint16")
        self.metadata = SimpleNamespace(channels=spec["metadata_channels"])
        self.text_info = {"description": "synthetic"}
        self.version = (3, 0)
        axes = [codes[lp.type] for lp in self.experiment]
        counts = [lp.count for lp in self.experiment]
        self.loop_indices = tuple(dict(zip(axes, idx, strict=True)) for idx in np.ndindex(*counts))

    is_legacy = False

    def voxel_size(self) -> SimpleNamespace:
        return SimpleNamespace(x=0.25, y=0.25, z=2.0)

    def frame_metadata(self, index: int) -> SimpleNamespace:
        """Per frame and channel: time = index s + channel ms, stage x = 100 * P, y = 5, z = 0.5 * Z."""
        loops = self.loop_indices[index]
        stage = (100.0 * loops.get("P", 0), 5.0, 0.5 * loops.get("Z", 0))
        channels = [
            SimpleNamespace(
                position=SimpleNamespace(stagePositionUm=self.spec.get("stage", stage)),
                time=SimpleNamespace(relativeTimeMs=index * 1000.0 + c),
            )
            for c in range(self.attributes.channelCount)
        ]
        return SimpleNamespace(channels=channels)

    def unstructured_metadata(self) -> dict[str, Any]:
        return dict(self.spec.get("unstructured", {}))

    def read_frame(self, index: int) -> np.ndarray[Any, Any]:
        n_c, cpc = self.attributes.channelCount, self.attributes.componentCount // self.attributes.channelCount
        raw = np.empty((4, 5, n_c, cpc), dtype="uint16")
        for c in range(n_c):
            for s in range(cpc):
                raw[:, :, c, s] = index * 100 + c * 10 + s
        return raw.transpose((2, 0, 1, 3)).squeeze()

    def close(self) -> None:
        pass


@pytest.fixture
def fake_nd2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import nd2

    monkeypatch.setattr(nd2, "ND2File", FakeND2File)
    path = tmp_path / "synthetic.nd2"
    path.write_bytes(MAGIC + bytes(60))

    def make(**spec: Any) -> Path:
        FakeND2File.spec = spec
        close_cached_handles()
        return path

    yield make
    close_cached_handles()


def _points(*names: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(name=n) for n in names]


def test_positions_are_scenes_and_loops_map_onto_tzcyx(fake_nd2: Any) -> None:
    experiment = [
        _loop("TimeLoop", 2, periodMs=1500.0),
        _loop("XYPosLoop", 2, points=_points("A1", "")),
        _loop("ZStackLoop", 3, stepUm=2.0),
    ]
    channels = [_channel("DAPI", (0, 0, 255), (True, True, False)), _channel("GFP", (0, 255, 0), (True, True, False))]
    path = fake_nd2(experiment=experiment, channels=2, components=1, metadata_channels=channels)
    source = check_reader_conformance(Nd2Reader(), path, scene="A1")
    assert source.scenes == ["A1", None]
    second = omio.open(path, scene=1)
    assert second.sizes == {"T": 2, "Z": 3, "C": 2, "Y": 4, "X": 5}
    assert second.name is None and omio.open(path).name == "A1"
    values = second.to_numpy()[:, :, :, 0, 0]
    # frame sequence index = ((t * 2) + p) * 3 + z; pixel = index * 100 + channel * 10
    expected = np.array(
        [[[((t * 2 + 1) * 3 + z) * 100 + c * 10 for c in range(2)] for z in range(3)] for t in range(2)]
    )
    np.testing.assert_array_equal(values, expected)
    inc = second.time_increment
    assert inc is not None and str(inc.units) == "millisecond" and inc.magnitude == 1500.0
    sizes = second.physical_pixel_sizes
    assert sizes["X"] is not None and sizes["X"].to("micrometer").magnitude == 0.25
    assert sizes["Z"] is None  # the file marks Z as uncalibrated
    assert second.channel_names == ["DAPI", "GFP"]
    colors = [c.color.as_rgb_tuple()[:3] for c in second.ome.images[0].pixels.channels if c.color]
    assert colors == [(0, 0, 255), (0, 255, 0)]


def test_rgb_samples_become_channels(fake_nd2: Any) -> None:
    experiment = [_loop("ZStackLoop", 2, stepUm=1.0)]
    path = fake_nd2(
        experiment=experiment,
        channels=1,
        components=3,
        metadata_channels=[_channel("Brightfield", (255, 255, 255), (True, True, True))],
    )
    ds = omio.open(path)
    assert ds.sizes == {"T": 1, "Z": 2, "C": 3, "Y": 4, "X": 5}
    assert ds.channel_names == ["Brightfield:R", "Brightfield:G", "Brightfield:B"]
    np.testing.assert_array_equal(ds.to_numpy()[0, :, :, 0, 0], [[0, 1, 2], [100, 101, 102]])


def test_frames_missing_from_a_stopped_acquisition_are_zero(fake_nd2: Any) -> None:
    experiment = [_loop("TimeLoop", 3, periodMs=0.0)]
    path = fake_nd2(
        experiment=experiment,
        channels=1,
        components=1,
        metadata_channels=[_channel("A", (255, 0, 0), (True, True, True))],
        stored=2,
    )
    ds = omio.open(path)
    np.testing.assert_array_equal(ds.to_numpy()[:, 0, 0, 0, 0], [0, 100, 0])
    assert ds.time_increment is None  # period 0 = not set


def test_ne_time_loop_period_and_custom_loop_folded_into_c(fake_nd2: Any) -> None:
    periods = [SimpleNamespace(count=2, periodMs=250.0), SimpleNamespace(count=1, periodMs=250.0)]
    experiment = [_loop("NETimeLoop", 3, periods=periods), _loop("CustomLoop", 2)]
    path = fake_nd2(
        experiment=experiment, channels=1, components=1, metadata_channels=[_channel("A", (255, 0, 0), (False,) * 3)]
    )
    ds = omio.open(path)
    assert ds.sizes == {"T": 3, "Z": 1, "C": 2, "Y": 4, "X": 5}
    assert ds.channel_names == ["A:U0", "A:U1"]
    assert "U folded into C" in ds.axes_rule
    inc = ds.time_increment
    assert inc is not None and inc.to("second").magnitude == pytest.approx(0.25)
    assert all(q is None for q in ds.physical_pixel_sizes.values())
    np.testing.assert_array_equal(ds.to_numpy()[:, 0, :, 0, 0], [[0, 100], [200, 300], [400, 500]])


def test_ne_time_loop_with_different_periods_states_none(fake_nd2: Any) -> None:
    periods = [SimpleNamespace(count=2, periodMs=250.0), SimpleNamespace(count=2, periodMs=1000.0)]
    path = fake_nd2(
        experiment=[_loop("NETimeLoop", 4, periods=periods)],
        channels=1,
        components=1,
        metadata_channels=[],
    )
    ds = omio.open(path)
    assert ds.time_increment is None
    assert ds.channel_names == [None]


def _plane_table(ds: omio.MicroscopyDataset) -> dict[tuple[int, int, int], Any]:
    return {(p.the_t, p.the_z, p.the_c): p for p in ds.ome.images[0].pixels.planes}


def test_plane_table_of_a_position_follows_its_frames(fake_nd2: Any) -> None:
    experiment = [_loop("TimeLoop", 2, periodMs=1000.0), _loop("XYPosLoop", 2, points=_points("", ""))]
    experiment.append(_loop("ZStackLoop", 3, stepUm=0.5))
    settings = {"0": {"ExposureTime": 20.0}, "1": {"ExposureTime": 40.0}}
    unstructured = {"ImageMetadataSeqLV|0": {"SLxPictureMetadata": {"PicturePlanes": {"SampleSetting": settings}}}}
    channels = [_channel("DAPI", (0, 0, 255), (True, True, True)), _channel("GFP", (0, 255, 0), (True, True, True))]
    path = fake_nd2(
        experiment=experiment, channels=2, components=1, metadata_channels=channels, unstructured=unstructured
    )
    ds = omio.open(path, scene=1)
    planes = _plane_table(ds)
    assert len(planes) == 2 * 3 * 2
    for (t, z, c), plane in planes.items():
        seq = (t * 2 + 1) * 3 + z  # frame of position 1
        assert plane.delta_t == pytest.approx(seq + c / 1000) and plane.delta_t_unit.value == "s"
        assert (plane.position_x, plane.position_y, plane.position_z) == (100.0, 5.0, 0.5 * z)
        assert plane.position_x_unit.value == "µm"
        assert plane.exposure_time == pytest.approx((0.02, 0.04)[c])
    assert "relativeTimeMs" in ds.axes_rule and "stagePositionUm" in ds.axes_rule
    first = _plane_table(omio.open(path, scene=0))
    assert first[(0, 0, 0)].position_x == 0.0 and planes[(0, 0, 0)].position_x == 100.0  # positions side by side


def test_plane_table_follows_folded_loops(fake_nd2: Any) -> None:
    experiment = [_loop("ZStackLoop", 2, stepUm=1.0), _loop("CustomLoop", 3)]
    path = fake_nd2(experiment=experiment, channels=2, components=1, metadata_channels=_channels(2))
    ds = omio.open(path)
    assert ds.sizes["C"] == 6
    planes = _plane_table(ds)
    for (_, z, k), plane in planes.items():
        channel, custom = divmod(k, 3)  # channel-major: C outer, the custom loop inner
        assert plane.delta_t == pytest.approx(z * 3 + custom + channel / 1000)
        assert plane.exposure_time is None  # no SampleSetting stated
    assert len(planes) == 12


def test_unparsable_stage_position_is_an_error(fake_nd2: Any) -> None:
    experiment = [_loop("TimeLoop", 2, periodMs=0.0)]
    path = fake_nd2(
        experiment=experiment, channels=1, components=1, metadata_channels=_channels(1), stage=(1.0, math.nan, 2.0)
    )
    with pytest.raises(MetadataError, match=r"synthetic\.nd2.*stagePositionUm y"):
        omio.open(path)
