"""MicroscopyDataset: construction, selection, metadata, units, immutability."""

from __future__ import annotations

import pickle

import dask.array as da
import numpy as np
import pint
import pytest
import xarray as xr

import omio
from omio.errors import DimensionError, MetadataError


def make(shape: tuple[int, ...] = (2, 3, 2, 8, 10), **kwargs: object) -> omio.MicroscopyDataset:
    data = np.arange(int(np.prod(shape)), dtype=np.uint16).reshape(shape)
    options: dict[str, object] = {
        "physical_pixel_sizes": {"X": 0.2, "Y": 0.3, "Z": 1.5},
        "time_increment": 2.0,
        "channel_names": ["GFP", "RFP"],
    }
    options.update(kwargs)
    return omio.from_array(data, "TZCYX", **options)  # type: ignore[arg-type]


def test_dims_units_and_coordinates() -> None:
    ds = make()
    assert ds.xarray.dims == ("T", "Z", "C", "Y", "X")
    assert isinstance(ds.xarray.data, da.Array)
    assert ds.xarray["X"].attrs["units"] == "micrometer"
    assert ds.xarray["T"].attrs["units"] == "second"
    np.testing.assert_allclose(ds.xarray["X"].values[:3], [0.0, 0.2, 0.4])
    np.testing.assert_allclose(ds.xarray["T"].values, [0.0, 2.0])
    assert list(ds.xarray["C"].values) == ["GFP", "RFP"]
    x = ds.physical_pixel_sizes["X"]
    assert isinstance(x, pint.Quantity) and x == omio.ureg.Quantity(0.2, "micrometer")
    assert ds.time_increment == omio.ureg.Quantity(2.0, "second")


def test_missing_metadata_is_none_and_visible() -> None:
    ds = omio.from_array(np.zeros((3, 4, 5), np.uint8), "ZYX")
    assert ds.physical_pixel_sizes == {"X": None, "Y": None, "Z": None}
    assert ds.time_increment is None
    assert ds.channel_names == [None]
    assert "units" not in ds.xarray["X"].attrs
    np.testing.assert_array_equal(ds.xarray["X"].values, np.arange(5))
    text = repr(ds)
    assert "X None, Y None, Z None" in text and "time increment: None" in text


def test_units_are_carried_exactly() -> None:
    ds = omio.from_array(np.zeros((4, 5), np.uint8), "YX", physical_pixel_sizes={"X": "250 nm", "Y": "250 nm"})
    assert str(ds.physical_pixel_sizes["X"].units) == "nanometer"
    assert ds.metadata["PhysicalSizeXUnit"] == "nm"
    assert ds.xarray["X"].attrs["units"] == "nanometer"


def test_pint_xarray_quantify_gives_unit_coordinates() -> None:
    ds = make()
    q = ds.quantify()
    assert q["X"].data.units == omio.ureg.micrometer
    assert q["T"].data.units == omio.ureg.second
    pixel_size = ds.physical_pixel_sizes["X"]
    assert pixel_size is not None
    step = q["X"].data[1] - q["X"].data[0]  # same registry: they combine
    assert (step / pixel_size).to("dimensionless").magnitude == pytest.approx(1.0)
    plain = ds.xarray.pint.quantify()  # pint's default registry parses the same unit names
    assert str(plain["X"].data.units) == "micrometer"
    ome_q = ds.ome.images[0].pixels.physical_size_x_quantity
    assert omio.units.from_ome_quantity(ome_q) == pixel_size


def test_isel_keeps_dims_and_slices_metadata() -> None:
    ds = make()
    sub = ds.isel(T=1, Z=slice(1, 3), C=1)
    assert sub.shape == (1, 2, 1, 8, 10)
    assert sub.channel_names == ["RFP"]
    ome = sub.ome.images[0].pixels
    assert (ome.size_t, ome.size_z, ome.size_c) == (1, 2, 1)
    assert [c.name for c in ome.channels] == ["RFP"]
    np.testing.assert_allclose(sub.xarray["Z"].values, [1.5, 3.0])  # true positions are kept
    np.testing.assert_array_equal(sub.to_numpy(), ds.to_numpy()[1:2, 1:3, 1:2])
    assert ds.shape == (2, 3, 2, 8, 10)  # the original is unchanged


def test_isel_with_step_scales_pixel_size_and_rejects_uneven() -> None:
    ds = make()
    half = ds.isel(X=slice(None, None, 2))
    px = half.physical_pixel_sizes["X"]
    assert px is not None and px.magnitude == pytest.approx(0.4)
    with pytest.raises(DimensionError, match="uneven"):
        ds.isel(X=[0, 1, 5])
    picked = ds.isel(T=[1, 0])
    assert picked.time_increment is not None and picked.shape[0] == 2
    with pytest.raises(DimensionError, match="out of range"):
        ds.isel(Z=7)
    with pytest.raises(DimensionError, match="unknown dim"):
        ds.isel(Q=0)


def test_sel_by_channel_name_and_coordinate() -> None:
    ds = make()
    gfp = ds.sel(C="GFP")
    assert gfp.channel_names == ["GFP"]
    np.testing.assert_array_equal(gfp.to_numpy(), ds.to_numpy()[:, :, :1])
    both = ds.sel(C=["RFP", "GFP"])
    assert both.channel_names == ["RFP", "GFP"]
    z = ds.sel(Z=1.5)
    assert z.shape[1] == 1 and z.xarray["Z"].values[0] == 1.5
    near = ds.sel(Z=1.4, method="nearest")
    assert near.xarray["Z"].values[0] == 1.5
    with pytest.raises(DimensionError, match="not found"):
        ds.sel(C="DAPI")


def test_squeeze_compute_and_laziness() -> None:
    ds = make()
    sq = ds.isel(T=0, C=0).squeeze()
    assert isinstance(sq, xr.DataArray) and sq.dims == ("Z", "Y", "X")
    assert sq["X"].attrs["units"] == "micrometer"
    assert ds.is_lazy
    loaded = ds.compute()
    assert not loaded.is_lazy and "in memory" in repr(loaded)
    np.testing.assert_array_equal(np.asarray(loaded), ds.to_numpy())


def test_pipe_keeps_metadata_and_follows_shape() -> None:
    ds = make()
    mip = ds.pipe(lambda a: a.max("Z"))
    assert isinstance(mip, omio.MicroscopyDataset)
    assert mip.shape == (2, 1, 2, 8, 10)
    assert mip.physical_pixel_sizes == ds.physical_pixel_sizes
    assert mip.channel_names == ["GFP", "RFP"]
    np.testing.assert_array_equal(mip.to_numpy()[:, 0], ds.to_numpy().max(axis=1))
    coarse = ds.pipe(lambda a: a.coarsen(X=2, Y=2).mean())
    cx = coarse.physical_pixel_sizes["X"]
    assert cx is not None and cx.magnitude == pytest.approx(0.4)
    assert ds.pipe(lambda a: float(a.max())) == float(ds.to_numpy().max())


def test_apply_is_lazy_and_keeps_metadata() -> None:
    ds = make()
    doubled = ds.apply(lambda b: b.astype(np.float32) * 2, dtype=np.float32)
    assert doubled.dtype == np.float32 and doubled.is_lazy
    assert doubled.ome.images[0].pixels.type.value == "float"
    np.testing.assert_allclose(doubled.to_numpy(), ds.to_numpy().astype(np.float32) * 2)
    assert doubled.channel_names == ds.channel_names


def test_ome_reflects_state_and_is_a_copy() -> None:
    ds = make()
    ome = ds.ome
    ome.images[0].pixels.size_x = 999
    assert ds.ome.images[0].pixels.size_x == 10
    px = ds.ome.images[0].pixels
    assert px.physical_size_x == pytest.approx(0.2) and px.time_increment == pytest.approx(2.0)


def test_metadata_flat_dict() -> None:
    md = make().metadata
    assert md["axes"] == "TZCYX" and md["shape"] == (2, 3, 2, 8, 10)
    assert md["PhysicalSizeX"] == pytest.approx(0.2) and md["PhysicalSizeXUnit"] == "µm"
    assert md["PhysicalSizeZ"] == pytest.approx(1.5)
    assert md["TimeIncrement"] == pytest.approx(2.0) and md["TimeIncrementUnit"] == "s"
    assert md["channel_names"] == ["GFP", "RFP"]
    assert isinstance(md["Annotations"], dict)


def test_from_array_axes_any_order_and_errors() -> None:
    data = np.arange(2 * 4 * 5 * 3).reshape(4, 5, 3, 2).astype(np.uint8)  # Y X C Z
    ds = omio.from_array(data, axes="YXCZ")
    assert ds.shape == (1, 2, 3, 4, 5)
    np.testing.assert_array_equal(ds.to_numpy()[0, 1, 2], data[:, :, 2, 1])
    for bad, message in [("ZYX", "names 3 axes"), ("YXQZ", "unknown letter"), ("YXCC", "repeats"), ("ZCTX", "Y and X")]:
        with pytest.raises(DimensionError, match=message):
            omio.from_array(data, axes=bad)
    with pytest.raises(MetadataError, match="channel names"):
        omio.from_array(data, axes="YXCZ", channel_names=["a"])
    with pytest.raises(MetadataError, match="not a length"):
        omio.from_array(data, axes="YXCZ", physical_pixel_sizes={"X": "2 s"})
    with pytest.raises(MetadataError, match="positive"):
        omio.from_array(data, axes="YXCZ", physical_pixel_sizes={"X": -1})


def test_from_xarray_reads_units_from_coordinates() -> None:
    arr = xr.DataArray(
        np.zeros((3, 4, 5), np.float32),
        dims=("Z", "Y", "X"),
        coords={
            "Z": ("Z", [0.0, 0.5, 1.0], {"units": "micrometer"}),
            "X": ("X", np.arange(5) * 100.0, {"units": "nanometer"}),
        },
    )
    ds = omio.from_xarray(arr)
    assert ds.shape == (1, 3, 1, 4, 5)
    z, x = ds.physical_pixel_sizes["Z"], ds.physical_pixel_sizes["X"]
    assert z is not None and z.magnitude == pytest.approx(0.5)
    assert x is not None and str(x.units) == "nanometer" and x.magnitude == pytest.approx(100)
    assert ds.physical_pixel_sizes["Y"] is None
    with pytest.raises(DimensionError):
        omio.from_xarray(xr.DataArray(np.zeros((2, 2)), dims=("row", "col")))


def test_with_metadata_states_missing_values() -> None:
    ds = omio.from_array(np.zeros((2, 4, 5), np.uint8), "CYX")
    named = ds.with_metadata(
        physical_pixel_sizes={"X": 0.1, "Y": 0.1}, channel_names=["a", "b"], time_increment="5 min"
    )
    assert named.channel_names == ["a", "b"]
    inc = named.time_increment
    assert inc is not None and inc.to("second").magnitude == pytest.approx(300)
    assert named.xarray["X"].values[1] == pytest.approx(0.1)
    assert ds.channel_names == [None, None]


def test_dataset_pickles_with_lazy_graph(tmp_path: object) -> None:
    ds = make()
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone.to_numpy(), ds.to_numpy())
    assert clone.channel_names == ds.channel_names


def test_repr_html_has_table_and_thumbnail() -> None:
    page = make()._repr_html_()
    assert "<table>" in page and "data:image/png;base64," in page and "GFP" in page


def test_dims_must_be_tzcyx() -> None:
    with pytest.raises(DimensionError):
        omio.MicroscopyDataset(xr.DataArray(np.zeros((2, 2)), dims=("Y", "X")), make().ome, make().source)
