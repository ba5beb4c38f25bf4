"""The ``omio`` command line through its real entry points (``python -m omio`` and the console script)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

import omio
from omio.cli import main
from omio.errors import MissingDependencyError
from omio.merge import merge_provenance
from omio.testing import assert_dataset_equal

SCRIPT = Path(sys.executable).parent / "omio"


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m omio ARGS`` in a subprocess, stderr not a terminal.

    Each run pays omio's import time, so most option handling is tested by calling
    :func:`omio.cli.main` (what the entry points call) in-process, and subprocesses
    check what only a real process shows: exit statuses, streams, the console script.
    """
    cmd = [sys.executable, "-m", "omio", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def make_sample(path: Path, *, t: int = 2, value: int | None = None, x: int = 32) -> Path:
    """A small TZCYX OME-TIFF with pixel sizes, time increment and channel names."""
    rng = np.random.default_rng(len(str(path)))
    data = rng.integers(0, 4000, (t, 3, 2, 24, x), dtype=np.uint16) if value is None else None
    if data is None:
        data = np.full((t, 3, 2, 24, x), value, np.uint16)
    ds = omio.from_array(
        data,
        physical_pixel_sizes={"X": 0.25, "Y": 0.25, "Z": "1.5 µm"},
        time_increment="2 s",
        channel_names=["DAPI", "GFP"],
    )
    return ds.to_ometiff(path)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return make_sample(tmp_path / "cells.ome.tif")


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omio: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def error_of(capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    """Run ``main`` in-process, expect exit status 1, return the error text."""
    assert main([str(a) for a in args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("omio: error: ") and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------------- help and usage


@pytest.mark.parametrize("command", ["info", "convert", "batch", "view", "demo"])
def test_every_subcommand_has_help_with_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: omio {command}" in out
    assert "examples:" in out and f"omio {command}" in out.split("examples:")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: command"),
        (("frobnicate",), "invalid choice"),
        (("convert", "only-one.tif"), "the following arguments are required"),
        (("convert", "a.tif", "out.ome.tif", "--policy", "lenient"), "invalid choice: 'lenient'"),
        (("convert", "a.tif", "out.png"), "cannot tell the output format from 'out.png'"),
        (("convert", "a.tif", "b.tif", "out.ome.tif"), "--merge-along"),
        (("info", "a.tif", "--level", "3"), "unrecognized arguments"),
        (("convert", "a.tif", "out.ome.zarr", "--compression", "lzw"), "--compression lzw is not available for zarr"),
        (("convert", "a.tif", "out.ome.tif", "--levels", "0"), "expected a number of levels"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_usage_error_status_of_the_process() -> None:
    proc = run("convert", "a.tif", "b.tif", "out.ome.tif")
    assert proc.returncode == 2 and "--merge-along" in proc.stderr and "Traceback" not in proc.stderr


def test_console_script_is_installed(sample: Path) -> None:
    assert SCRIPT.is_file(), f"{SCRIPT} missing: install omio into this environment (pip install -e .)"
    version = subprocess.run([SCRIPT, "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.strip() == f"omio {omio.__version__}"
    info = subprocess.run([SCRIPT, "info", sample, "--json"], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0 and json.loads(info.stdout)["SizeC"] == 2


# ---------------------------------------------------------------------- info


def test_info_summarizes_a_file(sample: Path) -> None:
    proc = run("info", sample)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for fragment in (
        "T: 2  Z: 3  C: 2  Y: 24  X: 32",
        "uint16",
        "X 0.25 \u03bcm, Y 0.25 \u03bcm, Z 1.5 \u03bcm",
        "time increment: 2 s",
        "['DAPI', 'GFP']",
        "format:         ome-tiff",
        "scenes:         1",
        f"size on disk:   {sample.stat().st_size} bytes",
    ):
        assert fragment in out, f"{fragment!r} not in\n{out}"


@pytest.mark.parametrize("reader", ["head -1", "true"])
def test_info_into_a_closed_pipe_ends_quietly(sample: Path, reader: str) -> None:
    """``omio info FILE | head -1``: no traceback, no 'Broken pipe' error, the status of a tool SIGPIPE ended.

    ``head -1`` may still be reading when all of the short output is written (then the
    status is 0); ``true`` closes the pipe before omio has even imported, so the write
    always meets a closed pipe.
    """
    proc = subprocess.run(
        f"'{sys.executable}' -m omio info '{sample}' | {reader}; echo \"status ${{PIPESTATUS[0]}}\"",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    if reader == "true":
        assert lines == ["status 141"], proc.stdout
    else:
        assert lines[0].startswith("<omio.MicroscopyDataset") and lines[-1] in ("status 141", "status 0"), proc.stdout
    assert proc.stderr == "", proc.stderr


def test_info_on_a_folder_of_images_says_what_opens_it(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(sample, sample.with_name("second.ome.tif"))
    (sample.parent / "notes.txt").write_text("not an image")
    assert main(["info", str(sample.parent)]) == 0
    out = capsys.readouterr().out
    assert "a folder, not one image; 2 entries omio opens" in out
    assert f"{sample.name:<40}tiff" in out and "second.ome.tif" in out
    assert "notes.txt" in out and "skipped" in out and "omio.open_folder" in out


def test_info_json_is_machine_readable(sample: Path) -> None:
    proc = run("info", sample, "--json")
    assert proc.returncode == 0, proc.stderr
    md = json.loads(proc.stdout)
    assert [md[f"Size{d}"] for d in "TZCYX"] == [2, 3, 2, 24, 32]
    assert (md["PhysicalSizeX"], md["PhysicalSizeXUnit"]) == (0.25, "\u00b5m")
    assert (md["PhysicalSizeZ"], md["TimeIncrement"], md["TimeIncrementUnit"]) == (1.5, 2.0, "s")
    assert md["channel_names"] == ["DAPI", "GFP"] and md["dtype"] == "uint16"
    assert md["format"] == "ome-tiff" and md["scenes"] == [md["name"]] and md["scene"] == 0
    assert md["size_on_disk"] == sample.stat().st_size


def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(run("info", tmp_path / "missing.tif"), "missing.tif")
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert "notes.txt" in error_of(capsys, "info", text)
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(b"II*\x00" + b"\x00" * 40)
    assert "truncated.tif" in error_of(capsys, "convert", truncated, tmp_path / "out.ome.tif")
    assert not (tmp_path / "out.ome.tif").exists()


def test_scene_out_of_range(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "scene" in error_of(capsys, "info", sample, "--scene", "5")


def test_debug_raises_with_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        main(["info", str(tmp_path / "missing.tif"), "--debug"])


# ---------------------------------------------------------------------- convert


def test_convert_to_ometiff_round_trips(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.ome.tif"
    assert main(["convert", str(sample), str(out), "--compression", "zstd", "--level", "3"]) == 0
    captured = capsys.readouterr()
    assert Path(captured.out.strip()) == out and captured.err == ""  # no progress bar: stderr is not a terminal
    with tifffile.TiffFile(out) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.ZSTD
    assert_dataset_equal(omio.open(out), omio.open(sample))


def test_convert_never_overwrites_unless_asked(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.ome.tif"
    out.write_bytes(b"precious")
    assert main(["convert", str(sample), str(out)]) == 0
    assert Path(capsys.readouterr().out.strip()) == tmp_path / "out_1.ome.tif"
    assert out.read_bytes() == b"precious"
    assert main(["convert", str(sample), str(out), "--overwrite"]) == 0
    assert Path(capsys.readouterr().out.strip()) == out
    assert omio.open(out).sizes["T"] == 2


def test_scenes_are_listed_and_selected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "two.ome.tif"
    with tifffile.TiffWriter(src, ome=True) as tw:
        tw.write(np.full((4, 8, 8), 1, np.uint8), metadata={"axes": "ZYX", "Name": "first"})
        tw.write(np.full((2, 8, 8), 2, np.uint8), metadata={"axes": "ZYX", "Name": "second"})
    assert main(["info", str(src), "--scene", "1"]) == 0
    out = capsys.readouterr().out
    assert "scenes:         2 ['first', 'second']" in out and "Z: 2" in out
    out = tmp_path / "second.ome.tif"
    assert main(["convert", str(src), str(out), "--scene", "second"]) == 0
    back = omio.open(out)
    assert back.sizes["Z"] == 2 and int(back.to_numpy().max()) == 2


def test_progress_bar_only_on_a_terminal_and_not_quiet(sample: Path, tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    def stderr_on_terminal(*flags: str) -> str:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
        try:
            cmd = [sys.executable, "-m", "omio", "convert", str(sample), str(tmp_path / "p.ome.tif"), *flags]
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=slave, timeout=120)
            assert proc.returncode == 0
            os.set_blocking(master, False)
            try:
                return os.read(master, 65536).decode(errors="replace")
            except BlockingIOError:
                return ""
        finally:
            os.close(master)
            os.close(slave)

    assert "writing p.ome.tif:" in stderr_on_terminal("--overwrite")
    assert stderr_on_terminal("--overwrite", "--quiet") == ""


def multi_scene(path: Path) -> Path:
    """An OME-TIFF with two images of different shapes."""
    with tifffile.TiffWriter(path) as writer:
        writer.write(np.full((2, 8, 8), 1, "uint8"), metadata={"axes": "ZYX", "Name": "first"})
        writer.write(np.full((3, 6, 6), 2, "uint8"), metadata={"axes": "ZYX", "Name": "second"})
    return path


def test_convert_writes_every_scene_of_a_multi_scene_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = multi_scene(tmp_path / "plate.ome.tif")
    assert omio.scenes(source) == ["first", "second"]
    assert main(["convert", str(source), str(tmp_path / "out.ome.tif")]) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert [p.name for p in written] == ["out_scene0.ome.tif", "out_scene1.ome.tif"]
    for scene, path in enumerate(written):
        assert_dataset_equal(omio.open(path), omio.open(source, scene=scene))
    assert main(["convert", str(source), str(tmp_path / "one.ome.tif"), "--scene", "second"]) == 0
    assert omio.open(tmp_path / "one.ome.tif").shape == (1, 3, 1, 6, 6)


def test_merging_multi_scene_inputs_needs_a_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = multi_scene(tmp_path / "plate.ome.tif")
    argv = ["convert", str(source), str(source), str(tmp_path / "m.ome.tif"), "--merge-along", "T"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and "has 2 scenes" in capsys.readouterr().err
    assert not (tmp_path / "m.ome.tif").exists()


def test_convert_to_omezarr(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cells.ome.zarr"
    assert main(["convert", str(sample), str(out), "--levels", "2", "--compression", "blosc-lz4"]) == 0
    assert Path(capsys.readouterr().out.strip()) == out
    assert (out / "zarr.json").is_file()  # NGFF 0.5 on Zarr v3
    assert_dataset_equal(omio.open(out), omio.open(sample))
    assert omio.open(out, level=1).sizes["X"] == 16
    assert main(["info", str(out), "--json"]) == 0
    md = json.loads(capsys.readouterr().out)
    assert md["format"] == "ome-zarr" and md["size_on_disk"] == sum(
        p.stat().st_size for p in out.rglob("*") if p.is_file()
    )
    plain = tmp_path / "plain"
    assert main(["convert", str(sample), str(plain), "--to", "zarr"]) == 0
    assert (plain / "zarr.json").is_file() and omio.open(plain).sizes == omio.open(sample).sizes


def test_convert_to_pyramidal_ometiff(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "pyr.ome.tif"
    assert main(["convert", str(sample), str(out), "--levels", "2", "--compression", "none"]) == 0
    with tifffile.TiffFile(out) as tif:
        assert [level.shape[-2:] for level in tif.series[0].levels] == [(24, 32), (12, 16)]
        assert tif.pages[0].compression == tifffile.COMPRESSION.NONE
    assert omio.open(out, level=1).sizes["Y"] == 12


def test_merge_along_t_of_three_files(tmp_path: Path) -> None:
    inputs = [make_sample(tmp_path / f"t{i}.ome.tif", value=i + 1) for i in range(3)]
    out = tmp_path / "movie.ome.tif"
    proc = run("convert", *inputs, out, "--merge-along", "T")
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == out
    merged = omio.open(out)
    assert merged.sizes["T"] == 6
    assert merged.to_numpy()[:, 0, 0, 0, 0].tolist() == [1, 1, 2, 2, 3, 3]
    assert merged.time_increment == omio.ureg.Quantity(2, "s")
    prov = merge_provenance(merged)
    assert prov is not None and [Path(s["path"]).name for s in prov["sources"]] == [p.name for p in inputs]


def test_merge_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_sample(tmp_path / "a.ome.tif", value=1)
    b = make_sample(tmp_path / "b.ome.tif", value=2, x=40)
    err = error_of(capsys, "convert", a, b, tmp_path / "strict.ome.tif", "--merge-along", "T")
    assert "b.ome.tif: size X is 40" in err
    assert not (tmp_path / "strict.ome.tif").exists()
    padded = tmp_path / "pad.ome.tif"
    assert main(["convert", str(a), str(b), str(padded), "--merge-along", "T", "--policy", "pad"]) == 0
    pixels = omio.open(padded).to_numpy()
    assert pixels.shape == (4, 3, 2, 24, 40)
    assert pixels[0, 0, 0, 0, 32:].tolist() == [0] * 8 and pixels[2, 0, 0, 0, 32:].tolist() == [2] * 8


# ---------------------------------------------------------------------- batch


def write_tif(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.full((2, 8, 8), value, "uint16"), photometric="minisblack")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for s, sub in enumerate(("sub-01", "sub-02")):
        write_tif(root / sub / "exp_TP001" / "image.tif", 10 * s + 1)
        write_tif(root / sub / "exp_TP002" / "TAG_01" / "image1.tif", 10 * s + 2)
        write_tif(root / sub / "exp_TP002" / "TAG_02" / "image2.tif", 10 * s + 3)
    return root


def test_batch_converts_a_project_and_writes_the_report(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["batch", str(project), "--exp", "TP", "--tagfolder", "TAG_", "--merge-tagfolders"]
    proc = run(*args, "--level", "1")
    assert proc.returncode == 0, proc.stderr
    report = project / "derivatives" / "omio" / "omio_batch_report.json"
    assert proc.stdout.splitlines() == ["4 jobs: 4 converted", f"report: {report}"]
    assert json.loads(report.read_text())["summary"] == {"converted": 4}
    merged = omio.open(project / "derivatives/omio/sub-02/exp_TP002/exp_TP002_tags_merged.ome.tif")
    assert merged.to_numpy()[:, 0, 0, 0, 0].tolist() == [12, 12, 13, 13]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("4 jobs: 4 skipped")


def test_batch_with_a_failing_job_exits_1_and_still_reports(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "sub-01" / "exp_TP001" / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 40)
    out = tmp_path / "out"
    assert main(["batch", str(project), "--output-root", str(out), "--pattern", "*.tif", "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "3 jobs: 2 converted, 1 failed"  # tag folders are not scanned
    assert "broken.tif" in captured.err and "FileFormatError" in captured.err
    assert json.loads((out / "omio_batch_report.json").read_text())["summary"] == {"converted": 2, "failed": 1}


def test_threaded_batch_blames_exactly_the_damaged_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "project"
    damaged = set()
    for i in range(10):
        path = root / "sub-01" / f"exp_TP{i:03d}" / "image.tif"
        path.parent.mkdir(parents=True)
        tifffile.imwrite(
            path, np.full((3, 64, 64), i, "uint16"), photometric="minisblack", compression="zlib" if i % 2 else None
        )
        if i in (3, 6):
            path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])  # an interrupted copy
            damaged.add(str(path))
    for round_ in range(3):  # two threads decode at once; each failure must name its own file, every time
        out = tmp_path / f"out{round_}"
        args = ["batch", str(root), "--output-root", str(out), "--pattern", "*.tif", "--workers", "2"]
        assert main(args) == 1
        report = json.loads((out / "omio_batch_report.json").read_text())
        failed = {str(r["inputs"][0]) for r in report["results"] if r["status"] == "failed"}
        assert failed == damaged, capsys.readouterr().err
        assert report["summary"] == {"converted": 8, "failed": 2}


def test_batch_on_a_dask_distributed_scheduler(project: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"distributed(\..*)?")
        warnings.filterwarnings("ignore", category=ResourceWarning)
        with distributed.LocalCluster(
            n_workers=1, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=":0"
        ) as cluster:
            proc = run("batch", project, "--output-root", tmp_path / "out", "--scheduler", cluster.scheduler_address)
            jobs = cluster.scheduler.task_prefixes["convert_row"].state_counts  # bids' jobs ran on this cluster
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "2 jobs: 2 converted"
    assert jobs["memory"] == 2
    assert omio.open(tmp_path / "out/sub-02/exp_TP001/image.ome.tif").to_numpy().max() == 11


def test_batch_on_a_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "nowhere" in error_of(capsys, "batch", tmp_path / "nowhere")


# ---------------------------------------------------------------------- demo


def test_demo_round_trips_a_generated_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--output", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "pixels identical after the round trip: True" in out and "Z 0.5 \u03bcm" in out
    written = omio.open(tmp_path / "demo" / "demo_cells.ome.tif")
    assert written.sizes["Z"] == 3 and written.physical_pixel_sizes["X"] == omio.ureg.Quantity(0.207, "um")


# ---------------------------------------------------------------------- view


def test_view_without_napari_is_a_missing_dependency(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "napari.py").write_text("raise ImportError('napari is blocked for this test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    assert_one_line_error(run("view", sample, env=env), "napari")
    monkeypatch.setitem(sys.modules, "napari", None)  # import napari now raises ImportError in this process
    with pytest.raises(MissingDependencyError, match="napari"):
        main(["view", str(sample), "--debug"])


NAPARI_RUN_PRINTS_LAYERS = """
import napari


def _run(*args, **kwargs):  # instead of the event loop: report the layers and close the window
    viewer = napari.current_viewer()
    print("layers:", [layer.name for layer in viewer.layers], [float(layer.scale[-1]) for layer in viewer.layers])
    viewer.close()


napari.run = _run
"""


def test_view_shows_the_channels_in_napari(sample: Path, tmp_path: Path) -> None:
    pytest.importorskip("napari")
    if os.environ.get("DISPLAY"):
        prefix = []
    elif shutil.which("xvfb-run"):
        prefix = ["xvfb-run", "-a"]
    elif os.environ.get("CI"):
        pytest.fail("omio view must be tested in CI: no DISPLAY and no xvfb-run (Debian package xvfb)")
    else:
        pytest.skip("no display and no xvfb-run to show a napari window")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NAPARI_RUN_PRINTS_LAYERS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    cmd = [*prefix, sys.executable, "-m", "omio", "view", str(sample)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "layers: ['DAPI', 'GFP'] [0.25, 0.25]" in proc.stdout
