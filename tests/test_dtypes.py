"""Every numeric dtype: OME's pixel types round-trip through both writers; the others are refused before writing.

The matrix: each OME pixel type, little- and big-endian, through OME-TIFF with every
compression the writer offers, strips and tiles, with and without a pyramid, and through
OME-Zarr with every compression and both NGFF versions, with and without levels. A
property test draws arbitrary values (extremes, NaN, infinities) and writer options.
"""

from __future__ import annotations

import itertools
import tempfile
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import omio
from omio.errors import MetadataError, PixelTypeError
from omio.pyramid import downsample
from omio.writers import ometiff, omezarr

OME_DTYPES = [
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
]
BIG_ENDIAN = [">" + np.dtype(d).str[1:] for d in OME_DTYPES if np.dtype(d).itemsize > 1]
DTYPES = OME_DTYPES + BIG_ENDIAN
NOT_OME = ["int64", "uint64", ">i8", ">u8", "float16", "longdouble", "clongdouble"]
"""Numeric dtypes OME's PixelType has no name for."""

TIFF_COMPRESSIONS = list(typing.get_args(ometiff.Compression))
ZARR_COMPRESSIONS = list(typing.get_args(omezarr.Compression))


def test_the_matrix_covers_every_option_the_writers_offer() -> None:
    assert set(TIFF_COMPRESSIONS) == {"zlib", "zstd", "lzw", "none"}
    assert set(ZARR_COMPRESSIONS) == {"blosc-zstd", "blosc-lz4", "zstd", "none"}
    assert {np.dtype(d).newbyteorder("=").name for d in DTYPES} == set(OME_DTYPES)
    assert len(BIG_ENDIAN) == 8  # every multi-byte type


def pixels(dtype: str, shape: tuple[int, ...] = (1, 2, 2, 40, 56)) -> np.ndarray[Any, Any]:
    """Values spread over the dtype's range (both signs, the extremes included)."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(sum(map(ord, dtype)))
    if dt.kind == "b":
        return rng.random(shape) > 0.5
    if dt.kind in "iu":
        info = np.iinfo(dt)
        out = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dt)
        out.flat[:2] = (info.min, info.max)
        return out
    values = (rng.random(shape) - 0.5) * 1e6
    if dt.kind == "c":
        values = values + 1j * (rng.random(shape) - 0.5) * 1e6
    out = values.astype(dt)
    out.flat[:4] = (np.nan, np.inf, -np.inf, np.finfo(dt).max)
    return out


def _check(back: np.ndarray[Any, Any], data: np.ndarray[Any, Any], what: object) -> None:
    assert back.dtype == data.dtype.newbyteorder("="), what
    np.testing.assert_array_equal(back, data, err_msg=str(what))


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_through_ome_tiff(tmp_path: Path, dtype: str) -> None:
    data = pixels(dtype)
    ds = omio.from_array(data, "TZCYX")
    assert ds.dtype == np.dtype(dtype)
    expected = downsample(ds.data, 2).compute()
    for compression, tile, levels in itertools.product(TIFF_COMPRESSIONS, [None, (16, 32)], [1, 2]):
        what = (compression, tile, levels)
        out = ds.to_ometiff(
            tmp_path / f"{compression}-{tile is None}-{levels}.ome.tif",
            compression=compression,
            tile=tile,
            pyramid=levels,
        )
        _check(omio.open(out).to_numpy(), data, what)
        if levels > 1:
            _check(omio.open(out, level=1).to_numpy(), expected, what)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_through_ome_zarr(tmp_path: Path, dtype: str) -> None:
    data = pixels(dtype)
    ds = omio.from_array(data, "TZCYX")
    expected = downsample(ds.data, 2).compute()
    for compression, version, levels in itertools.product(ZARR_COMPRESSIONS, ["0.4", "0.5"], [1, 2]):
        what = (compression, version, levels)
        out = ds.to_omezarr(
            tmp_path / f"{compression}-{version}-{levels}.ome.zarr",
            compression=compression,
            version=version,
            levels=levels,
        )  # type: ignore[arg-type]
        _check(omio.open(out).to_numpy(), data, what)
        if levels > 1:
            _check(omio.open(out, level=1).to_numpy(), expected, what)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pyramid_levels_keep_each_dtype(dtype: str) -> None:
    data = pixels(dtype, (1, 1, 2, 8, 8))
    level = downsample(omio.from_array(data, "TZCYX").data, 2).compute()
    assert level.dtype == data.dtype
    if data.dtype.kind == "c":
        finite = np.isfinite(level)
        assert np.abs(level.imag[finite]).sum() > 0  # the imaginary part is averaged too, not dropped


@st.composite
def _cases(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], str, dict[str, Any]]:
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(
        st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 3), st.integers(2, 20), st.integers(2, 20))
    )
    data = draw(hnp.arrays(np.dtype(dtype), shape))
    if draw(st.booleans()):
        options: dict[str, Any] = {
            "compression": draw(st.sampled_from(TIFF_COMPRESSIONS)),
            "tile": draw(st.sampled_from([None, (16, 16)])),
            "pyramid": draw(st.integers(1, 2)) if min(shape[3:]) >= 2 else 1,
        }
        return data, "ome.tif", options
    options = {
        "compression": draw(st.sampled_from(ZARR_COMPRESSIONS)),
        "version": draw(st.sampled_from(["0.4", "0.5"])),
        "levels": draw(st.integers(1, 2)),
    }
    return data, "ome.zarr", options


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_arbitrary_values_round_trip(case: tuple[np.ndarray[Any, Any], str, dict[str, Any]]) -> None:
    data, suffix, options = case
    ds = omio.from_array(data, "TZCYX")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"x.{suffix}"
        out = ds.to_ometiff(target, **options) if suffix == "ome.tif" else ds.to_omezarr(target, **options)
        _check(omio.open(out).to_numpy(), data, options)
        if options.get("pyramid", options.get("levels")) == 2:
            _check(omio.open(out, level=1).to_numpy(), downsample(ds.data, 2).compute(), options)


@pytest.mark.parametrize("dtype", NOT_OME)
def test_other_numeric_dtypes_live_in_memory(dtype: str) -> None:
    data = np.arange(2 * 6 * 4).astype(dtype).reshape(2, 6, 4)
    ds = omio.from_array(data, "CYX", channel_names=["a", "b"], physical_pixel_sizes={"X": 0.5})
    assert ds.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(ds.to_numpy()[0, 0], data)
    assert ds.isel(X=slice(0, 2)).to_numpy().shape == (1, 1, 2, 6, 2)
    assert ds.with_metadata(name="n").name == "n"
    assert ds.ome.images[0].pixels.type == np.dtype(dtype).name  # the numpy name: OME has none
    doubled = ds.apply(lambda a: a * 2)
    np.testing.assert_array_equal(doubled.to_numpy()[0, 0], data * 2)
    assert ds.apply(lambda a: a.astype("int32"), dtype="int32").ome.images[0].pixels.type.value == "int32"
    small = omio.from_array(np.ones((2, 6, 4), "uint8"), "CYX")
    assert small.apply(lambda a: a.astype(dtype), dtype=dtype).dtype == dtype


@pytest.mark.parametrize("dtype", NOT_OME)
@pytest.mark.parametrize("writer", ["to_ometiff", "to_omezarr"])
def test_other_numeric_dtypes_are_refused_before_anything_is_written(tmp_path: Path, dtype: str, writer: str) -> None:
    ds = omio.from_array(np.zeros((2, 4, 4), dtype), "ZYX")
    suffix = "ome.tif" if writer == "to_ometiff" else "ome.zarr"
    with pytest.raises(PixelTypeError, match=rf"x\.{suffix}: .* cannot store {np.dtype(dtype).name} pixels") as info:
        getattr(ds, writer)(tmp_path / f"x.{suffix}", **({"pyramid": 2} if writer == "to_ometiff" else {}))
    message = str(info.value)
    assert "nothing was written" in message and "ds.apply(lambda a: a.astype(T), dtype=T)" in message
    assert isinstance(info.value, MetadataError) and isinstance(info.value, TypeError)
    assert list(tmp_path.iterdir()) == []


def test_non_numeric_dtypes_are_refused() -> None:
    for dtype in ("U3", "O", "datetime64[s]"):
        with pytest.raises(MetadataError, match="numbers"):
            omio.from_array(np.zeros((4, 4), dtype), "YX").ome  # noqa: B018
