"""OME-TIFF writer: round trips, schema validity, atomicity, collisions, options."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import ome_types
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import omio
from omio.errors import DimensionError, MetadataError, OutputExistsError
from omio.testing import assert_dataset_equal
from omio.writers._output import atomic_output


def validate(path: Path) -> ome_types.OME:
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata
    assert xml is not None
    ome_types.validate_xml(xml)  # against the OME 2016-06 schema shipped with ome-types
    return ome_types.from_xml(xml)


shapes = st.tuples(*(st.integers(1, n) for n in (3, 3, 3, 17, 19)))
dtypes = st.sampled_from(["uint8", "uint16", "float32"])
sizes = st.one_of(st.none(), st.floats(0.01, 10.0))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes, dtype=dtypes, px=sizes, pz=sizes, dt=sizes, named=st.booleans(), seed=st.integers(0, 2**16))
def test_round_trip_property(
    tmp_path: Path,
    shape: tuple[int, ...],
    dtype: str,
    px: float | None,
    pz: float | None,
    dt: float | None,
    named: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    data = (rng.random(shape) * 200).astype(dtype)
    physical = {k: v for k, v in (("X", px), ("Y", px), ("Z", pz)) if v is not None}
    names = [f"ch{i}" for i in range(shape[2])] if named else None
    ds = omio.from_array(
        data, "TZCYX", physical_pixel_sizes=physical, time_increment=dt, channel_names=names, name="img"
    )
    out = ds.to_ometiff(tmp_path / f"rt{seed}.ome.tif", overwrite=True)
    validate(out)
    back = omio.open(out)
    assert_dataset_equal(back, ds)
    np.testing.assert_array_equal(back.to_numpy(), data)


def test_written_file_is_independent_ome_tiff(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 2 * 20 * 30, dtype=np.uint16).reshape(2, 3, 2, 20, 30)
    ds = omio.from_array(
        data, physical_pixel_sizes={"X": 0.2, "Y": 0.2, "Z": 1.0}, time_increment=5, channel_names=["a", "b"]
    )
    ds = ds.with_annotations("lab:notes", {"operator": "me", "temperature": 37})
    out = ds.to_ometiff(tmp_path / "x.ome.tif", compression="zlib", level=9)
    ome = validate(out)
    px = ome.images[0].pixels
    assert (px.size_t, px.size_z, px.size_c, px.dimension_order.value) == (2, 3, 2, "XYCZT")
    assert px.physical_size_x == pytest.approx(0.2) and px.time_increment == pytest.approx(5)
    assert [c.name for c in px.channels] == ["a", "b"]
    np.testing.assert_array_equal(tifffile.imread(out).reshape(data.shape), data)  # an independent reader agrees
    with tifffile.TiffFile(out) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert not tif.is_bigtiff
    back = omio.open(out)
    assert back.annotations["lab:notes"] == {"operator": "me", "temperature": "37"}


@pytest.mark.parametrize(
    ("compression", "level", "expected"),
    [
        ("zlib", 0, tifffile.COMPRESSION.NONE),
        ("zstd", 3, tifffile.COMPRESSION.ZSTD),
        ("lzw", 6, tifffile.COMPRESSION.LZW),
        ("none", 6, tifffile.COMPRESSION.NONE),
    ],
)
def test_compression_options(tmp_path: Path, compression: Any, level: int, expected: Any) -> None:
    data = np.arange(2 * 64 * 64, dtype=np.uint16).reshape(2, 64, 64)
    out = omio.from_array(data, "ZYX").to_ometiff(tmp_path / "c.ome.tif", compression=compression, level=level)
    with tifffile.TiffFile(out) as tif:
        assert tif.pages[0].compression == expected
    np.testing.assert_array_equal(omio.open(out).to_numpy()[0, :, 0], data)


def test_bad_options_are_refused(tmp_path: Path) -> None:
    ds = omio.from_array(np.zeros((8, 8), np.uint8), "YX")
    with pytest.raises(MetadataError, match="level"):
        ds.to_ometiff(tmp_path / "a.ome.tif", level=12)
    with pytest.raises(MetadataError, match="compression"):
        ds.to_ometiff(tmp_path / "a.ome.tif", compression="jpeg")  # type: ignore[arg-type]
    with pytest.raises(DimensionError, match="tile"):
        ds.to_ometiff(tmp_path / "a.ome.tif", tile=(10, 10))
    with pytest.raises(MetadataError, match="int64"):
        omio.from_array(np.zeros((8, 8), np.int64), "YX").to_ometiff(tmp_path / "b.ome.tif")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_tiles_and_forced_bigtiff(tmp_path: Path) -> None:
    data = np.arange(3 * 70 * 90, dtype=np.uint16).reshape(3, 70, 90)
    out = omio.from_array(data, "CYX").to_ometiff(tmp_path / "t.ome.tif", tile=(32, 32), bigtiff=True)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_bigtiff and tif.pages[0].is_tiled
    validate(out)
    np.testing.assert_array_equal(omio.open(out).to_numpy()[0, 0], data)


@pytest.mark.parametrize("chunks", [(1, 1, 1, 12, 10), (2, 3, 2, 12, 10), (1, 1, 1, 6, 10), (3, 5, 3, 12, 10)], ids=str)
def test_any_chunking_writes_the_planes_in_order(tmp_path: Path, chunks: tuple[int, ...]) -> None:
    # one-plane chunks are handed over as read; other chunkings are read as slabs and split into planes
    import dask.array as da

    data = np.arange(3 * 5 * 3 * 12 * 10, dtype=np.uint16).reshape(3, 5, 3, 12, 10)
    ds = omio.from_array(da.from_array(data, chunks=chunks), axes="TZCYX")
    back = tifffile.imread(ds.to_ometiff(tmp_path / "chunks.ome.tif"))
    np.testing.assert_array_equal(back.reshape(data.shape), data)


def test_collision_safe_names_keep_the_whole_stem(tmp_path: Path) -> None:
    ds = omio.from_array(np.ones((4, 4), np.uint8), "YX")
    target = tmp_path / "cells.day1.ome.tif"
    first = ds.to_ometiff(target)
    second = ds.to_ometiff(target)
    third = ds.to_ometiff(target)
    assert first == target
    assert second.name == "cells.day1_1.ome.tif" and third.name == "cells.day1_2.ome.tif"
    before = target.read_bytes()
    omio.from_array(np.zeros((4, 4), np.uint8), "YX").to_ometiff(target, overwrite=True)
    assert target.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cells.day1.ome.tif",
        "cells.day1_1.ome.tif",
        "cells.day1_2.ome.tif",
    ]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "fail.ome.tif"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as (tmp, _):
            tmp.write_bytes(b"partial")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputExistsError):
        target.mkdir()
        with atomic_output(target) as _:
            pass


def _slow_write(path: str) -> None:
    import dask.array as da

    slow = da.ones((200, 256, 256), dtype=np.uint16, chunks=(1, 256, 256)).map_blocks(
        lambda b: (time.sleep(0.02), b)[1]
    )
    omio.from_array(slow, "ZYX").to_ometiff(path)


def test_killed_write_leaves_no_file_at_the_final_path(tmp_path: Path) -> None:
    target = tmp_path / "killed.ome.tif"
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_slow_write, args=(str(target),))
    proc.start()
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.endswith(".partial.ome.tif") for p in tmp_path.iterdir()):
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert not target.exists()
    assert all(p.name.startswith(".") for p in tmp_path.iterdir())  # only the hidden temporary remains


def rss_growth[T](run: Callable[[], T]) -> tuple[T, int]:
    """Run ``run()`` and return its result and how far it grew this process's RSS (sampled every 10 ms)."""
    import threading

    import psutil

    proc = psutil.Process()
    before = peak = proc.memory_info().rss
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run()
    finally:
        done.set()
        watcher.join()
    return result, peak - before


def test_streaming_memory_is_bounded(tmp_path: Path) -> None:
    """A lazy 800 MB array is written without materializing it (RSS grows by less than 300 MB)."""
    import dask.array as da

    big = da.zeros((200, 2048, 1024), dtype=np.uint16, chunks=(1, 2048, 1024)) + 1
    ds = omio.from_array(big, "ZYX")
    _, grown = rss_growth(lambda: ds.to_ometiff(tmp_path / "big.ome.tif", compression="zlib", level=1))
    assert grown < 300 * 2**20, f"writing grew RSS by {grown / 2**20:.0f} MB"


def test_progress_bar_counts_every_plane(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = omio.from_array(np.zeros((2, 3, 8, 8), np.uint8), "TZYX")
    ds.to_ometiff(tmp_path / "p.ome.tif", progress=True)
    assert "6/6" in capsys.readouterr().err
