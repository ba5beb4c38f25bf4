"""Trust under bad input: folders and batches skip what they cannot read and never write outside
their output root; writers clean up after themselves (stale temporaries, storage errors, permissions).
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import omio
from omio import compat, folders
from omio.bids import convert, scan
from omio.cli import main
from omio.errors import OmioError, OutputError
from omio.merge import merge_provenance
from omio.writers import _output
from omio.writers._output import atomic_directory, atomic_output, remove_stale_temporaries


def write(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.full((2, 8, 8), value, "uint16"), photometric="minisblack")


Deny = Callable[[Path], None]


@pytest.fixture
def deny(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deny]:
    """Make files or folders unreadable: ``chmod 000``, or, as root (who reads anything), fail opening them."""
    denied: list[Path] = []
    as_root = os.geteuid() == 0
    real_open, real_scandir = open, os.scandir

    def refuse(path: Any) -> None:
        if Path(path).absolute() in denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    def guarded_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        refuse(path)
        return real_open(path, *args, **kwargs)

    def guarded_scandir(path: Any = ".") -> Any:
        refuse(path)
        return real_scandir(path)

    def make_unreadable(path: Path) -> None:
        denied.append(path.absolute())
        if not as_root:
            path.chmod(0)

    if as_root:
        monkeypatch.setattr("omio.readers.open", guarded_open, raising=False)  # the sniffing of find_reader
        monkeypatch.setattr(os, "scandir", guarded_scandir)
    yield make_unreadable
    if not as_root:
        for path in denied:
            path.chmod(0o755)


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


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_disk_full_in_omezarr_names_the_requested_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    import zarr

    from omio.writers import omezarr

    monkeypatch.setattr(omezarr._ShardWriter, "put", _disk_full)  # NGFF 0.5: chunks appended to shard files
    monkeypatch.setattr(zarr.Array, "__setitem__", _disk_full)  # NGFF 0.4: chunks written by Zarr
    monkeypatch.setattr(omezarr, "_store", _disk_full)  # with a dask.distributed client
    target = tmp_path / "full.ome.zarr"
    with pytest.raises(OutputError, match=r"full\.ome\.zarr: No space left") as info:
        _small().to_omezarr(target, version=version)
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


def test_the_ometiff_temporary_is_written_without_truncation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ext4 flushes a file truncated and then written to disk whole when it is closed; the new temporary needs
    # no truncation, so it is opened "r+b" (tifffile would open a path "wb")
    opened: list[tuple[str, str]] = []
    real_open = builtins.open

    def spy(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened.append((str(file), mode))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    out = _small().to_ometiff(tmp_path / "m.ome.tif")
    monkeypatch.undo()
    temporaries = [mode for name, mode in opened if ".omio-partial-" in name]
    assert temporaries and all("w" not in mode and "+" in mode for mode in temporaries), temporaries
    np.testing.assert_array_equal(omio.open(out).to_numpy(), _small().to_numpy())


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


# ---------------------------------------------------------------------- folders and batch


def test_open_folder_skips_loops_broken_links_and_unreadable_entries(tmp_path: Path, deny: Deny) -> None:
    folder = tmp_path / "images"
    for i in (1, 2, 3):
        write(folder / f"img_{i}.tif", i)
    (folder / "loop.tif").symlink_to("loop.tif")
    (folder / "ping").symlink_to("pong")
    (folder / "pong").symlink_to("ping")
    (folder / "broken.tif").symlink_to(folder / "gone.tif")
    deny(folder / "img_3.tif")
    for on_error in ("raise", "skip"):
        contents = folders.open_folder(folder, on_error=on_error)  # type: ignore[call-overload]
        assert [p.name for p in contents.files] == ["img_1.tif", "img_2.tif"]
        reasons = {s.path.name: s.reason for s in contents.skipped}
        assert set(reasons) == {"loop.tif", "ping", "pong", "broken.tif", "img_3.tif"}
        assert all(reasons[n].startswith("symbolic link loop") for n in ("loop.tif", "ping", "pong"))
        assert reasons["broken.tif"].startswith("broken symbolic link")
        assert reasons["img_3.tif"].startswith("permission denied")
    merged = folders.open_folder(folder, merge_along="T", on_error="skip")
    prov = merge_provenance(merged)
    assert prov is not None and len(prov["extra"]["skipped"]) == 5


def test_links_out_of_the_folder_are_followed_only_when_asked(tmp_path: Path) -> None:
    folder, outside = tmp_path / "images", tmp_path / "elsewhere"
    write(folder / "inner.tif", 1)
    write(outside / "far.tif", 9)
    (folder / "alias.tif").symlink_to(folder / "inner.tif")  # inside: always followed
    (folder / "far.tif").symlink_to(outside / "far.tif")
    (folder / "everything").symlink_to("/")
    contents = folders.open_folder(folder)
    assert [p.name for p in contents.files] == ["alias.tif", "inner.tif"]
    reasons = {s.path.name: s.reason for s in contents.skipped}
    assert set(reasons) == {"far.tif", "everything"}
    assert "outside" in reasons["far.tif"] and "follow_symlinks=True" in reasons["far.tif"]
    followed = folders.open_folder(folder, follow_symlinks=True)
    assert [p.name for p in followed.files] == ["alias.tif", "far.tif", "inner.tif"]
    assert int(followed[1].to_numpy().max()) == 9
    assert "not an acquisition" in {s.path.name: s.reason for s in followed.skipped}["everything"]


def test_folder_stack_skips_looping_and_outside_tag_folders(tmp_path: Path) -> None:
    parent = tmp_path / "stack"
    write(parent / "TAG_01" / "image.tif", 1)
    write(tmp_path / "elsewhere" / "image.tif", 2)
    (parent / "TAG_02").symlink_to(tmp_path / "elsewhere")
    (parent / "TAG_03").symlink_to("TAG_03")
    merged = folders.open_folder_stack(parent, tag="TAG_")
    assert merged.to_numpy()[:, 0, 0, 0, 0].tolist() == [1, 1]
    prov = merge_provenance(merged)
    assert prov is not None
    assert sorted(Path(s["path"]).name for s in prov["extra"]["skipped"]) == ["TAG_02", "TAG_03"]
    followed = folders.open_folder_stack(parent, tag="TAG_", follow_symlinks=True)
    assert followed.to_numpy()[:, 0, 0, 0, 0].tolist() == [1, 1, 2, 2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write(root / "sub-01" / "exp_TP001" / "image.tif", 1)
    write(root / "sub-01" / "exp_TP002" / "TAG_01" / "image1.tif", 2)
    write(root / "sub-02" / "exp_TP001" / "image.tif", 3)
    return root


def test_scan_and_batch_skip_what_they_cannot_read(project: Path, deny: Deny, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = project / "sub-01" / "exp_TP001"
    (exp / "loop.tif").symlink_to("loop.tif")
    (exp / "broken.tif").symlink_to(exp / "gone.tif")
    (project / "sub-01" / "exp_TP002" / "TAG_03").symlink_to("/")  # a tag folder linked to the file system root
    (project / "sub-03").symlink_to(project / "sub-03")
    write(project / "sub-02" / "exp_TP001" / "secret.tif", 7)
    write(project / "sub-02" / "exp_TP009" / "image.tif", 8)
    deny(project / "sub-02" / "exp_TP001" / "secret.tif")
    deny(project / "sub-02" / "exp_TP009")
    sniffed: list[Path] = []
    real_find = folders.find_reader
    monkeypatch.setattr(folders, "find_reader", lambda p: (sniffed.append(Path(p)), real_find(p))[1])
    table = scan(project, exp="TP", tagfolder="TAG_")
    assert sniffed and all(p.resolve().is_relative_to(project.resolve()) for p in sniffed)
    reasons = {s.path.relative_to(project).as_posix(): s.reason for s in table.skipped}
    assert set(reasons) == {
        "sub-03",
        "sub-01/exp_TP001/loop.tif",
        "sub-01/exp_TP001/broken.tif",
        "sub-01/exp_TP002/TAG_03",
        "sub-02/exp_TP001/secret.tif",
        "sub-02/exp_TP009",
    }
    assert reasons["sub-03"].startswith("symbolic link loop")
    assert "outside" in reasons["sub-01/exp_TP002/TAG_03"]
    assert reasons["sub-02/exp_TP009"].startswith("permission denied")
    assert [r.inputs[0].name for r in table] == ["image.tif", "image1.tif", "image.tif"]
    report = convert(table, progress=False)
    assert report.summary == {"converted": 3}
    assert report.report_path is not None
    doc = json.loads(report.report_path.read_text())
    assert {Path(s["path"]).name for s in doc["skipped_entries"]} == {Path(k).name for k in reasons}
    followed = scan(project, exp="TP", tagfolder="TAG_", follow_symlinks=True)
    assert "sub-01/exp_TP002/TAG_03" not in {s.path.relative_to(project).as_posix() for s in followed.skipped}


def test_batch_never_writes_outside_the_output_root(project: Path, tmp_path: Path) -> None:
    write(project / "sub-02" / "exp_TP002" / "image.tif", 4)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "sub-01").symlink_to(elsewhere)  # a planted folder link
    (out / "sub-02" / "exp_TP001").mkdir(parents=True)
    (out / "sub-02" / "exp_TP001" / "image.ome.tif").symlink_to(elsewhere / "planted.ome.tif")  # a planted file link
    table = scan(project, exp="TP", tagfolder="TAG_", output_root=out)
    for overwrite in (False, True):
        report = convert(table, progress=False, overwrite=overwrite)
        assert report.summary == {"failed": 3, "converted": 1}
        for failed in report.failed:
            assert (failed.error or "").startswith("OutputError") and "outside the output folder" in (
                failed.error or ""
            )
            assert failed.output in (failed.error or "")
        assert list(elsewhere.iterdir()) == []
    assert (out / "sub-02" / "exp_TP002" / "image.ome.tif").is_file()
    assert (out / "omio_batch_report.json").is_file()


def test_batch_never_replaces_a_file_it_did_not_write(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    target = out / "sub-01" / "exp_TP001" / "image.ome.tif"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"someone's notes")
    (out / "omio_batch_report.json").write_text("my own notes")
    table = scan(project, exp="TP", tagfolder="TAG_", output_root=out)
    report = convert(table, progress=False)
    assert report.summary == {"converted": 2, "failed": 1}
    (failed,) = report.failed
    assert failed.output == str(target) and "OutputExistsError" in (failed.error or "")
    assert target.read_bytes() == b"someone's notes"
    assert (out / "omio_batch_report.json").read_text() == "my own notes"
    assert report.report_path == out / "omio_batch_report_1.json"
    again = convert(table, progress=False)  # an earlier report is replaced
    assert again.report_path == out / "omio_batch_report_1.json" and again.summary == {"skipped": 2, "failed": 1}
    assert convert(table, progress=False, overwrite=True).summary == {"converted": 3}
    assert omio.open(target).to_numpy().max() == 1


def test_compat_outputs_stay_in_their_folder(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "images", tmp_path / "elsewhere"
    write(folder / "a.tif", 1)
    elsewhere.mkdir()
    (folder / compat.CONVERTED_FOLDER).symlink_to(elsewhere)
    with pytest.raises(OutputError, match="outside the output folder"):
        compat.convert_to_ometiff(folder)
    assert list(elsewhere.iterdir()) == []
    (folder / compat.CONVERTED_FOLDER).unlink()
    (folder / compat.CONVERTED_FOLDER).mkdir()
    (folder / compat.CONVERTED_FOLDER / "a.ome.tif").write_bytes(b"notes")
    (written,) = compat.convert_to_ometiff(folder)
    assert written.name == "a_1.ome.tif" and (folder / compat.CONVERTED_FOLDER / "a.ome.tif").read_bytes() == b"notes"


def test_cli_batch_flags(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "elsewhere" / "far.tif", 9)
    (project / "sub-02" / "exp_TP001" / "far.tif").symlink_to(tmp_path / "elsewhere" / "far.tif")
    out = tmp_path / "out"
    args = ["batch", str(project), "--exp", "TP001", "--output-root", str(out), "--quiet"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        "2 jobs: 2 converted",
        "entries skipped: 1 (see skipped_entries in the report)",
    ]
    assert main([*args, "--follow-symlinks"]) == 0
    assert capsys.readouterr().out.startswith("3 jobs: 1 converted, 2 skipped")
    assert omio.open(out / "sub-02" / "exp_TP001" / "far.ome.tif").to_numpy().max() == 9
    target = out / "sub-01" / "exp_TP001" / "image.ome.tif"
    target.write_bytes(b"notes")
    assert main(args) == 1
    assert "OutputExistsError" in capsys.readouterr().err and target.read_bytes() == b"notes"
    assert main([*args, "--overwrite"]) == 0
    assert omio.open(target).to_numpy().max() == 1


def test_permission_denied_stays_a_permission_error_naming_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def denied(path: Any, *args: Any, **kwargs: Any) -> int:
        if "omio-partial" in str(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    target = tmp_path / "locked.ome.tif"
    with pytest.raises(PermissionError) as info:
        _small().to_ometiff(target)
    assert str(target) in str(info.value) and "omio-partial" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fails", ["metadata", "pixels"])
def test_ometiff_error_while_pixels_and_metadata_are_made_together_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    """The OME-XML is made in a thread while the first pixels are read and encoded: either failing stops both."""
    import threading

    from omio.errors import MetadataError
    from omio.writers import ometiff

    def broken(*args: Any) -> Any:
        raise MetadataError("cannot describe this")

    def unreadable(block: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        raise OSError("the source went away")

    ds = omio.MicroscopyDataset.from_array(np.arange(8 * 64 * 64, dtype="uint16").reshape(8, 64, 64), axes="ZYX")
    if fails == "metadata":
        monkeypatch.setattr(ometiff, "_described", broken)
        expected: tuple[type[BaseException], str] = (MetadataError, "cannot describe")
    else:
        ds = ds.apply(unreadable, dtype="uint16")
        expected = (OSError, "went away")
    target = tmp_path / "out.ome.tif"
    with pytest.raises(expected[0], match=expected[1]):
        ds.to_ometiff(target)
    assert list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name.startswith(("omio-encode", "omio-read", "omio-metadata"))]
