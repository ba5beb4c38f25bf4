"""Origins and the plane table: read, carried through every operation, written, read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import tifffile
import xarray as xr

import omio
from omio import metadata
from omio.errors import DimensionError, MetadataError
from omio.readers._base import ImageSource
from omio.record import ImageRecord, PlaneInfo
from omio.units import Measure

SHAPE = (3, 2, 2, 16, 20)


def planed(shape: tuple[int, int, int, int, int] = SHAPE, z_unit: str = "µm") -> omio.MicroscopyDataset:
    """A dataset as a reader gives it, with OME Plane elements for every plane."""
    from ome_types.model import Plane

    t_n, z_n, c_n = shape[:3]
    planes = [
        Plane(
            the_t=t,
            the_z=z,
            the_c=c,
            delta_t=t * 1.1 + z * 0.01 + c * 0.001,
            delta_t_unit="s",
            exposure_time=10.0 + c,
            exposure_time_unit="ms",
            position_x=100.0,
            position_x_unit="µm",
            position_y=0.2,
            position_y_unit="mm",
            position_z=50.0 + 2.0 * z,
            position_z_unit=z_unit,
        )
        for t in range(t_n)
        for z in range(z_n)
        for c in range(c_n)
    ]
    ome = metadata.make_ome(
        shape,
        "uint16",
        physical_sizes={
            "X": Measure(0.5, "micrometer"),
            "Y": Measure(0.5, "micrometer"),
            "Z": Measure(2.0, "micrometer"),
        },
        time_increment=Measure(1.0, "second"),
        channel_names=["a", "b"][:c_n],
        planes=planes,
    )
    data = da.from_array(
        np.arange(int(np.prod(shape)), dtype="uint16").reshape(shape) % 60000, chunks=(1, 1, 1, *shape[3:])
    )
    return omio.MicroscopyDataset.from_source(ImageSource(data=data, ome=ome, path="memory", format="test"))


def coords(ds: omio.MicroscopyDataset, dim: str) -> list[float]:
    return [float(v) for v in ds.xarray[dim].values]


def assert_same_record(actual: omio.MicroscopyDataset, expected: omio.MicroscopyDataset) -> None:
    pd.testing.assert_frame_equal(actual.planes, expected.planes, check_exact=False, rtol=1e-9)
    assert actual.planes.attrs["units"] == expected.planes.attrs["units"]
    for axis in ("X", "Y", "Z", "T"):
        a, e = actual.origin[axis], expected.origin[axis]
        assert (a is None) == (e is None), f"origin {axis}: {a} != {e}"
        if a is not None and e is not None:
            assert a.to(e.units).magnitude == pytest.approx(e.magnitude, abs=1e-9), f"origin {axis}: {a} != {e}"
    for dim in ("T", "Z", "Y", "X"):
        np.testing.assert_allclose(coords(actual, dim), coords(expected, dim), rtol=1e-9, atol=1e-12)
        assert actual.xarray[dim].attrs == expected.xarray[dim].attrs


def test_planes_and_origin_are_read_from_plane_elements() -> None:
    ds = planed()
    table = ds.planes
    assert list(table.index.names) == ["T", "Z", "C"]
    assert len(table) == 12
    assert list(table.columns) == ["DeltaT", "ExposureTime", "PositionX", "PositionY", "PositionZ"]
    assert table.attrs["units"] == {
        "DeltaT": "second",
        "ExposureTime": "millisecond",
        "PositionX": "micrometer",
        "PositionY": "millimeter",
        "PositionZ": "micrometer",
    }
    assert table.loc[(2, 1, 1), "DeltaT"] == pytest.approx(2.2 + 0.01 + 0.001)
    assert table.loc[(0, 0, 1), "ExposureTime"] == 11.0
    origin = ds.origin
    assert origin["X"] is not None and origin["X"].to("micrometer").magnitude == pytest.approx(100.0)
    assert origin["Y"] is not None and origin["Y"].to("micrometer").magnitude == pytest.approx(200.0)
    assert origin["Z"] is not None and origin["Z"].to("micrometer").magnitude == pytest.approx(50.0)
    assert coords(ds, "X")[:3] == pytest.approx([100.0, 100.5, 101.0])
    assert coords(ds, "Y")[:2] == pytest.approx([200.0, 200.5])
    assert coords(ds, "Z") == pytest.approx([50.0, 52.0])
    # DeltaT (stated for every T, increasing) is the T coordinate, not index x TimeIncrement
    assert coords(ds, "T") == pytest.approx([0.0, 1.1, 2.2])
    assert ds.xarray["T"].attrs["units"] == "second"


@pytest.mark.parametrize("writer", ["ometiff", "omezarr"])
def test_plane_table_and_origin_round_trip(tmp_path: Path, writer: str) -> None:
    ds = planed()
    out = ds.to_ometiff(tmp_path / "a.ome.tif") if writer == "ometiff" else ds.to_omezarr(tmp_path / "a.ome.zarr")
    back = omio.open(out)
    assert_same_record(back, ds)
    np.testing.assert_array_equal(back.to_numpy(), ds.to_numpy())


@pytest.mark.parametrize("writer", ["ometiff", "omezarr"])
def test_selection_moves_origin_and_subsets_planes_through_writers(tmp_path: Path, writer: str) -> None:
    ds = planed()
    sub = ds.isel(X=slice(5, None), Y=slice(2, None, 2), Z=1, T=[0, 2], C=1)
    assert sub.origin["X"] is not None and sub.origin["X"].to("micrometer").magnitude == pytest.approx(102.5)
    assert sub.origin["Y"] is not None and sub.origin["Y"].to("micrometer").magnitude == pytest.approx(201.0)
    assert sub.origin["Z"] is not None and sub.origin["Z"].to("micrometer").magnitude == pytest.approx(52.0)
    assert coords(sub, "X")[0] == pytest.approx(102.5)
    assert coords(sub, "Y")[:2] == pytest.approx([201.0, 202.0])
    assert coords(sub, "T") == pytest.approx([0.011, 2.211])
    table = sub.planes
    assert list(table.index) == [(0, 0, 0), (1, 0, 0)]
    assert table["DeltaT"].tolist() == pytest.approx([0.011, 2.211])
    assert table["ExposureTime"].tolist() == [11.0, 11.0]
    assert table["PositionX"].tolist() == pytest.approx([102.5, 102.5])  # moved with the origin
    assert table["PositionY"].tolist() == pytest.approx([0.201, 0.201])  # in the file's unit (mm)
    assert table["PositionZ"].tolist() == pytest.approx([52.0, 52.0])
    ome_planes = sub.ome.images[0].pixels.planes
    assert [(p.the_t, p.the_z, p.the_c) for p in ome_planes] == [(0, 0, 0), (1, 0, 0)]
    out = sub.to_ometiff(tmp_path / "s.ome.tif") if writer == "ometiff" else sub.to_omezarr(tmp_path / "s.ome.zarr")
    back = omio.open(out)
    assert_same_record(back, sub)


def test_origin_without_planes_is_written_and_read_back(tmp_path: Path) -> None:
    ds = omio.MicroscopyDataset.from_array(
        np.zeros((2, 3, 8, 8), "uint8"),
        axes="TZYX",
        physical_pixel_sizes={"X": 0.5, "Y": 0.5, "Z": 2},
        time_increment=1.5,
    )
    assert ds.planes.empty and all(v is None for v in ds.origin.values())
    sub = ds.isel(X=slice(5, None), Z=slice(1, None), T=slice(1, None))
    assert coords(sub, "X")[0] == pytest.approx(2.5)
    assert coords(sub, "Z") == pytest.approx([2.0, 4.0])
    assert coords(sub, "T") == pytest.approx([1.5])
    zarr_out = sub.to_omezarr(tmp_path / "o.ome.zarr", levels=2)
    attrs = json.loads((zarr_out / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]
    level0 = attrs["datasets"][0]["coordinateTransformations"]
    assert level0[1] == {"type": "translation", "translation": [1.5, 0.0, 2.0, 0.0, 2.5]}
    for out in (sub.to_ometiff(tmp_path / "o.ome.tif"), zarr_out):
        back = omio.open(out)
        assert coords(back, "X")[0] == pytest.approx(2.5)
        assert coords(back, "Z") == pytest.approx([2.0, 4.0])
        assert coords(back, "T") == pytest.approx([1.5])


def test_uneven_time_selection_keeps_true_times_as_delta_t(tmp_path: Path) -> None:
    ds = omio.MicroscopyDataset.from_array(np.zeros((5, 4, 4), "uint8"), axes="TYX", time_increment=2.0)
    sub = ds.isel(T=[0, 1, 4])
    assert sub.time_increment is None
    assert coords(sub, "T") == pytest.approx([0.0, 2.0, 8.0])
    assert sub.planes["DeltaT"].tolist() == pytest.approx([0.0, 2.0, 8.0])
    back = omio.open(sub.to_ometiff(tmp_path / "t.ome.tif"))
    assert coords(back, "T") == pytest.approx([0.0, 2.0, 8.0])


def test_concat_along_t_concatenates_plane_tables() -> None:
    a, b = planed(), planed()
    merged = omio.concat([a, b], axis="T")
    table = merged.planes
    assert len(table) == 24
    assert table.index.get_level_values("T").max() == 5
    assert table.loc[(3, 0, 0), "DeltaT"] == pytest.approx(0.0)  # b's own first plane
    assert table.loc[(5, 1, 1), "DeltaT"] == pytest.approx(2.211)
    assert merged.origin["X"] is not None and merged.origin["X"].magnitude == pytest.approx(100.0)
    # b's DeltaT restart at 0: they do not increase, so T continues with the time increment
    assert coords(merged, "T") == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert [(p.the_t, p.the_z, p.the_c) for p in merged.ome.images[0].pixels.planes][-1] == (5, 1, 1)


def test_concat_along_c_moves_channel_indices_of_planes() -> None:
    merged = omio.concat([planed(), planed()], axis="C")
    assert sorted(set(merged.planes.index.get_level_values("C"))) == [0, 1, 2, 3]
    assert merged.planes.loc[(0, 0, 3), "ExposureTime"] == 11.0


def test_with_metadata_refuses_unknown_keys() -> None:
    ds = planed()
    with pytest.raises(MetadataError, match=r"\['Q'\].*X, Y, Z"):
        ds.with_metadata(physical_pixel_sizes={"Q": 1})
    with pytest.raises(MetadataError, match=r"\['W'\].*X, Y, Z, T"):
        ds.with_metadata(origin={"W": 1})
    with pytest.raises(MetadataError, match="not a finite length"):
        ds.with_metadata(origin={"X": "3 s"})


def test_with_metadata_clears_only_what_is_given_as_none() -> None:
    ds = planed()
    kept = ds.with_metadata(channel_names=["x", "y"])
    assert kept.time_increment == ds.time_increment and kept.name == ds.name
    assert kept.physical_pixel_sizes == ds.physical_pixel_sizes
    cleared = ds.with_metadata(time_increment=None, physical_pixel_sizes={"Z": None}, origin={"X": None}, name=None)
    assert cleared.time_increment is None
    assert cleared.ome.images[0].pixels.time_increment is None
    assert cleared.physical_pixel_sizes["Z"] is None and cleared.physical_pixel_sizes["X"] is not None
    assert cleared.ome.images[0].pixels.physical_size_z is None
    assert coords(cleared, "Z") == [0.0, 1.0] and "units" not in cleared.xarray["Z"].attrs
    assert cleared.origin["X"] is None and coords(cleared, "X")[0] == 0.0
    assert "PositionX" not in cleared.planes.columns
    assert all(p.position_x is None for p in cleared.ome.images[0].pixels.planes)
    assert cleared.origin["Y"] is not None  # untouched
    assert ImageRecord.of(cleared.ome) == cleared.record


def test_with_metadata_sets_origin_and_sizes() -> None:
    ds = omio.MicroscopyDataset.from_array(np.zeros((4, 4), "uint8"), axes="YX")
    moved = ds.with_metadata(physical_pixel_sizes={"x": "200 nm", "Y": 0.2}, origin={"X": "1 mm"})
    assert moved.origin["X"] is not None and moved.origin["X"].to("micrometer").magnitude == pytest.approx(1000.0)
    assert moved.xarray["X"].attrs["units"] == "nanometer"
    assert coords(moved, "X")[:2] == pytest.approx([1_000_000.0, 1_000_200.0])
    assert ImageRecord.of(moved.ome) == moved.record


def test_pipe_with_uneven_spatial_selection_is_refused() -> None:
    ds = planed()
    with pytest.raises(DimensionError, match="uneven"):
        ds.pipe(lambda a: a.isel(X=[0, 1, 5]))
    stray = xr.DataArray(
        np.zeros((2, 3)), dims=("Y", "X"), coords={"X": ("X", [0.0, 1.0, 5.0], {"units": "micrometer"})}
    )
    with pytest.raises(DimensionError, match="not evenly spaced"):
        omio.MicroscopyDataset.from_xarray(stray)


def test_pipe_recomputes_sizes_origin_and_planes_from_coordinates() -> None:
    ds = planed()
    strided = ds.pipe(lambda a: a.isel(X=slice(3, None, 2), T=[1, 2]))
    x = strided.physical_pixel_sizes["X"]
    assert x is not None and x.to("micrometer").magnitude == pytest.approx(1.0)
    assert coords(strided, "X")[0] == pytest.approx(101.5)
    assert strided.planes.index.get_level_values("T").max() == 1
    assert strided.planes.loc[(0, 0, 0), "DeltaT"] == pytest.approx(1.1)
    assert strided.planes.loc[(0, 0, 0), "PositionX"] == pytest.approx(101.5)
    assert ImageRecord.of(strided.ome) == strided.record
    projected = ds.pipe(lambda a: a.max("Z"))
    assert projected.sizes["Z"] == 1 and coords(projected, "Z") == pytest.approx([50.0])
    plain = omio.MicroscopyDataset.from_xarray(
        xr.DataArray(
            np.zeros((2, 3)), dims=("Y", "X"), coords={"X": ("X", [10.0, 10.5, 11.0], {"units": "micrometer"})}
        )
    )
    assert plain.origin["X"] is not None and plain.origin["X"].magnitude == pytest.approx(10.0)
    assert plain.physical_pixel_sizes["X"] is not None and plain.physical_pixel_sizes["X"].magnitude == pytest.approx(
        0.5
    )


def test_apply_and_annotations_keep_the_record() -> None:
    ds = planed()
    changed = ds.apply(lambda b: b.astype("float32"), dtype="float32").with_annotations("ns", {"k": "v"})
    assert changed.record == ds.record
    assert len(changed.ome.images[0].pixels.planes) == 12


def test_record_pickles_with_the_dataset() -> None:
    import pickle

    sub = planed().isel(X=slice(5, None))
    back = pickle.loads(pickle.dumps(sub))
    assert back.record == sub.record


def test_napari_layers_are_placed_at_the_origin() -> None:
    from omio.napari import layer_data

    ds = planed().isel(X=slice(4, None))
    _, kwargs, _ = layer_data(ds)[0]
    shown = list(kwargs["axis_labels"])
    translate = dict(zip(shown, kwargs["translate"], strict=True))
    assert translate["X"] == pytest.approx(102.0)
    assert translate["Y"] == pytest.approx(200.0)
    assert translate["Z"] == pytest.approx(50.0)


def test_record_settles_origin_onto_planes() -> None:
    record = ImageRecord.stated(
        1, physical_sizes={"X": Measure(1.0, "micrometer")}, origin={"X": Measure(0.003, "millimeter")}
    )
    assert record.origin["X"] == Measure(3.0, "micrometer")
    assert record.planes == (PlaneInfo(0, 0, 0, position_x=Measure(3.0, "micrometer")),)


# ---------------------------------------------------------------- against tifffile's OME-XML


def _tifffile_planes(path: Path, series: int) -> list[dict[str, Any]]:
    """The Plane attributes of one image as tifffile's OME-XML gives them (parsed here, not by omio)."""
    with tifffile.TiffFile(path) as tif:
        root = ElementTree.fromstring(tif.ome_metadata or "")
    ns = {"ome": root.tag.split("}")[0].strip("{")}
    image = root.findall("ome:Image", ns)[series]
    return [dict(p.attrib) for p in image.findall("ome:Pixels/ome:Plane", ns)]


_UNIT_NAMES = {
    "s": "second",
    "ms": "millisecond",
    "µm": "micrometer",
    "reference frame": "reference_frame",
    "nm": "nanometer",
}


def _ome_tiffs(samples: Path) -> list[Path]:
    return sorted((samples / "ome-tiff").glob("*.ome.tif*"))


def test_ome_tiff_samples_plane_tables_match_tifffile(samples: Path) -> None:
    files = _ome_tiffs(samples)
    assert files, "no OME-TIFF samples"
    with_planes = 0
    for path in files:
        for index in range(len(omio.scenes(path))):
            ds = omio.open(path, scene=index)
            expected = _tifffile_planes(path, index)
            table = ds.planes
            assert len(table) == len(expected), f"{path.name} scene {index}: {len(table)} rows, {len(expected)} Planes"
            with_planes += bool(expected)
            for attrs in expected:
                key = (int(attrs.get("TheT", 0)), int(attrs.get("TheZ", 0)), int(attrs.get("TheC", 0)))
                for name in ("DeltaT", "ExposureTime", "PositionX", "PositionY", "PositionZ"):
                    if name not in attrs:
                        continue
                    assert table.loc[key, name] == pytest.approx(float(attrs[name])), f"{path.name} {key} {name}"
                    default = "s" if name in ("DeltaT", "ExposureTime") else "µm"
                    unit = attrs.get(f"{name}Unit", default)
                    assert table.attrs["units"][name] == _UNIT_NAMES[unit], f"{path.name} {name} unit"
            first = expected[0] if expected else {}
            if "DeltaT" in first and ds.sizes["T"] == 1:
                assert coords(ds, "T") == pytest.approx([float(first["DeltaT"])])
    assert with_planes >= 1, "no sample with Plane elements was compared"


def test_ome_tiff_sample_plane_tables_survive_both_writers(samples: Path, tmp_path: Path) -> None:
    for path in _ome_tiffs(samples):
        if not _tifffile_planes(path, 0):
            continue
        ds = omio.open(path)
        for out in (
            ds.to_ometiff(tmp_path / f"{path.stem}.ome.tif"),
            ds.to_omezarr(tmp_path / f"{path.stem}.ome.zarr"),
        ):
            back = omio.open(out)
            assert_same_record(back, ds)
            if out.suffix == ".tif":  # the written OME-XML states what the file's did, value and unit
                source, written = _tifffile_planes(path, 0), _tifffile_planes(out, 0)
                assert len(written) == len(source)
                for a, b in zip(source, written, strict=True):
                    for name, value in a.items():
                        if name.endswith("Unit"):
                            assert b[name] == value, f"{name}: {b.get(name)} != {value}"
                        else:
                            assert float(b[name]) == pytest.approx(float(value)), f"{name}: {b.get(name)} != {value}"


def test_reading_pixels_of_a_file_with_planes_imports_neither_ome_types_nor_pint(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = planed(z_unit="reference frame").isel(X=slice(2, None)).to_ometiff(tmp_path / "p.ome.tif")
    script = (
        "import sys, omio\n"
        f"ds = omio.open({str(out)!r})\n"
        "ds.isel(X=slice(1, None), T=[0, 2]).sel(C='a').to_numpy()\n"
        "print(ds.record.origin['X'], ds.record.planes[0].position_z)\n"
        "print('pint' in sys.modules, 'ome_types' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "False False", result.stdout
    assert "reference_frame" in lines[0] and "101.0" in lines[0], result.stdout


def test_reversed_selection_is_refused_not_mislabelled() -> None:
    ds = planed()
    with pytest.raises(DimensionError, match="reversed selection along X"):
        ds.isel(X=slice(None, None, -1))
    with pytest.raises(DimensionError, match="reversed"):
        ds.pipe(lambda a: a.isel(Z=[1, 0]))
    backwards = ds.isel(T=[2, 1, 0])
    assert backwards.time_increment is not None and backwards.time_increment.magnitude == pytest.approx(1.0)
    assert coords(backwards, "T") == pytest.approx([2.2, 1.1, 0.0])  # the true times, not 0, 1, 2
    plain = omio.MicroscopyDataset.from_array(np.zeros((3, 2, 2), "uint8"), axes="TYX", time_increment=2.0)
    assert coords(plain.isel(T=[2, 1, 0]), "T") == pytest.approx([4.0, 2.0, 0.0])
    assert ds.isel(C=[1, 0]).channel_names == ["b", "a"]  # channels may be reordered
    assert ds.isel(C=[1, 0]).planes.loc[(0, 0, 0), "ExposureTime"] == 11.0


def test_operations_keep_origin_that_with_metadata_and_pipe_used_to_reset() -> None:
    ds = omio.MicroscopyDataset.from_array(
        np.zeros((8, 8), "uint8"), axes="YX", physical_pixel_sizes={"X": 0.5, "Y": 0.5}
    )
    sub = ds.isel(X=slice(5, None))
    assert coords(sub, "X")[0] == pytest.approx(2.5)
    assert coords(sub.with_metadata(name="n"), "X")[0] == pytest.approx(2.5)
    assert coords(sub.pipe(lambda a: a + 1), "X")[0] == pytest.approx(2.5)
    assert coords(sub.apply(lambda b: b + 1), "X")[0] == pytest.approx(2.5)
    assert coords(omio.concat([sub, sub], axis="T"), "X")[0] == pytest.approx(2.5)
    resized = sub.with_metadata(physical_pixel_sizes={"X": 1.0})
    assert coords(resized, "X")[:2] == pytest.approx([2.5, 3.5])  # the origin is a position: it stays


_PLANED_SAMPLES = [
    "czi/zen_3scenes_mosaic_T2_Z3_C2.czi",
    "czi/zen_celldivision_T3_Z5_C2.czi",
    "nd2/pims_cluster.nd2",
    "lif/readlif_LeicaLASX_wavelength-sweep_example.lif",
]


@pytest.mark.parametrize("name", _PLANED_SAMPLES, ids=lambda n: n.split("/")[-1])
def test_sample_plane_tables_and_origins_survive_omezarr_and_selection(
    samples: Path, tmp_path: Path, name: str
) -> None:
    from omio.testing import assert_dataset_equal

    ds = omio.open(samples / name)
    assert not ds.planes.empty, f"{name}: the reader gave no plane table"
    sub = ds.isel(X=slice(3, None), Y=slice(1, None))
    for one in (ds, sub):
        assert_dataset_equal(omio.open(one.to_omezarr(tmp_path / f"{len(list(tmp_path.iterdir()))}.ome.zarr")), one)
        assert_dataset_equal(omio.open(one.to_ometiff(tmp_path / f"{len(list(tmp_path.iterdir()))}.ome.tif")), one)
    x, sub_x = ds.origin["X"], sub.origin["X"]
    size = ds.physical_pixel_sizes["X"]
    if x is not None and size is not None:
        assert sub_x is not None and (sub_x - x).to(size.units).magnitude == pytest.approx(3 * size.magnitude)


def test_the_model_always_gives_back_the_record() -> None:
    import itertools

    ds = planed()
    for x, y, z, t, c in itertools.product(
        [slice(None), slice(3, None), slice(1, None, 3), 7],
        [slice(None), slice(5, 12, 2)],
        [slice(None), 1],
        [slice(None), [0, 2], [2, 0], slice(1, None)],
        [slice(None), [1, 0], 1],
    ):
        sub = ds.isel(X=x, Y=y, Z=z, T=t, C=c)
        assert ImageRecord.of(sub.ome) == sub.record, (x, y, z, t, c)


def test_napari_places_the_scenes_of_one_acquisition_side_by_side(samples: Path) -> None:
    from omio.napari import layer_data

    path = samples / "czi" / "zen_3scenes_mosaic_T2_Z3_C2.czi"
    boxes = []
    for scene in range(len(omio.scenes(path))):
        ds = omio.open(path, scene=scene)
        _, kwargs, _ = layer_data(ds)[0]
        place = dict(zip(kwargs["axis_labels"], kwargs["translate"], strict=True))
        scale = dict(zip(kwargs["axis_labels"], kwargs["scale"], strict=True))
        assert place["X"] == pytest.approx(coords(ds, "X")[0]) and place["Y"] == pytest.approx(coords(ds, "Y")[0])
        boxes.append(
            (place["X"], place["Y"], place["X"] + ds.sizes["X"] * scale["X"], place["Y"] + ds.sizes["Y"] * scale["Y"])
        )
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])
            assert not overlap, f"scenes overlap: {a} and {b}"
