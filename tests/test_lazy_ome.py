"""The OME model is built on first use: reading pixels never imports ome-types, and the labels agree with it."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import omio
from omio import metadata
from omio.errors import MetadataError
from omio.lazy_ome import LazyOME
from omio.record import ImageRecord

OME_METADATA = {
    "axes": "TZCYX",
    "PhysicalSizeX": 65.0,
    "PhysicalSizeXUnit": "nm",
    "PhysicalSizeY": 65.0,
    "PhysicalSizeYUnit": "nm",
    "PhysicalSizeZ": 0.5,
    "TimeIncrement": 250.0,
    "TimeIncrementUnit": "ms",
    "Channel": {"Name": ["DAPI", "GFP", "RFP"]},
}


@pytest.fixture
def ome_tiff(tmp_path: Path) -> Path:
    path = tmp_path / "cells.ome.tif"
    data = (np.arange(4 * 5 * 3 * 8 * 10) % 3000).astype("uint16").reshape(4, 5, 3, 8, 10)
    tifffile.imwrite(path, data, ome=True, photometric="minisblack", metadata=OME_METADATA)
    return path


def model_labels(ds: omio.MicroscopyDataset) -> ImageRecord:
    return ImageRecord.of(ds.ome)


def test_reading_pixels_never_imports_ome_types_or_pint(ome_tiff: Path) -> None:
    code = f"""
import sys
import omio
ds = omio.open({str(ome_tiff)!r})
sub = ds.isel(T=1, Z=slice(0, 4, 2)).sel(C="GFP")
assert sub.to_numpy().shape == (1, 2, 1, 8, 10)
assert ds.to_numpy().shape == (4, 5, 3, 8, 10)
assert "pint" not in sys.modules, "reading pixels imported pint"
assert sub.xarray["X"].attrs["units"] == "nanometer" and sub.xarray["T"].attrs["units"] == "millisecond"
assert sub.physical_pixel_sizes["X"] == omio.ureg.Quantity(65, "nm") and "pint" in sys.modules
repr(sub), sub.physical_pixel_sizes, sub.time_increment, sub.channel_names, sub.name, sub.xarray.pint
assert "ome_types" not in sys.modules, "reading pixels imported ome_types"
assert sub.ome.images[0].pixels.size_z == 2
assert "ome_types" in sys.modules
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_ome_tiff_labels_match_the_model(ome_tiff: Path) -> None:
    ds = omio.open(ome_tiff)
    stated = ds._meta.record
    assert not ds._meta.is_built
    assert stated == model_labels(ds)
    x = ds.physical_pixel_sizes["X"]
    assert x is not None and str(x.units) == "nanometer" and x.magnitude == 65.0
    increment = ds.time_increment
    assert increment is not None and str(increment.units) == "millisecond" and increment.magnitude == 250.0
    assert ds.channel_names == ["DAPI", "GFP", "RFP"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    t=st.one_of(st.integers(0, 3), st.sampled_from([slice(None, None, 2), slice(1, 4), [0, 1, 3], [3, 0]])),
    # (a reversed Z selection is refused: see tests/test_planes_origins.py)
    z=st.one_of(st.integers(0, 4), st.sampled_from([slice(None, None, 2), slice(1, 5, 3), slice(3, None)])),
    c=st.one_of(st.integers(0, 2), st.sampled_from([[2, 0], slice(1, 3), [1]])),
    x=st.sampled_from([slice(None), slice(0, 10, 2), slice(2, 9, 3)]),
)
def test_selection_labels_match_the_selected_model(ome_tiff: Path, t: Any, z: Any, c: Any, x: Any) -> None:
    lazy = omio.open(ome_tiff).isel(T=t, Z=z, C=c, X=x)
    eager = omio.open(ome_tiff)
    eager.ome  # noqa: B018 - build the model first: the selection then updates it directly
    built = eager.isel(T=t, Z=z, C=c, X=x)
    assert built._meta.is_built and not lazy._meta.is_built
    assert lazy._meta.record == model_labels(lazy) == built._meta.record
    assert lazy.ome.images == built.ome.images
    assert lazy.ome.structured_annotations == built.ome.structured_annotations
    np.testing.assert_array_equal(lazy.xarray["C"].values, built.xarray["C"].values)
    for dim in ("T", "Z", "X"):
        np.testing.assert_allclose(lazy.xarray[dim].values, built.xarray[dim].values)
        assert lazy.xarray[dim].attrs == built.xarray[dim].attrs


def test_other_tiff_kinds_state_the_model_labels(tmp_path: Path) -> None:
    imagej = tmp_path / "hyper.tif"
    tifffile.imwrite(
        imagej,
        np.zeros((2, 3, 2, 8, 8), "uint8"),
        imagej=True,
        resolution=(4.0, 4.0),
        metadata={"axes": "TZCYX", "spacing": 0.5, "unit": "micron", "finterval": 2.0},
    )
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(
        plain,
        np.zeros((3, 8, 8), "uint16"),
        photometric="minisblack",
        resolution=(2000.0, 2000.0),
        resolutionunit="CENTIMETER",
    )
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((8, 8, 3), "uint8"), photometric="rgb")
    for path in (imagej, plain, rgb):
        ds = omio.open(path)
        assert not ds._meta.is_built
        assert ds._meta.record == model_labels(ds), path.name
    assert omio.open(rgb).channel_colors[:3] == [(255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255)]


def test_model_is_built_once_across_threads(ome_tiff: Path) -> None:
    ds = omio.open(ome_tiff)
    models: list[Any] = []
    threads = [threading.Thread(target=lambda: models.append(ds._model())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(models) == 8 and all(m is models[0] for m in models)


def test_unparseable_ome_model_raises_naming_the_file(tmp_path: Path, ome_tiff: Path) -> None:
    # Well-formed XML that ome-types cannot turn into a model: found when the model is needed, never lost silently.
    broken = tmp_path / "broken.ome.tif"
    with tifffile.TiffFile(ome_tiff) as tif:
        xml = tif.ome_metadata
        data = tif.asarray()
    assert xml is not None
    bad = xml.replace('Name="GFP"', 'Name="GFP" Color="not-a-colour"')
    assert bad != xml
    tifffile.imwrite(broken, data, photometric="minisblack", description=bad, metadata=None)
    ds = omio.open(broken)
    np.testing.assert_array_equal(ds.to_numpy(), data)
    with pytest.raises(MetadataError, match=r"broken\.ome\.tif.*OME-XML"):
        ds.ome  # noqa: B018
    with pytest.raises(MetadataError, match=r"broken\.ome\.tif"):
        ds.to_ometiff(tmp_path / "out.ome.tif")
    assert not (tmp_path / "out.ome.tif").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("out")] == []


def test_dataset_with_unbuilt_model_pickles(ome_tiff: Path) -> None:
    ds = omio.open(ome_tiff).isel(C=[2, 0])
    assert not ds._meta.is_built
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._meta.is_built
    assert clone.ome == ds.ome
    assert clone.channel_names == ["RFP", "DAPI"]
    np.testing.assert_array_equal(clone.to_numpy(), ds.to_numpy())


def test_lazy_ome_then_applies_the_step_once_built() -> None:
    ome = metadata.make_ome((1, 1, 2, 4, 4), "uint8", channel_names=["a", "b"])
    calls: list[str] = []

    def build() -> Any:
        calls.append("build")
        return ome

    lazy = LazyOME(ImageRecord.of(ome), build)
    renamed = lazy.then(lambda m: m.model_copy(update={"images": [m.images[0].model_copy(update={"name": "x"})]}))
    assert calls == [] and renamed.record == lazy.record
    assert renamed.model().images[0].name == "x"
    assert calls == ["build"] and lazy.is_built
    assert LazyOME.ready(ome).then(lambda m: m).is_built
