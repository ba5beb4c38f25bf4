"""engine="omio" for xarray: any omio format through xr.open_dataset / xr.open_dataarray."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import omio
from omio.xarray_backend import OmioBackendEntrypoint


@pytest.fixture
def dataset() -> omio.MicroscopyDataset:
    pixels = np.arange(2 * 3 * 2 * 40 * 30, dtype="uint16").reshape(2, 3, 2, 40, 30)
    return omio.MicroscopyDataset.from_array(
        pixels,
        axes="TZCYX",
        physical_pixel_sizes={"X": 0.2, "Y": 0.2, "Z": 1.0},
        time_increment=5.0,
        channel_names=["GFP", "RFP"],
        name="cells",
    )


@pytest.fixture(params=["ome-tiff", "ome-zarr"])
def written(request: pytest.FixtureRequest, dataset: omio.MicroscopyDataset, tmp_path: Path) -> Path:
    if request.param == "ome-tiff":
        return dataset.to_ometiff(tmp_path / "cells.ome.tif")
    return dataset.to_omezarr(tmp_path / "cells.ome.zarr", levels=2)


def test_entry_point_is_registered() -> None:
    assert isinstance(xr.backends.list_engines()["omio"], OmioBackendEntrypoint)


def test_open_dataarray_is_lazy_tzcyx_with_units(written: Path, dataset: omio.MicroscopyDataset) -> None:
    array = xr.open_dataarray(written, engine="omio")
    assert array.name == "cells"
    assert array.dims == ("T", "Z", "C", "Y", "X")
    assert isinstance(array.data, da.Array)
    assert array["X"].attrs["units"] == "micrometer"
    assert array["T"].attrs["units"] == "second"
    assert list(array["C"].values) == ["GFP", "RFP"]
    np.testing.assert_allclose(array["Y"].values[:3], [0.0, 0.2, 0.4])
    assert array.attrs["PhysicalSizeZ"] == 1.0
    np.testing.assert_array_equal(array.values, dataset.to_numpy())


def test_open_dataset_variable_and_chunks(written: Path) -> None:
    ds = xr.open_dataset(written, engine="omio", chunks={"T": 2})
    assert list(ds.data_vars) == ["cells"]
    assert ds["cells"].chunks is not None and ds["cells"].chunks[0] == (2,)
    stored = xr.open_dataset(written, engine="omio", chunks={})
    assert stored["cells"].chunks == omio.open(written).data.chunks


def test_engine_is_guessed_from_content(written: Path) -> None:
    assert OmioBackendEntrypoint().guess_can_open(written)
    assert xr.open_dataarray(written).name == "cells"


def test_guess_rejects_other_files(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("not an image")
    assert not OmioBackendEntrypoint().guess_can_open(other)
    assert not OmioBackendEntrypoint().guess_can_open(tmp_path / "missing.tif")


def test_level_and_scene(dataset: omio.MicroscopyDataset, tmp_path: Path) -> None:
    out = dataset.to_omezarr(tmp_path / "cells.ome.zarr", levels=2)
    small = xr.open_dataarray(out, engine="omio", level=1)
    assert small.sizes["Y"] == 20 and small.sizes["X"] == 15
    np.testing.assert_allclose(small["X"].values[:2], [0.0, 0.4])
    with pytest.raises(omio.errors.DimensionError, match="scene 3"):
        xr.open_dataarray(out, engine="omio", scene=3)


def test_drop_variables(written: Path) -> None:
    ds = xr.open_dataset(written, engine="omio", drop_variables=["cells"])
    assert list(ds.data_vars) == []


def test_unnamed_image_is_called_image(tmp_path: Path) -> None:
    out = omio.MicroscopyDataset.from_array(np.zeros((8, 8), "uint8"), axes="YX").to_ometiff(tmp_path / "a.ome.tif")
    assert list(xr.open_dataset(out, engine="omio").data_vars) == ["image"]


def test_sample_through_xarray(samples: Path) -> None:
    path = samples / "ome-zarr" / "tiledb_CMU-1-Small-Region.ome.zarr"
    array = xr.open_dataarray(path, engine="omio", scene="macro image")
    assert array.shape == (1, 1, 3, 463, 387)
    assert array.name == "macro image"
