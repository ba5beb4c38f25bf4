"""Every numeric dtype: OME's pixel types round-trip through both writers, Zarr's through OME-Zarr.

The matrix: each OME pixel type, little- and big-endian, through OME-TIFF with every
compression the writer offers, strips and tiles, with and without a pyramid, and through
OME-Zarr with every compression and both NGFF versions, with and without levels; int64,
uint64 and float16 (which OME-XML cannot name) through OME-Zarr, refused by OME-TIFF
before anything is written. A property test draws arbitrary values (extremes, NaN,
infinities) and writer options.
"""

from __future__ import annotations

import itertools
import tempfile
import typing
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import omio
from omio.errors import MetadataError, MetadataNotStoredWarning, PixelTypeError
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
ZARR_ONLY = ["int64", "uint64", "float16", ">i8", ">u8", ">f2"]
"""Dtypes OME-Zarr stores (without OME/METADATA.ome.xml) and OME-TIFF refuses."""
ZARR_DTYPES = DTYPES + ZARR_ONLY
NOT_ZARR = ["longdouble", "clongdouble"]
"""Numeric dtypes Zarr has no data type for."""

TIFF_COMPRESSIONS = list(typing.get_args(ometiff.Compression))
ZARR_COMPRESSIONS = list(typing.get_args(omezarr.Compression))


def test_the_matrix_covers_every_option_the_writers_offer() -> None:
    assert set(TIFF_COMPRESSIONS) == {"zlib", "zstd", "lzw", "none"}
    assert set(ZARR_COMPRESSIONS) == {"blosc-zstd", "blosc-lz4", "zstd", "none"}
    assert {np.dtype(d).newbyteorder("=").name for d in DTYPES} == set(OME_DTYPES)
    assert len(BIG_ENDIAN) == 8  # every multi-byte type
    native = {np.dtype(d).newbyteorder("=").name for d in ZARR_DTYPES}
    assert native == set(OME_DTYPES) | {"int64", "uint64", "float16"}
    not_ome = {np.dtype(d).newbyteorder("=").name for d in NOT_OME}
    assert not_ome == (native - set(OME_DTYPES)) | {np.dtype(d).name for d in NOT_ZARR}


def pixels(dtype: str, shape: tuple[int, ...] = (1, 2, 2, 40, 56)) -> np.ndarray[Any, Any]:
    """Values spread over the dtype's range (both signs, the extremes included)."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(sum(map(ord, dtype)))
    if dt.kind == "b":
        return rng.random(shape) > 0.5
    if dt.kind in "iu":
        info = np.iinfo(dt)
        out = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt.newbyteorder("=")).astype(dt)
        out.flat[:2] = (info.min, info.max)
        return out
    spread = min(1e6, float(np.finfo(dt).max))  # float16 ends at 65504
    values = (rng.random(shape) - 0.5) * spread
    if dt.kind == "c":
        values = values + 1j * (rng.random(shape) - 0.5) * spread
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


@pytest.mark.parametrize("dtype", ZARR_DTYPES)
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


@pytest.mark.parametrize("dtype", ZARR_DTYPES)
def test_pyramid_levels_keep_each_dtype(dtype: str) -> None:
    data = pixels(dtype, (1, 1, 2, 8, 8))
    level = downsample(omio.from_array(data, "TZCYX").data, 2).compute()
    assert level.dtype == data.dtype
    if data.dtype.kind == "c":
        finite = np.isfinite(level)
        assert np.abs(level.imag[finite]).sum() > 0  # the imaginary part is averaged too, not dropped


@st.composite
def _cases(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], str, dict[str, Any]]:
    tiff = draw(st.booleans())
    dtype = draw(st.sampled_from(DTYPES if tiff else ZARR_DTYPES))
    shape = draw(
        st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 3), st.integers(2, 20), st.integers(2, 20))
    )
    data = draw(hnp.arrays(np.dtype(dtype), shape))
    if tiff:
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


@pytest.mark.parametrize(
    ("dtype", "writer"), [(d, "to_ometiff") for d in NOT_OME] + [(d, "to_omezarr") for d in NOT_ZARR]
)
def test_other_numeric_dtypes_are_refused_before_anything_is_written(tmp_path: Path, dtype: str, writer: str) -> None:
    ds = omio.from_array(np.zeros((2, 4, 4), dtype), "ZYX")
    suffix = "ome.tif" if writer == "to_ometiff" else "ome.zarr"
    what = "OME's PixelType" if writer == "to_ometiff" else "Zarr"
    name = np.dtype(dtype).name
    expected = rf"x\.{suffix}: .* cannot store {name} pixels: {what} has no {name}"
    with pytest.raises(PixelTypeError, match=expected) as info:
        getattr(ds, writer)(tmp_path / f"x.{suffix}", **({"pyramid": 2} if writer == "to_ometiff" else {"levels": 2}))
    message = str(info.value)
    assert "nothing was written" in message and "ds.apply(lambda a: a.astype(T), dtype=T)" in message
    assert isinstance(info.value, MetadataError) and isinstance(info.value, TypeError)
    assert list(tmp_path.iterdir()) == []


def test_non_numeric_dtypes_are_refused() -> None:
    for dtype in ("U3", "O", "datetime64[s]"):
        with pytest.raises(MetadataError, match="numbers"):
            omio.from_array(np.zeros((4, 4), dtype), "YX").ome  # noqa: B018


@pytest.mark.parametrize("dtype", ZARR_ONLY)
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_zarr_only_dtypes_keep_the_ngff_metadata(tmp_path: Path, dtype: str, version: str) -> None:
    data = pixels(dtype, (2, 3, 2, 16, 20))
    ds = omio.from_array(
        data,
        "TZCYX",
        physical_pixel_sizes={"X": "0.5 um", "Y": "0.5 um", "Z": "2 um"},
        time_increment="250 ms",
        channel_names=["DAPI", "GFP"],
        channel_colors=["0000FF", "00FF00"],
        name="labels",
    ).with_metadata(origin={"X": 100.0, "Y": -20.0, "Z": 5.0})
    out = ds.to_omezarr(tmp_path / "x.ome.zarr", version=version, levels=2)  # no warning: NGFF holds all of it
    assert not (out / "OME").exists()  # no OME-XML naming a type it has not
    back = omio.open(out)
    _check(back.to_numpy(), data, dtype)
    assert back.sizes == ds.sizes and back.name == "labels"
    assert back.physical_pixel_sizes == ds.physical_pixel_sizes
    assert back.time_increment == ds.time_increment
    assert back.channel_names == ["DAPI", "GFP"]
    assert back.channel_colors == ds.channel_colors
    assert back.origin == ds.origin
    assert back.planes.equals(ds.planes)  # only the origin's positions, which NGFF's translation holds
    assert back.ome.images[0].pixels.type == np.dtype(dtype).newbyteorder("=").name
    level = omio.open(out, level=1)
    assert level.dtype == back.dtype and level.physical_pixel_sizes["X"] == 2 * ds.physical_pixel_sizes["X"]


def test_ome_dtypes_keep_their_ome_xml(tmp_path: Path) -> None:
    out = omio.from_array(np.zeros((2, 4, 4), ">u4"), "ZYX").to_omezarr(tmp_path / "x.ome.zarr")
    assert (out / "OME" / "METADATA.ome.xml").read_text().count('Type="uint32"') == 1


def _described(dtype: str) -> omio.MicroscopyDataset:
    """An OME dataset with a plane table, an annotation, a description and channel fields, cast to ``dtype``."""
    from ome_types.model import Plane

    from omio.readers._base import ImageSource
    from omio.units import Measure

    shape = (2, 1, 2, 8, 8)
    planes = [
        Plane(the_t=t, the_z=0, the_c=c, delta_t=1.5 * t, delta_t_unit="s", exposure_time=10.0, exposure_time_unit="ms")
        for t in range(2)
        for c in range(2)
    ]
    ome = omio.metadata.make_ome(
        shape,
        "uint16",
        physical_sizes={"X": Measure(0.5, "micrometer"), "Y": Measure(0.5, "micrometer")},
        channel_names=["a", "b"],
        channel_extra=[{"fluor": "DAPI"}, {"emission_wavelength": 510.0}],
        planes=planes,
    )
    ome.images[0].description = "fixed cells"
    data = np.arange(int(np.prod(shape)), dtype="uint16").reshape(shape)
    ds = omio.MicroscopyDataset.from_source(ImageSource(data=data, ome=ome, path="memory", format="test"))
    ds = ds.with_annotations("lab:protocol", {"stain": "DAPI"})
    return ds.apply(lambda a: a.astype(dtype), dtype=dtype)


@pytest.mark.parametrize("dtype", ["int64", "uint64", "float16"])
def test_metadata_only_ome_xml_holds_is_named_in_a_warning_before_writing(tmp_path: Path, dtype: str) -> None:
    ds = _described(dtype)
    assert not ds.planes.empty and "lab:protocol" in ds.annotations
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetadataNotStoredWarning)
        with pytest.raises(MetadataNotStoredWarning) as info:  # as an error: a refusal, nothing written
            ds.to_omezarr(tmp_path / "x.ome.zarr")
    assert list(tmp_path.iterdir()) == []
    message = str(info.value)
    assert f"x.ome.zarr: OME-Zarr writes {dtype} pixels without OME/METADATA.ome.xml" in message
    assert "the plane table (ds.planes: 4 planes with DeltaT, ExposureTime)" in message
    assert "1 annotation (ds.annotations; namespaces lab:protocol)" in message
    assert "omio:source" not in message  # omio's provenance, made anew on reading
    assert "the image description" in message and "the channels' emission_wavelength, fluor" in message
    assert "ds.apply(lambda a: a.astype(T), dtype=T)" in message
    with pytest.warns(MetadataNotStoredWarning, match="the plane table") as record:
        out = ds.to_omezarr(tmp_path / "x.ome.zarr", version="0.4")
    assert record[0].filename == __file__  # points at the call
    back = omio.open(out)
    _check(back.to_numpy(), ds.to_numpy(), dtype)
    assert back.channel_names == ["a", "b"] and back.physical_pixel_sizes == ds.physical_pixel_sizes
    assert back.planes.empty and "lab:protocol" not in back.annotations  # what the warning said


def test_the_same_dataset_cast_to_an_ome_type_keeps_everything(tmp_path: Path) -> None:
    ds = _described("int32")
    back = omio.open(ds.to_omezarr(tmp_path / "x.ome.zarr"))  # no warning (warnings are errors here)
    assert back.planes.equals(ds.planes) and back.annotations["lab:protocol"] == {"stain": "DAPI"}


@pytest.mark.parametrize("dtype", ["int64", "uint64"])
def test_64_bit_integer_levels_are_exact_means(tmp_path: Path, dtype: str) -> None:
    info = np.iinfo(dtype)
    data = np.array([[info.max, info.max - 1], [info.max - 2, info.max]], dtype).reshape(1, 1, 1, 2, 2)
    out = omio.from_array(data, "TZCYX").to_omezarr(tmp_path / "x.ome.zarr", levels=2)
    exact = (sum(int(v) for v in data.ravel()) + 2) // 4
    assert int(omio.open(out, level=1).to_numpy().ravel()[0]) == exact
