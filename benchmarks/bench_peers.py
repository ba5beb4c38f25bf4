"""Benchmark omio side by side with its peers (issue 17): tifffile (the limit), bioio and OMIO 0.3.

Run from the repository root::

    bash benchmarks/peers_env.sh                                  # once: benchmarks/.venv-bioio, .venv-omio03
    benchmarks/.venv/bin/python benchmarks/bench_peers.py         # quick: 0.27 GB input, a few minutes
    benchmarks/.venv/bin/python benchmarks/bench_peers.py --size 1.0 --rounds 5   # the 1.07 GB (~1 GiB) input
    benchmarks/.venv/bin/python benchmarks/bench_peers.py --sections a,c          # only some jobs

The tools run from their own environments, each job in a fresh process:

- omio (this checkout) and tifffile from ``benchmarks/.venv`` (``benchmarks/env.sh``: omio's core install);
- bioio + bioio-ome-tiff + bioio-ome-zarr + bioio-conversion from ``benchmarks/.venv-bioio``;
- OMIO 0.3 (``omio-microscopy==0.3.0``, import name ``omio`` as well) from ``benchmarks/.venv-omio03``.

A peer whose environment is missing (``peers_env.sh`` could not install it) is shown as "not installed" and the
other jobs run; a job that fails or times out is shown as failed, with the last line of its error.

Jobs (sections, ``--sections``), on the uncompressed uint16 TZCYX OME-TIFF of ``bench_tiff.py`` (T x 32 x 2 x
1024 x 1024; ``--size`` GB picks T):

a. start-up, whole process: ``python -c "import X"`` for every tool; ``omio info FILE`` and
   ``omio.open(FILE)`` + ``repr`` against ``import omio`` (target <= 1.3x); a tifffile and a bioio look at the
   file for scale; which heavy modules ``import omio`` loads (target: none of napari, distributed, ome_types,
   pint, pint_xarray).
b. open + first plane (T=0, Z=0, C=0), timed after the imports: omio, tifffile's zarr store (the reference,
   target <= 1.5x), bioio (``get_image_dask_data``), OMIO 0.3 (``imread``, which reads the whole file: it has no
   lazy open). The whole process's wall time is shown too.
c. open + first plane in a fresh process, whole-process time: through ``ds.xarray`` against through
   ``to_numpy`` (target <= 1.5x); also records whether ``distributed`` got imported.
d. conversion to zlib level 6 OME-TIFF: omio ``to_ometiff``; tifffile ``imwrite(imread(f), maxworkers=1)`` (the
   reference) and ``maxworkers=2``, whose encoding times (after the read) give the two-core codec limit of this
   run; OMIO 0.3 ``imconvert(..., compression_level=6)``; bioio ``OmeTiffWriter.save(BioImage(f).data, ...)``.
   Targets for omio: speed-up over the reference within 5% of the limit, peak RSS < 300 MB, CPU time per GB
   <= 1.1x the reference's.
e. OME-Zarr (NGFF 0.5) with 3 levels: omio ``to_omezarr(levels=3)`` against bioio-conversion's
   ``OmeZarrConverter(num_levels=3)``, on the input and on a 4x larger one. Targets for omio: >= 2x faster than
   bioio-conversion, peak RSS <= 200 MB at ~1 GB input, peak RSS flat (4x / 1x <= 1.1).
f. many-page OME-TIFF (10k, 40k, 100k pages of 32x32 uint16, TZCYX (N/20, 10, 2, 32, 32)): open (to shape and
   metadata) and first plane, against tifffile's own series parsing (``TiffFile(f).series[0]``) and the zarr
   store of that series (``zarr.open(series.aszarr())[0, 0, 0]``, as in b); bioio and OMIO 0.3 for scale.
   Targets for omio: open <= 1.3x, plane <= 2x, linear (the marginal open time per page from 40k to 100k pages
   <= 1.3x that from 10k to 40k).

Jobs of one section run interleaved: ``--rounds`` rounds (``--startup-rounds`` for section a), each running
every job once in a rotated order, because this shared 2-core machine's speed drifts; tables show the median
and the range (min-max) of the rounds, and the load average before and after each section. Peak RSS is the
process's high-water mark (``VmHWM``, imports included), max over rounds; CPU time is user + system of the
measured part (the whole process where the time is the whole process's).

Prints one Markdown table per section and writes ``benchmarks/results_peers.md`` and ``results_peers.json`` (``--stem``
changes the name; a run of some ``--sections`` keeps the other sections of an existing file).
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MB = 1e6
HEAVY = ("napari", "distributed", "ome_types", "pint", "pint_xarray", "scipy", "dask.array", "xarray", "zarr")
NOT_ON_IMPORT = ("napari", "distributed", "ome_types", "pint", "pint_xarray")
MANY_PAGES = (10_000, 40_000, 100_000)
MANY_ZC = (10, 2)
MANY_YX = (32, 32)

# ---------------------------------------------------------------------------------------------- child processes
# Every job is a snippet run as ``python -P -c PRELUDE+CODE SRC OUT`` by the interpreter of its tool's environment,
# in the work directory (so that no ``omio`` package in the current directory shadows the environment's). The
# prelude costs only built-in imports; ``_mark(name)`` records the wall and CPU time since the process started
# its Python code; at exit the figures and the peak RSS go to stderr as one JSON line.
PRELUDE = r"""
import atexit as _atexit, json as _json, os as _os, sys as _sys, time as _time
_T0 = _time.perf_counter(); _C0 = _os.times(); _M = {}; EXTRA = {}
SRC, OUT = _sys.argv[1], _sys.argv[2]
def _mark(name):
    c = _os.times()  # this process and its waited-for children (worker processes some tools start)
    cpu = c.user + c.system + c.children_user + c.children_system
    _M[name] = [_time.perf_counter() - _T0, cpu - _C0.user - _C0.system]
def _done():
    hwm = 0
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                hwm = int(line.split()[1]) * 1024
    c = _os.times()
    rec = {'marks': _M, 'peak_rss': hwm, 'cpu': c.user + c.system + c.children_user + c.children_system, 'extra': EXTRA}
    _sys.stderr.write('RESULT ' + _json.dumps(rec, default=str) + '\n')
    _sys.stderr.flush()
_atexit.register(_done)
"""


@dataclass
class Job:
    name: str  # unique key
    tool: str  # omio, tifffile, bioio, omio03, python
    label: str  # what it does, for the table
    code: str
    span: tuple[str, str] | None = None  # marks bounding the timed part; None = the whole process
    env: str = "omio"  # environment: omio (benchmarks/.venv), bioio, omio03
    out_kind: str = ""  # "tif", "zarr", "dir" (an output to make room for and check) or ""


@dataclass
class Stats:
    job: Job
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    marks: list[dict[str, list[float]]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    output_bytes: int | None = None
    verified: str = ""
    tree: bool = False  # the job started worker processes; peak RSS is their sum with the main process's

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.times)

    @property
    def time(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_med(self) -> float:
        return statistics.median(self.cpu)

    @property
    def peak(self) -> int:
        return max(self.peaks)

    def span_median(self, a: str, b: str) -> float:
        return statistics.median(m[b][0] - m[a][0] for m in self.marks)

    def span_cpu_median(self, a: str, b: str) -> float:
        return statistics.median(m[b][1] - m[a][1] for m in self.marks)


def interpreters() -> dict[str, str | None]:
    """The python of each environment, or None where it is not installed."""
    found: dict[str, str | None] = {"omio": sys.executable}
    for env in ("bioio", "omio03"):
        venv = HERE / f".venv-{env}"
        py = venv / "bin" / "python"
        found[env] = str(py) if py.exists() and (venv / ".installed").exists() else None
    return found


def run_job(job: Job, src: Path, out: Path, pythons: dict[str, str | None], stats: Stats, timeout: float) -> None:
    """Run ``job`` once in a fresh process and add its figures to ``stats`` (or record why it failed)."""
    py = pythons.get(job.env)
    if py is None:
        stats.error = f"not installed (benchmarks/.venv-{job.env}: run benchmarks/peers_env.sh)"
        return
    if stats.error is not None:  # failed before: do not spend the round on it again
        return
    if out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink(missing_ok=True)
    if job.out_kind == "dir":
        out.mkdir(parents=True)
    cmd = [py, "-P", "-c", PRELUDE + job.code, str(src), str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=src.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env(job.env)
    )
    tree = TreeWatch(proc.pid)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        stats.error = f"timed out after {timeout:.0f} s"
        return
    finally:
        tree.stop()
    wall = time.perf_counter() - t0
    lines = [ln for ln in stderr.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = [ln for ln in (stderr + stdout).splitlines() if ln.strip() and not ln.startswith("RESULT ")]
        stats.error = f"failed (exit {proc.returncode}): {tail[-1][:160] if tail else '?'}"
        print(f"    {job.name}: {stats.error}", flush=True)
        return
    rec = json.loads(lines[-1].removeprefix("RESULT "))
    marks = rec["marks"]
    if job.span is None:
        t, cpu = wall, None
    else:
        a, b = job.span
        t = marks[b][0] - marks[a][0]
        cpu = marks[b][1] - marks[a][1]
    if cpu is None:  # whole process: its CPU time from start to exit
        cpu = rec["cpu"]
    stats.times.append(t)
    stats.cpu.append(cpu)
    stats.wall.append(wall)
    if tree.children:  # worker processes: the peak of the whole tree's summed PSS (sampled every 20 ms)
        stats.tree = True
        stats.peaks.append(max(rec["peak_rss"], tree.peak))
    else:
        stats.peaks.append(rec["peak_rss"])
    stats.marks.append(marks)
    stats.extra = rec["extra"]
    if out.exists():
        stats.output_bytes = _size(out)


OMIO_PATH: list[str] = []  # set by main: a snapshot of the omio sources to import instead of the checkout


class TreeWatch:
    """Sample the summed PSS of a process and its descendants every 20 ms while it has any, in a thread.

    Finding descendants scans every process (about 1.5 ms of CPU here), so until the first one appears the
    scan runs every 0.25 s: at 20 ms it took 8% of a core from the job measured, slowing jobs that use both.
    """

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.peak, self.children = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        try:
            top = psutil.Process(self.pid)
        except psutil.Error:
            return
        interval = 0.25
        while not self._stop.wait(interval):
            try:
                kids = top.children(recursive=True)
                if not kids:
                    continue
                interval = 0.02
                # proportional set sizes: forked workers share pages with their parent, which RSS counts twice
                total = top.memory_full_info().pss
            except psutil.Error:
                return
            for k in kids:
                try:
                    total += k.memory_full_info().pss
                except psutil.Error:
                    pass
            self.children = max(self.children, len(kids))
            self.peak = max(self.peak, total)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _child_env(env_name: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if env_name == "omio" and OMIO_PATH:
        env["PYTHONPATH"] = os.pathsep.join(OMIO_PATH)
    return env


def omio_snapshot(ref: str, workdir: Path) -> tuple[str, Path | None]:
    """Export ``omio/`` at git ``ref`` into the work directory (others may be editing the checkout meanwhile).

    Returns a description and the directory to put first on the path (None: use the checkout as it is).
    """
    if ref == "worktree":
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
        )
        return f"the working tree of this checkout (HEAD {head.stdout.strip()} plus uncommitted changes)", None
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dest = workdir / f"omio-snapshot-{sha[:12]}"
    if not (dest / "omio" / "__init__.py").exists():
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", sha, "omio"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    subject = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h %cd %s", "--date=format:%Y-%m-%d %H:%M", sha],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"commit {subject[:110]} (`git archive` of omio/ into {dest.name}, put first on PYTHONPATH)", dest


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_section(
    jobs: Sequence[Job],
    src: Path,
    workdir: Path,
    pythons: dict[str, str | None],
    rounds: int,
    timeout: float,
    verify: Callable[[Job, Path, Stats], None] | None = None,
    tag: str = "",
) -> dict[str, Stats]:
    """Run every job ``rounds`` times, in rounds that run each once in a rotated order; check the outputs."""
    stats = {j.name: Stats(j) for j in jobs}

    def out(job: Job) -> Path:
        suffix = {"tif": ".ome.tif", "zarr": ".ome.zarr", "dir": ""}.get(job.out_kind, ".unused")
        return workdir / f"peers_out_{job.name}{tag}{suffix}"

    for r in range(rounds):
        order = [*jobs[r % len(jobs) :], *jobs[: r % len(jobs)]]
        for job in order:
            run_job(job, src, out(job), pythons, stats[job.name], timeout)
        done = ", ".join(f"{j.name} {fmt_time(stats[j.name].times[-1])}" for j in jobs if stats[j.name].ok)
        print(f"  round {r + 1}/{rounds}: {done}", flush=True)
    for job in jobs:
        s, o = stats[job.name], out(job)
        if verify is not None and s.ok and job.out_kind:
            try:
                verify(job, o, s)
            except Exception as exc:  # a wrong output is reported, not fatal
                s.verified = f"**output check failed**: {exc}"
        if o.is_dir():
            shutil.rmtree(o)
        else:
            o.unlink(missing_ok=True)
    return stats


# ---------------------------------------------------------------------------------------------- formatting
def fmt_time(s: float) -> str:
    if s < 0.01:
        return f"{s * 1000:.1f} ms"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def time_cell(s: Stats, values: list[float] | None = None) -> str:
    v = values if values is not None else s.times
    med = statistics.median(v)
    if len(v) < 2:
        return fmt_time(med)
    return f"{fmt_time(med)} ({fmt_time(min(v))}–{fmt_time(max(v))})"


def spread(values: list[float]) -> float:
    """(max - min) / median: how noisy the rounds of one job were."""
    return (max(values) - min(values)) / statistics.median(values) if len(values) > 1 else 0.0


@dataclass
class Row:
    stats: Stats
    label: str | None = None
    values: list[float] | None = None  # times to show (default: stats.times)
    cpu: float | None = None
    ref: str = "—"
    ratio: float | None = None
    ratio_text: str | None = None
    target: str = "—"
    met: bool | None = None
    note: str = ""

    def cells(self) -> list[str]:
        s = self.stats
        name = {"omio": "omio", "tifffile": "tifffile", "bioio": "bioio", "omio03": "OMIO 0.3", "python": "python"}
        tool = name.get(s.job.tool, s.job.tool)
        label = self.label or s.job.label
        if not s.ok:
            return [
                tool,
                label,
                s.error or "no runs",
                "—",
                "—",
                self.ref,
                "—",
                self.target,
                "—" if self.met is None else "**no**",
            ]
        vals = self.values if self.values is not None else s.times
        cpu = self.cpu if self.cpu is not None else s.cpu_med
        if self.ratio_text is not None:
            ratio = self.ratio_text
        elif self.ratio is not None:
            ratio = f"{self.ratio:.2f}x"
        else:
            ratio = "—"
        met = "—" if self.met is None else ("yes" if self.met else "**no**")
        note = f" {self.note}" if self.note else ""
        if s.verified:
            note += f" {s.verified}"
        return [
            tool,
            label + note,
            time_cell(s, vals),
            f"{s.peak / MB:.0f} MB" + (" (process tree, PSS)" if s.tree else ""),
            fmt_time(cpu),
            self.ref,
            ratio,
            self.target,
            met,
        ]


def table(title: str, lines: list[str], rows: list[Row]) -> str:
    head = ["tool", "job", "time: median (range)", "peak RSS", "CPU time", "reference", "ratio", "target", "met?"]
    out = [f"### {title}", "", *lines, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(c.replace("|", "/") for c in r.cells()) + " |" for r in rows]
    return "\n".join(out) + "\n"


def ratio_of(
    a: Stats, b: Stats, values_a: list[float] | None = None, values_b: list[float] | None = None
) -> float | None:
    if not (a.ok and b.ok):
        return None
    va = values_a if values_a is not None else a.times
    vb = values_b if values_b is not None else b.times
    return statistics.median(va) / statistics.median(vb)


def met_le(x: float | None, limit: float) -> bool | None:
    return None if x is None else x <= limit


def noise_line(stats: dict[str, Stats], load: tuple[float, float]) -> str:
    sp = [spread(s.times) for s in stats.values() if s.ok and len(s.times) > 1]
    worst = max(stats.values(), key=lambda s: spread(s.times) if s.ok else -1.0)
    text = f"load average (1 min) {load[0]:.2f} before, {load[1]:.2f} after"
    if sp:
        text += (
            f"; spread of the rounds (max−min)/median: median {statistics.median(sp) * 100:.0f}%, "
            f"worst {spread(worst.times) * 100:.0f}% ({worst.job.name})"
        )
    return text


# ---------------------------------------------------------------------------------------------- output checks
def check_tif(src: Path) -> Callable[[Job, Path, Stats], None]:
    def verify(job: Job, out: Path, s: Stats) -> None:
        import numpy as np
        import tifffile

        path = out
        if out.is_dir():
            found = sorted(out.rglob("*.tif"))
            if not found:
                raise AssertionError("no .tif written")
            path = found[0]
            s.output_bytes = path.stat().st_size
        with tifffile.TiffFile(src) as a, tifffile.TiffFile(path) as b:
            sa, sb = a.series[0], b.series[0]
            if math.prod(sa.shape) != math.prod(sb.shape) or sa.dtype != sb.dtype:
                raise AssertionError(f"shape/dtype {sb.shape} {sb.dtype} != {sa.shape} {sa.dtype}")
            pa, pb = sa.pages[0], sb.pages[0]
            if not np.array_equal(pa.asarray(), pb.asarray()):
                raise AssertionError("first plane differs from the input")
            if pb.compression not in (8, 32946):
                raise AssertionError(f"not zlib ({pb.compression})")
        s.verified = ""

    return verify


def check_zarr(src: Path) -> Callable[[Job, Path, Stats], None]:
    def verify(job: Job, out: Path, s: Stats) -> None:
        import numpy as np
        import tifffile
        import zarr

        root = out
        if job.out_kind == "dir":
            found = sorted(out.glob("*.zarr"))
            if not found:
                raise AssertionError("no .zarr written")
            root = found[0]
        group = zarr.open_group(str(root), mode="r")
        keys = sorted(group.array_keys())
        if len(keys) != 3:
            raise AssertionError(f"{len(keys)} levels: {keys}")
        level0 = group[keys[0]]
        with tifffile.TiffFile(src) as a:
            plane = a.series[0].pages[0].asarray()
            if math.prod(level0.shape) != math.prod(a.series[0].shape):
                raise AssertionError(f"shape {level0.shape} != {a.series[0].shape}")
        if not np.array_equal(np.asarray(level0[0, 0, 0]), plane):
            raise AssertionError("first plane differs from the input")

    return verify


# ---------------------------------------------------------------------------------------------- sections
def section_a(src: Path, workdir: Path, pythons: dict[str, str | None], args: argparse.Namespace) -> tuple[str, dict]:
    heavy = repr(HEAVY)
    jobs = [
        Job("python", "python", "`python -c pass` (interpreter alone)", "pass"),
        Job(
            "omio-import",
            "omio",
            "`import omio`",
            f"import omio\nEXTRA['loaded'] = [m for m in {heavy} if m in _sys.modules]",
        ),
        Job("omio-info", "omio", "`omio info FILE`", "from omio.cli import main\n_code = main(['info', SRC])"),
        Job("omio-repr", "omio", "`repr(omio.open(FILE))`", "import omio\nprint(repr(omio.open(SRC)))"),
        Job("tifffile-import", "tifffile", "`import tifffile`", "import tifffile"),
        Job(
            "tifffile-look",
            "tifffile",
            "tifffile look: series shape, axes, dtype",
            "import tifffile\nwith tifffile.TiffFile(SRC) as t:\n    s = t.series[0]; print(s.shape, s.axes, s.dtype)",
        ),
        Job("bioio-import", "bioio", "`import bioio`", "import bioio", env="bioio"),
        Job(
            "bioio-look",
            "bioio",
            "bioio look: `BioImage(FILE)` dims, pixel sizes",
            "from bioio import BioImage\nimg = BioImage(SRC)\nprint(img.dims, img.physical_pixel_sizes)",
            env="bioio",
        ),
        Job("omio03-import", "omio03", "`import omio`", "import omio", env="omio03"),
    ]
    load0 = os.getloadavg()[0]
    s = run_section(jobs, src, workdir, pythons, args.startup_rounds, args.timeout)
    load1 = os.getloadavg()[0]
    imp = s["omio-import"]
    rows = [Row(s["python"])]
    rows.append(Row(imp))
    for key in ("omio-info", "omio-repr"):
        r = ratio_of(s[key], imp)
        rows.append(Row(s[key], ref="`import omio`", ratio=r, target="≤ 1.3x", met=met_le(r, 1.3)))
    rows.append(Row(s["tifffile-import"]))
    r = ratio_of(s["tifffile-look"], s["tifffile-import"])
    rows.append(Row(s["tifffile-look"], ref="`import tifffile`", ratio=r))
    rows.append(Row(s["bioio-import"]))
    r = ratio_of(s["bioio-look"], s["bioio-import"])
    rows.append(Row(s["bioio-look"], ref="`import bioio`", ratio=r))
    rows.append(Row(s["omio03-import"]))
    loaded = imp.extra.get("loaded", []) if imp.ok else []
    unwanted = [m for m in loaded if m in NOT_ON_IMPORT]
    lines = [
        "Whole-process wall time of a fresh `python -P -c ...` (interpreter start-up included) and its CPU time.",
        f"- {noise_line(s, (load0, load1))}",
        f"- `import omio` loads: {', '.join(loaded) or 'none'} of ({', '.join(HEAVY)}). Target: none of "
        f"{', '.join(NOT_ON_IMPORT)} — {'met' if not unwanted else '**not met**: ' + ', '.join(unwanted)}",
    ]
    figures = {k: _fig(v) for k, v in s.items()} | {"omio_import_loads": loaded}
    return table("a. Start-up (issue point 1)", lines, rows), figures


def _fig(s: Stats) -> dict[str, Any]:
    if not s.ok:
        return {"error": s.error}
    return {
        "times": s.times,
        "median": s.time,
        "cpu_median": s.cpu_med,
        "wall": s.wall,
        "peak_rss": s.peak,
        "output_bytes": s.output_bytes,
        "extra": s.extra,
        "verified": s.verified,
    }


PLANE_JOBS = {
    "omio": (
        "import omio\nimport omio.readers.tiff\nimport tifffile\n_mark('ready')\n"
        "ds = omio.open(SRC)\na = ds.isel(T=0, Z=0, C=0).to_numpy()\n_mark('end')\nEXTRA['sum'] = int(a.sum())"
    ),
    "tifffile": (
        "import tifffile, zarr\n_mark('ready')\nwith tifffile.imread(SRC, aszarr=True) as store:\n"
        "    z = zarr.open(store, mode='r'); a = z[0, 0, 0]\n_mark('end')\nEXTRA['sum'] = int(a.sum())"
    ),
    "bioio": (
        "from bioio import BioImage\nimport bioio_ome_tiff\n_mark('ready')\nimg = BioImage(SRC)\n"
        "a = img.get_image_dask_data('YX', T=0, C=0, Z=0).compute()\n_mark('end')\nEXTRA['sum'] = int(a.sum())"
    ),
    "omio03": (
        "import omio\n_mark('ready')\nimg, md = omio.imread(SRC, verbose=False)\na = img[0, 0, 0]\n_mark('end')\n"
        "EXTRA['sum'] = int(a.sum())"
    ),
}


def section_b(src: Path, workdir: Path, pythons: dict[str, str | None], args: argparse.Namespace) -> tuple[str, dict]:
    jobs = [
        Job(
            "omio-plane", "omio", "`omio.open(f).isel(T=0, Z=0, C=0).to_numpy()`", PLANE_JOBS["omio"], ("ready", "end")
        ),
        Job("tifffile-plane", "tifffile", "zarr store `[0, 0, 0]`", PLANE_JOBS["tifffile"], ("ready", "end")),
        Job(
            "bioio-plane",
            "bioio",
            "`BioImage(f).get_image_dask_data('YX', T=0, C=0, Z=0).compute()`",
            PLANE_JOBS["bioio"],
            ("ready", "end"),
            env="bioio",
        ),
        Job(
            "omio03-plane",
            "omio03",
            "`omio.imread(f)[0][0, 0, 0]` (reads the whole file)",
            PLANE_JOBS["omio03"],
            ("ready", "end"),
            env="omio03",
        ),
    ]
    load0 = os.getloadavg()[0]
    s = run_section(jobs, src, workdir, pythons, args.rounds, args.timeout)
    load1 = os.getloadavg()[0]
    ref = s["tifffile-plane"]
    sums = {k: v.extra.get("sum") for k, v in s.items() if v.ok}
    rows = []
    for key in ("omio-plane", "tifffile-plane", "bioio-plane", "omio03-plane"):
        r = ratio_of(s[key], ref) if key != "tifffile-plane" else None
        target = "≤ 1.5x" if key == "omio-plane" else "—"
        note = f"(whole process {fmt_time(statistics.median(s[key].wall))})" if s[key].ok else ""
        rows.append(
            Row(
                s[key],
                ref="tifffile zarr store" if key != "tifffile-plane" else "(reference)",
                ratio=r,
                target=target,
                met=met_le(r, 1.5) if key == "omio-plane" else None,
                note=note,
            )
        )
    same = len(set(sums.values())) <= 1
    lines = [
        "Timed after the imports (omio: `omio`, `omio.readers.tiff`, tifffile; tifffile: tifffile, zarr; bioio: "
        "bioio, bioio_ome_tiff; OMIO 0.3: omio), in a fresh process per run.",
        f"- {noise_line(s, (load0, load1))}",
        f"- the plane's pixel sum agrees across tools: {'yes' if same else '**no** ' + str(sums)}",
    ]
    return table("b. Open + first plane (issue point 2, first half)", lines, rows), {k: _fig(v) for k, v in s.items()}


def section_c(src: Path, workdir: Path, pythons: dict[str, str | None], args: argparse.Namespace) -> tuple[str, dict]:
    check = "\nEXTRA['distributed'] = 'distributed' in _sys.modules\nEXTRA['sum'] = int(a.sum())\n_mark('_end')"
    jobs = [
        Job(
            "omio-numpy",
            "omio",
            "`import omio; omio.open(f).isel(T=0, Z=0, C=0).to_numpy()`",
            "import omio\nds = omio.open(SRC)\na = ds.isel(T=0, Z=0, C=0).to_numpy()" + check,
        ),
        Job(
            "omio-xarray",
            "omio",
            "`import omio; omio.open(f).xarray.isel(T=0, Z=0, C=0).values`",
            "import omio\nds = omio.open(SRC)\na = ds.xarray.isel(T=0, Z=0, C=0).values" + check,
        ),
    ]
    load0 = os.getloadavg()[0]
    s = run_section(jobs, src, workdir, pythons, args.rounds, args.timeout)
    load1 = os.getloadavg()[0]
    r = ratio_of(s["omio-xarray"], s["omio-numpy"])
    rows = [
        Row(s["omio-numpy"], ref="(reference)"),
        Row(s["omio-xarray"], ref="through `to_numpy`", ratio=r, target="≤ 1.5x", met=met_le(r, 1.5)),
    ]
    dist = {k: v.extra.get("distributed") for k, v in s.items() if v.ok}
    lines = [
        "Whole-process wall time of a fresh process (imports included).",
        f"- {noise_line(s, (load0, load1))}",
        f"- `distributed` imported by the end: {dist}",
    ]
    return table("c. First plane through `ds.xarray` vs `to_numpy` (issue point 2)", lines, rows), {
        k: _fig(v) for k, v in s.items()
    }


def section_d(
    src: Path, workdir: Path, pythons: dict[str, str | None], args: argparse.Namespace, nbytes: int
) -> tuple[str, dict]:
    tw = (
        "import tifffile\n_mark('ready')\ndata = tifffile.imread(SRC)\n_mark('read')\n"
        "tifffile.imwrite(OUT, data, compression='zlib', compressionargs={{'level': 6}}, ome=True, "
        "metadata={{'axes': 'TZCYX'}}, maxworkers={n})\n_mark('end')"
    )
    jobs = [
        Job(
            "omio-convert",
            "omio",
            "`omio.open(f).to_ometiff(out, compression='zlib', level=6)`",
            "import omio\nimport omio.writers.ometiff\nimport ome_types\n_mark('ready')\n"
            "omio.open(SRC).to_ometiff(OUT, compression='zlib', level=6, overwrite=True)\n_mark('end')",
            ("ready", "end"),
            out_kind="tif",
        ),
        Job(
            "tifffile-1",
            "tifffile",
            "`imwrite(out, imread(f), maxworkers=1)`",
            tw.format(n=1),
            ("ready", "end"),
            out_kind="tif",
        ),
        Job(
            "tifffile-2",
            "tifffile",
            "`imwrite(out, imread(f), maxworkers=2)`",
            tw.format(n=2),
            ("ready", "end"),
            out_kind="tif",
        ),
        Job(
            "omio03-convert",
            "omio03",
            "`omio.imconvert(f, compression_level=6)`",
            "import omio\n_mark('ready')\n"
            "EXTRA['out'] = omio.imconvert(SRC, compression_level=6, relative_path=_os.path.relpath(OUT, "
            "_os.path.dirname(SRC)), overwrite=True, return_fnames=True, verbose=False)\n_mark('end')",
            ("ready", "end"),
            env="omio03",
            out_kind="dir",
        ),
        Job(
            "bioio-convert",
            "bioio",
            "`OmeTiffWriter.save(BioImage(f).data, out, zlib level 6)`",
            "from bioio import BioImage\nfrom bioio_ome_tiff.writers import OmeTiffWriter\n_mark('ready')\n"
            "img = BioImage(SRC)\nOmeTiffWriter.save(img.data, OUT, dim_order=img.dims.order, "
            "physical_pixel_sizes=img.physical_pixel_sizes, "
            "tifffile_kwargs={'compression': 'zlib', 'compressionargs': {'level': 6}})\n_mark('end')",
            ("ready", "end"),
            env="bioio",
            out_kind="tif",
        ),
    ]
    load0 = os.getloadavg()[0]
    s = run_section(jobs, src, workdir, pythons, args.convert_rounds, args.timeout, verify=check_tif(src))
    load1 = os.getloadavg()[0]
    gb = nbytes / 1e9
    ref, two = s["tifffile-1"], s["tifffile-2"]
    limit = None
    if ref.ok and two.ok:
        e1 = [m["end"][0] - m["read"][0] for m in ref.marks]
        e2 = [m["end"][0] - m["read"][0] for m in two.marks]
        limit = statistics.median(e1) / statistics.median(e2)
    rows = []
    figures: dict[str, Any] = {k: _fig(v) for k, v in s.items()}
    for key in ("omio-convert", "tifffile-1", "tifffile-2", "omio03-convert", "bioio-convert"):
        st = s[key]
        speedup = ratio_of(ref, st) if key != "tifffile-1" else None
        cpu_ratio = (st.cpu_med / ref.cpu_med) if (st.ok and ref.ok) else None
        note = ""
        if st.ok:
            note = f"(CPU {st.cpu_med / gb:.1f} s per GB of input"
            note += f", {cpu_ratio:.2f}x the reference's)" if cpu_ratio is not None and key != "tifffile-1" else ")"
            if st.output_bytes:
                note += f", {st.output_bytes / MB:.0f} MB out"
        if key == "omio-convert":
            target = "speed-up ≥ 0.95 × limit; RSS < 300 MB; CPU/GB ≤ 1.1x"
            met = None
            if speedup is not None and limit is not None and cpu_ratio is not None:
                met = speedup >= 0.95 * limit and st.peak < 300 * MB and cpu_ratio <= 1.1
            ratio_text = (
                f"speed-up {speedup:.2f}x (limit {limit:.2f}x: {speedup / limit * 100:.0f}% of it)"
                if speedup is not None and limit is not None
                else None
            )
            rows.append(Row(st, ref="tifffile 1 thread", ratio_text=ratio_text, target=target, met=met, note=note))
            figures["limit"] = limit
            figures["omio_speedup"] = speedup
            figures["omio_cpu_ratio"] = cpu_ratio
        elif key == "tifffile-1":
            rows.append(Row(st, ref="(reference)", note=note))
        else:
            extra = ""
            if key == "tifffile-2" and limit is not None:
                extra = f"; encoding alone (after the read) {limit:.2f}x faster than 1 thread = the limit"
            rows.append(
                Row(
                    st,
                    ref="tifffile 1 thread",
                    ratio_text=f"speed-up {speedup:.2f}x" if speedup is not None else None,
                    note=note + extra,
                )
            )
    lines = [
        f"Timed after the imports; input {gb:.2f} GB uncompressed. The limit is the speed-up of tifffile's own "
        "encoder from 1 to 2 threads in this run (the `imwrite` part of the two tifffile jobs, after their read).",
        f"- {noise_line(s, (load0, load1))}",
    ]
    return table("d. Conversion to zlib level 6 OME-TIFF (issue point 5)", lines, rows), figures


def section_e(
    src: Path, big: Path, workdir: Path, pythons: dict[str, str | None], args: argparse.Namespace, nbytes: int
) -> tuple[str, dict]:
    jobs = [
        Job(
            "omio-zarr",
            "omio",
            "`omio.open(f).to_omezarr(out, levels=3)`",
            "import omio\nimport omio.writers.omezarr\n_mark('ready')\n"
            "omio.open(SRC).to_omezarr(OUT, levels=3, overwrite=True)\n_mark('end')",
            ("ready", "end"),
            out_kind="zarr",
        ),
        Job(
            "bioio-zarr",
            "bioio",
            "`OmeZarrConverter(source=f, num_levels=3).convert()`",
            "from bioio_conversion import OmeZarrConverter\n_mark('ready')\n"
            "OmeZarrConverter(source=SRC, destination=OUT, name='out', num_levels=3).convert()\n_mark('end')",
            ("ready", "end"),
            env="bioio",
            out_kind="dir",
        ),
    ]
    results = {}
    loads = []
    skipped = ""
    for tag, path in (("1x", src), ("4x", big)):
        print(f" input {tag}: {path.name}", flush=True)
        loads.append(os.getloadavg()[0])
        run = jobs
        if tag == "4x" and 4 * nbytes > 2e9 and not args.bioio_big:
            # bioio-conversion's worker processes held ~5x the input in the quick run: not on a shared machine
            run = jobs[:1]
            skipped = (
                f"- bioio-conversion is not run on the 4x input ({4 * nbytes / 1e9:.1f} GB): its worker processes "
                "held several times the input in memory at 0.27 and 1.07 GB, too much for this shared machine "
                "(`--bioio-big` runs it)"
            )
        results[tag] = run_section(
            run, path, workdir, pythons, args.convert_rounds, args.timeout, verify=check_zarr(path), tag=tag
        )
        loads.append(os.getloadavg()[0])
    rows = []
    o1, o4 = results["1x"]["omio-zarr"], results["4x"]["omio-zarr"]
    flat = (o4.peak / o1.peak) if (o1.ok and o4.ok) else None
    for tag, size in (("1x", nbytes), ("4x", 4 * nbytes)):
        s = results[tag]
        o = s["omio-zarr"]
        b = s.get("bioio-zarr") or Stats(jobs[1], error="not run (see above)")
        speed = ratio_of(b, o)
        gb1 = abs(size / 1e9 - 1.07) < 0.05
        parts: list[str] = []
        checks: list[bool] = []
        if b.ok or b.error is None or not b.error.startswith("not run"):
            parts.append("≥ 2x faster than bioio-conversion")
            checks.append(speed is not None and speed >= 2.0)
        if gb1:
            parts.append("peak ≤ 200 MB")
            checks.append(o.ok and o.peak <= 200 * MB)
        if tag == "4x":
            parts.append(f"peak 4x/1x ≤ 1.1 ({flat:.2f})" if flat is not None else "peak 4x/1x ≤ 1.1")
            checks.append(flat is not None and flat <= 1.1)
        met: bool | None = all(checks) if checks and o.ok else None
        out_o = f", {o.output_bytes / MB:.0f} MB out" if o.ok and o.output_bytes else ""
        out_b = f", {b.output_bytes / MB:.0f} MB out" if b.ok and b.output_bytes else ""
        rows.append(
            Row(
                o,
                label=f"{o.job.label}, {tag} input ({size / 1e9:.2f} GB)",
                ref="bioio-conversion",
                ratio_text=f"speed-up {speed:.2f}x" if speed is not None else None,
                target="; ".join(parts),
                met=met,
                note=f"(CPU {o.cpu_med:.1f} s{out_o})" if o.ok else "",
            )
        )
        rows.append(
            Row(
                b,
                label=f"{b.job.label}, {tag} input ({size / 1e9:.2f} GB)",
                ref="(reference)",
                note=f"(CPU {b.cpu_med:.1f} s{out_b})" if b.ok else "",
            )
        )
    all_stats = {f"{k}-{t}": v for t, d in results.items() for k, v in d.items()}
    lines = [
        "NGFF 0.5 / Zarr v3, each tool's default codec, chunks and shards; timed after the imports.",
        f"- {noise_line(all_stats, (loads[0], loads[-1]))}",
    ]
    if skipped:
        lines.append(skipped)
    figures = {k: _fig(v) for k, v in all_stats.items()} | {"omio_peak_4x_over_1x": flat}
    return table("e. OME-Zarr, 3 levels (issue point 4)", lines, rows), figures


def many_page_file(workdir: Path, pages: int) -> Path:
    """An uncompressed OME-TIFF of ``pages`` 32x32 uint16 pages, TZCYX (pages / 20, 10, 2, 32, 32) (cached)."""
    import numpy as np
    import tifffile

    z, c = MANY_ZC
    shape = (pages // (z * c), z, c, *MANY_YX)
    path = workdir / f"manypages_v1_{pages}.ome.tif"
    if not path.exists():
        print(f"generating {path.name} ...", flush=True)
        rng = np.random.default_rng(pages)
        data = (rng.poisson(100.0, size=shape)).astype(np.uint16)
        tmp = path.with_name(path.name + ".part")
        tifffile.imwrite(
            tmp, data, photometric="minisblack", ome=True, metadata={"axes": "TZCYX", "PhysicalSizeX": 0.2}
        )
        os.replace(tmp, path)
    return path


def section_f(workdir: Path, pythons: dict[str, str | None], args: argparse.Namespace) -> tuple[str, dict]:
    jobs = [
        Job(
            "omio-many",
            "omio",
            "`omio.open(f)`",
            "import omio\nimport omio.readers.tiff\nimport tifffile\n_mark('ready')\nds = omio.open(SRC)\n"
            "_mark('open')\na = ds.isel(T=0, Z=0, C=0).to_numpy()\n_mark('end')\nEXTRA['sum'] = int(a.sum())",
            ("ready", "end"),
        ),
        Job(
            "tifffile-many",
            "tifffile",
            "`TiffFile(f).series[0]`",
            "import tifffile, zarr\n_mark('ready')\ntif = tifffile.TiffFile(SRC)\ns = tif.series[0]; s.shape\n"
            "_mark('open')\na = zarr.open(s.aszarr(), mode='r')[0, 0, 0]\n_mark('end')\nEXTRA['sum'] = int(a.sum())",
            ("ready", "end"),
        ),
    ]
    if not args.no_many_peers:
        jobs += [
            Job(
                "bioio-many",
                "bioio",
                "`BioImage(f)`",
                "from bioio import BioImage\nimport bioio_ome_tiff\n_mark('ready')\nimg = BioImage(SRC)\nimg.dims\n"
                "_mark('open')\na = img.get_image_dask_data('YX', T=0, C=0, Z=0).compute()\n_mark('end')\n"
                "EXTRA['sum'] = int(a.sum())",
                ("ready", "end"),
                env="bioio",
            ),
            Job(
                "omio03-many",
                "omio03",
                "`omio.imread(f)` (reads all)",
                "import omio\n_mark('ready')\nimg, md = omio.imread(SRC, verbose=False)\n_mark('open')\n"
                "a = img[0, 0, 0]\n_mark('end')\nEXTRA['sum'] = int(a.sum())",
                ("ready", "end"),
                env="omio03",
            ),
        ]
    results = {}
    loads = [os.getloadavg()[0]]
    for pages in args.pages:
        path = many_page_file(workdir, pages)
        print(f" {pages} pages: {path.name}", flush=True)
        results[pages] = run_section(jobs, path, workdir, pythons, args.rounds, args.timeout)
    loads.append(os.getloadavg()[0])
    rows = []
    per_page: dict[int, float] = {}
    for pages, s in results.items():
        t = s["tifffile-many"]
        for key in [j.name for j in jobs]:
            st = s[key]
            opens = [m["open"][0] - m["ready"][0] for m in st.marks]
            planes = [m["end"][0] - m["open"][0] for m in st.marks]
            t_opens = [m["open"][0] - m["ready"][0] for m in t.marks] if t.ok else []
            t_planes = [m["end"][0] - m["open"][0] for m in t.marks] if t.ok else []
            is_omio = key == "omio-many"
            r_open = statistics.median(opens) / statistics.median(t_opens) if st.ok and t_opens else None
            r_plane = statistics.median(planes) / statistics.median(t_planes) if st.ok and t_planes else None
            if is_omio and st.ok:
                per_page[pages] = statistics.median(opens) / pages
            ref = "tifffile series" if key != "tifffile-many" else "(reference)"
            rows.append(
                Row(
                    st,
                    label=f"{pages // 1000}k pages: open, {st.job.label}",
                    values=opens if st.ok else None,
                    cpu=statistics.median(m["open"][1] - m["ready"][1] for m in st.marks) if st.ok else None,
                    ref=ref,
                    ratio=r_open if key != "tifffile-many" else None,
                    target="≤ 1.3x" if is_omio else "—",
                    met=met_le(r_open, 1.3) if is_omio else None,
                )
            )
            rows.append(
                Row(
                    st,
                    label=f"{pages // 1000}k pages: first plane after the open",
                    values=planes if st.ok else None,
                    cpu=statistics.median(m["end"][1] - m["open"][1] for m in st.marks) if st.ok else None,
                    ref="tifffile zarr store of the series" if key != "tifffile-many" else "(reference)",
                    ratio=r_plane if key != "tifffile-many" else None,
                    target="≤ 2x" if is_omio else "—",
                    met=met_le(r_plane, 2.0) if is_omio else None,
                )
            )
    growth = None
    lines = [
        "Timed after the imports; open = to the shape and metadata (omio's dataset, tifffile's series, bioio's "
        "`BioImage(f).dims`, OMIO 0.3's `imread`, which reads all pixels); peak RSS and time range are per run of "
        "open + plane.",
        f"- load average (1 min) {loads[0]:.2f} before, {loads[-1]:.2f} after",
    ]
    if len(per_page) >= 3:
        # linear = the cost of each further page does not grow: the marginal cost per page over the last interval
        # of page counts against the first (fixed costs cancel out)
        ps = sorted(per_page)
        total = {p: per_page[p] * p for p in ps}
        first = (total[ps[1]] - total[ps[0]]) / (ps[1] - ps[0])
        last = (total[ps[-1]] - total[ps[-2]]) / (ps[-1] - ps[-2])
        growth = last / first
        lines.append(
            "- omio's open time per page: "
            + ", ".join(f"{p // 1000}k {v * 1e6:.0f} µs" for p, v in sorted(per_page.items()))
            + f"; marginal cost per page {ps[0] // 1000}k→{ps[1] // 1000}k {first * 1e6:.0f} µs, "
            + f"{ps[-2] // 1000}k→{ps[-1] // 1000}k {last * 1e6:.0f} µs: {growth:.2f}x (target linear, ≤ 1.3x: "
            + ("met" if growth <= 1.3 else "**not met**")
            + ")"
        )
    figures = {f"{k}-{p}": _fig(v) for p, d in results.items() for k, v in d.items()}
    figures["omio_open_per_page_growth"] = growth
    return table("f. Many-page OME-TIFF (issue point 3)", lines, rows), figures


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size", type=float, default=0.25, help="input size in GB (default 0.25: 0.27 GB; 1.0 = 1.07 GB)"
    )
    parser.add_argument("--sections", default="abcdef", help="which jobs to run: letters of a-f (default all)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of sections b, c, f (default 3)")
    parser.add_argument("--startup-rounds", type=int, default=7, help="rounds of section a (default 7)")
    parser.add_argument("--convert-rounds", type=int, default=3, help="rounds of sections d, e (default 3)")
    parser.add_argument(
        "--pages", type=lambda t: [int(x) for x in t.split(",")], default=list(MANY_PAGES), help="section f page counts"
    )
    parser.add_argument("--bioio-big", action="store_true", help="section e: run bioio-conversion on a 4x input > 2 GB")
    parser.add_argument("--no-many-peers", action="store_true", help="section f: omio and tifffile only")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a job counts as failed")
    parser.add_argument("--workdir", type=Path, default=HERE / "data")
    parser.add_argument(
        "--omio-ref",
        default="HEAD",
        help="git commit of omio to benchmark (exported to the work directory; default HEAD), or 'worktree' for "
        "the checkout with its uncommitted changes",
    )
    parser.add_argument("--results", type=Path, default=HERE, help="directory for the results (default benchmarks/)")
    parser.add_argument("--stem", default="results_peers", help="results file name without .md/.json")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    from bench_tiff import ensure_input, shape_for, warm

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    omio_desc, snapshot = omio_snapshot(args.omio_ref, workdir)
    if snapshot is not None:
        OMIO_PATH[:] = [str(snapshot)]
    print(f"omio: {omio_desc}", flush=True)
    compileall.compile_dir((snapshot or REPO) / "omio", quiet=1)  # as installing a wheel does (see bench_tiff.py)
    pythons = interpreters()
    for env, py in pythons.items():
        print(f"environment {env}: {py or 'NOT INSTALLED (run benchmarks/peers_env.sh)'}", flush=True)
    versions = _versions(pythons)
    shape = shape_for(args.size)
    src = ensure_input(workdir, shape)
    nbytes = math.prod(shape) * 2
    warm(src)
    started = time.strftime("%Y-%m-%d %H:%M")
    cli = list(argv if argv is not None else sys.argv[1:])
    t_start = time.perf_counter()
    parts: list[str] = []
    figures: dict[str, Any] = {}
    sections = args.sections.lower()
    if "a" in sections:
        print("a. start-up", flush=True)
        text, figures["a"] = section_a(src, workdir, pythons, args)
        parts.append(text)
        print(text, flush=True)
    if "b" in sections:
        print("b. open + first plane", flush=True)
        text, figures["b"] = section_b(src, workdir, pythons, args)
        parts.append(text)
        print(text, flush=True)
    if "c" in sections:
        print("c. xarray vs to_numpy", flush=True)
        text, figures["c"] = section_c(src, workdir, pythons, args)
        parts.append(text)
        print(text, flush=True)
    if "d" in sections:
        print("d. conversion to zlib OME-TIFF", flush=True)
        text, figures["d"] = section_d(src, workdir, pythons, args, nbytes)
        parts.append(text)
        print(text, flush=True)
    if "e" in sections:
        print("e. OME-Zarr 3 levels", flush=True)
        big = ensure_input(workdir, (shape[0] * 4, *shape[1:]))
        warm(big)
        warm(src)
        text, figures["e"] = section_e(src, big, workdir, pythons, args, nbytes)
        parts.append(text)
        print(text, flush=True)
    if "f" in sections:
        print("f. many-page OME-TIFF", flush=True)
        text, figures["f"] = section_f(workdir, pythons, args)
        parts.append(text)
        print(text, flush=True)
    minutes = (time.perf_counter() - t_start) / 60
    header = [
        f"# omio and its peers, side by side ({started}, {minutes:.0f} min)",
        "",
        "- command: `" + " ".join(["benchmarks/.venv/bin/python benchmarks/bench_peers.py", *cli]) + "`",
        f"- omio: {omio_desc}",
        f"- input: `{src.name}`, TZCYX {shape}, uint16, uncompressed, {nbytes / 1e9:.2f} GB, in the page cache",
        f"- machine: {os.cpu_count()} cores (shared with other work), {platform.machine()}, Python "
        f"{platform.python_version()}; " + "; ".join(f"{k}: {v}" for k, v in versions.items()),
        "- each job runs in a fresh process; jobs of a section run interleaved, in rounds of one run each in a "
        "rotated order; times are medians with the range of the rounds; peak RSS is the process's VmHWM (imports "
        "included), max over rounds",
    ]
    md = args.results / f"{args.stem}.md"
    kept = _kept_sections(md, sections) if md.exists() and set("abcdef") - set(sections) else []
    if kept:
        header.append(
            "- sections " + ", ".join(k for k, _ in kept) + " are kept from the previous run (" + _first_line(md) + ")"
        )
    by_letter = {p[4]: p for p in parts} | dict(kept)
    text = "\n".join(header) + "\n\n" + "\n".join(by_letter[k] for k in sorted(by_letter))
    args.results.mkdir(parents=True, exist_ok=True)
    md.write_text(text)
    old_json = args.results / f"{args.stem}.json"
    if kept and old_json.exists():  # keep the figures of the sections kept above
        previous = json.loads(old_json.read_text()).get("sections", {})
        figures = {k: v for k, v in previous.items() if k in dict(kept)} | figures
    payload = {"started": started, "input": {"path": str(src), "shape": shape, "bytes": nbytes}, "versions": versions}
    (args.results / f"{args.stem}.json").write_text(
        json.dumps(payload | {"sections": figures}, indent=1, default=str) + "\n"
    )
    print(f"written {md} and {old_json}")
    return 0


def _kept_sections(md: Path, ran: str) -> list[tuple[str, str]]:
    """The sections of an earlier results file that this run did not run again, as (letter, text)."""
    text = md.read_text()
    chunks = text.split("\n### ")[1:]
    return [(c[0], "### " + c.rstrip("\n") + "\n") for c in chunks if c[0] in "abcdef" and c[0] not in ran]


def _first_line(md: Path) -> str:
    first = md.read_text().splitlines()[0]
    return (
        first.removeprefix("# ").strip()
        + ", command: "
        + next((ln.split("`")[1] for ln in md.read_text().splitlines() if ln.startswith("- command:")), "?")
    )


def _versions(pythons: dict[str, str | None]) -> dict[str, str]:
    """Package versions in each environment (from its metadata, without importing the packages)."""
    wanted = {
        "omio": ["tifffile", "zarr", "dask", "xarray", "numpy"],
        "bioio": ["bioio", "bioio-ome-tiff", "bioio-ome-zarr", "bioio-conversion"],
        "omio03": ["omio-microscopy"],
    }
    out: dict[str, str] = {}
    for env, names in wanted.items():
        py = pythons.get(env)
        if py is None:
            out[env] = "not installed"
            continue
        code = (
            "import importlib.metadata as m, sys\n"
            "for n in sys.argv[1:]:\n"
            "    try: print(n, m.version(n))\n"
            "    except Exception: print(n, '?')"
        )
        res = subprocess.run([py, "-P", "-c", code, *names], capture_output=True, text=True, check=False, cwd="/")
        out[env] = ", ".join(res.stdout.split("\n")).strip(", ").replace("\n", ", ")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
