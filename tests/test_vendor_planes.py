"""Plane tables of the vendor readers against independent readers on the shared samples.

CZI against czifile (scene offsets, subblock metadata read through czifile), ND2 against
the ``nd2`` package (``frame_metadata``), LIF against liffile (``timestamps`` and the
image XML), Thorlabs against Experiment.xml parsed here. Samples that state nothing
per plane must get no ``Plane`` elements.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omio
from omio.errors import MetadataError
from tests.conftest import load_manifest

MANIFEST = load_manifest()
CZI = sorted(key for key, entry in MANIFEST.items() if entry["format"] == "czi")
LIF = sorted(key for key, entry in MANIFEST.items() if entry["format"] == "lif")
ND2 = sorted(key for key, entry in MANIFEST.items() if entry["format"] == "nd2")
THORLABS_RAW = "thorlabs/utils2p_mouse_kidney_raw_T5_C2"
MOSAIC = "czi/zen_3scenes_mosaic_T2_Z3_C2.czi"


def planes_of(ds: omio.MicroscopyDataset) -> dict[tuple[int, int, int], Any]:
    """The OME Plane elements of a dataset by (T, Z, C)."""
    planes = ds.ome.images[0].pixels.planes
    table = {(p.the_t, p.the_z, p.the_c): p for p in planes}
    assert len(table) == len(planes), "a plane is listed twice"
    return table


def um(plane: Any, axis: str) -> float | None:
    """A plane's position along ``axis`` in micrometres (``None`` where unset)."""
    value = getattr(plane, f"position_{axis}")
    if value is None:
        return None
    assert getattr(plane, f"position_{axis}_unit").value == "µm"
    return float(value)


def seconds(plane: Any) -> float | None:
    """A plane's DeltaT in seconds (``None`` where unset)."""
    if plane.delta_t is None:
        return None
    factor = {"s": 1.0, "ms": 1e-3}[plane.delta_t_unit.value]
    return float(plane.delta_t) * factor


def exposure_seconds(plane: Any) -> float | None:
    """A plane's ExposureTime in seconds (``None`` where unset)."""
    if plane.exposure_time is None:
        return None
    factor = {"s": 1.0, "ms": 1e-3}[plane.exposure_time_unit.value]
    return float(plane.exposure_time) * factor


# --------------------------------------------------------------------------- CZI (czifile)


def czi_subblock_tags(czi: Any, entry: Any) -> dict[str, str]:
    """The Tags of a subblock's metadata, read through czifile."""
    text = entry.read_segment_data(czi).metadata()
    if not text or not text.strip():
        return {}
    tags = ET.fromstring(text).find("Tags")
    if tags is None:
        return {}
    # a tag holds text, or (as czifile unescapes some files' metadata) XML elements
    return {
        el.tag: (el.text or "").strip() or "".join(ET.tostring(child, encoding="unicode") for child in el)
        for el in tags
    }


def czi_expected(path: Path, scene: int) -> dict[str, Any]:
    """What czifile reads for one scene: offsets (µm), and per (T, Z, C) the first subblock's tags."""
    import czifile

    with czifile.CziFile(path, squeeze=False) as czi:
        key = list(czi.scenes.keys())[scene]
        image = czi.scenes[key]
        start = dict(zip(image.sizes, image.start, strict=True))
        first: dict[tuple[int, int, int], dict[str, str]] = {}
        for entry in image.directory_entries:  # level 0, file order
            at = dict(zip(entry.dims, entry.start, strict=True))
            index = tuple(at.get(d, 0) - start.get(d, 0) for d in "TZC")
            if index not in first:
                first[index] = czi_subblock_tags(czi, entry)
        channels = ET.fromstring(czi.metadata()).findall("Metadata/Information/Image/Dimensions/Channels/Channel")
        return {
            "offsets": {axis: image.coord_offsets.get(axis) for axis in "XY"},
            "first": first,
            "channel_exposure_ns": [float(el.findtext("ExposureTime") or 0) for el in channels],
            "timestamps": czi.timestamps,
            "samples": int(image.pixeltype.samples),
        }


def camera_exposure_seconds(first: dict[tuple[int, int, int], dict[str, str]]) -> dict[tuple[int, int, int], float]:
    """The camera ExposureTime (nanoseconds) in each plane's first subblock's DetectorState, in seconds."""
    out = {}
    for index, tags in first.items():
        state = tags.get("DetectorState")
        text = ET.fromstring(state).findtext("ExposureTime") if state else None
        if text and float(text) > 0:
            out[index] = float(text) * 1e-9
    return out


def acquisition_seconds(first: dict[tuple[int, int, int], dict[str, str]]) -> dict[tuple[int, int, int], float]:
    """AcquisitionTime of each plane relative to the earliest, parsed with numpy (ns resolution)."""
    stamps = {k: np.datetime64(v["AcquisitionTime"].rstrip("Z")) for k, v in first.items() if "AcquisitionTime" in v}
    if not stamps:
        return {}
    start = min(stamps.values())
    return {k: float((v - start) / np.timedelta64(1, "ns")) * 1e-9 for k, v in stamps.items()}


CZI_IMAGES = [
    pytest.param(key, i, id=f"{Path(key).name}[{i}]") for key in CZI for i in range(len(MANIFEST[key]["images"]))
]


@pytest.mark.parametrize(("key", "scene"), CZI_IMAGES)
def test_czi_planes_match_czifile(samples: Path, key: str, scene: int) -> None:
    expected_image = MANIFEST[key]["images"][scene]
    ds = omio.open(samples / key, scene=scene)
    planes = planes_of(ds)
    want = czi_expected(samples / key, scene)
    stated_size = expected_image["physical_size_um"]
    times = acquisition_seconds(want["first"])
    focus = {k: float(v["FocusPosition"]) for k, v in want["first"].items() if "FocusPosition" in v}
    exposures = camera_exposure_seconds(want["first"])
    if stated_size["X"] is None and not times and not focus and not exposures and not any(want["channel_exposure_ns"]):
        assert planes == {}, "no pixel size and no subblock metadata: no planes may be invented"
        return
    n_t, n_z, n_c = ds.sizes["T"], ds.sizes["Z"], ds.sizes["C"]
    assert set(planes) == {(t, z, c) for t in range(n_t) for z in range(n_z) for c in range(n_c)}
    samples_per_pixel = want["samples"]
    folded = n_c != len({k[2] for k in want["first"]}) * samples_per_pixel  # extra dims folded into C
    for (t, z, c), plane in planes.items():
        for axis in "xy":
            offset = want["offsets"][axis.upper()]
            if stated_size[axis.upper()] is None:
                assert um(plane, axis) is None
            else:  # czifile's scene offset (metres) is the scene's start times the pixel size
                assert um(plane, axis) == pytest.approx(offset * 1e6, rel=1e-9, abs=1e-9)
        if folded:  # only files without subblock times fold dims here
            assert not times and seconds(plane) is None
            continue
        index = (t, z, c // samples_per_pixel)
        assert seconds(plane) == (pytest.approx(times[index], abs=1e-6) if index in times else None)
        assert um(plane, "z") == (pytest.approx(focus[index]) if index in focus else None)
        channel_ns = want["channel_exposure_ns"][index[2]] if index[2] < len(want["channel_exposure_ns"]) else 0
        exposure = exposures.get(index, channel_ns * 1e-9 or None)
        assert exposure_seconds(plane) == (None if exposure is None else pytest.approx(exposure, rel=1e-12))


def test_czi_time_points_agree_with_the_timestamps_attachment(samples: Path) -> None:
    """An independent source: the TimeStamps attachment gives the same interval between time points."""
    for key in (MOSAIC, "czi/zen_celldivision_T3_Z5_C2.czi", "czi/zen_zstd1_T3_Z6_C1.czi"):
        ds = omio.open(samples / key)
        planes = planes_of(ds)
        first_of_t = [seconds(planes[(t, 0, 0)]) for t in range(ds.sizes["T"])]
        stamps = czi_expected(samples / key, 0)["timestamps"]
        assert stamps is not None and len(stamps) == len(first_of_t)
        np.testing.assert_allclose(np.diff(first_of_t), np.diff(stamps), atol=0.1)


def test_czi_scenes_lie_side_by_side(samples: Path) -> None:
    positions = []
    for scene in range(3):
        ds = omio.open(samples / MOSAIC, scene=scene)
        ((x, y),) = {(um(p, "x"), um(p, "y")) for p in planes_of(ds).values()}  # one position per scene
        positions.append((x, y))
        assert ds.xarray.coords["X"].values[0] == pytest.approx(x)  # the coordinates start there
        assert ds.xarray.coords["Y"].values[0] == pytest.approx(y)
    assert len(set(positions)) == 3
    assert positions[0] == pytest.approx((145 * 1.6, 0.0))  # bounding boxes x=145, 0, 293 of 1.6 µm pixels


def test_czi_opening_reads_plane_metadata_not_pixels(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import czifile

    def no_pixels(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("opening read pixel data")

    monkeypatch.setattr(czifile.CziSubBlockSegmentData, "data", no_pixels)
    monkeypatch.setattr(czifile.CziDirectoryEntryDV, "read_segment_data", no_pixels)
    ds = omio.open(samples / MOSAIC, scene=2)
    assert seconds(planes_of(ds)[(1, 0, 0)]) == pytest.approx(33.412)


CELLS_EXPOSURE = b"&lt;ExposureTime&gt;100000000"


def test_czi_exposure_is_the_subblock_camera_setting_in_nanoseconds(samples: Path, tmp_path: Path) -> None:
    """The experiment's camera settings (milliseconds) confirm the unit of the image's ExposureTime (nanoseconds)."""
    ds = omio.open(samples / "czi/zen_celldivision_T3_Z5_C2.czi")
    table = ds.planes
    assert table.attrs["units"]["ExposureTime"] == "second"
    assert table["ExposureTime"].groupby(level="C").unique().map(list).to_dict() == {0: [0.1], 1: [0.2]}
    part = ds.isel(T=slice(0, 2))
    for written in (part.to_ometiff(tmp_path / "a.ome.tif"), part.to_omezarr(tmp_path / "a.ome.zarr")):
        assert omio.open(written).planes["ExposureTime"].tolist() == part.planes["ExposureTime"].tolist()


def _damaged_copy(source: Path, tmp_path: Path, old: bytes, new: bytes) -> Path:
    assert len(old) == len(new)
    data = source.read_bytes()
    assert old in data
    target = tmp_path / source.name
    target.write_bytes(data.replace(old, new))
    return target


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        (b"2021-06-15T06:09:43.0304818Z", b"2021-06-15T06:09:4x.0304818Z", "AcquisitionTime"),
        (b"<FocusPosition>-000000000001.0000<", b"<FocusPosition>-0000000000x1.0000<", "FocusPosition"),
        (b"<ExposureTime>2000000</ExposureTime>", b"<ExposureTime>-000001</ExposureTime>", "ExposureTime"),
        (CELLS_EXPOSURE, CELLS_EXPOSURE.replace(b"100000000", b"10000x000"), "ExposureTime"),
        (CELLS_EXPOSURE, CELLS_EXPOSURE.replace(b"&lt;ExposureTime&gt;", b"&lt;ExposureTime&lt;"), "DetectorState"),
    ],
)
def test_czi_unparsable_plane_value_is_an_error(
    samples: Path, tmp_path: Path, old: bytes, new: bytes, what: str
) -> None:
    source = samples / ("czi/zen_celldivision_T3_Z5_C2.czi" if old == CELLS_EXPOSURE else MOSAIC)
    path = _damaged_copy(source, tmp_path, old, new)
    with pytest.raises(MetadataError, match=rf"{path.name}.*{what}"):
        omio.open(path)


# --------------------------------------------------------------------------- ND2 (nd2)


@pytest.mark.parametrize("key", ND2)
def test_nd2_planes_match_nd2(samples: Path, key: str) -> None:
    import nd2

    ds = omio.open(samples / key)
    planes = planes_of(ds)
    with nd2.ND2File(samples / key) as f:
        expected: dict[tuple[int, int, int], tuple[float, ...]] = {}
        for seq, loops in enumerate(f.loop_indices):
            if loops.get("P", 0) != 0:
                continue
            for c, channel in enumerate(f.frame_metadata(seq).channels):
                stage = channel.position.stagePositionUm
                index = (loops.get("T", 0), loops.get("Z", 0), c)
                expected[index] = (channel.time.relativeTimeMs / 1000, stage.x, stage.y, stage.z)
        exposures = {(p.the_t, p.the_z, p.the_c): p.exposure_time for p in f.ome_metadata().images[0].pixels.planes}
    assert set(planes) == set(expected) and len(planes) == ds.sizes["T"] * ds.sizes["Z"] * ds.sizes["C"]
    for index, plane in planes.items():
        delta, x, y, z = expected[index]
        assert seconds(plane) == pytest.approx(delta, abs=1e-9)
        assert (um(plane, "x"), um(plane, "y"), um(plane, "z")) == pytest.approx((x, y, z))
        assert plane.exposure_time_unit.value == "s"
        assert plane.exposure_time == pytest.approx(exposures[index] / 1000)  # nd2's OME export states ms
    ts = ds.xarray.coords["T"].values
    assert ts == pytest.approx([expected[(t, 0, 0)][0] for t in range(ds.sizes["T"])])  # T follows DeltaT


# --------------------------------------------------------------------------- LIF (liffile)


def lif_frame_of(image: Any, t: int, z: int, c: int) -> int:
    """The number of the stored frame holding plane (t, z, c) (its first, where rows come from several)."""
    dims = [d for d in image.dims if d != "S"]
    frame_dims = dims[-2:]
    outer = [d for d in dims if d not in frame_dims]
    channel_dims = [d for d in ("C", "λ", "Λ") if d in image.sizes]  # C outer, sweeps inner (channel-major)
    channel = np.unravel_index(c, [image.sizes[d] for d in channel_dims]) if channel_dims else ()
    index = {"T": t, "Z": z} | dict(zip(channel_dims, (int(i) for i in channel), strict=True))
    return int(np.ravel_multi_index([index.get(d, 0) for d in outer], [image.sizes[d] for d in outer]))


LIF_IMAGES = [
    pytest.param(key, i, id=f"{Path(key).name}[{i}]") for key in LIF for i in range(len(MANIFEST[key]["images"]))
]


@pytest.mark.parametrize(("key", "index"), LIF_IMAGES)
def test_lif_planes_match_liffile(samples: Path, key: str, index: int) -> None:
    import liffile

    ds = omio.open(samples / key, scene=index)
    planes = planes_of(ds)
    with liffile.LifFile(samples / key) as lif:
        image = lif.images[index]
        stamps = image.timestamps
        setting = image.xml_element.find(".//Attachment[@Name='HardwareSetting']//ATLConfocalSettingDefinition")
        assert image.tilescan is None  # the samples are not tile scans
        stage = (float(setting.get("StagePosX")) * 1e6, float(setting.get("StagePosY")) * 1e6)
        frames = {k: lif_frame_of(image, *k) for k in planes}
    assert stamps is not None
    assert len(planes) == ds.sizes["T"] * ds.sizes["Z"] * ds.sizes["C"]
    start = stamps.min()
    for k, plane in planes.items():
        want = (stamps[frames[k]] - start) / np.timedelta64(1, "ms") / 1000
        assert seconds(plane) == pytest.approx(want, abs=1e-3)  # liffile rounds to milliseconds
        assert (um(plane, "x"), um(plane, "y")) == pytest.approx(stage)
        assert um(plane, "z") is None  # no tile scan: the image states no Z stage position


def test_lif_images_lie_where_acquired(samples: Path) -> None:
    key = "lif/readlif_LeicaLASX_wavelength-sweep_example.lif"
    positions = set()
    for index in range(len(MANIFEST[key]["images"])):
        ds = omio.open(samples / key, scene=index)
        positions |= {(um(p, "x"), um(p, "y")) for p in planes_of(ds).values()}
    assert len(positions) == 3  # three images, three stage positions


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        ('StagePosX="0.0352668276465"', 'StagePosX="0.03526682764x5"', "StagePosX"),
        ("1d6f64bbab40b70", "1d6f64bbab40x70", "TimeStampList"),
    ],
)
def test_lif_unparsable_plane_value_is_an_error(samples: Path, tmp_path: Path, old: str, new: str, what: str) -> None:
    source = samples / "lif/readlif_LeicaLASX_wavelength-sweep_example.lif"
    path = _damaged_copy(source, tmp_path, _utf16(old), _utf16(new))
    with pytest.raises(MetadataError, match=rf"{path.name}.*{what}"):
        omio.open(path, scene=0)


# --------------------------------------------------------------------------- Thorlabs (Experiment.xml)


def test_thorlabs_time_increment_from_frame_rate(samples: Path) -> None:
    folder = samples / THORLABS_RAW
    lsm = ET.parse(folder / "Experiment.xml").getroot().find("LSM")
    assert lsm is not None and lsm.get("averageMode") == "0"
    rate = float(lsm.get("frameRate", "nan"))
    ds = omio.open(folder)
    assert ds.time_increment is not None
    assert ds.time_increment.to("second").magnitude == pytest.approx(1 / rate)
    assert f"<LSM frameRate={rate:g}>" in ds.axes_rule
    assert ds.xarray.coords["T"].values == pytest.approx(np.arange(ds.sizes["T"]) / rate)
    assert planes_of(ds) == {}  # Experiment.xml states nothing per plane: none invented


def test_thorlabs_without_frame_rate_has_no_time_increment(samples: Path, tmp_path: Path) -> None:
    folder = tmp_path / "acquisition"
    shutil.copytree(samples / THORLABS_RAW, folder)
    xml = folder / "Experiment.xml"
    text = xml.read_text()
    assert ' frameRate="1.426"' in text
    xml.write_text(text.replace(' frameRate="1.426"', ""))
    ds = omio.open(folder)
    assert ds.time_increment is None and "no frameRate" in ds.axes_rule


def _lif_xml(stamps: list[int], tiles: list[tuple[float, float, float]]) -> ET.Element:
    tile = "".join(
        f'<Tile FieldX="{i}" FieldY="0" PosX="{x}" PosY="{y}" PosZ="{z}"/>' for i, (x, y, z) in enumerate(tiles)
    )
    text = " ".join(f"{s:x}" for s in stamps)
    return ET.fromstring(
        f'<Element><Data><Image><Attachment Name="TileScanInfo">{tile}</Attachment>'
        f'<TimeStampList NumberOfTimeStamps="{len(stamps)}">{text}</TimeStampList></Image></Data></Element>'
    )


def test_lif_tile_scan_positions_and_times_follow_the_folded_tiles() -> None:
    from types import SimpleNamespace

    from omio.readers.lif import _plane_values

    # frames in C order over (M, C): frame m * 2 + c, stamped at that many seconds (FILETIME: 100 ns ticks)
    image = SimpleNamespace(
        xml_element=_lif_xml([f * 10**7 for f in range(4)], [(1e-3, 2e-3, 1e-4), (1.5e-3, 2e-3, 2e-4)])
    )
    sizes = {"M": 2, "C": 2, "Y": 3, "X": 3}
    values, rule = _plane_values(image, "a.lif", ["M", "C"], ["Y", "X"], sizes, (1, 1, 4))  # type: ignore[arg-type]
    by_c = {v.c: v for v in values}

    def number(m: Any, unit: str) -> float:
        assert m is not None and m.units == unit
        return float(m.magnitude)

    for c_out in range(4):
        channel, tile = divmod(c_out, 2)  # M folded into C channel-major: C outer, M inner
        row = by_c[c_out]
        assert number(row.delta_t, "second") == pytest.approx(tile * 2 + channel)
        positions = (number(row.position_x, "micrometer"), number(row.position_z, "micrometer"))
        assert positions == pytest.approx((1000 + 500 * tile, 100 + 100 * tile))
        assert number(row.position_y, "micrometer") == pytest.approx(2000)
    assert "TileScanInfo" in rule

    image = SimpleNamespace(xml_element=_lif_xml([0, 1, 2], [(1e-3, 2e-3, 1e-4)]))  # 3 stamps, 4 frames; 1 tile, 2
    values, rule = _plane_values(image, "a.lif", ["M", "C"], ["Y", "X"], sizes, (1, 1, 4))  # type: ignore[arg-type]
    assert values and all(v.is_empty() for v in values)
    assert "not one per stored frame" in rule and "so no positions" in rule
