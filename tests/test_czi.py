"""Tests of the CZI reader against the independently read sample manifest."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omio
from omio.errors import DimensionError, FileFormatError
from omio.metadata import channel_colors, channel_names, physical_pixel_sizes, time_increment
from omio.readers import czi as czi_module
from omio.readers._handles import close_cached_handles
from omio.readers.czi import CziReader

SAMPLES = Path(os.environ.get("OMIO_SAMPLES", Path(__file__).parents[2] / "shared" / "samples"))
MANIFEST = SAMPLES / "MANIFEST.json"


def _czi_entries() -> dict[str, dict[str, Any]]:
    if not MANIFEST.is_file():
        return {}
    files = json.loads(MANIFEST.read_text())["files"]
    return {key: value for key, value in files.items() if key.startswith("czi/")}


ENTRIES = _czi_entries()


def needs_samples[F: Callable[..., Any]](test: F) -> F:
    """Mark a test as using the shared sample files; skip it when they are absent."""
    skip = pytest.mark.skipif(not ENTRIES, reason=f"sample files not found in {SAMPLES}")
    return pytest.mark.samples(skip(test))  # type: ignore[no-any-return]


MOSAIC = SAMPLES / "czi" / "zen_3scenes_mosaic_T2_Z3_C2.czi"
ZSTD = SAMPLES / "czi" / "zen_zstd1_T3_Z6_C1.czi"


def _sha256(array: np.ndarray[Any, Any]) -> str:
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return hashlib.sha256(little.tobytes()).hexdigest()


@pytest.fixture(autouse=True)
def _no_cached_handles() -> Any:
    yield
    close_cached_handles()


@needs_samples
@pytest.mark.parametrize("key", sorted(ENTRIES), ids=lambda key: Path(key).name)
def test_sample_matches_manifest(key: str) -> None:
    path = SAMPLES / key
    expected_images = ENTRIES[key]["images"]
    reader = CziReader()
    assert reader.scenes(path) == [image["name"] for image in expected_images]
    for index, expected in enumerate(expected_images):
        source = reader.open(path, scene=index)
        image = source.ome.model().images[0]
        data = source.data.compute()
        assert source.format == "czi" and source.scene == index
        assert dict(zip("TZCYX", data.shape, strict=True)) == expected["sizes"]
        assert tuple(expected["full_array"]["shape_TZCYX"]) == data.shape
        assert str(data.dtype) == expected["dtype"]
        assert _sha256(data[0, 0, 0]) == expected["plane_T0_Z0_C0"]["sha256_le_c_order"]
        assert _sha256(data) == expected["full_array"]["sha256_le_c_order"]
        assert image.name == expected["name"]
        pixels = image.pixels
        assert (pixels.size_t, pixels.size_z, pixels.size_c, pixels.size_y, pixels.size_x) == data.shape
        sizes = physical_pixel_sizes(image)
        for axis, value in expected["physical_size_um"].items():
            got = sizes[axis]
            if value is None:
                assert got is None, axis
            else:
                assert got is not None and got.m_as("micrometer") == pytest.approx(value, rel=1e-6), axis
        increment = time_increment(image)
        if expected["time_increment_s"] is None:
            assert increment is None
        else:
            assert increment is not None
            assert increment.m_as("second") == pytest.approx(expected["time_increment_s"], rel=1e-6)
        names = channel_names(image)
        if expected["channel_names"] is None:
            assert names == [None] * data.shape[2]
        else:
            assert names == expected["channel_names"]
        assert source.levels[0] == data.shape
        assert source.original_metadata["czi:xml"].startswith("<ImageDocument>")
        assert source.axes_rule.startswith("CZI dims")


@needs_samples
def test_scene_by_name_and_errors() -> None:
    reader = CziReader()
    by_name = reader.open(MOSAIC, scene="P1")
    assert by_name.scene == 1 and by_name.ome.model().images[0].name == "P1"
    assert by_name.data.shape == reader.open(MOSAIC, scene=1).data.shape
    with pytest.raises(DimensionError, match=r"TR1.*P1.*TR2"):
        reader.open(MOSAIC, scene="nope")
    with pytest.raises(DimensionError, match=r"0\.\.2"):
        reader.open(MOSAIC, scene=3)
    with pytest.raises(DimensionError, match=r"self-describing"):
        reader.open(MOSAIC, axes="TZCYX")
    with pytest.raises(DimensionError, match=r"level"):
        reader.open(MOSAIC, level=1)


@needs_samples
def test_metadata_details() -> None:
    source = CziReader().open(SAMPLES / "czi" / "zen_celldivision_T3_Z5_C2.czi")
    image = source.ome.model().images[0]
    assert channel_colors(image) == [(255, 126, 0, 255), (0, 255, 51, 255)]
    assert image.pixels.channels[0].excitation_wavelength == 553
    assert image.acquisition_date == datetime.fromisoformat("2016-02-12T09:41:02.491560+00:00")
    objective = source.ome.model().instruments[0].objectives[0]
    assert (objective.nominal_magnification, objective.lens_na) == (50, 1.2)
    assert objective.immersion is not None and objective.immersion.value == "Water"
    assert image.objective_settings is not None and image.objective_settings.id == objective.id
    rgb = CziReader().open(SAMPLES / "czi" / "zen_rgb_bgr24.czi")
    assert channel_colors(rgb.ome.model().images[0]) == [(255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255)]
    assert "R,G,B" in rgb.axes_rule
    airyscan = CziReader().open(SAMPLES / "czi" / "zen_lsm880_airyscan_raw_H32_C8.czi")
    assert "H folded into C" in airyscan.axes_rule.replace("dims H", "H")
    assert airyscan.data.chunks[2] == (1,) * 256


@needs_samples
def test_opening_reads_no_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    import czifile

    calls: list[str] = []
    read_segment = czifile.CziDirectoryEntryDV.read_segment_data
    subblock_data = czifile.CziSubBlockSegmentData.data

    def counting_read_segment(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append("segment")
        return read_segment(self, *args, **kwargs)

    def counting_data(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append("data")
        return subblock_data(self, *args, **kwargs)

    monkeypatch.setattr(czifile.CziDirectoryEntryDV, "read_segment_data", counting_read_segment)
    monkeypatch.setattr(czifile.CziSubBlockSegmentData, "data", counting_data)
    scenes = [(SAMPLES / key, i) for key in ENTRIES for i in range(len(ENTRIES[key]["images"]))]
    sources = [CziReader().open(path, scene=i) for path, i in scenes]
    assert calls == []
    sources[0].data[0, 0, 0].compute()
    assert "data" in calls


@needs_samples
def test_graph_pickles_and_computes_after_close() -> None:
    source = CziReader().open(MOSAIC, scene=2)
    expected = ENTRIES["czi/" + MOSAIC.name]["images"][2]["full_array"]["sha256_le_c_order"]
    payload = pickle.dumps(source.data)
    close_cached_handles()
    restored = pickle.loads(payload)
    assert _sha256(restored.compute(scheduler="threads")) == expected


@needs_samples
def test_large_planes_are_split_into_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(czi_module, "MAX_PLANE_BYTES", 1)
    monkeypatch.setattr(czi_module, "TILE", 50)
    source = CziReader().open(MOSAIC, scene=2)
    assert source.data.chunks[3:] == ((50, 50, 50, 50, 37), (50,) * 7 + (2,))
    expected = ENTRIES["czi/" + MOSAIC.name]["images"][2]["full_array"]["sha256_le_c_order"]
    assert _sha256(source.data.compute()) == expected


def test_sniff() -> None:
    reader = CziReader()
    assert reader.sniff(Path("x.czi"), b"ZISRAWFILE" + bytes(22))
    assert not reader.sniff(Path("x.czi"), b"II*\x00" + bytes(28))
    assert not reader.sniff(Path("x.czi"), b"")


def test_random_bytes_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "random.czi"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(FileFormatError, match=r"random\.czi"):
        CziReader().open(path)
    path.write_bytes(b"ZISRAWFILE" + bytes(100))
    with pytest.raises(FileFormatError, match=r"random\.czi"):
        CziReader().open(path)
    with pytest.raises(FileNotFoundError):
        CziReader().open(tmp_path / "missing.czi")


@needs_samples
@pytest.mark.parametrize("fraction", [0.001, 0.3, 0.999])
def test_truncated_file(tmp_path: Path, fraction: float) -> None:
    data = MOSAIC.read_bytes()
    path = tmp_path / "truncated.czi"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(FileFormatError, match=r"truncated\.czi"):
        source = CziReader().open(path, scene=2)
        source.data.compute()


def _first_subblock(path: Path) -> tuple[int, int, int]:
    """Return (segment position, data offset, data size) of the first subblock of scene 0."""
    import czifile

    with czifile.CziFile(path) as czi:
        entry = czi.scenes[0].directory_entries[0]
        segment = entry.read_segment_data(czi)
        assert isinstance(segment, czifile.CziSubBlockSegmentData)
        return entry.file_position, segment.data_offset, segment.data_size


@needs_samples
def test_corrupt_subblock_header_fails_at_read_time(tmp_path: Path) -> None:
    position, _, _ = _first_subblock(MOSAIC)
    data = bytearray(MOSAIC.read_bytes())
    data[position : position + 14] = b"BROKENSEGMENT1"
    path = tmp_path / "corrupt.czi"
    path.write_bytes(bytes(data))
    source = CziReader().open(path, scene=0)  # the directory is intact: opening works
    with pytest.raises(FileFormatError, match=r"corrupt\.czi.*not a subblock"):
        source.data.compute()
    with pytest.raises(FileFormatError, match=r"corrupt\.czi.*not a subblock"):
        omio.open(path).to_numpy()  # the whole-scene read


@needs_samples
def test_corrupt_compressed_subblock_fails_at_read_time(tmp_path: Path) -> None:
    _, offset, size = _first_subblock(ZSTD)
    data = bytearray(ZSTD.read_bytes())
    data[offset : offset + size] = bytes(size)
    path = tmp_path / "corrupt_zstd.czi"
    path.write_bytes(bytes(data))
    source = CziReader().open(path)
    with pytest.raises(FileFormatError, match=r"corrupt_zstd\.czi"):
        source.data[0, 0, 0].compute()
    # other planes are still readable
    assert source.data[1, 0, 0].compute().any()
    with pytest.raises(FileFormatError, match=r"corrupt_zstd\.czi"):
        omio.open(path).to_numpy()  # the whole-scene read


@needs_samples
@pytest.mark.parametrize("key", sorted(ENTRIES), ids=lambda key: Path(key).name)
def test_whole_scene_read_matches_the_chunked_graph(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # czifile fills the result in place unless pixels must be rearranged (RGB samples, Airyscan's H folded into C)
    expect_direct = "rgb" not in key and "airyscan" not in key
    direct_calls: list[int] = []
    real = czi_module._read_scene_into

    def counting(*args: Any) -> None:
        direct_calls.append(1)
        args[-1][...] = 7  # the buffer is uninitialised: every element must be written (absent pixels as 0)
        real(*args)

    monkeypatch.setattr(czi_module, "_read_scene_into", counting)
    path = SAMPLES / key
    for scene in range(len(omio.scenes(path))):
        direct_calls.clear()
        ds = omio.open(path, scene=scene)
        np.testing.assert_array_equal(ds.to_numpy(), ds.data.compute(scheduler="sync"))
        assert bool(direct_calls) is expect_direct
