"""Writers clean up after themselves: stale temporaries, storage errors, permissions."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import omio
from omio.errors import OmioError, OutputError
from omio.writers import _output
from omio.writers._output import atomic_directory, atomic_output, remove_stale_temporaries


def _small() -> omio.MicroscopyDataset:
    return omio.from_array(np.arange(64, dtype=np.uint16).reshape(8, 8), "YX")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temporary(folder: Path, stem: str, suffix: str, *, pid: int, host: str | None = None, age: float = 3600) -> Path:
    path = folder / f".{stem}.omio-partial-{host or _output._HOST}-{pid}-0123abcd{suffix}"
    path.write_bytes(b"x" * 1000)
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_temporary_names_carry_the_pid_and_a_lock_is_held_while_writing(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "a.ome.tif") as (tmp, _):
        assert tmp.name.startswith(".a.omio-partial-") and tmp.name.endswith(".ome.tif")
        assert f"-{os.getpid()}-" in tmp.name
        fd = os.open(tmp, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        tmp.write_bytes(b"done")
    assert [p.name for p in tmp_path.iterdir()] == ["a.ome.tif"]


def test_stale_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path: Path) -> None:
    dead = _temporary(tmp_path, "cells", ".ome.tif", pid=_dead_pid())
    live = _temporary(tmp_path, "cells", ".ome.tif", pid=os.getpid())  # this process: alive
    young = _temporary(tmp_path, "cells", ".ome.tif", pid=_dead_pid(), age=0)  # a writer may just have started
    other_host = _temporary(tmp_path, "cells", ".ome.tif", pid=_dead_pid(), host="00000000")
    other_target = _temporary(tmp_path, "nuclei", ".ome.tif", pid=_dead_pid())
    locked = _temporary(tmp_path, "cells", ".ome.tif", pid=_dead_pid())
    fd = os.open(locked, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a live writer (e.g. in a PID namespace we cannot see) holds its lock
    try:
        out = _small().to_ometiff(tmp_path / "cells.ome.tif")
    finally:
        os.close(fd)
    assert out == tmp_path / "cells.ome.tif"
    assert not dead.exists()
    assert live.exists() and young.exists() and other_host.exists() and other_target.exists() and locked.exists()
    # once its lock is released, the dead writer's one goes; another host's once unchanged for a day
    assert remove_stale_temporaries(tmp_path / "cells.ome.tif") == [locked]
    os.utime(other_host, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    assert remove_stale_temporaries(tmp_path / "cells.ome.tif") == [other_host]
    assert live.exists() and young.exists() and other_target.exists()


def test_stale_zarr_temporary_folder_is_removed(tmp_path: Path) -> None:
    stale = tmp_path / f".img.omio-partial-{_output._HOST}-{_dead_pid()}-0123abcd.ome.zarr"
    (stale / "0").mkdir(parents=True)
    (stale / "0" / "chunk").write_bytes(b"x" * 100)
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    out = _small().to_omezarr(tmp_path / "img.ome.zarr")
    assert out == tmp_path / "img.ome.zarr"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.ome.zarr"]


def _disk_full(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_names_the_requested_path_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tifffile.TiffWriter, "write", _disk_full)
    target = tmp_path / "full.ome.tif"
    with pytest.raises(OutputError) as info:
        _small().to_ometiff(target)
    assert isinstance(info.value, OmioError) and isinstance(info.value, OSError)
    assert info.value.errno == errno.ENOSPC
    message = str(info.value)
    assert str(target) in message and "omio-partial" not in message and "free space" in message
    assert list(tmp_path.iterdir()) == []


def test_disk_full_in_omezarr_names_the_requested_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from omio.writers import omezarr

    monkeypatch.setattr(omezarr, "_store", _disk_full)
    target = tmp_path / "full.ome.zarr"
    with pytest.raises(OutputError, match=r"full\.ome\.zarr: No space left") as info:
        _small().to_omezarr(target)
    assert info.value.errno == errno.ENOSPC and "omio-partial" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_an_error_naming_the_temporary_is_reported_under_the_target(tmp_path: Path) -> None:
    target = tmp_path / "t.ome.tif"
    with pytest.raises(OutputError) as info, atomic_output(target) as (tmp, _):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp))
    assert str(target) in str(info.value) and "omio-partial" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_other_errors_pass_through(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_output(tmp_path / "t.ome.tif"):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/some/input.tif")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    mask: int = request.param
    old = os.umask(mask)
    try:
        yield mask
    finally:
        os.umask(old)


@pytest.mark.parametrize(
    ("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)], indirect=["umask"]
)
def test_outputs_follow_the_umask(tmp_path: Path, umask: int, file_mode: int, dir_mode: int) -> None:
    tif = _small().to_ometiff(tmp_path / "m.ome.tif")
    assert stat.S_IMODE(tif.stat().st_mode) == file_mode
    again = _small().to_ometiff(tmp_path / "m.ome.tif", overwrite=True)
    assert stat.S_IMODE(again.stat().st_mode) == file_mode
    zarr = _small().to_omezarr(tmp_path / "m.ome.zarr")
    assert stat.S_IMODE(zarr.stat().st_mode) == dir_mode
    assert stat.S_IMODE((zarr / "zarr.json").stat().st_mode) == file_mode


def test_atomic_directory_overwrite_keeps_no_set_aside_copy(tmp_path: Path) -> None:
    target = tmp_path / "d.ome.zarr"
    for content in (b"one", b"two"):
        with atomic_directory(target, overwrite=True) as (tmp, _):
            (tmp / "f").write_bytes(content)
    assert (target / "f").read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["d.ome.zarr"]
