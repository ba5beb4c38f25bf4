"""OME-Zarr writing and reading: round trips, pyramids, validation by independent tools, atomicity."""

from __future__ import annotations

import functools
import http.server
import json
import logging
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import zarr

import omio
from omio.errors import (
    DimensionError,
    FileFormatError,
    MetadataError,
    MetadataNotStoredWarning,
    MissingDependencyError,
    OmioError,
    UnsupportedFormatError,
)
from omio.pyramid import downsample, pyramid
from omio.readers.omezarr import OmeZarrReader
from omio.testing import assert_dataset_equal, check_reader_conformance
from omio.writers.omezarr import write_omezarr

VERSIONS = ["0.5", "0.4"]


def make(
    shape: tuple[int, int, int, int, int] = (2, 3, 2, 70, 50),
    dtype: str = "uint16",
    *,
    sizes: dict[str, Any] | None = None,
    names: list[str | None] | None = None,
    time: Any = None,
    seed: int = 0,
) -> omio.MicroscopyDataset:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        pixels = rng.normal(size=shape).astype(dtype)
    elif np.dtype(dtype).kind == "b":
        pixels = rng.random(shape) > 0.5
    else:
        info = np.iinfo(dtype)
        pixels = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return omio.MicroscopyDataset.from_array(
        pixels, axes="TZCYX", physical_pixel_sizes=sizes, channel_names=names, time_increment=time, name="cells"
    )


def attrs_of(path: Path) -> dict[str, Any]:
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    inner = attrs.get("ome", attrs)
    assert isinstance(inner, dict)
    return inner


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((1, 1, 1, 33, 17), "uint8"),
        ((2, 3, 2, 70, 50), "uint16"),
        ((1, 4, 1, 40, 40), "int16"),
        ((3, 1, 2, 21, 64), "float32"),
        ((1, 2, 1, 16, 16), "float64"),
        ((1, 1, 3, 20, 30), "uint32"),
    ],
    ids=lambda v: str(v),
)
@pytest.mark.parametrize("described", [True, False], ids=["with-metadata", "bare"])
def test_round_trip(
    tmp_path: Path, version: str, shape: tuple[int, int, int, int, int], dtype: str, described: bool
) -> None:
    n_c = shape[2]
    ds = make(
        shape,
        dtype,
        sizes={"X": 0.25, "Y": "250 nm", "Z": 1.5} if described else None,
        names=[f"ch{i}" if i % 2 == 0 else None for i in range(n_c)] if described else None,
        time="2 min" if described else None,
    )
    out = ds.to_omezarr(tmp_path / "a.ome.zarr", version=version)
    assert out == tmp_path / "a.ome.zarr"
    back = omio.open(out)
    assert back.source.format == "ome-zarr"
    assert back.is_lazy
    assert_dataset_equal(back, ds)
    assert back.source.levels == (ds.shape,)


@pytest.mark.parametrize("version", VERSIONS)
def test_written_output_passes_reader_conformance(tmp_path: Path, version: str) -> None:
    out = write_omezarr(make(), tmp_path / "a.ome.zarr", version=version, levels=2)
    source = check_reader_conformance(OmeZarrReader(), out, level=1)
    assert source.data.shape == (2, 3, 2, 35, 25)


@pytest.mark.parametrize("version", VERSIONS)
def test_ngff_metadata(tmp_path: Path, version: str) -> None:
    ds = make(sizes={"X": 0.2, "Y": 0.2, "Z": "500 nm"}, names=["GFP", "RFP"], time="250 ms")
    ds = ds.with_metadata(channel_names=["GFP", "RFP"])
    out = write_omezarr(ds, tmp_path / "a.ome.zarr", version=version, levels=3)
    attrs = attrs_of(out)
    multiscale = attrs["multiscales"][0]
    assert (attrs.get("version") or multiscale.get("version")) == version
    assert [a["name"] for a in multiscale["axes"]] == ["t", "c", "z", "y", "x"]
    assert [a["type"] for a in multiscale["axes"]] == ["time", "channel", "space", "space", "space"]
    assert [a.get("unit") for a in multiscale["axes"]] == ["millisecond", None, "nanometer", "micrometer", "micrometer"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in multiscale["datasets"]]
    assert scales == [[250.0, 1.0, 500.0, 0.2 * f, 0.2 * f] for f in (1, 2, 4)]
    channels = attrs["omero"]["channels"]
    assert [c["label"] for c in channels] == ["GFP", "RFP"]
    assert [c["color"] for c in channels] == ["FF0000", "00FF00"]
    info = np.iinfo(np.uint16)
    assert all(c["window"]["min"] == info.min and c["window"]["max"] == info.max for c in channels)
    assert all(c["window"]["start"] <= c["window"]["end"] for c in channels)
    xml = (out / "OME" / "METADATA.ome.xml").read_text()
    assert 'Name="GFP"' in xml


def test_unknown_sizes_are_unitless_scale_one(tmp_path: Path) -> None:
    out = write_omezarr(make(), tmp_path / "a.ome.zarr", levels=2)
    multiscale = attrs_of(out)["multiscales"][0]
    assert all("unit" not in a for a in multiscale["axes"])
    assert multiscale["datasets"][1]["coordinateTransformations"][0]["scale"] == [1.0, 1.0, 1.0, 2.0, 2.0]
    back = omio.open(out, level=1)
    assert back.physical_pixel_sizes == {"X": None, "Y": None, "Z": None}


def test_channel_colours_and_annotations_survive(tmp_path: Path) -> None:
    ds = omio.MicroscopyDataset.from_array(
        np.zeros((2, 16, 16), "uint8"), axes="CYX", channel_names=["a", "b"], channel_colors=["magenta", "cyan"]
    ).with_annotations("lab:protocol", {"fixative": "PFA 4%", "stain": "DAPI"})
    out = ds.to_omezarr(tmp_path / "a.ome.zarr")
    assert [c["color"] for c in attrs_of(out)["omero"]["channels"]] == ["FF00FF", "00FFFF"]
    back = omio.open(out)
    assert back.channel_colors == ds.channel_colors
    assert back.annotations["lab:protocol"] == {"fixative": "PFA 4%", "stain": "DAPI"}


@pytest.mark.parametrize("version", VERSIONS)
def test_pyramid_levels_equal_omio_pyramid(tmp_path: Path, version: str) -> None:
    ds = make((1, 3, 2, 130, 67), "uint16", sizes={"X": 0.3, "Y": 0.3, "Z": 2.0})
    out = write_omezarr(ds, tmp_path / "p.ome.zarr", version=version, levels=3)
    expected = pyramid(ds.data, 3)
    opened = omio.open(out)
    assert opened.source.levels == tuple(tuple(a.shape) for a in expected)
    for i, level in enumerate(expected):
        back = omio.open(out, level=i)
        np.testing.assert_array_equal(back.to_numpy(), level.compute())
        assert back.physical_pixel_sizes["X"] is not None
        assert back.physical_pixel_sizes["X"].magnitude == pytest.approx(0.3 * 2**i)
        assert back.physical_pixel_sizes["Z"].magnitude == pytest.approx(2.0)


def test_levels_auto_follows_level_count(tmp_path: Path) -> None:
    ds = make((1, 1, 1, 600, 300), "uint8")
    out = write_omezarr(ds, tmp_path / "a.ome.zarr", levels="auto")
    assert omio.open(out).source.levels == ((1, 1, 1, 600, 300), (1, 1, 1, 300, 150), (1, 1, 1, 150, 75))


def test_downsample_z(tmp_path: Path) -> None:
    ds = make((1, 8, 1, 64, 64), "uint16", sizes={"X": 0.5, "Y": 0.5, "Z": 1.0})
    always = write_omezarr(ds, tmp_path / "z.ome.zarr", levels=3, downsample_z=True)
    assert [s[1] for s in omio.open(always).source.levels] == [8, 4, 2]
    np.testing.assert_array_equal(omio.open(always, level=1).to_numpy(), downsample(ds.data, z=True).compute())
    # auto: Z (1.0) is coarser than X/Y (0.5) at level 0, equal at level 1
    auto = write_omezarr(ds, tmp_path / "auto.ome.zarr", levels=3, downsample_z="auto")
    assert [s[1] for s in omio.open(auto).source.levels] == [8, 8, 4]
    assert omio.open(auto, level=2).physical_pixel_sizes["Z"].magnitude == pytest.approx(2.0)


def test_chunks_and_shards_are_honoured(tmp_path: Path) -> None:
    ds = make((1, 8, 2, 64, 64), "uint16")
    out = write_omezarr(ds, tmp_path / "a.ome.zarr", chunks={"Z": 2, "Y": 32, "X": 32}, shards={"Z": 4, "Y": 64})
    array = zarr.open_array(str(out / "0"), mode="r")
    assert array.chunks == (1, 1, 2, 32, 32)
    assert array.shards == (1, 1, 4, 64, 32)
    np.testing.assert_array_equal(omio.open(out).to_numpy(), ds.to_numpy())


def test_default_layout_is_plane_tiles_grouped_in_shards(tmp_path: Path) -> None:
    ds = make((1, 5, 1, 1500, 900), "uint8")
    out = write_omezarr(ds, tmp_path / "a.ome.zarr")
    array = zarr.open_array(str(out / "0"), mode="r")
    assert array.chunks == (1, 1, 1, 1024, 900)
    assert array.shards == (1, 1, 5, 2048, 900)
    v2 = write_omezarr(ds, tmp_path / "b.ome.zarr", version="0.4")
    meta = json.loads((v2 / "0" / ".zarray").read_text())
    assert meta["chunks"] == [1, 1, 1, 1024, 900]
    assert meta["dimension_separator"] == "/"


@pytest.mark.parametrize("compression", ["blosc-lz4", "zstd", "none"])
@pytest.mark.parametrize("version", VERSIONS)
def test_other_codecs(tmp_path: Path, version: str, compression: str) -> None:
    ds = make()
    out = write_omezarr(ds, tmp_path / "a.ome.zarr", version=version, compression=compression)  # type: ignore[arg-type]
    np.testing.assert_array_equal(omio.open(out).to_numpy(), ds.to_numpy())


def test_bad_options(tmp_path: Path) -> None:
    ds = make()
    with pytest.raises(DimensionError, match="multiples"):
        write_omezarr(ds, tmp_path / "a.ome.zarr", chunks={"Y": 32}, shards={"Y": 48})
    with pytest.raises(DimensionError, match="Zarr v3"):
        write_omezarr(ds, tmp_path / "a.ome.zarr", version="0.4", shards={"Z": 2})
    with pytest.raises(DimensionError, match="TZCYX"):
        write_omezarr(ds, tmp_path / "a.ome.zarr", chunks={"Q": 2})
    with pytest.raises(MetadataError, match="version"):
        write_omezarr(ds, tmp_path / "a.ome.zarr", version="0.3")  # type: ignore[arg-type]
    with pytest.raises(MetadataError, match="level"):
        write_omezarr(ds, tmp_path / "a.ome.zarr", compression_level=40)
    with pytest.raises(DimensionError, match="fewer levels"):
        write_omezarr(ds, tmp_path / "a.ome.zarr", levels=9)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    first, second = make(seed=1), make(seed=2)
    target = tmp_path / "a.ome.zarr"
    assert write_omezarr(first, target) == target
    other = write_omezarr(second, target)
    assert other == tmp_path / "a_1.ome.zarr"
    np.testing.assert_array_equal(omio.open(target).to_numpy(), first.to_numpy())
    np.testing.assert_array_equal(omio.open(other).to_numpy(), second.to_numpy())
    assert write_omezarr(second, target, overwrite=True) == target
    np.testing.assert_array_equal(omio.open(target).to_numpy(), second.to_numpy())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ome.zarr", "a_1.ome.zarr"]


def _fail_on_last_block(block: np.ndarray[Any, Any], block_info: dict[Any, Any] | None = None) -> Any:
    if block_info is not None and block_info[0]["chunk-location"][0] == block_info[0]["num-chunks"][0] - 1:
        raise RuntimeError("disk on fire")
    return block


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    good = make(seed=3)
    target = tmp_path / "a.ome.zarr"
    write_omezarr(good, target)
    broken = good.apply(_fail_on_last_block)
    for overwrite in (False, True):
        with pytest.raises(RuntimeError, match="disk on fire"):
            write_omezarr(broken, target, overwrite=overwrite, levels=2)
    assert [p.name for p in tmp_path.iterdir()] == ["a.ome.zarr"]
    np.testing.assert_array_equal(omio.open(target).to_numpy(), good.to_numpy())


def test_distributed_write(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    ds = make((2, 4, 2, 96, 80), "uint16", sizes={"X": 0.5, "Y": 0.5})
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        out = write_omezarr(ds, tmp_path / "d.ome.zarr", levels=2)
        assert client.run(lambda: 1)  # the cluster was up during the write
    back = omio.open(out, level=1)
    np.testing.assert_array_equal(back.to_numpy(), downsample(ds.data).compute())


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_omezarr(make(), tmp_path / "a.ome.zarr", progress=True)
    assert "writing a.ome.zarr" in capsys.readouterr().err


# ---------------------------------------------------------------------- bounded memory


def _written_by_dask(ds: omio.MicroscopyDataset, path: Path, **options: Any) -> Path:
    """The same image written by one ``dask.array.store`` call (the path taken with a dask.distributed client)."""
    from omio.writers import omezarr

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(omezarr, "_distributed_client", lambda: True)
        return write_omezarr(ds, path, **options)


def _stored_keys(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and p.parent != path)


def _assert_same_store(ours: Path, theirs: Path) -> None:
    """Same files (chunks or shards, metadata), same array metadata and pixels at every level."""
    assert _stored_keys(ours) == _stored_keys(theirs)
    assert attrs_of(ours) == attrs_of(theirs)
    group = zarr.open_group(str(theirs), mode="r")
    for name, theirs_array in group.arrays():
        ours_array = zarr.open_array(str(ours / name), mode="r")
        assert ours_array.metadata.to_dict() == theirs_array.metadata.to_dict()
        np.testing.assert_array_equal(ours_array[...], theirs_array[...])


@pytest.mark.parametrize(
    ("shape", "options"),
    [
        ((2, 5, 3, 70, 50), {"levels": 3}),
        ((1, 9, 2, 75, 43), {"levels": 3, "downsample_z": True, "chunks": {"Z": 2, "Y": 18, "X": 10}}),
        ((1, 9, 2, 75, 43), {"levels": 2, "chunks": {"Y": 18, "X": 20}, "shards": {"Z": 3, "Y": 54, "C": 2}}),
        ((2, 4, 1, 64, 64), {"levels": 3, "version": "0.4", "chunks": {"Y": 20, "X": 24}}),
        ((1, 3, 1, 33, 17), {"levels": 2, "compression": "zstd"}),
        ((1, 3, 1, 33, 17), {"levels": 2, "compression": "none"}),
    ],
)
@pytest.mark.parametrize("budget", [1, 2**20])
def test_pieces_within_a_budget_give_the_layout_and_pixels_of_one_dask_store(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shape: tuple[int, int, int, int, int],
    options: dict[str, Any],
    budget: int,
) -> None:
    from omio import _block_tasks
    from omio.writers import omezarr

    ds = make(shape, "uint16", sizes={"X": 0.5, "Y": 0.5, "Z": 0.5})
    expected = _written_by_dask(ds, tmp_path / "dask.ome.zarr", **options)
    monkeypatch.setattr(omezarr, "_MEMORY_BUDGET", budget)  # 1 byte: one plane row per piece, one write at a time
    monkeypatch.setattr(_block_tasks, "BATCH", 5)  # the dask tasks of 5 pieces at a time
    ours = write_omezarr(ds, tmp_path / "pieces.ome.zarr", **options)
    _assert_same_store(ours, expected)
    for level, array in enumerate(
        pyramid(ds.data, len(omio.open(ours).source.levels), z=bool(options.get("downsample_z")))
    ):
        np.testing.assert_array_equal(omio.open(ours, level=level).to_numpy(), array.compute())


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int64", "float32", "complex64", ">u2"])
def test_shard_files_written_chunk_by_chunk_hold_every_dtype(tmp_path: Path, dtype: str) -> None:
    values = np.abs(np.random.default_rng(4).normal(size=(1, 6, 2, 40, 36)) * 1000)
    if dtype == "bool":
        pixels = values > 500
    else:
        pixels = (values + 1j * values[..., ::-1] if "complex" in dtype else values % 250).astype(dtype)
    pixels[:, :3] = 0  # whole chunks and shards of fill value are not stored, as Zarr leaves them out
    ds = omio.MicroscopyDataset.from_array(pixels, axes="TZCYX")
    options: dict[str, Any] = {"levels": 2, "chunks": {"Y": 16, "X": 16}, "shards": {"Z": 3, "Y": 32, "X": 32}}
    expected = _written_by_dask(ds, tmp_path / "dask.ome.zarr", **options)
    ours = write_omezarr(ds, tmp_path / "ours.ome.zarr", **options)
    _assert_same_store(ours, expected)
    np.testing.assert_array_equal(omio.open(ours).to_numpy(), pixels)


def test_other_shard_codecs_are_written_whole_by_zarr(tmp_path: Path) -> None:
    from omio.writers.omezarr import _ShardWriter

    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    start = group.create_array(
        "a",
        shape=(4, 4),
        dtype="uint8",
        chunks=(2, 2),
        shards=(4, 4),
        fill_value=0,
        serializer=zarr.codecs.ShardingCodec(chunk_shape=(2, 2), index_location="start"),
    )
    plain = group.create_array("b", shape=(4, 4), dtype="uint8", chunks=(2, 2), fill_value=0)
    assert _ShardWriter.create(start, tmp_path / "g.zarr" / "a") is None
    assert _ShardWriter.create(plain, tmp_path / "g.zarr" / "b") is None


def test_memory_held_does_not_grow_with_the_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from omio.writers import omezarr

    peaks: list[int] = []

    class Recorded(omezarr._LevelWriter):
        def write(self, *args: Any, **kwargs: Any) -> None:
            super().write(*args, **kwargs)
            peaks.append(self.peak)

    monkeypatch.setattr(omezarr, "_LevelWriter", Recorded)
    monkeypatch.setattr(omezarr, "_MEMORY_BUDGET", 64 * 2**10)
    for t in (1, 6):
        write_omezarr(make((t, 8, 2, 96, 80)), tmp_path / f"t{t}.ome.zarr", levels=3, chunks={"Y": 32, "X": 32})
    assert peaks[0] == peaks[1] <= 64 * 2**10


# ---------------------------------------------------------------------- independent tools


@pytest.mark.parametrize("version", VERSIONS)
def test_valid_for_ome_zarr_models(tmp_path: Path, version: str) -> None:
    from ome_zarr_models import v04, v05

    ds = make(sizes={"X": 0.2, "Y": 0.2, "Z": 1.0}, names=["a", "b"])
    out = write_omezarr(ds, tmp_path / "a.ome.zarr", version=version, levels=3)
    model_cls = v05.Image if version == "0.5" else v04.Image
    image = model_cls.from_zarr(zarr.open_group(str(out), mode="r"))
    multiscale = image.attributes.ome.multiscales[0] if version == "0.5" else image.attributes.multiscales[0]
    assert [d.path for d in multiscale.datasets] == ["0", "1", "2"]


@pytest.mark.parametrize("version", VERSIONS)
def test_opens_with_ome_zarr_reader(tmp_path: Path, version: str) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    ds = make(sizes={"X": 0.2, "Y": 0.2, "Z": 1.0}, names=["a", "b"])
    out = write_omezarr(ds, tmp_path / "a.ome.zarr", version=version, levels=2)
    location = parse_url(str(out))
    assert location is not None
    node = next(iter(Reader(location)()))
    scales = [t[0]["scale"] for t in node.metadata["coordinateTransformations"]]
    assert scales == [[1.0, 1.0, 1.0, 0.2, 0.2], [1.0, 1.0, 1.0, 0.4, 0.4]]
    assert node.metadata["channel_names"] == ["a", "b"]
    level0 = np.asarray(node.data[0])
    np.testing.assert_array_equal(level0, ds.to_numpy().transpose(0, 2, 1, 3, 4))


def test_reads_a_zarr_written_by_hand_without_t_and_c(tmp_path: Path) -> None:
    """A 3-D z, y, x NGFF 0.5 image: missing axes are inserted, units read from the axes."""
    root = zarr.open_group(str(tmp_path / "zyx.zarr"), mode="w", zarr_format=3)
    pixels = np.arange(3 * 10 * 12, dtype="uint16").reshape(3, 10, 12)
    root.create_array("s0", data=pixels, chunks=(1, 10, 12), dimension_names=["z", "y", "x"])
    units = ["micrometer", "nanometer", "nanometer"]
    axes = [{"name": n, "type": "space", "unit": u} for n, u in zip("zyx", units, strict=True)]
    scale = [{"type": "scale", "scale": [2.0, 130.0, 130.0]}]
    root.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{"axes": axes, "datasets": [{"path": "s0", "coordinateTransformations": scale}]}],
    }
    ds = omio.open(tmp_path / "zyx.zarr")
    assert ds.sizes == {"T": 1, "Z": 3, "C": 1, "Y": 10, "X": 12}
    assert ds.physical_pixel_sizes["X"] is not None and ds.physical_pixel_sizes["X"].to("nm").magnitude == 130.0
    assert ds.physical_pixel_sizes["Z"] is not None and ds.physical_pixel_sizes["Z"].to("um").magnitude == 2.0
    assert ds.channel_names == [None]
    np.testing.assert_array_equal(ds.to_numpy()[0, :, 0], pixels)


@pytest.mark.parametrize("dtype", [">u2", ">i8", ">f8", ">c8"])
def test_big_endian_store_of_another_tool_reads_as_native_pixels(tmp_path: Path, dtype: str) -> None:
    """A Zarr v2 NGFF 0.4 image with big-endian arrays: the same values, in native byte order."""
    root = zarr.open_group(str(tmp_path / "be.zarr"), mode="w", zarr_format=2)
    level0 = (np.arange(2 * 6 * 8) * 1000 - 7).astype(dtype).reshape(2, 6, 8)
    level1 = level0[:, ::2, ::2].copy()
    for name, pixels in (("0", level0), ("1", level1)):
        root.create_array(name, data=pixels, chunks=(1, 3, 4), chunk_key_encoding={"name": "v2", "separator": "/"})
        assert zarr.open_array(str(tmp_path / "be.zarr" / name)).dtype == np.dtype(dtype)  # stored big-endian
    axes = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"}]
    axes.append({"name": "x", "type": "space", "unit": "micrometer"})
    datasets = [
        {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [1.0, 0.5 * 2**i, 0.5 * 2**i]}]}
        for i in range(2)
    ]
    root.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": datasets}]
    native = np.dtype(dtype).newbyteorder("=")
    for level, pixels in enumerate((level0, level1)):
        ds = omio.open(tmp_path / "be.zarr", level=level)
        assert ds.dtype == native and ds.dtype.isnative
        back = ds.to_numpy()
        assert back.dtype == native
        np.testing.assert_array_equal(back[0, 0], pixels)
        assert ds.xarray.dtype == native
    source = omio.open(tmp_path / "be.zarr")
    if native.name == "int64":  # no OME-XML: the source's NGFF facts omio keeps as an annotation are not stored
        with pytest.warns(MetadataNotStoredWarning, match=r"annotation \(ds.annotations; namespaces omio:original"):
            copy = source.to_omezarr(tmp_path / "copy.ome.zarr", version="0.4")
    else:
        copy = source.to_omezarr(tmp_path / "copy.ome.zarr", version="0.4")
    assert omio.open(copy).dtype == native
    np.testing.assert_array_equal(omio.open(copy).to_numpy()[0, 0], level0)


# ---------------------------------------------------------------------- bad input


def test_plain_zarr_group_is_refused_by_name(tmp_path: Path) -> None:
    root = zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    root.create_array("data", shape=(4, 4), dtype="uint8")
    with pytest.raises(FileFormatError, match=r"plain\.zarr.*multiscales"):
        omio.open(tmp_path / "plain.zarr")


def test_missing_level_array_is_reported(tmp_path: Path) -> None:
    out = write_omezarr(make(), tmp_path / "a.ome.zarr", levels=2)
    with pytest.raises(DimensionError, match=r"levels 0\.\.1"):
        omio.open(out, level=2)
    shutil.rmtree(out / "1")
    with pytest.raises(FileFormatError, match=r"a\.ome\.zarr.*'1'"):
        omio.open(out)


def test_folder_that_is_not_zarr(tmp_path: Path) -> None:
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(UnsupportedFormatError, match=r"empty\.zarr"):
        omio.open(tmp_path / "empty.zarr")


def test_lazy_dask_source_is_written_without_loading(tmp_path: Path) -> None:
    calls: list[int] = []

    def counted(block: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if block.size:  # dask also calls it once on an empty block to learn the output type
            calls.append(block.size)
        return block

    base = da.ones((1, 4, 1, 64, 64), dtype="uint8", chunks=(1, 1, 1, 64, 64))
    ds = omio.MicroscopyDataset.from_array(base.map_blocks(counted, dtype="uint8"), axes="TZCYX")
    assert not calls
    write_omezarr(ds, tmp_path / "a.ome.zarr", levels=2)
    # every block computed once for writing (+ the middle plane sampled for the display window)
    assert len(calls) == 4 + 1


# ---------------------------------------------------------------------- URLs (fsspec)


@pytest.fixture
def memory_fs() -> Any:
    """fsspec's in-memory filesystem, emptied after the test."""
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/", recursive=True)


def test_file_url_opens_like_the_path(tmp_path: Path) -> None:
    ds = make(sizes={"X": 0.25, "Y": 0.25, "Z": 1.5}, names=["GFP", "RFP"], time="2 s")
    out = write_omezarr(ds, tmp_path / "a.ome.zarr", levels=2)
    url = out.as_uri()
    back = omio.open(url)
    assert back.path == url
    assert back.is_lazy
    assert_dataset_equal(back, ds)
    assert back.source.levels == omio.open(out).source.levels
    assert back.annotations["omio:source"]["path"] == url
    assert omio.scenes(url) == ["cells"]
    assert [d.name for d in omio.open_all(url)] == ["cells"]
    np.testing.assert_array_equal(omio.open(url, level=1).to_numpy(), omio.open(out, level=1).to_numpy())


@pytest.mark.parametrize("version", VERSIONS)
def test_memory_url_any_level(tmp_path: Path, memory_fs: Any, version: str) -> None:
    ds = make((1, 3, 2, 64, 48), "uint16", sizes={"X": 0.3, "Y": 0.3, "Z": 2.0}, names=["a", "b"])
    out = write_omezarr(ds, tmp_path / "a.ome.zarr", version=version, levels=3)
    memory_fs.put(str(out), "/copy.ome.zarr", recursive=True)
    url = "memory://copy.ome.zarr"
    source = check_reader_conformance(OmeZarrReader(), url, level=1)
    assert source.path == url
    assert source.original_metadata["ngff_version"] == version
    back = omio.open(url, level=1)
    assert back.path == url
    np.testing.assert_array_equal(back.to_numpy(), downsample(ds.data).compute())
    assert back.physical_pixel_sizes["X"] is not None
    assert back.physical_pixel_sizes["X"].magnitude == pytest.approx(0.6)
    assert back.channel_names == ["a", "b"]
    assert back.name == "cells"
    assert back.source.levels == omio.open(out).source.levels
    with pytest.raises(DimensionError, match=r"levels 0\.\.2"):
        omio.open(url, level=3)


def test_dask_names_follow_the_url_and_the_array(tmp_path: Path, memory_fs: Any) -> None:
    first = write_omezarr(make(seed=1), tmp_path / "a.ome.zarr")
    second = write_omezarr(make((1, 1, 1, 8, 8), seed=2), tmp_path / "b.ome.zarr")
    memory_fs.put(str(first), "/a.ome.zarr", recursive=True)
    memory_fs.put(str(second), "/b.ome.zarr", recursive=True)
    assert omio.open("memory://a.ome.zarr").data.name == omio.open("memory://a.ome.zarr").data.name
    assert omio.open("memory://a.ome.zarr").data.name != omio.open("memory://b.ome.zarr").data.name


def test_bioformats2raw_sample_through_a_file_url(samples: Path) -> None:
    path = samples / "ome-zarr" / "tiledb_CMU-1-Small-Region.ome.zarr"
    url = path.as_uri()
    assert omio.scenes(url) == omio.scenes(path)
    assert len(omio.scenes(url)) >= 2
    for scene in range(2):
        by_url, by_path = omio.open(url, scene=scene), omio.open(path, scene=scene)
        assert_dataset_equal(by_url, by_path, check_pixels=False)
        assert by_url.source.levels == by_path.source.levels
        np.testing.assert_array_equal(by_url.data[0, 0, 0].compute(), by_path.data[0, 0, 0].compute())
    level1 = omio.open(url, level=1)
    assert level1.sizes == {"T": 1, "Z": 1, "C": 3, "Y": 768, "X": 574}


def test_url_whose_filesystem_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = pytest.importorskip("fsspec.registry")
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if s3fs were not installed
    monkeypatch.delitem(registry._registry, "s3", raising=False)  # forget an s3 filesystem already imported
    with pytest.raises(MissingDependencyError, match=r"s3://bucket/img\.ome\.zarr.*pip install s3fs"):
        omio.open("s3://bucket/img.ome.zarr")
    with pytest.raises(MissingDependencyError, match="pip install s3fs"):
        omio.scenes("s3://bucket/img.ome.zarr")


def test_url_of_another_format_or_nothing(tmp_path: Path, memory_fs: Any) -> None:
    tif = omio.MicroscopyDataset.from_array(np.zeros((8, 8), "uint8"), axes="YX").to_ometiff(tmp_path / "a.ome.tif")
    with pytest.raises(UnsupportedFormatError, match=r"a\.ome\.tif.*only OME-Zarr can be opened from a URL"):
        omio.open(tif.as_uri())
    with pytest.raises(FileNotFoundError, match=r"memory://missing\.ome\.zarr"):
        omio.open("memory://missing.ome.zarr")
    with pytest.raises(UnsupportedFormatError, match="nosuchscheme://"):
        omio.open("nosuchscheme://host/a.ome.zarr")


def test_windows_drive_is_not_a_url() -> None:
    from omio.readers import is_url

    assert is_url("memory://a.zarr") and is_url("s3://bucket/a.zarr")
    assert not is_url("C://data/a.tif") and not is_url("C:\\data\\a.tif") and not is_url(Path("a.zarr"))


@pytest.mark.parametrize("version", VERSIONS)
def test_http_url(tmp_path: Path, version: str) -> None:
    """Over HTTP no folder can be listed: every key is fetched by name."""
    pytest.importorskip("aiohttp")
    ds = make((1, 2, 2, 40, 30), "uint8", names=["a", "b"])
    write_omezarr(ds, tmp_path / "a.ome.zarr", version=version, levels=2)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.ome.zarr"
        back = omio.open(url, level=1)
        assert back.channel_names == ["a", "b"]
        np.testing.assert_array_equal(back.to_numpy(), downsample(ds.data).compute())
        with pytest.raises(FileNotFoundError, match="missing"):
            omio.open(url.replace("a.ome.zarr", "missing.ome.zarr"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_xarray_engine_opens_a_url(tmp_path: Path, memory_fs: Any) -> None:
    import xarray as xr

    ds = make((1, 1, 2, 40, 30), "uint16")
    out = write_omezarr(ds, tmp_path / "a.ome.zarr", levels=2)
    memory_fs.put(str(out), "/x.ome.zarr", recursive=True)
    array = xr.open_dataarray("memory://x.ome.zarr", engine="omio", level=1)
    assert array.dims == ("T", "Z", "C", "Y", "X")
    np.testing.assert_array_equal(array.values, downsample(ds.data).compute())


# ---------------------------------------------------------------------- damaged stores

Doc = dict[str, Any]


def damaged(tmp_path: Path, version: str, *, levels: int = 2, xml: bool = True) -> Path:
    """A small store as omio writes it (optionally without its OME-XML), to be damaged by a test."""
    out = write_omezarr(make((2, 2, 3, 20, 16)), tmp_path / "a.ome.zarr", version=version, levels=levels)
    if not xml:
        shutil.rmtree(out / "OME")
    return out


def edit_json(file: Path, change: Callable[[Doc], object]) -> None:
    doc = json.loads(file.read_text())
    change(doc)
    file.write_text(json.dumps(doc))


def attrs_file(out: Path, node: str = "") -> Path:
    folder = out / node if node else out
    return folder / "zarr.json" if (folder / "zarr.json").exists() else folder / (".zattrs" if not node else ".zarray")


def ngff(doc: Doc) -> Doc:
    inner = doc["attributes"]["ome"] if "attributes" in doc else doc
    assert isinstance(inner, dict)
    return inner


def open_and_read(out: Path, level: int = 0) -> None:
    """Open, read and describe the store, as a user would; each step must end quickly."""
    start = time.perf_counter()
    ds = omio.open(out, level=level)
    ds.to_numpy()
    assert ds.ome.images
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("node", ["", "0", "1"], ids=["group", "level0", "level1"])
@pytest.mark.parametrize(
    ("content", "problem"),
    [(b'{"multiscales": [', "not valid JSON"), (b"\xff\xfe{}", "not UTF-8"), (b"[1, 2]", "not an object")],
    ids=["truncated", "not-utf8", "not-an-object"],
)
def test_broken_metadata_file_is_named(tmp_path: Path, version: str, node: str, content: bytes, problem: str) -> None:
    out = damaged(tmp_path, version)
    file = attrs_file(out, node)
    file.write_bytes(content)
    with pytest.raises(FileFormatError, match=rf"{file.parent.name}/{file.name}: .*{problem}"):
        open_and_read(out)


def _multiscale(doc: Doc) -> Doc:
    found = ngff(doc)["multiscales"][0]
    assert isinstance(found, dict)
    return found


def _scale(doc: Doc, level: int = 0) -> list[Any]:
    found = _multiscale(doc)["datasets"][level]["coordinateTransformations"][0]["scale"]
    assert isinstance(found, list)
    return found


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: ngff(d).__setitem__("multiscales", {"datasets": []}), "'multiscales' must be a list"),
        (lambda d: _multiscale(d).__setitem__("datasets", []), "datasets"),
        (lambda d: _multiscale(d)["datasets"][0].pop("path"), "path"),
        (lambda d: _multiscale(d)["datasets"][1].__setitem__("path", "0"), "its own array 'path'"),
        (lambda d: _multiscale(d)["axes"].pop(0), "axes"),
        (lambda d: _multiscale(d).__setitem__("axes", "tczyx"), "axes"),
        (lambda d: _multiscale(d)["datasets"][0].pop("coordinateTransformations"), "coordinateTransformations"),
        (lambda d: _scale(d).append(1.0), "OME-Zarr 0"),
        (lambda d: _scale(d).__setitem__(4, -0.5), r"scale of level 0 must be 5 numbers"),
        (lambda d: _scale(d).__setitem__(3, 0), r"scale of level 0 must be 5 numbers"),
        (lambda d: _scale(d).__setitem__(4, "0.5"), r"scale of level 0"),
        (lambda d: _scale(d, 1).__setitem__(4, -1.0), r"scale"),
        (lambda d: ngff(d).__setitem__("version", "9.9") or _multiscale(d).__setitem__("version", "9.9"), "9.9"),
        (lambda d: ngff(d)["omero"]["channels"][0].__setitem__("color", "ZZZZZZ"), "colour"),
        (lambda d: ngff(d)["omero"]["channels"][0].__setitem__("label", 7), "label"),
        (lambda d: ngff(d)["omero"]["channels"].pop(), "omero' describes 2 channels for an image of 3"),
        (lambda d: ngff(d).__setitem__("omero", "x"), "'omero' must hold"),
    ],
    ids=[
        "multiscales-not-a-list",
        "no-datasets",
        "path-missing",
        "paths-repeated",
        "axes-short",
        "axes-not-a-list",
        "transforms-missing",
        "scale-long",
        "scale-negative",
        "scale-zero",
        "scale-text",
        "level1-scale-negative",
        "unknown-version",
        "omero-colour",
        "omero-label",
        "omero-channel-count",
        "omero-not-an-object",
    ],
)
def test_malformed_multiscales_are_refused(
    tmp_path: Path, version: str, change: Callable[[Doc], object], message: str
) -> None:
    out = damaged(tmp_path, version)
    file = attrs_file(out)
    edit_json(file, change)
    with pytest.raises(FileFormatError, match=rf"a\.ome\.zarr/{re.escape(file.name)}: .*{message}"):
        open_and_read(out)


def _shape(d: Doc) -> list[int]:
    shape = d["shape"]
    assert isinstance(shape, list)
    return shape


def _chunks(d: Doc) -> list[int]:
    found = d["chunks"] if "chunks" in d else d["chunk_grid"]["configuration"]["chunk_shape"]
    assert isinstance(found, list)
    return found


def _dtype(d: Doc, v2: str, v3: str) -> None:
    d["dtype" if "dtype" in d else "data_type"] = v2 if "dtype" in d else v3


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("node", "change", "message"),
    [
        ("1", lambda d: _dtype(d, "<i2", "int16"), "level 1 .* is a 5-D int16 array, level 0 a 5-D uint16"),
        ("1", lambda d: _shape(d).__setitem__(4, 40), "larger than level 0"),
        ("1", lambda d: _shape(d).__setitem__(1, 4), "larger than level 0"),
        ("0", lambda d: _shape(d).__setitem__(3, 20_000), "level 1 .* holds 10 pixels on axis 3"),
    ],
    ids=["dtype", "shape-grows", "channels-grow", "shape-against-scale"],
)
def test_levels_must_form_a_pyramid(
    tmp_path: Path, version: str, node: str, change: Callable[[Doc], object], message: str
) -> None:
    out = damaged(tmp_path, version, xml=False)
    edit_json(attrs_file(out, node), change)
    with pytest.raises(FileFormatError, match=message):
        open_and_read(out)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: _shape(d).__setitem__(4, 0), r"empty or absurd axis"),
        (lambda d: _shape(d).__setitem__(4, 10**12), r"empty or absurd axis"),
        (lambda d: _shape(d).__setitem__(3, 10**8), r"chunks \(at most 10,000,000\)"),
        (lambda d: _chunks(d).__setitem__(4, 10**10), r"(would take|shard).*at most"),
        (lambda d: _chunks(d).__setitem__(4, 0), r"a\.ome\.zarr/0: .*repairing"),
    ],
    ids=["zero-extent", "absurd-extent", "too-many-chunks", "absurd-chunk", "zero-chunk"],
)
def test_absurd_sizes_are_refused_at_once(
    tmp_path: Path, version: str, change: Callable[[Doc], object], message: str
) -> None:
    out = damaged(tmp_path, version, levels=1, xml=False)
    edit_json(attrs_file(out, "0"), change)
    start = time.perf_counter()
    with pytest.raises(FileFormatError, match=message):
        omio.open(out)
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x: x.replace('SizeX="16"', 'SizeX="17"'), "SizeX=17 but the array holds 16"),
        (lambda x: x.replace('SizeT="2"', 'SizeT="1"'), "SizeT=1 but the array holds 2"),
        (lambda x: x.replace('Type="uint16"', 'Type="int16"'), "Type=int16 but the array holds uint16"),
        (lambda x: re.sub(r"<Channel .*?</Channel>|<Channel [^>]*/>", "", x, count=1), "2 Channel elements"),
        (lambda x: re.sub(r"<Image .*</Image>", "", x, flags=re.S), "declares no Image"),
        (lambda x: x.replace("</Pixels>", '<Plane TheT="2" TheZ="0" TheC="0"/></Pixels>'), "Plane TheT=2 TheZ=0"),
        (lambda x: x.replace("</Pixels>", '<Plane TheT="0"/><Plane TheT="0"/></Pixels>'), "given twice"),
        (lambda x: x.replace("</Pixels>", '<Plane TheT="0" TheZ="one" TheC="0"/></Pixels>'), "not an integer"),
    ],
    ids=["size-x", "size-t", "type", "channel-removed", "image-removed", "plane-outside", "plane-twice", "plane-index"],
)
def test_ome_xml_must_fit_the_pixels(tmp_path: Path, version: str, change: Callable[[str], str], message: str) -> None:
    out = damaged(tmp_path, version)
    xml = out / "OME" / "METADATA.ome.xml"
    text = xml.read_text()
    assert change(text) != text
    xml.write_text(change(text))
    with pytest.raises(FileFormatError, match=rf"OME/METADATA\.ome\.xml: .*{message}"):
        open_and_read(out)


def test_axes_swapped_against_the_ome_xml_are_caught(tmp_path: Path) -> None:
    out = damaged(tmp_path, "0.4")
    edit_json(attrs_file(out), lambda d: _multiscale(d)["axes"].reverse())
    with pytest.raises(OmioError):
        open_and_read(out)


def test_v3_dimension_names_must_be_the_axes(tmp_path: Path) -> None:
    out = damaged(tmp_path, "0.5")
    edit_json(attrs_file(out, "1"), lambda d: d.__setitem__("dimension_names", ["t", "c", "z", "x", "y"]))
    with pytest.raises(FileFormatError, match=r"array '1' names its dimensions \['t', 'c', 'z', 'x', 'y'\]"):
        open_and_read(out)


@pytest.mark.parametrize("version", VERSIONS)
def test_shape_cut_below_the_stored_chunks_is_caught(tmp_path: Path, version: str) -> None:
    out = damaged(tmp_path, version, levels=1, xml=False)
    edit_json(attrs_file(out, "0"), lambda d: _shape(d).__setitem__(0, 1))
    with pytest.raises(FileFormatError, match=r"lies beyond the declared shape \[1, 3, 2, 20, 16\]"):
        open_and_read(out)


def test_other_key_separator_is_caught(tmp_path: Path) -> None:
    out = damaged(tmp_path, "0.4", xml=False)
    edit_json(attrs_file(out, "0"), lambda d: d.__setitem__("dimension_separator", "."))
    with pytest.raises(FileFormatError, match=r"a\.ome\.zarr/0: the chunks are stored under '/'-separated keys"):
        open_and_read(out)


def _first_chunk(out: Path, level: str = "0") -> Path:
    return min(p for p in (out / level).rglob("*") if p.is_file() and p.name not in ("zarr.json", ".zarray", ".zattrs"))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("cut", [0.5, 0.99, 0.0])
def test_truncated_chunk_is_an_error_naming_the_chunk(tmp_path: Path, version: str, cut: float) -> None:
    out = damaged(tmp_path, version)
    chunk = _first_chunk(out)
    data = chunk.read_bytes()
    chunk.write_bytes(data[: int(len(data) * cut)])
    ds = omio.open(out)  # chunks are read when computed
    key = "/".join(chunk.relative_to(out).parts)
    name = re.escape(key) if version == "0.4" else r"a\.ome\.zarr/0: cannot read the region \[0:1, 0:1, 0:2,"
    with pytest.raises(FileFormatError, match=name):
        ds.to_numpy()


def test_missing_chunk_reads_as_the_fill_value(tmp_path: Path) -> None:
    """Zarr stores no chunk that holds only the fill value: a missing chunk is valid, not damage."""
    out = damaged(tmp_path, "0.4")
    _first_chunk(out).unlink()
    pixels = omio.open(out).to_numpy()
    assert not pixels[0, 0, 0].any()
    np.testing.assert_array_equal(pixels[1], make((2, 2, 3, 20, 16)).to_numpy()[1])
