"""OME-TIFF resolution pyramids: SubIFD levels written by to_ometiff(pyramid=...) and read with level=."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import tifffile

import omio
from omio.errors import DimensionError
from omio.pyramid import level_count, pyramid
from tests.test_writer import rss_growth, validate


def expected_levels(data: np.ndarray[Any, Any], n: int) -> list[np.ndarray[Any, Any]]:
    return [np.asarray(level.compute()) for level in pyramid(da.from_array(data), n)]


def sample(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray[Any, Any]:
    values = np.random.default_rng(seed).random(shape) * 250
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_levels_match_omio_pyramid_in_tifffile_and_omio(tmp_path: Path, dtype: str) -> None:
    data = sample((2, 3, 2, 75, 101), dtype)  # odd sizes: levels are floor(n / 2)
    ds = omio.from_array(data, physical_pixel_sizes={"X": 0.3, "Y": 0.25, "Z": 2.0}, channel_names=["a", "b"])
    out = ds.to_ometiff(tmp_path / f"p_{dtype}.ome.tif", pyramid=3)
    expected = expected_levels(data, 3)
    assert [e.shape[-2:] for e in expected] == [(75, 101), (37, 50), (18, 25)]
    with tifffile.TiffFile(out) as tif:
        assert len(tif.pages) == 12  # the main IFD chain holds the full-resolution planes only
        assert all(len(page.subifds) == 2 for page in tif.pages)
        levels = tif.series[0].levels
        assert len(levels) == 3
        for level, want in zip(levels, expected, strict=True):
            np.testing.assert_array_equal(level.asarray().reshape(want.shape), want)
    for i, want in enumerate(expected):
        back = omio.open(out, level=i)
        assert back.shape == want.shape and back.dtype == np.dtype(dtype)
        assert back.data.numblocks == (2, 3, 2, 1, 1)  # one chunk per page of that level
        np.testing.assert_array_equal(back.data.compute(), want)  # through the per-page tasks
        np.testing.assert_array_equal(back.to_numpy(), want)
        assert back.channel_names == ["a", "b"]
        assert back.source.levels == tuple(e.shape for e in expected)


def test_ome_xml_stays_valid_and_describes_level_0(tmp_path: Path) -> None:
    data = sample((1, 2, 3, 64, 90), "uint16")
    ds = omio.from_array(data, physical_pixel_sizes={"X": 0.5, "Y": 0.5}, time_increment=2.0)
    out = ds.to_ometiff(tmp_path / "valid.ome.tif", pyramid=3)
    ome = validate(out)  # OME 2016-06 schema, then parsed by ome-types
    pixels = ome.images[0].pixels
    assert (pixels.size_x, pixels.size_y, pixels.size_z, pixels.size_c, pixels.size_t) == (90, 64, 2, 3, 1)
    assert [(block.ifd, block.plane_count) for block in pixels.tiff_data_blocks] == [(0, 6)]
    assert pixels.physical_size_x == pytest.approx(0.5)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_ome
        reduced = tif.series[0].levels[1].keyframe
        assert reduced.subfiletype == 1 and "ImageDescription" not in reduced.tags


def test_physical_sizes_scale_by_the_exact_factor(tmp_path: Path) -> None:
    # 70 x 99 pixels: level 2 holds 17 x 24, whose size ratios (4.12, 4.125) are not the factor 4
    data = sample((1, 2, 1, 70, 99), "uint16")
    ds = omio.from_array(data, physical_pixel_sizes={"X": 0.2, "Y": 0.4, "Z": 1.5})
    out = ds.to_ometiff(tmp_path / "sizes.ome.tif", pyramid=3)
    for i in range(3):
        level = omio.open(out, level=i)
        assert (level.sizes["Y"], level.sizes["X"]) == (70 // 2**i, 99 // 2**i)
        sizes = level.physical_pixel_sizes
        assert sizes["X"].to("um").magnitude == pytest.approx(0.2 * 2**i)
        assert sizes["Y"].to("um").magnitude == pytest.approx(0.4 * 2**i)
        assert sizes["Z"].to("um").magnitude == pytest.approx(1.5)
    with tifffile.TiffFile(out) as tif:
        per_um = [level.keyframe.get_resolution("micrometer") for level in tif.series[0].levels]
    assert per_um[2] == pytest.approx((1 / (0.2 * 4), 1 / (0.4 * 4)))  # plain TIFF readers see the same scale


def test_unknown_pixel_sizes_stay_unknown_at_every_level(tmp_path: Path) -> None:
    out = omio.from_array(sample((40, 50), "uint8"), "YX").to_ometiff(tmp_path / "nosize.ome.tif", pyramid=2)
    assert omio.open(out, level=1).physical_pixel_sizes == {"X": None, "Y": None, "Z": None}


def test_large_images_are_tiled_and_options_apply_to_every_level(tmp_path: Path) -> None:
    data = sample((1, 1, 2, 600, 530), "uint16")
    ds = omio.from_array(data)
    out = ds.to_ometiff(tmp_path / "tiled.ome.tif", pyramid=3, compression="zstd", level=3, bigtiff=True)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_bigtiff
        levels = tif.series[0].levels
        for level in levels:
            for frame in level.pages:
                assert frame is not None
                page = frame.aspage()  # every page's own tags, not its keyframe's
                assert page.is_tiled and (page.tilelength, page.tilewidth) == (512, 512)
                assert page.compression == tifffile.COMPRESSION.ZSTD
        np.testing.assert_array_equal(levels[2].asarray().reshape(1, 1, 2, 150, 132), expected_levels(data, 3)[2])
    custom = ds.to_ometiff(tmp_path / "custom.ome.tif", pyramid=2, tile=(128, 256))
    with tifffile.TiffFile(custom) as tif:
        keyframes = [level.keyframe for level in tif.series[0].levels]
        assert [(k.tilelength, k.tilewidth) for k in keyframes] == [(128, 256), (128, 256)]
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    small = omio.from_array(sample((100, 120), "uint8"), "YX").to_ometiff(tmp_path / "small.ome.tif", pyramid=2)
    with tifffile.TiffFile(small) as tif:
        assert not tif.pages[0].is_tiled  # smaller than a tile: strips


@pytest.mark.parametrize("compression", ["zlib", "lzw", "none"])
@pytest.mark.parametrize("tile", [None, (48, 64)], ids=["strips", "tiles"])
def test_every_slab_and_level_round_trips(tmp_path: Path, compression: Any, tile: tuple[int, int] | None) -> None:
    # one slab per T; level 0 has two strips a plane (the second shorter), and tiles are cut at the edges
    data = sample((3, 2, 2, 400, 500), "uint16")
    ds = omio.from_array(da.from_array(data, chunks=(1, 1, 1, 400, 500)))
    out = ds.to_ometiff(tmp_path / "slabs.ome.tif", pyramid=3, compression=compression, tile=tile)
    with tifffile.TiffFile(out) as tif:
        first = tif.pages.first
        if compression != "none" and tile is None:
            assert first.rowsperstrip < 400 and len(first.dataoffsets) == 2
        levels = tif.series[0].levels
        for level, want in zip(levels, expected_levels(data, 3), strict=True):
            np.testing.assert_array_equal(level.asarray().reshape(want.shape), want)


def test_pyramid_true_uses_level_count_and_false_writes_none(tmp_path: Path) -> None:
    data = da.zeros((1, 1, 1, 1100, 600), dtype="uint8", chunks=(1, 1, 1, 1100, 600))
    ds = omio.from_array(data)
    out = ds.to_ometiff(tmp_path / "auto.ome.tif", pyramid=True)
    with tifffile.TiffFile(out) as tif:
        shapes = [level.shape[-2:] for level in tif.series[0].levels]
    assert level_count(ds.shape) == 4
    assert shapes == [(1100, 600), (550, 300), (275, 150), (137, 75)]
    for flat in (False, 1):
        plain = ds.to_ometiff(tmp_path / "flat.ome.tif", pyramid=flat)
        with tifffile.TiffFile(plain) as tif:
            assert tif.pages[0].subifds is None and len(tif.series[0].levels) == 1
        assert omio.open(plain).source.levels == ((1, 1, 1, 1100, 600),)


@pytest.mark.parametrize("bad", [0, -2, 8, 2.5, "3"])
def test_bad_pyramid_argument_is_refused_before_writing(tmp_path: Path, bad: Any) -> None:
    ds = omio.from_array(sample((64, 100), "uint8"), "YX")
    with pytest.raises(DimensionError, match="pyramid"):
        ds.to_ometiff(tmp_path / "bad.ome.tif", pyramid=bad)
    assert list(tmp_path.iterdir()) == []


def test_bad_level_index_names_the_file_and_the_levels(tmp_path: Path) -> None:
    out = omio.from_array(sample((2, 64, 80), "uint16"), "ZYX").to_ometiff(tmp_path / "lv.ome.tif", pyramid=3)
    for bad in (3, -1):
        with pytest.raises(DimensionError, match=r"lv\.ome\.tif.*level=.*3 resolution level\(s\), 0\.\.2") as info:
            omio.open(out, level=bad)
        assert "(1, 2, 1, 16, 20)" in str(info.value)
    flat = omio.from_array(sample((64, 80), "uint16"), "YX").to_ometiff(tmp_path / "flat.ome.tif")
    with pytest.raises(DimensionError, match=r"1 resolution level\(s\)"):
        omio.open(flat, level=1)


def test_level_graph_pickles_and_reads_only_its_pages(tmp_path: Path) -> None:
    data = sample((3, 2, 1, 48, 64), "uint16")
    out = omio.from_array(data).to_ometiff(tmp_path / "pk.ome.tif", pyramid=3)
    level = omio.open(out, level=2).isel(T=1, Z=0)
    restored = pickle.loads(pickle.dumps(level.data))
    np.testing.assert_array_equal(restored.compute(), expected_levels(data, 3)[2][1:2, 0:1])
    assert omio.open(out, level=1).data.name != omio.open(out, level=2).data.name


def test_pyramid_write_memory_is_bounded(tmp_path: Path) -> None:
    """A lazy 300 MB array is written with 3 levels without materializing it (RSS grows by < 180 MB)."""
    n = 150
    index = da.arange(n, dtype=np.uint16, chunks=1)[:, None, None]
    big = index * da.ones((1, 1024, 1024), dtype=np.uint16, chunks=(1, 1024, 1024))  # plane i holds i
    ds = omio.from_array(big, "ZYX")
    out, grown = rss_growth(lambda: ds.to_ometiff(tmp_path / "big.ome.tif", compression="zlib", level=1, pyramid=3))
    assert grown < 180 * 2**20, f"writing grew RSS by {grown / 2**20:.0f} MB"
    with tifffile.TiffFile(out) as tif:
        last = tif.series[0].levels[2].pages[n - 1]
        assert last is not None
        np.testing.assert_array_equal(last.asarray(), np.full((256, 256), n - 1, np.uint16))


def test_sample_subifd_pyramid_written_elsewhere(samples: Path) -> None:
    """A tifffile-written RGB JPEG OME-TIFF with a 3-level SubIFD pyramid reads at every level."""
    path = samples / "ome-tiff" / "tiledb_rand_uint16_pyramid_2series.ome.tiff"
    full = omio.open(path)
    assert full.source.levels == ((1, 1, 3, 512, 128), (1, 1, 3, 256, 64), (1, 1, 3, 128, 32))
    with tifffile.TiffFile(path) as tif:
        stored = [level.asarray() for level in tif.series[0].levels]
    for i, want in enumerate(stored):
        level = omio.open(path, level=i)
        np.testing.assert_array_equal(level.data.compute()[0, 0], want)  # S (R, G, B) -> C
        assert level.physical_pixel_sizes["X"].to("um").magnitude == pytest.approx(0.29 * 2**i)
        assert level.channel_names == full.channel_names
    assert omio.open(path, scene=1).source.levels == ((1, 1, 3, 64, 16),)  # the thumbnail image has no levels
