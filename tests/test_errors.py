"""Bad input gets a clear omio.errors exception naming the file; nothing hangs."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile

import omio
from omio.errors import FileFormatError, OmioError, UnsupportedFormatError


def test_random_bytes_with_tiff_suffix(tmp_path: Path) -> None:
    path = tmp_path / "noise.tif"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(FileFormatError, match=r"noise\.tif.*not"):
        omio.open(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.ome.tif"
    path.touch()
    with pytest.raises(FileFormatError, match="empty"):
        omio.open(path)


def test_wrong_suffix_is_read_by_content(tmp_path: Path) -> None:
    path = tmp_path / "actually_a_tiff.czi"
    tifffile.imwrite(path, np.ones((3, 8, 8), np.uint8), photometric="minisblack", metadata=None)
    ds = omio.open(path)
    assert ds.source.format == "tiff" and ds.shape == (3, 1, 1, 8, 8)


def test_unknown_format_and_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(UnsupportedFormatError, match=r"notes\.txt"):
        omio.open(path)
    with pytest.raises(FileNotFoundError):
        omio.open(tmp_path / "missing.tif")
    with pytest.raises(UnsupportedFormatError, match="folder"):
        omio.open(tmp_path)


def test_header_only_tiff(tmp_path: Path) -> None:
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.ones((4, 32, 32), np.uint16), photometric="minisblack", metadata=None)
    path.write_bytes(path.read_bytes()[:12])
    with pytest.raises(FileFormatError, match=r"cut\.tif"):
        omio.open(path).to_numpy()


def test_corrupt_compressed_plane_raises_on_read(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.ome.tif"
    omio.from_array(np.arange(2 * 64 * 64, dtype=np.uint16).reshape(2, 64, 64) % 97, "ZYX").to_ometiff(path)
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[1].dataoffsets[0]
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    ds = omio.open(path)
    with pytest.raises(FileFormatError, match=r"corrupt\.ome\.tif.*page 1"):
        ds.to_numpy()


def test_errors_subclass_builtins() -> None:
    assert issubclass(FileFormatError, ValueError) and issubclass(FileFormatError, OmioError)
    assert issubclass(omio.errors.OutputExistsError, FileExistsError)
    assert issubclass(omio.errors.MissingDependencyError, ImportError)


def _tiny_tiff(tmp_path: Path) -> Path:
    import tifffile

    path = tmp_path / "tiny.tif"
    tifffile.imwrite(path, np.arange(2 * 8 * 8, dtype="uint16").reshape(2, 8, 8))
    return path


def test_foreign_exception_while_opening_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import omio.readers.tiff as tiff_reader

    path = _tiny_tiff(tmp_path)

    def broken(tif: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(tiff_reader, "_image_series", broken)
    with pytest.raises(FileFormatError, match=r"tiny\.tif: cannot open it \(ZeroDivisionError") as info:
        omio.open(path)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    with pytest.raises(FileFormatError, match=r"tiny\.tif: cannot list its images"):
        omio.scenes(path)


def test_foreign_exception_in_a_chunk_read_names_file_and_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import omio.readers.tiff as tiff_reader

    path = _tiny_tiff(tmp_path)

    def broken(*args: object) -> np.ndarray:
        raise struct.error("unpack requires a buffer of 4 bytes")

    monkeypatch.setattr(tiff_reader, "_read_page", broken)
    ds = omio.open(path)
    with pytest.raises(FileFormatError, match=r"tiny\.tif: cannot read chunk \(1, 0, 0\) .*struct\.error"):
        ds.isel(T=1).to_numpy()


def test_user_path_errors_pass_through_the_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import omio.readers.tiff as tiff_reader

    path = _tiny_tiff(tmp_path)

    def denied(tif: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(tiff_reader, "_image_series", denied)
    with pytest.raises(PermissionError):
        omio.open(path)
