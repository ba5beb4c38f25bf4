"""Whole-range reads split between threads (omio.readers._pread)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omio.errors import FileFormatError
from omio.readers import _pread


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
@pytest.mark.parametrize("n_bytes", [0, 1, 4095, 4097, 3 * 4096 + 17])
def test_fill_from_file_copies_the_range_whatever_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int, n_bytes: int
) -> None:
    monkeypatch.setattr(_pread, "_MIN_PART", 1)  # split even tiny ranges, so that every part boundary is exercised
    payload = np.random.default_rng(n_bytes).integers(0, 256, 100 + n_bytes + 50, dtype=np.uint8)
    path = tmp_path / "data.bin"
    path.write_bytes(payload.tobytes())
    out = np.full(n_bytes, 7, dtype=np.uint8)
    _pread.fill_from_file(str(path), 100, out, threads=threads)
    np.testing.assert_array_equal(out, payload[100 : 100 + n_bytes])


def test_fill_from_file_fills_multibyte_arrays_in_file_order(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 5, dtype="<u2").reshape(2, 3, 5)
    path = tmp_path / "data.bin"
    path.write_bytes(b"head" + data.tobytes())
    out = np.empty(data.shape, dtype="<u2")
    _pread.fill_from_file(str(path), 4, out)
    np.testing.assert_array_equal(out, data)


def test_fill_from_file_raises_naming_the_truncated_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pread, "_MIN_PART", 1)
    path = tmp_path / "short.bin"
    path.write_bytes(bytes(10_000))
    out = np.empty(12_000, dtype=np.uint8)
    with pytest.raises(FileFormatError, match=r"short\.bin.*needs 12010 bytes, has 10000.*truncated"):
        _pread.fill_from_file(str(path), 10, out, threads=3)


def test_fill_from_file_refuses_a_strided_destination(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(100))
    with pytest.raises(ValueError, match="C-contiguous"):
        _pread.fill_from_file(str(path), 0, np.empty((10, 10), np.uint8)[:, ::2])


def test_cpu_count_without_an_affinity_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS and Windows have no os.sched_getaffinity: the thread counts fall back to os.cpu_count()."""
    import os

    from omio._scheduler import cpu_count

    if hasattr(os, "sched_getaffinity"):
        assert cpu_count() == len(os.sched_getaffinity(0))
        monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert cpu_count() == 3
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert cpu_count() == 1
