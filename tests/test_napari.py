"""napari integration: layer data, the viewer, the npe2 plugin (reader and writer) and the Zarr cache.

The viewer tests need a real display (a virtual one: run pytest under ``xvfb-run -a``).
Without one they skip, except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import tifffile

import omio
from omio.cache import MARKER
from omio.errors import DimensionError, MissingDependencyError, OutputExistsError
from omio.napari import layer_data
from omio.napari._plugin import dataset_from_layers, get_reader, write_ometiff
from omio.testing import assert_dataset_equal

MANIFEST = Path(omio.__file__).parent / "napari" / "napari.yaml"
PLUGIN = "omio-microscopy"

# one sample per format omio reads, with the channel names every reader agrees on
SAMPLE_FILES = [
    "czi/zen_celldivision_T3_Z5_C2.czi",
    "lsm/jimpipeline_test_512x512_u16.lsm",
    "tiff/thorimage_ChanA_Preview_plain.tif",
    "ome-tiff/bioformats_artificial_multi-channel-z-series.ome.tif",
    "imagej/neubias_xyzc_16bit__dna_conf_wf.tif",
    "thorlabs/utils2p_mouse_kidney_raw_T5_C2",
    "nd2/pims_cluster.nd2",
    "lif/readlif_testdata_2channel_xz.lif",
    "ome-zarr/tiledb_CMU-1-Small-Region.ome.zarr",
]


def _counting(shape: tuple[int, ...], reads: list[int]) -> da.Array:
    """A TZCYX dask array of plane chunks whose every read is counted."""

    def plane(block_id: tuple[int, ...] | None = None) -> np.ndarray[Any, Any]:
        assert block_id is not None
        reads.append(1)
        t, z, c = block_id[:3]
        return np.full((1, 1, 1, *shape[-2:]), 100 * t + 10 * z + c, dtype="uint16")

    chunks = (*((1,) * n for n in shape[:3]), (shape[3],), (shape[4],))
    return da.map_blocks(plane, chunks=chunks, dtype="uint16", meta=np.empty((0,) * 5, "uint16"))


RNG_PIXELS = np.random.default_rng(3).integers(0, 999, (2, 16, 24), dtype="uint16")


def _dataset(**kwargs: Any) -> omio.MicroscopyDataset:
    data = np.arange(2 * 3 * 2 * 16 * 20, dtype="uint16").reshape(2, 3, 2, 16, 20)
    options: dict[str, Any] = {
        "physical_pixel_sizes": {"X": 0.25, "Y": 0.5, "Z": "2 um"},
        "time_increment": "1.5 min",
        "channel_names": ["DAPI", "GFP"],
        "channel_colors": [(0, 0, 255), None],
        "name": "cells",
    }
    options.update(kwargs)
    return omio.from_array(data, axes="TZCYX", **options)


# ---------------------------------------------------------------------- layer data (no display needed)


def test_layer_data_one_lazy_layer_per_channel_with_metadata() -> None:
    ds = _dataset()
    layers = layer_data(ds)
    assert [kw["name"] for _, kw, _ in layers] == ["DAPI", "GFP"]
    assert [kw["colormap"] for _, kw, _ in layers] == ["#0000ff", "green"]  # stated colour, then napari's default
    assert {kind for _, _, kind in layers} == {"image"}
    for c, (data, kw, _) in enumerate(layers):
        assert isinstance(data, da.Array)
        assert data.shape == (2, 3, 16, 20)
        np.testing.assert_array_equal(np.asarray(data), ds.to_numpy()[:, :, c])
        assert kw["axis_labels"] == ("T", "Z", "Y", "X")
        assert kw["scale"] == pytest.approx((90.0, 2.0, 0.5, 0.25))
        assert kw["units"] == ("second", "micrometer", "micrometer", "micrometer")
        assert kw["blending"] == "additive"
        assert kw["multiscale"] is False
        assert kw["metadata"]["omio"] == {"dims": "TZYX", "squeezed": {"C": ["DAPI", "GFP"][c]}}
        plane_values = ds.to_numpy()[:, :, c]
        assert kw["contrast_limits"] == (float(plane_values.min()), float(plane_values.max()))


def test_layer_data_squeezes_size_one_axes_and_keeps_their_coordinates() -> None:
    ds = _dataset().isel(T=1, Z=slice(1, 3), Y=slice(4, None), X=slice(2, None, 2))
    (data, kw, _), _ = layer_data(ds)
    assert data.shape == (2, 12, 9)
    assert kw["axis_labels"] == ("Z", "Y", "X")
    assert kw["metadata"]["omio"]["squeezed"] == {"T": 90.0, "C": "DAPI"}
    assert kw["scale"] == pytest.approx((2.0, 0.5, 0.5))  # the X step doubles the pixel size
    assert kw["translate"] == pytest.approx((2.0, 2.0, 0.5))  # positions of the first selected pixel
    np.testing.assert_array_equal(np.asarray(data), ds.to_numpy()[0, :, 0])


def test_layer_data_without_physical_sizes_uses_pixels() -> None:
    ds = omio.from_array(np.zeros((3, 8, 8), "uint8"), axes="TYX")
    ((data, kw, _),) = layer_data(ds)
    assert data.shape == (3, 8, 8)
    assert kw["scale"] == (1.0, 1.0, 1.0)
    assert kw["units"] == ("pixel", "pixel", "pixel")
    assert kw["colormap"] == "gray"
    assert kw["contrast_limits"] == (0.0, 1.0)  # a constant image still gets a usable range


def test_layer_data_channel_axis_false_keeps_one_layer_with_c() -> None:
    ds = _dataset()
    ((data, kw, _),) = layer_data(ds, channel_axis=False)
    assert data.shape == ds.shape
    assert kw["axis_labels"] == ("T", "Z", "C", "Y", "X")
    assert kw["name"] == "cells"
    assert "colormap" not in kw
    assert kw["contrast_limits"] == (float(ds.to_numpy().min()), float(ds.to_numpy().max()))


def test_layer_data_contrast_limits_given() -> None:
    layers = layer_data(_dataset(), contrast_limits=[(0, 10), (5, 50)])
    assert [kw["contrast_limits"] for _, kw, _ in layers] == [(0.0, 10.0), (5.0, 50.0)]
    with pytest.raises(DimensionError, match="pairs"):
        layer_data(_dataset(), contrast_limits=[(0, 10), (5, 50), (1, 2)])


def test_layer_data_reads_only_a_few_planes() -> None:
    reads: list[int] = []
    shape = (10, 20, 2, 64, 64)
    ds = omio.from_array(_counting(shape, reads), axes="TZCYX")
    assert reads == []
    layers = layer_data(ds)
    assert 0 < len(reads) <= 3 * 2  # three planes per channel for the contrast limits, out of 400
    # the first and the last plane are among those sampled: they hold the extremes (100 t + 10 z + c)
    assert [kw["contrast_limits"] for _, kw, _ in layers] == [(c, 100 * 9 + 10 * 19 + c) for c in (0.0, 1.0)]
    assert all(isinstance(data, da.Array) for data, _, _ in layers)


def test_layer_data_multiscale_for_a_pyramidal_file(samples: Path) -> None:
    path = samples / "ome-tiff" / "tiledb_rand_uint16_pyramid_2series.ome.tiff"
    ds = omio.open(path)
    layers = layer_data(ds)
    assert len(layers) == 3
    data, kw, _ = layers[0]
    assert kw["multiscale"] is True
    assert [level.shape for level in data] == [(512, 128), (256, 64), (128, 32)]
    assert all(isinstance(level, da.Array) for level in data)
    assert kw["scale"] == pytest.approx((0.29, 0.29))
    # a selection no longer matches the file's levels: single scale
    (cropped, kw_cropped, _), *_ = layer_data(ds.isel(Y=slice(0, 100)))
    assert kw_cropped["multiscale"] is False
    assert cropped.shape == (100, 128)


# ---------------------------------------------------------------------- optional dependency


def test_view_without_napari_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "napari", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'napari\[pyqt6\]'.*'\.\[napari\]'") as info:
        _dataset().view()
    assert isinstance(info.value, ImportError)


def test_importing_omio_does_not_import_napari() -> None:
    code = "import sys, omio, omio.napari; print('napari' in sys.modules or 'qtpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------- npe2 plugin (no display needed)


def test_manifest_validates() -> None:
    npe2 = Path(sys.executable).parent / "npe2"
    result = subprocess.run([str(npe2), "validate", "--imports", PLUGIN], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_manifest_is_found_through_the_entry_point() -> None:
    import npe2

    manifest = npe2.PluginManifest.from_distribution(PLUGIN)
    assert manifest == npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == PLUGIN
    reader = manifest.contributions.readers[0]
    assert reader.accepts_directories
    for pattern in ("*.czi", "*.lsm", "*.tif", "*.ome.tiff", "*.raw", "*.nd2", "*.lif", "*.oib", "*.ome.zarr"):
        assert pattern in reader.filename_patterns
    (writer,) = manifest.contributions.writers
    assert ".ome.tif" in writer.filename_extensions


@pytest.mark.samples
@pytest.mark.parametrize("name", SAMPLE_FILES, ids=lambda n: Path(n).name)
def test_plugin_reader_opens_each_format(samples: Path, name: str) -> None:
    path = samples / name
    reader = get_reader(str(path))
    assert reader is not None
    layers = reader(str(path))
    expected = json.loads((samples / "MANIFEST.json").read_text())["files"][name]["images"][0]
    sizes = expected["sizes"]
    assert len(layers) == sizes["C"]
    names = expected["channel_names"]
    if names:
        assert [kw["name"] for _, kw, _ in layers] == names
    for layer, kw, kind in layers:
        assert kind == "image"
        levels = layer if isinstance(layer, list) else [layer]  # a pyramidal source gives a multiscale layer
        assert all(isinstance(level, da.Array) for level in levels)
        assert kw.get("multiscale", False) is (len(levels) > 1)
        data = levels[0]
        shown = [d for d in "TZYX" if sizes[d] > 1 or d in "YX"]
        assert data.shape == tuple(sizes[d] for d in shown)
        assert kw["axis_labels"] == tuple(shown)
        for dim, step in zip(shown, kw["scale"], strict=True):
            um = expected["physical_size_um"].get(dim)
            if um is not None:
                assert step == pytest.approx(um)
    full = layers[0][0][0] if isinstance(layers[0][0], list) else layers[0][0]
    first = np.asarray(full[(0,) * (full.ndim - 2)])
    plane = expected["plane_T0_Z0_C0"]
    assert (int(first.min()), int(first.max())) == (plane["min"], plane["max"])


@pytest.mark.samples
def test_plugin_reader_accepts_the_thorlabs_experiment_file(samples: Path) -> None:
    path = samples / "thorlabs" / "utils2p_mouse_kidney_raw_T5_C2" / "Experiment.xml"
    reader = get_reader(str(path))
    assert reader is not None
    assert [kw["name"] for _, kw, _ in reader(str(path))] == ["ChanA", "ChanB"]


def test_plugin_reader_declines_what_omio_cannot_read(tmp_path: Path) -> None:
    text = tmp_path / "notes.tif"
    text.write_text("not an image at all")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert get_reader(str(text)) is None
    assert get_reader(str(empty)) is None
    assert get_reader(str(tmp_path / "missing.czi")) is None


def test_plugin_writer_writes_channels_with_scale(tmp_path: Path) -> None:
    ds = _dataset()
    layers = [(data, {**kw, "colormap": {"colors": [[0, 0, 0, 1], [1, 0, 0, 1]]}}, t) for data, kw, t in layer_data(ds)]
    (written,) = write_ometiff(str(tmp_path / "out.ome.tif"), layers)
    back = omio.open(written)
    assert back.source.format == "ome-tiff"
    assert back.channel_names == ["DAPI", "GFP"]
    assert back.channel_colors == [(255, 0, 0, 255), (255, 0, 0, 255)]
    assert back.physical_pixel_sizes["X"].to("um").magnitude == pytest.approx(0.25)
    assert back.physical_pixel_sizes["Z"].to("um").magnitude == pytest.approx(2.0)
    assert back.time_increment.to("s").magnitude == pytest.approx(90.0)
    np.testing.assert_array_equal(back.to_numpy(), ds.to_numpy())


def test_plugin_writer_plain_layers(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 4000, (4, 32, 48), dtype=np.uint16)
    layer = (data, {"name": "stack", "scale": (1.0, 0.3, 0.3), "units": ("pixel",) * 3}, "image")
    (written,) = write_ometiff(str(tmp_path / "plain.ome.tif"), [layer])
    back = omio.open(written)
    assert back.sizes == {"T": 1, "Z": 4, "C": 1, "Y": 32, "X": 48}
    assert back.physical_pixel_sizes["Z"] is None  # scale 1 in pixels states nothing
    assert back.physical_pixel_sizes["Y"].to("um").magnitude == pytest.approx(0.3)
    assert back.name == "stack"
    np.testing.assert_array_equal(back.to_numpy()[0, :, 0], data)
    with pytest.raises(DimensionError, match="shape"):
        dataset_from_layers([layer, (data[:2], {"name": "other"}, "image")])


# ---------------------------------------------------------------------- cache


def test_cache_round_trip_is_equal_and_chunked_by_plane(tmp_path: Path) -> None:
    ds = _dataset()
    cached = ds.cache(tmp_path / "c.zarr", progress=False)
    assert_dataset_equal(cached, ds)
    assert cached.ome == ds.ome
    assert cached.source == ds.source
    assert cached.data.chunksize == (1, 1, 1, 16, 20)
    assert (tmp_path / "c.zarr" / MARKER).is_file()
    assert (tmp_path / "c.zarr" / "zarr.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_cache_reuses_a_complete_store_and_replaces_a_stale_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "src.ome.tif"
    ds = omio.open(_dataset().to_ometiff(source))
    store = tmp_path / "c.zarr"
    ds.cache(store, progress=False)
    marker = (store / MARKER).read_text()

    import omio.cache as cache_module

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the complete cache was written again")

    with monkeypatch.context() as m:
        m.setattr(cache_module, "_write", refuse)
        again = omio.open(source).cache(store, progress=False)
        assert_dataset_equal(again, ds)
        with pytest.raises(AssertionError, match="written again"):  # another selection is another cache
            omio.open(source).isel(Z=0).cache(store, progress=False)

    changed = _dataset().apply(lambda b: b + 1)
    changed.to_ometiff(source, overwrite=True)
    os.utime(source, ns=(1, 1))
    fresh = omio.open(source).cache(store, progress=False)
    assert (store / MARKER).read_text() != marker
    np.testing.assert_array_equal(fresh.to_numpy(), _dataset().to_numpy() + 1)


def test_cache_refuses_a_folder_that_is_not_a_cache(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    with pytest.raises(OutputExistsError, match="not an omio cache"):
        _dataset().cache(folder, progress=False)
    assert (folder / "keep.txt").read_text() == "precious"


def test_cache_temporary_store_is_removed_after_last_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ds = _dataset()
    cached = ds.cache()
    assert "caching cells" in capsys.readouterr().err  # the progress bar
    (store,) = tmp_path.glob("omio-cache-*")
    assert (store / MARKER).is_file()
    derived = cached.isel(T=1)
    del cached
    gc.collect()
    assert store.is_dir()  # still read by the derived dataset
    np.testing.assert_array_equal(derived.to_numpy(), ds.isel(T=1).to_numpy())
    del derived
    gc.collect()
    assert not store.exists()


# ---------------------------------------------------------------------- real viewer (virtual display)


def _display_problem() -> str | None:
    """Why no napari viewer can be shown here, or None when one can."""
    try:
        import napari  # noqa: F401
        import qtpy  # noqa: F401
    except ImportError as exc:
        return f"napari with a Qt binding is not installed ({exc}); pip install 'napari[pyqt6]' (or the [napari] extra)"
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY unset); run the tests under `xvfb-run -a` (Debian package xvfb)"
    probe = "from qtpy.QtWidgets import QApplication; QApplication([])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        return f"Qt cannot open the display {os.environ.get('DISPLAY')}: {result.stderr.strip()[-500:]}"
    return None


@pytest.fixture(scope="module")
def viewer() -> Iterator[Any]:
    problem = _display_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"napari tests must run in CI: {problem}")
        pytest.skip(problem)
    import napari

    v = napari.Viewer(show=True)  # screenshots of a hidden viewer are blank
    yield v
    v.close()


@pytest.fixture
def clean_viewer(viewer: Any) -> Any:
    viewer.layers.clear()
    return viewer


def _lit_fraction(viewer: Any) -> float:
    shot = viewer.screenshot(canvas_only=True, flash=False)
    return float((shot[..., :3].max(axis=-1) > 20).mean())


@pytest.mark.samples
def test_view_shows_layers_in_a_real_viewer(clean_viewer: Any, samples: Path) -> None:
    ds = omio.open(samples / "czi" / "zen_celldivision_T3_Z5_C2.czi")
    assert ds.view(viewer=clean_viewer) is clean_viewer
    layers = list(clean_viewer.layers)
    assert [layer.name for layer in layers] == ["LED555", "LED470"]
    assert [tuple(np.round(layer.colormap.colors[-1][:3] * 255)) for layer in layers] == [(255, 126, 0), (0, 255, 51)]
    for layer in layers:
        assert isinstance(layer.data, da.Array)
        assert layer.data.shape == (3, 5, 170, 240)
        np.testing.assert_allclose(layer.scale, [60.0, 0.32, 0.0905766, 0.0905766], rtol=1e-5)
        assert [str(u) for u in layer.units] == ["second", "micrometer", "micrometer", "micrometer"]
        assert layer.contrast_limits[1] > layer.contrast_limits[0] >= 0
    assert tuple(clean_viewer.dims.axis_labels) == ("T", "Z", "Y", "X")
    assert _lit_fraction(clean_viewer) > 0.05
    for layer in layers:
        layer.visible = False
    assert _lit_fraction(clean_viewer) == 0.0  # so the lit pixels above were the image


def test_view_adds_to_an_existing_viewer(clean_viewer: Any) -> None:
    ds = _dataset()
    ds.view(viewer=clean_viewer)
    ds.isel(T=0).view(viewer=clean_viewer, channel_axis=False)
    assert [layer.name for layer in clean_viewer.layers] == ["DAPI", "GFP", "cells"]
    assert clean_viewer.layers[-1].data.shape == (3, 2, 16, 20)


def test_view_creates_a_viewer(viewer: Any) -> None:
    created = _dataset().view()
    try:
        assert created is not viewer
        assert [layer.name for layer in created.layers] == ["DAPI", "GFP"]
    finally:
        created.close()


@pytest.mark.samples
@pytest.mark.parametrize("name", ["czi/zen_celldivision_T3_Z5_C2.czi", "thorlabs/utils2p_mouse_kidney_raw_T5_C2"])
def test_napari_opens_files_through_the_plugin(clean_viewer: Any, samples: Path, name: str) -> None:
    layers = clean_viewer.open(str(samples / name), plugin=PLUGIN)
    assert len(layers) == 2
    assert all(isinstance(layer.data, da.Array) for layer in layers)
    assert _lit_fraction(clean_viewer) > 0.01


@pytest.mark.samples
def test_napari_offers_the_other_scenes_of_a_file(
    clean_viewer: Any, samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omio.napari import _plugin

    docked: list[Any] = []
    real = _plugin.dock_scene_list
    monkeypatch.setattr(_plugin, "dock_scene_list", lambda *a: docked.append(real(*a)) or docked[-1])
    path = samples / "czi" / "zen_3scenes_mosaic_T2_Z3_C2.czi"
    clean_viewer.open(str(path), plugin=PLUGIN)
    assert [layer.name for layer in clean_viewer.layers] == ["DAPI", "EGFP"]  # the first scene only
    (widget,) = docked
    try:
        assert [widget.item(i).text() for i in range(widget.count())] == ["0: TR1 (shown)", "1: P1", "2: TR2"]
        widget.itemActivated.emit(widget.item(2))
        widget.itemActivated.emit(widget.item(2))  # a scene's layers are added once
        names = [layer.name for layer in clean_viewer.layers]
        assert names == ["DAPI", "EGFP", "TR2: DAPI", "TR2: EGFP"]
        added = clean_viewer.layers["TR2: EGFP"]
        assert isinstance(added.data, da.Array) and added.data.shape == (2, 3, 237, 352)
        np.testing.assert_array_equal(
            np.asarray(added.data[1, 2]), omio.open(path, scene=2).isel(T=1, Z=2, C=1).to_numpy()[0, 0, 0]
        )
        assert widget.item(2).text() == "2: TR2 (shown)" and widget.item(1).text() == "1: P1"
    finally:
        clean_viewer.window.remove_dock_widget(widget)


def test_scene_list_is_docked_only_where_a_viewer_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    from omio.napari._scenes import dock_scene_list

    monkeypatch.delitem(sys.modules, "napari", raising=False)  # as in a script that never imported napari
    assert dock_scene_list("a.czi", ["A", "B"]) is None
    assert "napari" not in sys.modules


def test_napari_saves_layers_through_the_plugin(clean_viewer: Any, tmp_path: Path) -> None:
    import napari

    ds = _dataset()
    ds.view(viewer=clean_viewer)
    written = napari.save_layers(str(tmp_path / "saved.ome.tif"), list(clean_viewer.layers), plugin=PLUGIN)
    assert [Path(p).name for p in written] == ["saved.ome.tif"]
    back = omio.open(written[0])
    assert back.channel_names == ["DAPI", "GFP"]
    assert back.physical_pixel_sizes["Y"].to("um").magnitude == pytest.approx(0.5)
    np.testing.assert_array_equal(back.to_numpy(), ds.to_numpy())


def test_view_reads_only_the_displayed_planes(clean_viewer: Any) -> None:
    reads: list[int] = []
    ds = omio.from_array(_counting((10, 20, 2, 64, 64), reads), axes="TZCYX", physical_pixel_sizes={"X": 0.5})
    ds.view(viewer=clean_viewer)
    assert _lit_fraction(clean_viewer) > 0.01
    assert 0 < len(reads) <= 3 * 2 + 2 * 2  # the contrast-limit sample, then the shown plane per channel (of 400)


@pytest.mark.samples
def test_view_shows_a_pyramid_as_multiscale(clean_viewer: Any, samples: Path) -> None:
    omio.open(samples / "ome-tiff" / "tiledb_rand_uint16_pyramid_2series.ome.tiff").view(viewer=clean_viewer)
    assert [layer.multiscale for layer in clean_viewer.layers] == [True, True, True]
    assert clean_viewer.layers[0].data.shapes == ((512, 128), (256, 64), (128, 32))
    assert _lit_fraction(clean_viewer) > 0.01


def test_omio03_open_in_napari_adds_layers_and_returns_them(clean_viewer: Any, tmp_path: Path) -> None:
    from omio.omio import imread, open_in_napari

    path = tmp_path / "two.tif"
    tifffile.imwrite(path, RNG_PIXELS, imagej=True, metadata={"axes": "CYX"})
    image, md = imread(path)
    returned = open_in_napari(image, md, viewer=clean_viewer, returns=True)
    assert returned is not None
    viewer, layers, data, axes = returned
    assert viewer is clean_viewer
    assert len(layers) == 2 and [np.asarray(d).shape[-2:] for d in data] == [(16, 24), (16, 24)]
    np.testing.assert_array_equal(np.asarray(data[1]).reshape(16, 24), RNG_PIXELS[1])
    assert axes == ["TZCYX", "TZCYX"]
