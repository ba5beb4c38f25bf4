"""Every pixel type OME can describe round-trips through both writers: each compression, tiles and pyramids."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omio
from omio.pyramid import downsample

DTYPES = [
    "bool",
    "int8",
    "int16",
    "int32",
    "uint8",
    "uint16",
    "uint32",
    "float32",
    "float64",
    "complex64",
    "complex128",
    ">u2",
    ">f4",
]


def pixels(dtype: str) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(len(dtype))
    shape = (1, 2, 2, 40, 56)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    values = rng.random(shape) * 100 - (50 if np.dtype(dtype).kind in "ifc" and dtype[0] != "u" else 0)
    if np.dtype(dtype).kind == "c":
        values = values + 1j * rng.random(shape) * 100
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_through_ome_tiff(tmp_path: Path, dtype: str) -> None:
    data = pixels(dtype)
    ds = omio.from_array(data, "TZCYX")
    for compression, tile in itertools.product(["zlib", "zstd", "lzw", "none"], [None, (16, 32)]):
        out = ds.to_ometiff(tmp_path / f"{compression}-{tile is None}.ome.tif", compression=compression, tile=tile)
        back = omio.open(out).to_numpy()
        assert back.dtype == data.dtype.newbyteorder("="), (compression, tile)
        np.testing.assert_array_equal(back, data, err_msg=f"{compression} {tile}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_keeps_its_values_in_pyramid_levels(tmp_path: Path, dtype: str) -> None:
    data = pixels(dtype)
    ds = omio.from_array(data, "TZCYX")
    expected = downsample(ds.data, 2).compute()
    for path in (
        ds.to_ometiff(tmp_path / "pyramid.ome.tif", compression="zlib", pyramid=2),
        ds.to_omezarr(tmp_path / "pyramid.ome.zarr", levels=2),
    ):
        level = omio.open(path, level=1).to_numpy()
        assert level.dtype == data.dtype.newbyteorder("=")
        np.testing.assert_array_equal(level, expected, err_msg=str(path))
    if data.dtype.kind == "c":
        assert np.abs(expected.imag).sum() > 0  # the imaginary part is averaged too, not dropped


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_through_ome_zarr(tmp_path: Path, dtype: str) -> None:
    data = pixels(dtype)
    back = omio.open(omio.from_array(data, "TZCYX").to_omezarr(tmp_path / "x.ome.zarr")).to_numpy()
    assert back.dtype == data.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, data)
