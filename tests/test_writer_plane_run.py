"""The OME-TIFF writer reads planes that a file stores as one run of bytes straight from it, one range per slab."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

import omio
from omio.errors import FileFormatError
from omio.readers import _pread as pread_module
from omio.readers import tiff as tiff_reader
from omio.writers import ometiff
from tests.test_thorlabs import experiment_xml, random_stored, write_raw


def data(shape: tuple[int, ...], dtype: str = "uint16", seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).integers(0, 250, size=shape).astype(dtype)


def counted_fills(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """Record each ``fill_from_file`` call as (path, offset, bytes)."""
    calls: list[tuple[str, int, int]] = []
    real = pread_module.fill_from_file

    def fill(path: str, offset: int, out: np.ndarray[Any, Any], **kwargs: Any) -> None:
        calls.append((path, offset, out.nbytes))
        real(path, offset, out, **kwargs)

    monkeypatch.setattr(pread_module, "fill_from_file", fill)
    return calls


def counted_page_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = tiff_reader._read_page
    monkeypatch.setattr(tiff_reader, "_read_page", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    return calls


def pages(path: Path) -> list[np.ndarray[Any, Any]]:
    """Every page's pixels, with its SubIFD levels, in file order."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        return [level.asarray() for level in series.levels]


@pytest.mark.parametrize(
    ("case", "pyramid"),
    [("ome", 1), ("ome", 3), ("imagej", 1), ("big-endian", 1), ("big-endian", 2), ("plain", 1)],
)
def test_a_contiguous_file_is_written_from_its_plane_run_as_dask_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, pyramid: int
) -> None:
    source = tmp_path / f"{case}.tif"
    pixels = data((3, 4, 2, 40, 36))
    if case == "ome":
        tifffile.imwrite(source, pixels, ome=True, metadata={"axes": "TZCYX"})
    elif case == "imagej":
        tifffile.imwrite(source, pixels, imagej=True, metadata={"axes": "TZCYX"})
    elif case == "big-endian":
        tifffile.imwrite(source, pixels, ome=True, byteorder=">", metadata={"axes": "TZCYX"})
    else:
        pixels = data((6, 40, 36), "float32")
        tifffile.imwrite(source, pixels, photometric="minisblack")
    page_reads = counted_page_reads(monkeypatch)  # before opening: the graph holds the page reader
    ds = omio.open(source)
    expected = ds.data.compute(scheduler="sync")
    page_reads.clear()
    fills = counted_fills(monkeypatch)
    ds.to_ometiff(tmp_path / "direct.ome.tif", pyramid=pyramid)
    assert len(fills) == len(ometiff._slabs(ds.data))  # one byte range per slab
    assert sum(n for _, _, n in fills) == expected.nbytes  # every plane read once
    assert page_reads == []  # no task per page
    # the same pixels through dask (a selection of all planes is a new array: the plane run is not used)
    fills.clear()
    via_dask = ds.isel(T=slice(None)).data + 0
    omio.from_array(via_dask, "TZCYX").to_ometiff(tmp_path / "dask.ome.tif", pyramid=pyramid)
    assert fills == []
    got, reference = pages(tmp_path / "direct.ome.tif"), pages(tmp_path / "dask.ome.tif")
    assert len(got) == len(reference) == pyramid
    for a, b in zip(got, reference, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got[0].reshape(expected.shape), expected)


@pytest.mark.parametrize("change", ["arithmetic", "selection", "rewritten"])
def test_pixels_other_than_the_files_go_through_dask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Only the file's own pixels, while it is unchanged, are read by the reader; ``rewritten``: as it now is."""
    source = tmp_path / "s.ome.tif"
    pixels = data((2, 3, 2, 16, 16))
    tifffile.imwrite(source, pixels, ome=True, metadata={"axes": "TZCYX"})
    page_reads = counted_page_reads(monkeypatch)  # before opening: the graph holds the page reader
    ds = omio.open(source)
    expected = pixels
    if change == "arithmetic":
        ds, expected = ds.pipe(lambda a: a + 1), pixels + 1
    elif change == "selection":
        ds, expected = ds.isel(Z=slice(1, 3)), pixels[:, 1:3]
    elif change == "rewritten":  # same shape, new pixels at other offsets
        expected = data((2, 3, 2, 16, 16), seed=1)
        tifffile.imwrite(source, expected, ome=True, metadata={"axes": "TZCYX"}, compression="zlib")
    fills = counted_fills(monkeypatch)
    out = ds.to_ometiff(tmp_path / "o.ome.tif")
    assert fills == [] and page_reads  # page by page, through the graph
    np.testing.assert_array_equal(omio.open(out).to_numpy(), expected)


@pytest.mark.parametrize("case", ["zlib", "zlib-big-endian", "lzw-tiles", "planar-rgb", "imagej-zlib"])
def test_compressed_pages_are_decoded_by_tifffile_into_each_slab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    source = tmp_path / f"{case}.tif"
    pixels = data((3, 4, 2, 32, 48))
    if case == "zlib":
        tifffile.imwrite(source, pixels, ome=True, metadata={"axes": "TZCYX"}, compression="zlib")
    elif case == "zlib-big-endian":
        tifffile.imwrite(source, pixels, ome=True, metadata={"axes": "TZCYX"}, compression="zlib", byteorder=">")
    elif case == "lzw-tiles":
        tifffile.imwrite(source, pixels, ome=True, metadata={"axes": "TZCYX"}, compression="lzw", tile=(16, 16))
    elif case == "imagej-zlib":
        tifffile.imwrite(source, pixels, imagej=True, metadata={"axes": "TZCYX"}, compression="zlib")
    else:  # three samples per page, stored one after another: three planes (C) per page
        pixels = data((4, 3, 32, 48), "uint8")
        tifffile.imwrite(source, pixels, photometric="rgb", planarconfig="separate", compression="zlib")
    page_reads = counted_page_reads(monkeypatch)  # before opening: the graph holds the page reader
    ds = omio.open(source)
    expected = ds.data.compute(scheduler="sync")
    page_reads.clear()
    fills = counted_fills(monkeypatch)
    out = ds.to_ometiff(tmp_path / "o.ome.tif", compression="zstd")
    assert fills == [] and page_reads == []  # no byte run, and no task per page
    np.testing.assert_array_equal(omio.open(out).to_numpy(), expected)


def test_a_damaged_page_tag_means_the_same_to_a_whole_read_and_the_writer(tmp_path: Path) -> None:
    """Whole-series reads decode every page with the first page's layout, as tifffile reads a series.

    A page read alone is parsed on its own, so there the damage is an error naming the file.
    """
    source = tmp_path / "s.ome.tif"
    pixels = data((2, 3, 1, 32, 32))
    tifffile.imwrite(source, pixels, ome=True, metadata={"axes": "TZCYX"}, compression="zlib")
    with tifffile.TiffFile(source) as tif:
        entry = tif.pages[2].tags["Compression"].offset  # classic TIFF: code, type, count, then the value
    with open(source, "r+b") as fh:
        fh.seek(entry + 8)
        fh.write((247).to_bytes(2, "little"))  # not a known compression
    ds = omio.open(source)
    np.testing.assert_array_equal(ds.to_numpy(), pixels)
    out = ds.to_ometiff(tmp_path / "o.ome.tif")
    np.testing.assert_array_equal(omio.open(out).to_numpy(), pixels)
    with pytest.raises(FileFormatError, match=r"s\.ome\.tif"):
        ds.isel(T=0, Z=2).to_numpy()


def test_a_file_changed_while_it_is_written_raises_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "s.ome.tif"
    tifffile.imwrite(source, data((4, 2, 1, 1024, 1024)), ome=True, metadata={"axes": "TZCYX"})
    ds = omio.open(source)
    assert len(ometiff._slabs(ds.data)) == 2  # 8 MB each: the file changes after the first
    real = pread_module.fill_from_file

    def fill_then_touch(path: str, offset: int, out: np.ndarray[Any, Any], **kwargs: Any) -> None:
        real(path, offset, out, **kwargs)
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # another program writes to it

    monkeypatch.setattr(pread_module, "fill_from_file", fill_then_touch)
    with pytest.raises(FileFormatError, match=r"s\.ome\.tif: the file changed .* nothing was written"):
        ds.to_ometiff(tmp_path / "o.ome.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.ome.tif"]


def test_a_file_truncated_after_opening_raises_a_format_error(tmp_path: Path) -> None:
    source = tmp_path / "s.ome.tif"
    tifffile.imwrite(source, data((2, 2, 1, 32, 32)), ome=True, metadata={"axes": "TZCYX"})
    ds = omio.open(source)
    with open(source, "r+b") as fh:
        fh.truncate(3000)
    with pytest.raises(FileFormatError, match=r"s\.ome\.tif"):
        ds.to_ometiff(tmp_path / "o.ome.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.ome.tif"]


@pytest.mark.parametrize(("flyback", "direct"), [(0, True), (1, False)])
def test_a_thorlabs_raw_file_is_written_from_its_plane_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flyback: int, direct: bool
) -> None:
    folder = tmp_path / "acq"
    if flyback:
        stored = random_stored((2, 4, 2, 4, 6), seed=3)
        xml = experiment_xml(waves=("ChanA", "ChanB"), enable=3, frames=2, fast_z=1, flyback=1, steps=3)
    else:
        stored = random_stored((3, 1, 2, 4, 6), seed=4)
        xml = experiment_xml(waves=("ChanA", "ChanB"), enable=3, frames=3)
    write_raw(folder, stored, xml)
    ds = omio.open(folder)
    expected = ds.data.compute(scheduler="sync")
    fills = counted_fills(monkeypatch)
    out = ds.to_ometiff(tmp_path / "o.ome.tif")
    assert bool(fills) is direct
    np.testing.assert_array_equal(omio.open(out).to_numpy(), expected)


def chunking(n: int) -> st.SearchStrategy[tuple[int, ...]]:
    """Chunk sizes that add up to ``n``."""
    return st.lists(st.integers(1, n), min_size=1, max_size=n).map(lambda cuts: _split(n, cuts))


def _split(n: int, cuts: list[int]) -> tuple[int, ...]:
    bounds = sorted({0, n, *(c % n for c in cuts)})
    return tuple(b - a for a, b in itertools.pairwise(bounds))


@settings(max_examples=200, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 7), st.integers(1, 7), st.integers(1, 3)),
    data_=st.data(),
    target_planes=st.integers(1, 20),
)
def test_slabs_are_runs_of_whole_chunks_grouped_up_to_the_target(
    shape: tuple[int, int, int], data_: st.DataObject, target_planes: int
) -> None:
    import dask.array as da

    t, z, c = shape
    chunks = (data_.draw(chunking(t)), data_.draw(chunking(z)), data_.draw(chunking(c)), (4,), (4,))
    arr = da.zeros((t, z, c, 4, 4), dtype=np.uint8, chunks=chunks)
    plane = 16 * c  # bytes of all C of one (T, Z)
    target = target_planes * plane
    slabs = ometiff._slabs(arr, target_bytes=target)
    # every (T, Z) once, in order, each slab one T or whole Z stacks: one run of consecutive planes
    seen = [(ti, zi) for ts, zs in slabs for ti in range(ts.start, ts.stop) for zi in range(zs.start, zs.stop)]
    assert seen == [(ti, zi) for ti in range(t) for zi in range(z)]
    assert all(ts.stop - ts.start == 1 or (zs.start, zs.stop) == (0, z) for ts, zs in slabs)
    # unions of whole chunks
    t_bounds = set(itertools.accumulate(chunks[0], initial=0))
    z_bounds = set(itertools.accumulate(chunks[1], initial=0))
    assert all({ts.start, ts.stop} <= t_bounds and {zs.start, zs.stop} <= z_bounds for ts, zs in slabs)
    size = [(ts.stop - ts.start) * (zs.stop - zs.start) * plane for ts, zs in slabs]
    for (ts, zs), n in zip(slabs, size, strict=True):
        if n > target:  # only a slab that cannot be cut: one T chunk, and one Z chunk or whole Z stacks
            assert {ts.start, ts.stop} == {ts.start, min(b for b in t_bounds if b > ts.start)}
            assert (zs.start, zs.stop) == (0, z) or zs.stop == min(b for b in z_bounds if b > zs.start)
    # slabs of whole Z stacks next to each other are as large as the target allows: small time points are grouped
    for (a, b), (n_a, n_b) in zip(itertools.pairwise(slabs), itertools.pairwise(size), strict=True):
        if a[1] == b[1] == slice(0, z):
            assert n_a + n_b > target
