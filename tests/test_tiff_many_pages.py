"""OME-TIFF files of thousands of pages: checked page by page with numpy, read through a lazy task graph."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from dask.blockwise import Blockwise

import omio
from omio.errors import FileFormatError
from omio.readers._handles import files_read_by
from omio.readers.tiff import _check_disjoint

SHAPE = (150, 10, 2, 8, 8)  # 3000 pages


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.default_rng(17).integers(0, 60000, SHAPE, dtype="uint16")


def write(path: Path, pixels: np.ndarray) -> Path:
    tifffile.imwrite(path, pixels, photometric="minisblack", ome=True, metadata={"axes": "TZCYX"})
    return path


def set_strip_offset(path: Path, page: int, value: int) -> Path:
    """Overwrite the (inline, LONG) StripOffsets value of one page of a classic TIFF."""
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[page].tags[273].valueoffset  # type: ignore[union-attr]
    data = bytearray(path.read_bytes())
    data[offset : offset + 4] = struct.pack("<I", value)
    path.write_bytes(bytes(data))
    return path


def test_every_plane_of_a_many_page_file_reads_as_written(tmp_path: Path, pixels: np.ndarray) -> None:
    path = write(tmp_path / "many.ome.tif", pixels)
    ds = omio.open(path)
    assert ds.shape == SHAPE
    assert ds.data.numblocks == (*SHAPE[:3], 1, 1)  # one chunk per page
    np.testing.assert_array_equal(ds.isel(T=0, Z=0, C=0).to_numpy()[0, 0, 0], pixels[0, 0, 0])
    np.testing.assert_array_equal(ds.isel(T=149, Z=9, C=1).to_numpy()[0, 0, 0], pixels[149, 9, 1])
    np.testing.assert_array_equal(ds.isel(T=slice(70, 73)).to_numpy(), pixels[70:73])
    np.testing.assert_array_equal(ds.to_numpy(), pixels)


def test_the_graph_of_pages_in_order_is_not_one_task_per_page_at_opening(tmp_path: Path, pixels: np.ndarray) -> None:
    path = write(tmp_path / "many.ome.tif", pixels)
    ds = omio.open(path)
    layers = ds.data.dask.layers.values()
    readers = [layer for layer in layers if isinstance(layer, Blockwise) and not layer.is_materialized()]
    assert readers, [type(layer).__name__ for layer in layers]
    assert str(path) in files_read_by(ds.data)  # so that closing the dataset closes the file


def test_a_page_in_the_middle_whose_pixels_overlap_its_neighbour_is_an_error(
    tmp_path: Path, pixels: np.ndarray
) -> None:
    path = write(tmp_path / "many.ome.tif", pixels)
    with tifffile.TiffFile(path) as tif:
        before = tif.pages[1499].dataoffsets[0]  # type: ignore[union-attr]
    set_strip_offset(path, 1500, before + 16)
    with pytest.raises(FileFormatError, match="overlap"):
        omio.open(path)


def test_a_page_in_the_middle_whose_pixels_lie_beyond_the_file_is_an_error(tmp_path: Path, pixels: np.ndarray) -> None:
    path = write(tmp_path / "many.ome.tif", pixels)
    set_strip_offset(path, 1700, path.stat().st_size - 64)
    with pytest.raises(FileFormatError, match=r"page 1700 needs bytes up to .* the file is truncated"):
        omio.open(path)


def test_overlaps_are_found_in_any_order_and_repeated_extents_are_allowed() -> None:
    _check_disjoint("f.tif", [(300, 100), (100, 100), (100, 100), (0, 0), (200, 100)])
    _check_disjoint("f.tif", np.array([[100, 100], [200, 100]]))
    with pytest.raises(FileFormatError, match=r"bytes 100\.\.200 and 150\.\.250 overlap"):
        _check_disjoint("f.tif", [(300, 10), (150, 100), (100, 100), (100, 100)])
    with pytest.raises(FileFormatError, match=r"bytes 100\.\.150 and 100\.\.200 overlap"):
        _check_disjoint("f.tif", [(100, 100), (100, 50)])
