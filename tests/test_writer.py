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
    while time.time() < deadline and not any(".killed.omio-partial-" in p.name for p in tmp_path.iterdir()):
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert not target.exists()
    (stale,) = tmp_path.iterdir()  # only the hidden temporary remains
    assert stale.name.startswith(".killed.omio-partial-") and f"-{proc.pid}-" in stale.name
    # the next write to the same target removes it once it is old enough
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert omio.from_array(np.ones((4, 4), np.uint8), "YX").to_ometiff(target) == target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed.ome.tif"]


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


# ------------------------------------------------------------------ compressed segments (strips and tiles)


def stored_segments(path: Path) -> list[bytes]:
    """The bytes stored for every strip or tile of the main IFD chain, in file order."""
    with tifffile.TiffFile(path) as tif:
        fh = tif.filehandle
        segments = []
        for page in tif.pages:
            assert isinstance(page, tifffile.TiffPage)
            for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
                fh.seek(offset)
                segments.append(fh.read(count))
    return segments


def textured(shape: tuple[int, ...], dtype: str, noise: int = 20) -> np.ndarray[Any, Any]:
    """Compressible but not trivial pixels: a ramp plus noise."""
    ramp = np.add.outer(np.arange(shape[-2]), np.arange(shape[-1])) % 97
    return (ramp + np.random.default_rng(0).integers(0, noise, shape)).astype(dtype)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize(("compression", "level"), [("zlib", 6), ("zstd", 5), ("lzw", 0)])
@pytest.mark.parametrize("tile", [None, (48, 64)], ids=["strips", "tiles"])
def test_segments_are_the_ones_tifffile_writes(
    tmp_path: Path, dtype: str, compression: Any, level: int, tile: tuple[int, int] | None
) -> None:
    # 300 rows are no multiple of the rows per strip, and 48 x 64 tiles are cut at the bottom and right edges
    data = textured((2, 300, 1000), dtype)
    out = omio.from_array(data, "ZYX").to_ometiff(
        tmp_path / "s.ome.tif", compression=compression, level=level, tile=tile
    )
    np.testing.assert_array_equal(tifffile.imread(out), data)
    np.testing.assert_array_equal(omio.open(out).to_numpy()[0, :, 0], data)
    with tifffile.TiffFile(out) as tif:
        page = tif.pages.first
        assert page.compression == {"zlib": 8, "zstd": 50000, "lzw": 5}[compression]
        rows = page.rowsperstrip
        if tile is None:
            assert 64 * 1024 <= rows * 1000 * data.itemsize <= 256 * 1024  # strips as readers expect them
            assert 300 % rows and len(page.dataoffsets) == -(-300 // rows)  # a shorter last strip
        else:
            assert (page.tilelength, page.tilewidth) == tile and len(page.dataoffsets) == 7 * 16
    reference = tmp_path / "reference.tif"
    tifffile.imwrite(
        reference,
        data,
        compression=compression,
        compressionargs={"level": level} if compression != "lzw" else None,
        tile=tile,
        rowsperstrip=None if tile else rows,
        photometric="minisblack",
        metadata=None,
    )
    assert stored_segments(out) == stored_segments(reference)  # same codec, level and padding as tifffile


def test_segments_are_compressed_at_the_requested_level(tmp_path: Path) -> None:
    import imagecodecs

    data = textured((2, 400, 512), "uint16", noise=2)  # level 9 finds the repeats that level 1 skips
    ds = omio.from_array(data, "ZYX")
    total = {}
    for level in (1, 9):
        out = ds.to_ometiff(tmp_path / f"z{level}.ome.tif", compression="zlib", level=level)
        with tifffile.TiffFile(out) as tif:
            rows = tif.pages.first.rowsperstrip
        segments = stored_segments(out)
        assert segments[0] == imagecodecs.deflate_encode(data[0, :rows], level=level)
        assert segments[-1] == imagecodecs.deflate_encode(data[1, -(400 % rows or rows) :], level=level)
        total[level] = sum(map(len, segments))
    assert total[9] < total[1]
    out = ds.to_ometiff(tmp_path / "zstd.ome.tif", compression="zstd", level=19)
    assert stored_segments(out)[0] == imagecodecs.zstd_encode(data[0, :rows], level=19)


def test_encoding_keeps_the_order_and_a_bounded_window() -> None:
    from omio.writers.ometiff import _encoded

    taken = 0

    def segments() -> Any:
        nonlocal taken
        for i in range(100):
            taken += 1
            yield np.full(4, i, np.uint8)

    def slow(segment: np.ndarray[Any, Any]) -> bytes:
        time.sleep((9 - int(segment[0]) % 10) / 2000)  # later segments finish first
        return segment.tobytes()

    handed = []
    for i, data in enumerate(_encoded(segments(), slow, workers=3, window=8)):
        assert taken <= i + 8  # never more than the window ahead of what was handed on
        handed.append(data)
    assert handed == [np.full(4, i, np.uint8).tobytes() for i in range(100)]


def encoding_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name.startswith("omio-encode")]


@pytest.mark.parametrize("pyramid", [1, 2])
def test_a_read_error_propagates_and_leaves_no_file(tmp_path: Path, pyramid: int) -> None:
    import dask.array as da

    def read(block: np.ndarray[Any, Any], block_info: Any = None) -> np.ndarray[Any, Any]:
        if block_info[None]["chunk-location"][0] == 9:  # in the third slab, after some pages are written
            raise OSError("disk read failed")
        return block

    planes = da.ones((12, 1024, 1024), dtype=np.uint16, chunks=(1, 1024, 1024)).map_blocks(read, dtype=np.uint16)
    with pytest.raises(OSError, match="disk read failed"):
        omio.from_array(planes, "ZYX").to_ometiff(tmp_path / "r.ome.tif", compression="zlib", level=1, pyramid=pyramid)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
    assert encoding_threads() == []


@pytest.mark.parametrize("tile", [None, (64, 64)], ids=["strips", "tiles"])
def test_an_encoding_error_propagates_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tile: tuple[int, int] | None
) -> None:
    import itertools

    from omio.writers import ometiff

    real = ometiff._encoder

    def failing(*args: Any) -> Callable[[np.ndarray[Any, Any]], bytes]:
        encode, count = real(*args), itertools.count()

        def fail_once_started(segment: np.ndarray[Any, Any]) -> bytes:
            if next(count) == 50:  # past the first window of segments: some pages are written
                raise RuntimeError("codec failed")
            return encode(segment)

        return fail_once_started

    monkeypatch.setattr(ometiff, "_encoder", failing)
    ds = omio.from_array(textured((40, 512, 512), "uint16"), "ZYX")  # 80 strips or 2560 tiles
    with pytest.raises(RuntimeError, match="codec failed"):
        ds.to_ometiff(tmp_path / "e.ome.tif", tile=tile)
    assert list(tmp_path.iterdir()) == []
    assert encoding_threads() == []


def test_slabs_of_one_plane_chunks_read_from_the_optimized_graph_match_dask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    import dask

    from omio.writers import ometiff

    monkeypatch.delitem(sys.modules, "distributed", raising=False)  # as in a process that never imported it

    data = np.arange(3 * 4 * 2 * 9 * 7, dtype=np.uint16).reshape(3, 4, 2, 9, 7)
    source = omio.from_array(data, "TZCYX").to_ometiff(tmp_path / "pages.ome.tif", compression="none")
    # a selection and arithmetic on top of the page reads: the graph is more than the reads
    arr = (omio.open(source).isel(Z=slice(1, 4), T=slice(0, 3, 2)).data + 1).astype(np.uint16)
    assert ometiff._one_plane_chunks(arr)
    read = ometiff._plane_reader(arr)
    assert read is not ometiff._compute_planes
    expected = (data[0:3:2, 1:4] + 1).reshape(-1, 9, 7)
    got = [plane for where in ometiff._slabs(arr) for plane in read(arr, where)]
    assert all(plane.shape == (1, 1, 1, 9, 7) for plane in got)  # each block as it was read
    np.testing.assert_array_equal(np.stack(got).reshape(-1, 9, 7), expected)
    with dask.config.set(scheduler="threads"):  # the user chose a scheduler: omio computes through it
        assert ometiff._plane_reader(arr) is ometiff._compute_planes
        out = omio.open(source).isel(Z=slice(0, 4, 2)).to_ometiff(tmp_path / "threads.ome.tif")
    np.testing.assert_array_equal(omio.open(out).to_numpy(), data[:, 0:4:2])


def test_a_failing_plane_read_from_the_optimized_graph_leaves_no_file(tmp_path: Path) -> None:
    import dask.array as da

    def broken(block_id: tuple[int, ...]) -> np.ndarray[Any, Any]:
        if block_id[:3] == (1, 0, 1):
            raise OSError("the disk went away")
        return np.zeros((1, 1, 1, 8, 8), np.uint8)

    arr = da.map_blocks(broken, chunks=((1, 1), (1,), (1, 1), (8,), (8,)), dtype=np.uint8)
    with pytest.raises(OSError, match="disk went away"):
        omio.from_array(arr, "TZCYX").to_ometiff(tmp_path / "broken.ome.tif")
    assert list(tmp_path.iterdir()) == []
