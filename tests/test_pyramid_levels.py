"""Pyramid level geometry: one computation of level pixel sizes and offsets for every reader and writer."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

import omio
from omio.pyramid import downsample, level_factors, level_geometry, level_origin
from omio.readers._handles import close_cached_handles
from omio.units import Measure

SINGLE = "zen_s1_t1_c1_z1.czi"
"""One scene, one uncompressed 325 x 475 uint16 subblock, 1.0833 um pixels."""


def test_level_factors_are_the_exact_integer_factor() -> None:
    assert level_factors((1, 1, 1, 2001, 1001), (1, 1, 1, 1000, 500)) == {"Z": 1, "Y": 2, "X": 2}
    assert level_factors((1, 1, 1, 1001, 1001), (1, 1, 1, 501, 501)) == {"Z": 1, "Y": 2, "X": 2}  # rounded up
    assert level_factors((1, 8, 1, 70, 99), (1, 2, 1, 17, 24)) == {"Z": 4, "Y": 4, "X": 4}
    assert level_factors((1, 1, 1, 100, 90), (1, 1, 1, 33, 30)) == {"Z": 1, "Y": 3, "X": 3}
    assert level_factors((1, 1, 1, 10, 10), (1, 1, 1, 4, 4))["X"] == pytest.approx(2.5)  # no integer fits
    with pytest.raises(ValueError, match="positive"):
        level_factors((1, 1, 1, 10, 10), (1, 1, 1, 0, 4))


def test_level_geometry_sizes_and_offsets() -> None:
    g = level_geometry({"X": Measure(0.1, "micrometer"), "Y": Measure(0.2, "micrometer"), "Z": None}, {"X": 2, "Y": 4})
    assert g.physical_sizes["X"] == Measure(pytest.approx(0.2), "micrometer")
    assert g.physical_sizes["Y"] == Measure(pytest.approx(0.8), "micrometer")
    assert g.physical_sizes["Z"] is None
    # pixel centres: a level pixel lies at the mean centre of the level-0 pixels it averages
    assert g.offsets["X"] == Measure(pytest.approx(0.05), "micrometer")
    assert g.offsets["Y"] == Measure(pytest.approx(0.3), "micrometer")
    assert g.offsets["Z"] is None
    assert g.factors == {"X": 2, "Y": 4, "Z": 1}
    plain = level_geometry({"X": 1.0}, {"X": 8})
    assert plain.physical_sizes == {"X": 8.0} and plain.offsets == {"X": 3.5}


def test_level_origin_adds_the_offsets() -> None:
    um = "micrometer"
    origin = {"X": Measure(100.0, um), "Y": None, "Z": Measure(2.0, um), "T": Measure(5.0, "second")}
    offsets = {"X": Measure(0.5, um), "Y": Measure(250.0, "nanometer"), "Z": None}
    out = level_origin(origin, offsets)
    assert out["X"] == Measure(100.5, um)
    assert out["Y"] == Measure(250.0, "nanometer")  # no origin: the offset itself
    assert out["Z"] == Measure(2.0, um) and out["T"] == Measure(5.0, "second")  # no offset: unchanged
    assert level_origin({"X": Measure(1.0, "millimeter")}, {"X": Measure(500.0, um)})["X"] == Measure(
        pytest.approx(1.5), "millimeter"
    )


def test_level_offset_is_the_mean_of_the_averaged_pixel_centres() -> None:
    x = np.arange(12, dtype="float64") * 0.5  # pixel-centre coordinates of level 0
    rows = da.from_array(np.broadcast_to(x, (1, 1, 1, 4, 12)))
    level = downsample(downsample(rows, 2), 2).compute()[0, 0, 0, 0]  # coordinates average like pixels
    g = level_geometry({"X": 0.5}, {"X": 4})
    np.testing.assert_allclose(level, g.offsets["X"] + np.arange(3) * g.physical_sizes["X"])


def _ngff(path: Path) -> dict[str, object]:
    attrs = json.loads((path / "zarr.json").read_text())["attributes"]["ome"]
    return attrs["multiscales"][0]  # type: ignore[no-any-return]


def test_ome_tiff_and_ome_zarr_levels_agree(tmp_path: Path) -> None:
    # 2001 x 1001 pixels: the shape ratio of level 1 (2.002, 2.004) is not its factor 2
    ds = omio.from_array(np.zeros((2001, 1001), "uint8"), "YX", physical_pixel_sizes={"X": 1.0, "Y": 0.5})
    tif = ds.to_ometiff(tmp_path / "a.ome.tif", pyramid=3)
    zarr = ds.to_omezarr(tmp_path / "a.ome.zarr", levels=3)
    for level in range(3):
        opened = [omio.open(p, level=level) for p in (tif, zarr)]
        for axis, step in (("X", 1.0), ("Y", 0.5)):
            f = 2**level
            assert [d.physical_pixel_sizes[axis].to("um").magnitude for d in opened] == [step * f] * 2, (level, axis)
            # pixel centres: the level's first pixel lies (f - 1) / 2 level-0 pixels in, in both formats
            first = [float(d.xarray[axis][0]) for d in opened]
            assert first == [pytest.approx((f - 1) / 2 * step)] * 2, (level, axis)
    transforms = [d["coordinateTransformations"] for d in _ngff(zarr)["datasets"]]  # type: ignore[index]
    assert transforms[0] == [{"type": "scale", "scale": [1.0, 1.0, 1.0, 0.5, 1.0]}]
    assert transforms[2] == [
        {"type": "scale", "scale": [1.0, 1.0, 1.0, 2.0, 4.0]},
        {"type": "translation", "translation": [0.0, 0.0, 0.0, 0.75, 1.5]},
    ]


def _czi_with_level(source: Path, out: Path) -> Path:
    """``source`` (one uncompressed subblock) with a 2 x 2 block-mean pyramid subblock appended."""
    raw = bytearray(source.read_bytes())
    header = 32
    directory = struct.unpack_from("<q", raw, header + 52)[0]  # after version, reserved, GUIDs, part
    alloc, used = struct.unpack_from("<qq", raw, directory + 16)
    count = struct.unpack_from("<i", raw, directory + 32)[0]
    assert count == 1
    entry = directory + 32 + 128
    ndims = struct.unpack_from("<i", raw, entry + 28)[0]
    size = 32 + 20 * ndims
    dims = {struct.unpack_from("<4s", raw, entry + 32 + 20 * i)[0].rstrip(b"\0"): i for i in range(ndims)}
    full = omio.open(source).data
    close_cached_handles()
    level = np.ascontiguousarray(downsample(full, 2).compute()[0, 0, 0]).astype("<u2")
    new = bytearray(raw[entry : entry + size])
    position = len(raw)
    struct.pack_into("<q", new, 6, position)  # file position
    new[22] = 1  # pyramid type: single subblock
    for axis, n in ((b"Y", level.shape[0]), (b"X", level.shape[1])):
        struct.pack_into("<i", new, 32 + 20 * dims[axis] + 16, n)  # stored size
    data = level.tobytes()
    body = struct.pack("<iiq", 0, 0, len(data)) + bytes(new)
    body += b"\0" * (256 - len(body)) + data
    raw += struct.pack("<16sqq", b"ZISRAWSUBBLOCK", len(body), len(body)) + body
    assert used + size <= alloc
    raw[entry + size : entry + 2 * size] = new
    struct.pack_into("<i", raw, directory + 32, 2)
    struct.pack_into("<q", raw, directory + 24, used + size)
    out.write_bytes(bytes(raw))
    return out


@pytest.mark.samples
def test_czi_ome_tiff_and_ome_zarr_give_the_same_level_sizes(samples: Path, tmp_path: Path) -> None:
    path = _czi_with_level(samples / "czi" / SINGLE, tmp_path / "pyramid.czi")
    try:
        full, level = omio.open(path), omio.open(path, level=1)
        assert level.shape == (1, 1, 1, 162, 237)
        step = full.physical_pixel_sizes["X"].to("um").magnitude
        assert step == pytest.approx(1.0833333333333333)
        assert level.physical_pixel_sizes["X"].to("um").magnitude == pytest.approx(2 * step)
        assert level.physical_pixel_sizes["Y"].to("um").magnitude == pytest.approx(2 * step)
        assert level.ome.images[0].pixels.physical_size_x == pytest.approx(2 * step)
        origin = {axis: float(full.xarray[axis][0]) for axis in "XY"}
        level_origin = {axis: float(level.xarray[axis][0]) for axis in "XY"}
        assert level_origin == {axis: pytest.approx(origin[axis] + step / 2) for axis in "XY"}
        tif = full.to_ometiff(tmp_path / "p.ome.tif", pyramid=2)
        for out in (tif, full.to_omezarr(tmp_path / "p.ome.zarr", levels=2)):
            copy = omio.open(out, level=1)
            assert copy.shape == level.shape, out
            np.testing.assert_array_equal(copy.to_numpy(), level.to_numpy(), err_msg=str(out))
            for axis in "XY":
                assert copy.physical_pixel_sizes[axis].to("um").magnitude == pytest.approx(
                    level.physical_pixel_sizes[axis].to("um").magnitude
                ), (out, axis)
                assert float(copy.xarray[axis][0]) == pytest.approx(level_origin[axis]), (out, axis)
    finally:
        close_cached_handles()
