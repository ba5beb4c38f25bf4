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
    # the level's first pixel centre, half a level-0 pixel in (its NGFF translation), in steps of 2 level-0 pixels
    np.testing.assert_allclose(small["X"].values[:2], [0.1, 0.5])
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


# ---------------------------------------------------------------- guessing the engine


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_plain_zarr_opens_with_xarrays_zarr_engine(tmp_path: Path, zarr_format: int) -> None:
    store = tmp_path / "plain.zarr"
    plain = xr.Dataset({"v": (("y", "x"), np.arange(6.0).reshape(2, 3))}, attrs={"title": "plain"})
    plain.to_zarr(store, zarr_format=zarr_format, consolidated=zarr_format == 2)
    assert not OmioBackendEntrypoint().guess_can_open(store)
    assert not OmioBackendEntrypoint().guess_can_open(str(store) + "/")
    opened = xr.open_dataset(store, consolidated=zarr_format == 2)  # no engine given: xarray's guess
    xr.testing.assert_identical(opened.load(), plain)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_is_guessed_from_its_metadata(tmp_path: Path, zarr_format: int) -> None:
    import json

    ngff = tmp_path / "image.zarr"  # no .ome in the name: the metadata decides
    ngff.mkdir()
    layout = tmp_path / "plate"
    layout.mkdir()
    if zarr_format == 2:
        (ngff / ".zattrs").write_text(json.dumps({"multiscales": [{"version": "0.4", "datasets": []}]}))
        (layout / ".zattrs").write_text(json.dumps({"bioformats2raw.layout": 3}))
    else:
        group = {"zarr_format": 3, "node_type": "group"}
        (ngff / "zarr.json").write_text(json.dumps({**group, "attributes": {"ome": {"multiscales": []}}}))
        (layout / "zarr.json").write_text(json.dumps({**group, "attributes": {"ome": {"bioformats2raw.layout": 3}}}))
    assert OmioBackendEntrypoint().guess_can_open(ngff)
    assert OmioBackendEntrypoint().guess_can_open(layout)
    (ngff / ("zarr.json" if zarr_format == 3 else ".zattrs")).write_text("{not json")
    assert not OmioBackendEntrypoint().guess_can_open(ngff)


def test_written_ome_zarr_is_guessed(dataset: omio.MicroscopyDataset, tmp_path: Path) -> None:
    out = dataset.to_omezarr(tmp_path / "cells.zarr", levels=2)
    assert OmioBackendEntrypoint().guess_can_open(out)


def test_guess_on_urls_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("guess_can_open used the network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    guess = OmioBackendEntrypoint().guess_can_open
    assert not guess("s3://bucket/x.zarr")
    assert not guess("https://example.org/data/x.zarr/")
    assert not guess("s3://bucket/image.tif")
    assert guess("s3://bucket/x.ome.zarr")
    assert guess("https://example.org/data/X.OME.ZARR/?token=abc")


def test_plain_tiff_is_left_to_other_engines(tmp_path: Path) -> None:
    import tifffile

    plain = tmp_path / "elevation.tif"
    tifffile.imwrite(plain, np.random.default_rng(0).random((16, 16), dtype="float32"))
    assert not OmioBackendEntrypoint().guess_can_open(plain)
    with pytest.raises(ValueError, match="did not find a match"):  # no engine here for plain TIFFs
        xr.open_dataset(plain)
    assert xr.open_dataarray(plain, engine="omio").shape == (1, 1, 1, 16, 16)  # still read when asked


def test_microscopy_tiffs_are_guessed(dataset: omio.MicroscopyDataset, tmp_path: Path) -> None:
    import tifffile

    guess = OmioBackendEntrypoint().guess_can_open
    ome = dataset.to_ometiff(tmp_path / "cells.ome.tif")
    assert guess(ome)
    renamed = tmp_path / "cells.tif"  # OME-XML in the description, no .ome in the name
    ome.rename(renamed)
    assert guess(renamed)
    imagej = tmp_path / "stack.tif"
    tifffile.imwrite(imagej, np.zeros((3, 8, 8), "uint16"), imagej=True, metadata={"axes": "ZYX"})
    assert guess(imagej)
    big_imagej = tmp_path / "big.tif"
    tifffile.imwrite(big_imagej, np.zeros((5, 8, 8), "uint16"), bigtiff=True, description="ImageJ=1.11a\nimages=5\n")
    assert guess(big_imagej)
    fake = tmp_path / "fake.ome.tif"  # an OME-TIFF name on non-TIFF bytes
    fake.write_bytes(b"not a tiff at all")
    assert not guess(fake)


def test_guess_never_raises(tmp_path: Path) -> None:
    guess = OmioBackendEntrypoint().guess_can_open
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(b"II*\x00\xff\xff")
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    assert not guess(truncated)
    assert not guess(empty)
    assert not guess(b"II*\x00")
    assert not guess(tmp_path)
    assert not guess(object())


@pytest.mark.samples
def test_every_sample_format_is_guessed(samples: Path) -> None:
    guess = OmioBackendEntrypoint().guess_can_open
    for name in ("lsm/jimpipeline_test_512x512_u16.lsm", "czi/zen_s1_t1_c1_z1.czi", "nd2/pims_cluster.nd2"):
        assert guess(samples / name), name
    assert guess(samples / "imagej" / "neubias_xyc_16bit__hela-cells.tif")
    assert guess(samples / "thorlabs" / "utils2p_mouse_kidney_raw_T5_C2")
    assert not guess(samples / "tiff" / "bigtiff_samples" / "BigTIFFMotorola.tif")


# ---------------------------------------------------------------- decoding keywords and closing


def test_xarray_decoding_keywords_are_accepted(written: Path) -> None:
    keywords = {
        "decode_times": False,
        "mask_and_scale": False,
        "decode_coords": "all",
        "use_cftime": False,
        "concat_characters": False,
        "decode_timedelta": False,
    }
    ds = xr.open_dataset(written, engine="omio", **keywords)
    assert ds["cells"].dims == ("T", "Z", "C", "Y", "X")
    direct = OmioBackendEntrypoint().open_dataset(written, drop_variables="cells", **keywords)
    assert list(direct.data_vars) == []
    assert xr.open_dataset(written, engine="omio", decode_cf=False)["T"].attrs["units"] == "second"


def _open_files() -> set[str]:
    import os

    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc/self/fd")
    found = set()
    for fd in fds.iterdir():
        try:
            found.add(os.path.realpath(os.readlink(fd)))
        except OSError:  # the listing's own descriptor
            continue
    return found


@pytest.fixture
def ometiffs(dataset: omio.MicroscopyDataset, tmp_path: Path) -> list[Path]:
    from omio.readers._handles import close_cached_handles

    close_cached_handles()
    return [dataset.to_ometiff(tmp_path / f"{i}.ome.tif") for i in range(2)]


def test_with_block_closes_the_file(ometiffs: Path, dataset: omio.MicroscopyDataset) -> None:
    path = ometiffs[0]
    with xr.open_dataset(path, engine="omio") as ds:
        np.testing.assert_array_equal(ds["cells"].values, dataset.to_numpy())
        assert str(path.resolve()) in _open_files()
    assert str(path.resolve()) not in _open_files()
    ds = xr.open_dataset(path, engine="omio", chunks={})
    ds.load()
    assert str(path.resolve()) in _open_files()
    ds.close()
    assert str(path.resolve()) not in _open_files()


def test_open_mfdataset_closes_every_file(ometiffs: list[Path], dataset: omio.MicroscopyDataset) -> None:
    combined = xr.open_mfdataset(ometiffs, engine="omio", combine="nested", concat_dim="T")
    assert combined.sizes["T"] == 4
    np.testing.assert_array_equal(combined["cells"].values[2:], dataset.to_numpy())
    assert {str(p.resolve()) for p in ometiffs} <= _open_files()
    combined.close()
    assert not {str(p.resolve()) for p in ometiffs} & _open_files()
