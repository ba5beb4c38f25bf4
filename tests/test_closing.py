"""When omio's file handles close: eviction, ds.close(), ``with``, garbage collection, threads."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import omio
from omio.readers import _handles
from omio.readers._handles import cached_handle, close_cached_handles, open_handle_count


def open_files() -> set[str]:
    """The files this process has open, from /proc/self/fd."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc/self/fd")
    found = set()
    for fd in fds.iterdir():
        try:
            found.add(os.path.realpath(os.readlink(fd)))
        except OSError:  # the fd of the listing itself is gone by now
            continue
    return found


def is_open(path: Path) -> bool:
    return os.path.realpath(path) in open_files()


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    close_cached_handles()
    yield
    close_cached_handles()


@pytest.fixture
def pixels() -> np.ndarray:
    return np.arange(3 * 2 * 16 * 12, dtype="uint16").reshape(3, 2, 16, 12)


@pytest.fixture
def ometiff(tmp_path: Path, pixels: np.ndarray) -> Path:
    return omio.MicroscopyDataset.from_array(pixels, axes="ZCYX").to_ometiff(tmp_path / "a.ome.tif")


CLOSED: list[str] = []


class _Handle:
    """A handle that fails when read after being closed."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.closed = False

    def read(self) -> str:
        if self.closed:
            raise ValueError(f"read of closed handle {self.path}")
        return self.path

    def close(self) -> None:
        self.closed = True
        CLOSED.append(self.path)


def _open_fake(path: str) -> _Handle:
    return _Handle(path)


def test_eviction_keeps_a_handle_in_use_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_handles, "_MAX_OPEN", 1)
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    held = cached_handle(_open_fake, a)
    other = cached_handle(_open_fake, b)  # evicts a's handle from the cache
    assert not held.closed and held.read() == str(a)
    assert open_handle_count() == 2
    del held
    assert open_handle_count() == 1  # closed once no one refers to it
    assert not other.closed


def test_closed_handles_close_after_their_reader_lets_go(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.write_bytes(b"a")
    held = cached_handle(_open_fake, a)
    CLOSED.clear()
    close_cached_handles(a)
    assert not held.closed and open_handle_count() == 1
    del held
    assert open_handle_count() == 0
    assert CLOSED == [str(a)]


def test_many_threads_with_a_tiny_cache_all_read(
    tmp_path: Path, pixels: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_handles, "_MAX_OPEN", 1)
    datasets = [
        omio.MicroscopyDataset.from_array(pixels + i, axes="ZCYX").to_ometiff(tmp_path / f"{i}.ome.tif")
        for i in range(8)
    ]
    opened = [omio.open(p) for p in datasets]
    failures: list[BaseException] = []
    start = threading.Barrier(len(opened))

    def work(i: int) -> None:
        try:
            start.wait()
            for _ in range(5):
                got = opened[i].data.compute(scheduler="synchronous")
                np.testing.assert_array_equal(got[0], pixels + i)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(opened))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert open_handle_count() <= 1


def test_with_block_and_close_release_the_file(ometiff: Path, pixels: np.ndarray) -> None:
    with omio.open(ometiff) as ds:
        np.testing.assert_array_equal(ds.to_numpy()[0], pixels)
        ds.data.sum().compute()
        assert is_open(ometiff)
    assert not is_open(ometiff)
    assert open_handle_count() == 0
    # reading a closed dataset opens the file again
    np.testing.assert_array_equal(ds.data.compute()[0], pixels)
    assert is_open(ometiff)
    ds.close()
    ds.close()
    assert not is_open(ometiff)


def test_last_dataset_gone_closes_the_file(ometiff: Path, pixels: np.ndarray) -> None:
    ds = omio.open(ometiff)
    plane = ds.isel(Z=1)
    ds.data.compute()
    del ds
    gc.collect()
    assert is_open(ometiff)  # `plane` still reads it
    np.testing.assert_array_equal(plane.data.compute()[0, 0], pixels[1])
    del plane
    gc.collect()
    assert not is_open(ometiff)
    assert open_handle_count() == 0


def test_closing_a_dataset_keeps_other_files_open(tmp_path: Path, pixels: np.ndarray) -> None:
    a = omio.MicroscopyDataset.from_array(pixels, axes="ZCYX").to_ometiff(tmp_path / "a.ome.tif")
    b = omio.MicroscopyDataset.from_array(pixels, axes="ZCYX").to_ometiff(tmp_path / "b.ome.tif")
    da_, db = omio.open(a), omio.open(b)
    da_.data.compute()
    db.data.compute()
    da_.close()
    assert not is_open(a) and is_open(b)
    db.close()


def test_closed_dataset_computes_on_a_distributed_cluster(ometiff: Path, pixels: np.ndarray) -> None:
    distributed = pytest.importorskip("distributed")
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)
    ds = omio.open(ometiff)
    ds.close()
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster),
    ):
        np.testing.assert_array_equal(ds.data.compute()[0], pixels)
