"""Benchmark omio's CZI and Thorlabs RAW readers against czifile and numpy.memmap used directly.

Run from the repository root::

    .venv/bin/python benchmarks/bench_czi_raw.py                 # 1 GB inputs, warm page cache
    .venv/bin/python benchmarks/bench_czi_raw.py --size-gb 0.2   # smaller inputs (quick check)
    .venv/bin/python benchmarks/bench_czi_raw.py --cold          # drop the page cache before every job (root only)

What it does:

1. Generates once (cached in ``--workdir``, default ``benchmarks/data/``, which git ignores), from the same
   synthetic planes as ``bench_tiff.py`` (smooth blobs over a gradient background with shot noise, 1024 x 1024
   uint16):

   - two CZI files of T x 32 x 2 x 1024 x 1024 (at least ``--size-gb`` GB of pixels) written plane by plane with
     pylibCZIrw (the ``bench`` extra): one uncompressed, one zstd compressed the way ZEN does it
     (``zstd1``: level 1 with the high/low byte split);
   - a ThorImageLS streaming acquisition (``Experiment.xml`` + ``Image_0001_0001.raw``) of T x 2 channels x
     1024 x 1024 (at least ``--size-gb`` GB), streamed frame by frame to the RAW file (bounded memory).

2. Runs every job in a fresh Python process (this script with ``--child``) and records its wall time (after
   imports) and its peak resident memory (``VmHWM`` of that process, imports included):

   - CZI open + one plane: ``omio.open(p).isel(T=3, Z=10, C=1).to_numpy()`` vs
     ``czifile.CziFile(p).asarray(T=3, Z=10, C=1)`` (what ``czifile.imread`` does);
   - CZI full read: ``omio.open(p).to_numpy()`` vs ``czifile.CziFile(p).asarray()`` with its default decoding
     threads (half the cores), with ``maxworkers=2`` and with ``memmap=True, maxworkers=2``; the fastest of the
     three is the reference;
   - RAW open + one plane: ``omio.open(folder).isel(T=3, C=1).to_numpy()`` vs ``numpy.memmap`` of the file,
     indexing one frame and copying it;
   - RAW full read: ``omio.open(folder).to_numpy()`` vs ``np.array(np.memmap(...))`` and, for information,
     ``readinto`` of the whole file into a preallocated array (the fastest way to get it into memory).

   Every pair is checked to return the same pixels.
3. Prints one Markdown table and writes it to ``benchmarks/results_czi_raw.md`` and the raw figures to
   ``benchmarks/results_czi_raw.json``.

An input's jobs run in ``--repeat`` rounds of every job once, so that all of them see the same load from other
processes; times are medians over the rounds, peak RSS the maximum. The page cache is warm unless ``--cold`` is
given (every input is read once before its jobs).
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench_tiff import MB, JobStats, X, Y, Z, _checksum, _planes, drop_caches, fmt_time, peak_rss, warm

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
C = 2
PLANE_BYTES = Y * X * 2
DATA_VERSION = "v1"  # bump when the generated content changes
CZI_COMPRESSION = {"uncompressed": None, "zstd": "zstd1:ExplicitLevel=1;PreProcess=HiLoByteUnpack"}
CZIFILE_READS = {
    "czifile-read": "czifile asarray, default threads",
    "czifile-read-2threads": "czifile asarray, maxworkers=2",
    "czifile-read-memmap-2threads": "czifile asarray, memmap, maxworkers=2",
}
"""The direct full reads of a CZI; the fastest is the reference."""
PLANE = {"T": 3, "Z": 10, "C": 1}
"""The plane read by the open + one plane jobs (clipped to the input's shape)."""


# ---------------------------------------------------------------------------------------------- data generation
def czi_shape(size_gb: float) -> tuple[int, int, int, int, int]:
    """TZCYX shape of at least ``size_gb`` GB (1e9 bytes), growing T."""
    return (max(1, math.ceil(size_gb * 1e9 / (Z * C * PLANE_BYTES))), Z, C, Y, X)


def raw_shape(size_gb: float) -> tuple[int, int, int, int, int]:
    """TZCYX shape of a streaming acquisition (Z = 1) of at least ``size_gb`` GB, growing T."""
    return (max(1, math.ceil(size_gb * 1e9 / (C * PLANE_BYTES))), 1, C, Y, X)


def czi_path(workdir: Path, shape: tuple[int, ...], compression: str) -> Path:
    t, z, c, y, x = shape
    return workdir / f"synthetic_{DATA_VERSION}_T{t}_Z{z}_C{c}_{y}x{x}_{compression}.czi"


def raw_folder(workdir: Path, shape: tuple[int, ...]) -> Path:
    t, _, c, y, x = shape
    return workdir / f"thorlabs_{DATA_VERSION}_T{t}_C{c}_{y}x{x}"


def generate_czi(path: Path, shape: tuple[int, ...], compression: str | None) -> None:
    """Write the synthetic CZI plane by plane with pylibCZIrw (atomic: temp file, then rename)."""
    from pylibCZIrw import czi as pyczi

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.part.czi")
    tmp.unlink(missing_ok=True)
    t_n, z_n, c_n = shape[:3]
    print(f"generating {path} ({math.prod(shape) * 2 / 1e9:.2f} GB of pixels, shape {shape}) ...", flush=True)
    t0 = time.perf_counter()
    with pyczi.create_czi(os.fspath(tmp), exist_ok=True) as writer:
        planes = _planes(shape)
        for t in range(t_n):
            for z in range(z_n):
                for c in range(c_n):
                    plane = next(planes)
                    if not writer.write(
                        plane[..., None], plane={"T": t, "Z": z, "C": c}, compression_options=compression
                    ):
                        raise RuntimeError(f"pylibCZIrw failed to write plane T={t} Z={z} C={c} of {tmp}")
        writer.write_metadata(
            document_name=path.stem,
            channel_names={c: f"ch{c}" for c in range(c_n)},
            scale_x=0.2,
            scale_y=0.2,
            scale_z=1.0,
        )
    os.replace(tmp, path)
    print(f"generated in {time.perf_counter() - t0:.1f} s, {path.stat().st_size / 1e9:.2f} GB on disk", flush=True)


def experiment_xml(shape: tuple[int, ...]) -> str:
    """Experiment.xml of a ThorImageLS streaming acquisition (CaptureMode 1, no fast Z) of ``shape``."""
    t, _, c, y, x = shape
    waves = "".join(f'    <Wavelength name="Chan{"ABCD"[i]}" exposureTimeMS="0" />\n' for i in range(c))
    return (
        '<?xml version="1.0"?>\n<ThorImageExperiment>\n'
        '  <Date date="06/11/2024 10:00:00" uTime="1718100000" />\n'
        f'  <Wavelengths>\n{waves}    <ChannelEnable Set="{2**c - 1}" />\n  </Wavelengths>\n'
        '  <ZStage name="ThorZPiezo" steps="1" stepSizeUM="1" enable="0" />\n'
        '  <Timelapse timepoints="1" intervalSec="0" triggerMode="0" />\n'
        f'  <LSM name="GalvoResonance" pixelX="{x}" pixelY="{y}" pixelSizeUM="0.3" frameRate="15" />\n'
        f'  <Streaming enable="1" frames="{t}" zFastEnable="0" flybackFrames="0" />\n'
        '  <CaptureMode mode="1" />\n'
        '  <RawData onlyEnabledChannels="1" />\n'
        "</ThorImageExperiment>\n"
    )


def generate_raw(folder: Path, shape: tuple[int, ...]) -> None:
    """Write the RAW acquisition frame by frame (atomic: temp folder, then rename)."""
    tmp = folder.with_name(folder.name + ".part")
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"generating {folder} ({math.prod(shape) * 2 / 1e9:.2f} GB, shape {shape}) ...", flush=True)
    t0 = time.perf_counter()
    (tmp / "Experiment.xml").write_text(experiment_xml(shape))
    with open(tmp / "Image_0001_0001.raw", "wb") as f:
        for frame in _planes(shape):
            f.write(frame.astype("<u2", copy=False).tobytes())
    os.replace(tmp, folder)
    print(f"generated in {time.perf_counter() - t0:.1f} s", flush=True)


def ensure_inputs(workdir: Path, size_gb: float) -> dict[str, Path]:
    """Return the benchmark inputs (CZI files and the RAW folder), generating the missing ones."""
    inputs: dict[str, Path] = {}
    shape = czi_shape(size_gb)
    for name, compression in CZI_COMPRESSION.items():
        path = czi_path(workdir, shape, name)
        if not path.exists():
            generate_czi(path, shape, compression)
        inputs[f"czi-{name}"] = path
    folder = raw_folder(workdir, raw_shape(size_gb))
    if not folder.exists():
        generate_raw(folder, raw_shape(size_gb))
    inputs["raw"] = folder
    for path in inputs.values():
        print(f"input {path}", flush=True)
    return inputs


def warm_input(path: Path) -> None:
    warm(path / "Image_0001_0001.raw" if path.is_dir() else path)


# ---------------------------------------------------------------------------------------------- child jobs
def _plane_index(shape: tuple[int, ...]) -> dict[str, int]:
    return {d: min(i, n - 1) for (d, i), n in zip(PLANE.items(), shape[:3], strict=True)}


def _omio_plane(src: Path) -> Callable[[], Any]:
    import omio

    def run() -> Any:
        ds = omio.open(src)
        return ds.isel(**_plane_index(ds.shape)).to_numpy().squeeze()

    return run


def _omio_read(src: Path) -> Callable[[], Any]:
    import omio

    return lambda: omio.open(src).to_numpy()


def _czifile_plane(src: Path) -> Callable[[], Any]:
    import czifile

    def run() -> Any:
        with czifile.CziFile(src) as czi:
            sizes = czi.scenes[0].sizes
            return czi.asarray(**_plane_index(tuple(sizes.get(d, 1) for d in "TZC")))

    return run


def _czifile_read(maxworkers: int | None, memmap: bool) -> Callable[[Path], Callable[[], Any]]:
    def make(src: Path) -> Callable[[], Any]:
        import czifile

        def run() -> Any:
            with czifile.CziFile(src, memmap=memmap) as czi:
                data = czi.asarray(maxworkers=maxworkers)
                dims = czi.scenes[0].dims
            return data.transpose([dims.index(d) for d in "TZCYX" if d in dims])  # a view in omio's order

        return run

    return make


def _raw_memmap(src: Path) -> np.memmap[Any, Any]:
    """Map the RAW file as (T, C, Y, X) from the few Experiment.xml fields a streaming acquisition needs."""
    from xml.etree import ElementTree

    root = ElementTree.parse(src / "Experiment.xml").getroot()
    lsm, streaming = root.find("LSM"), root.find("Streaming")
    assert lsm is not None and streaming is not None
    n_c = bin(int(root.find("Wavelengths/ChannelEnable").get("Set"))).count("1")  # type: ignore[union-attr,arg-type]
    shape = (int(streaming.get("frames", 0)), n_c, int(lsm.get("pixelY", 0)), int(lsm.get("pixelX", 0)))
    return np.memmap(src / "Image_0001_0001.raw", dtype="<u2", mode="r", shape=shape)


def _memmap_plane(src: Path) -> Callable[[], Any]:
    def run() -> Any:
        mm = _raw_memmap(src)
        index = _plane_index((mm.shape[0], 1, mm.shape[1]))
        return np.array(mm[index["T"], index["C"]])

    return run


def _memmap_read(src: Path) -> Callable[[], Any]:
    return lambda: np.array(_raw_memmap(src))


def _readinto_read(src: Path) -> Callable[[], Any]:
    def run() -> Any:
        shape = _raw_memmap(src).shape
        out = np.empty(shape, dtype="<u2")
        with open(src / "Image_0001_0001.raw", "rb", buffering=0) as f:
            f.readinto(memoryview(out).cast("B"))
        return out

    return run


JOBS: dict[str, Callable[[Path], Callable[[], Any]]] = {
    "omio-plane": _omio_plane,
    "omio-read": _omio_read,
    "czifile-plane": _czifile_plane,
    "czifile-read": _czifile_read(None, memmap=False),
    "czifile-read-2threads": _czifile_read(2, memmap=False),
    "czifile-read-memmap-2threads": _czifile_read(2, memmap=True),
    "memmap-plane": _memmap_plane,
    "memmap-read": _memmap_read,
    "readinto-read": _readinto_read,
}


class AnonSampler(threading.Thread):
    """Sample this process's anonymous resident memory (RSS minus file-backed and shared pages) every 5 ms.

    ``VmHWM`` counts the pages of memory-mapped files, which belong to the page cache and can be dropped at
    any time; this peak counts only the memory the job allocated.
    """

    def __init__(self) -> None:
        import psutil

        super().__init__(daemon=True)
        self.process = psutil.Process()
        self.peak = 0
        self.done = threading.Event()

    def sample(self) -> None:
        info = self.process.memory_info()
        self.peak = max(self.peak, info.rss - info.shared)

    def run(self) -> None:
        while not self.done.wait(0.005):
            self.sample()

    def __enter__(self) -> AnonSampler:
        self.sample()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()
        self.sample()


def child(job: str, src: Path) -> None:
    """Run one job in this (fresh) process and print its figures as one JSON line."""
    import psutil

    if job.startswith("omio"):
        sys.path.insert(0, str(REPO))  # benchmark this checkout
    t0 = time.perf_counter()
    run = JOBS[job](src)
    t1 = time.perf_counter()
    rss_imports = psutil.Process().memory_info().rss
    c1 = os.times()
    with AnonSampler() as anon:
        result = run()
    t2 = time.perf_counter()
    c2 = os.times()
    peak = peak_rss()
    record = {
        "job": job,
        "import_s": t1 - t0,
        "time_s": t2 - t1,
        "cpu_s": (c2.user + c2.system) - (c1.user + c1.system),
        "rss_after_imports": rss_imports,
        "peak_rss": peak,
        "peak_anon": anon.peak,
        "check": _checksum(np.asarray(result).squeeze()),
    }
    print("RESULT " + json.dumps(record), flush=True)


# ---------------------------------------------------------------------------------------------- parent
@dataclass
class Stats(JobStats):
    anon_peaks: list[int] = field(default_factory=list)

    @property
    def anon_peak(self) -> int:
        return max(self.anon_peaks)


def run_jobs(jobs: Sequence[str], src: Path, repeat: int, cold: bool) -> dict[str, Stats]:
    """Run every job ``repeat`` times, interleaved (round after round), so that all jobs see the same load.

    Each round starts one job later (round r runs jobs r, r+1, ..., then 0, ..., r-1): how fast a process gets
    fresh memory from this virtual machine depends on what ran just before it, so every job takes every place.
    """
    stats = {job: Stats(job) for job in jobs}
    for r in range(repeat):
        k = r % len(jobs)
        for job in (*jobs[k:], *jobs[:k]):
            run_once(stats[job], src, cold)
    for job in stats.values():
        report(job)
    return stats


def run_once(stats: Stats, src: Path, cold: bool) -> None:
    """Run one job in a fresh process and add its figures to ``stats``."""
    if cold:
        drop_caches()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", stats.job, "--input", str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"job {stats.job} on {src} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    rec = json.loads(lines[-1][len("RESULT ") :])
    stats.times.append(rec["time_s"])
    stats.cpu.append(rec["cpu_s"])
    stats.peaks.append(rec["peak_rss"])
    stats.anon_peaks.append(rec["peak_anon"])
    stats.import_s.append(rec["import_s"])
    stats.rss_after_imports.append(rec["rss_after_imports"])
    stats.check = rec["check"]


def report(stats: Stats) -> None:
    job = stats.job
    print(
        f"  {job:<28} {stats.time:8.3f} s (cpu {statistics.median(stats.cpu):6.2f} s)   "
        f"peak {stats.peak / MB:6.0f} MB (anon {stats.anon_peak / MB:5.0f} MB)   "
        f"(imports {statistics.median(stats.import_s):.2f} s, {max(stats.rss_after_imports) / MB:.0f} MB)",
        flush=True,
    )


@dataclass
class Row:
    input: str
    job: str
    omio: Stats
    other: Stats
    other_name: str

    def cells(self) -> list[str]:
        return [
            self.input,
            self.job,
            fmt_time(self.omio.time),
            f"{fmt_time(self.other.time)} ({self.other_name})",
            f"**{self.omio.time / self.other.time:.2f}x**",
            f"{self.omio.peak / MB:.0f} / {self.omio.anon_peak / MB:.0f} MB",
            f"{self.other.peak / MB:.0f} / {self.other.anon_peak / MB:.0f} MB",
            f"{self.omio.peak / self.other.peak:.2f}x / {self.omio.anon_peak / self.other.anon_peak:.2f}x",
        ]


def markdown(rows: list[Row], header_lines: list[str]) -> str:
    head = [
        "input",
        "job",
        "omio time",
        "direct time",
        "time ratio (omio/direct)",
        "omio peak RSS / anon",
        "direct peak RSS / anon",
        "peak RSS ratio / anon",
    ]
    out = [*header_lines, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="pixels per input in GB (1e9 bytes; default 1.0)")
    parser.add_argument("--workdir", type=Path, default=HERE / "data", help="where inputs are cached")
    parser.add_argument("--repeat", type=int, default=5, help="runs of every job, interleaved (default 5)")
    parser.add_argument("--cold", action="store_true", help="drop the page cache before every job (needs root)")
    parser.add_argument("--results", type=Path, default=HERE, help="directory for results_czi_raw.md/.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.input)
        return 0
    # omio's bytecode, compiled as installing a wheel compiles it: this checkout is an editable install, and where
    # PYTHONDONTWRITEBYTECODE is set every job would otherwise compile omio's modules again as it imports them
    compileall.compile_dir(REPO / "omio", quiet=1)

    from importlib.metadata import version

    import czifile
    import dask

    inputs = ensure_inputs(args.workdir.resolve(), args.size_gb)
    shapes = {"czi-uncompressed": czi_shape(args.size_gb), "czi-zstd": czi_shape(args.size_gb)}
    shapes["raw"] = raw_shape(args.size_gb)
    load_start = os.getloadavg()
    cache = "cold (page cache dropped before every job)" if args.cold else "warm (input in the page cache)"
    jobs = {
        "czi": ("omio-plane", "czifile-plane", "omio-read", *CZIFILE_READS),
        "raw": ("omio-plane", "memmap-plane", "omio-read", "memmap-read", "readinto-read"),
    }
    stats: dict[str, dict[str, JobStats]] = {}
    rows: list[Row] = []
    for name, src in inputs.items():
        print(f"{name}: {src.name}", flush=True)
        if args.cold:
            drop_caches()
        else:
            warm_input(src)
        s = stats[name] = run_jobs(jobs[name.split("-")[0]], src, args.repeat, args.cold)
        reference = [j for j in s if not j.startswith("omio")]
        for omio_job in ("omio-plane", "omio-read"):
            for ref in (r for r in reference if r.split("-")[1] == omio_job.split("-")[1]):
                if s[ref].check != s[omio_job].check:
                    raise AssertionError(f"{name}: {omio_job} and {ref} differ: {s[omio_job].check} != {s[ref].check}")
        if name.startswith("czi"):
            best = min(CZIFILE_READS, key=lambda j: s[j].time)
            rows.append(Row(name, "open + one plane", s["omio-plane"], s["czifile-plane"], "czifile asarray"))
            rows.append(Row(name, "full read", s["omio-read"], s[best], CZIFILE_READS[best]))
        else:
            rows.append(Row(name, "open + one plane", s["omio-plane"], s["memmap-plane"], "memmap, copy"))
            rows.append(Row(name, "full read", s["omio-read"], s["memmap-read"], "np.array(memmap)"))
            rows.append(Row(name, "full read (info)", s["omio-read"], s["readinto-read"], "readinto"))
    load_end = os.getloadavg()

    described = "; ".join(
        f"{name}: `{src.name}`, TZCYX {shapes[name]}, {math.prod(shapes[name]) * 2 / 1e9:.2f} GB of pixels, "
        f"{sum(f.stat().st_size for f in ([src] if src.is_file() else src.iterdir())) / 1e9:.2f} GB on disk"
        for name, src in inputs.items()
    )
    described_bytes = ", ".join(f"{name} {math.prod(shape) * 2 / MB:.0f} MB" for name, shape in shapes.items())
    omio_imports = max(max(s["omio-read"].rss_after_imports) for s in stats.values())
    header = [
        f"# CZI and Thorlabs RAW benchmark: omio vs czifile / numpy.memmap ({time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"- inputs (uint16, synthetic blobs + noise): {described}",
        f"- page cache: {cache}; load average (1 min) {load_start[0]:.2f} at start, {load_end[0]:.2f} at end "
        "(other processes on the machine slow every job down, the multi-threaded ones most)",
        f"- machine: {os.cpu_count()} cores, Python {platform.python_version()}, czifile {czifile.__version__}, "
        f"pylibCZIrw {version('pylibCZIrw')}, dask {dask.__version__}, numpy {np.__version__}",
        f"- each job runs in a fresh process, {args.repeat} rounds of all jobs of an input; time is the median over "
        "the rounds, measured after imports; "
        "peak RSS is the whole process's high-water mark (VmHWM, imports included), max over the rounds; it counts "
        "the page-cache pages of memory-mapped files (czifile with memmap, numpy.memmap, omio's RAW and CZI "
        "readers), so 'anon' gives the peak of the memory the job allocated (RSS minus file-backed pages, sampled "
        f"every 5 ms); omio's imports alone take {omio_imports / MB:.0f} MB",
        f"- pixels per input: {described_bytes}",
    ]
    table = markdown(rows, header)
    print()
    print(table)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "results_czi_raw.md").write_text(table)
    payload = {
        "inputs": {name: {"path": str(src), "shape": shapes[name]} for name, src in inputs.items()},
        "cache": "cold" if args.cold else "warm",
        "loadavg": {"start": load_start, "end": load_end},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "czifile": czifile.__version__,
            "pylibCZIrw": version("pylibCZIrw"),
            "dask": dask.__version__,
            "numpy": np.__version__,
        },
        "jobs": {
            name: {
                k: asdict(v) | {"median_time_s": v.time, "max_peak_rss": v.peak, "max_peak_anon": v.anon_peak}
                for k, v in s.items()
            }
            for name, s in stats.items()
        },
        "ratios": {
            f"{r.input} {r.job}": {
                "time": r.omio.time / r.other.time,
                "peak_rss": r.omio.peak / r.other.peak,
                "peak_anon": r.omio.anon_peak / r.other.anon_peak,
            }
            for r in rows
        },
    }
    (args.results / "results_czi_raw.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"written {args.results / 'results_czi_raw.md'} and {args.results / 'results_czi_raw.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
