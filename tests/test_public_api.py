"""The public surface: exports, per-format constructors, the ``.omio`` accessor, packaging hints."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import tifffile
import xarray as xr

import omio
from omio import MicroscopyDataset
from omio.errors import DimensionError, MissingDependencyError, UnsupportedFormatError
from omio.readers import _optional


def test_dir_lists_exactly_the_public_api() -> None:
    assert dir(omio) == sorted(omio.__all__)
    for leaked in ("Any", "TYPE_CHECKING", "annotations"):
        assert leaked not in dir(omio)
    assert all(hasattr(omio, name) for name in omio.__all__)


def test_version_is_above_the_original_line() -> None:
    major, minor = (int(n) for n in omio.__version__.split(".")[:2])
    assert (major, minor) > (0, 3)
    assert importlib.metadata.version("omio-microscopy") == omio.__version__


def test_missing_library_hint_names_the_package_that_provides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(name: str) -> None:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(_optional.importlib, "import_module", absent)
    with pytest.raises(MissingDependencyError) as info:
        _optional.require("nd2", extra="nd2", what="ND2", path="a.nd2")
    message = str(info.value)
    assert "pip install nd2 " in message and "pip install -e '.[nd2]'" in message
    assert "omio-microscopy[" not in message  # that name on the package index is another project


@pytest.fixture
def ome_tiff(tmp_path: Path) -> Path:
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, np.arange(2 * 8 * 8, dtype="uint16").reshape(2, 8, 8), metadata={"axes": "ZYX"})
    return path


def test_from_tiff_opens_a_tiff_and_refuses_other_formats(ome_tiff: Path, tmp_path: Path) -> None:
    ds = MicroscopyDataset.from_tiff(ome_tiff)
    assert ds.shape == (1, 2, 1, 8, 8) and ds.source.format == "ome-tiff"
    not_tiff = tmp_path / "cells.czi"
    not_tiff.write_bytes(b"ZISRAWFILE" + bytes(600))
    with pytest.raises(UnsupportedFormatError, match="not a tiff file"):
        MicroscopyDataset.from_tiff(not_tiff)


@pytest.mark.parametrize(
    "constructor",
    ["from_czi", "from_lsm", "from_thorlabs_raw", "from_nd2", "from_lif", "from_oif", "from_ome_zarr"],
)
def test_each_format_constructor_refuses_a_file_of_another_format(constructor: str, ome_tiff: Path) -> None:
    with pytest.raises(UnsupportedFormatError) as info:
        getattr(MicroscopyDataset, constructor)(ome_tiff)
    assert str(ome_tiff) in str(info.value) and "omio.open" in str(info.value)


def test_format_constructors_match_open_on_their_files(ome_tiff: Path, tmp_path: Path) -> None:
    zarr_path = omio.open(ome_tiff).to_omezarr(tmp_path / "cells.ome.zarr")
    from_zarr = MicroscopyDataset.from_ome_zarr(zarr_path)
    np.testing.assert_array_equal(from_zarr.to_numpy(), omio.open(ome_tiff).to_numpy())
    with pytest.raises(UnsupportedFormatError, match="not lsm"):
        MicroscopyDataset.from_lsm(ome_tiff)


def test_the_omio_accessor_rewraps_a_dataarray() -> None:
    data = xr.DataArray(
        np.zeros((3, 4, 5), "uint8"),
        dims=("C", "Y", "X"),
        coords={"C": ["a", "b", "c"], "X": ("X", np.arange(5) * 0.25, {"units": "micrometer"})},
    )
    ds = data.omio.dataset()
    assert isinstance(ds, MicroscopyDataset)
    assert ds.shape == (1, 1, 3, 4, 5) and ds.channel_names == ["a", "b", "c"]
    assert ds.physical_pixel_sizes["X"].magnitude == pytest.approx(0.25)  # type: ignore[union-attr]
    with pytest.raises(DimensionError):
        xr.DataArray(np.zeros((2, 2)), dims=("Q", "X")).omio.dataset()
