"""Benchmark OME-TIFF -> OME-Zarr conversion: omio against writing the same array with zarr directly.

Run from the repository root::

    .venv/bin/python benchmarks/bench_omezarr.py                  # the 1 GB input of bench_tiff.py
    .venv/bin/python benchmarks/bench_omezarr.py --time-points 1  # quick check on T=0 only (128 MB)

What it does:

1. Reuses (or generates once) the uncompressed uint16 OME-TIFF of ``bench_tiff.py`` (T x 32 x 2 x 1024 x 1024,
   cached in ``benchmarks/data/``) and reads it once so the page cache is warm.
2. Runs every job in a fresh Python process and records its wall and CPU time (after imports), the input MB/s and the
   peak resident memory (``VmHWM`` of that process, imports included):

   - ``omio``: ``omio.open(tif).to_omezarr(out, levels=L)`` (NGFF 0.5, Zarr v3, default codec: Blosc
     bit shuffle + zstd level 1, default chunks and shards), with L = 1 and 3;
   - ``zarr direct``: the same array read by dask from ``tifffile.memmap`` (plane chunks), transposed to
     t, c, z, y, x, rechunked to the same shards and stored with ``dask.array.store`` into
     ``zarr.create_array`` with the same chunks, shards and codec (no NGFF metadata, no pyramid);

   each with 1 and with 2 workers: dask's threaded scheduler with ``num_workers`` and zarr's own codec thread
   pool (``threading.max_workers``) both set to that number.
3. Checks every output against the input on a few planes, prints one Markdown table and writes it to
   ``benchmarks/results_omezarr.md``.

Targets (two cores): single level within 1.2x of zarr direct; 3 levels at >= 150 MB/s of input with peak
memory under 500 MB.
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from bench_tiff import ensure_input, peak_rss, shape_for, warm  # noqa: E402

MB = 1e6
RATIO_TARGET = 1.2
PYRAMID_MBPS_TARGET = 150.0
PYRAMID_RSS_TARGET = 500 * MB


def _configure(workers: int) -> None:
    import dask
    import zarr

    dask.config.set(scheduler="threads", num_workers=workers)
    zarr.config.set({"threading.max_workers": workers})


def _omio_job(src: Path, out: Path, levels: int, time_points: int) -> None:
    import omio

    ds = omio.open(src)
    if time_points < ds.sizes["T"]:
        ds = ds.isel(T=slice(0, time_points))
    ds.to_omezarr(out, levels=levels)


def _zarr_job(src: Path, out: Path, time_points: int) -> None:
    import dask.array as da
    import tifffile
    import zarr

    from omio.writers.omezarr import _compressor, _layout

    mm = tifffile.memmap(src, mode="r")[:time_points]
    data = da.from_array(mm, chunks=(1, 1, 1, *mm.shape[3:]), name="input").transpose(0, 2, 1, 3, 4)
    chunks, shards = _layout(data.shape, data.dtype.itemsize, None, None, sharded=True)
    assert shards is not None
    target = zarr.create_array(
        str(out),
        shape=data.shape,
        dtype=data.dtype,
        chunks=chunks,
        shards=shards,
        compressors=_compressor("0.5", "blosc-zstd", None, data.dtype),
    )
    da.store(data.rechunk(shards), target, lock=False)


def child(job: str, src: Path, out: Path, workers: int, time_points: int) -> None:
    import dask.array  # noqa: F401 - imports are not timed
    import tifffile  # noqa: F401
    import zarr  # noqa: F401

    import omio  # noqa: F401

    _configure(workers)
    t0, c0 = time.perf_counter(), time.process_time()
    if job == "zarr":
        _zarr_job(src, out, time_points)
    else:
        _omio_job(src, out, int(job.removeprefix("omio-L")), time_points)
    record = {"time_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "peak_rss": peak_rss()}
    print("RESULT " + json.dumps(record), flush=True)


@dataclass
class Row:
    label: str
    job: str
    workers: int
    time_s: float
    cpu_s: float
    peak_rss: int
    output_bytes: int


def run(job: str, label: str, src: Path, workdir: Path, workers: int, time_points: int, nbytes: int) -> Row:
    out = workdir / f"bench_{job}_w{workers}.ome.zarr"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", job, "--input", str(src), "--output", str(out)]
    cmd += ["--workers", str(workers), "--time-points", str(time_points)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{job} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    record = json.loads(lines[-1].removeprefix("RESULT "))
    verify(src, out, time_points, array_path="" if job == "zarr" else "0")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    shutil.rmtree(out)
    row = Row(label, job, workers, record["time_s"], record["cpu_s"], record["peak_rss"], size)
    print(
        f"  {label:<34} {workers} worker(s) {row.time_s:7.2f} s (cpu {row.cpu_s:6.2f} s) "
        f"{nbytes / MB / row.time_s:6.0f} MB/s  "
        f"peak {row.peak_rss / MB:5.0f} MB",
        flush=True,
    )
    return row


def verify(src: Path, out: Path, time_points: int, *, array_path: str) -> None:
    """Level 0 holds the input's pixels (checked on a few planes), in NGFF's t, c, z, y, x order."""
    import tifffile
    import zarr

    mm = tifffile.memmap(src, mode="r")
    array = zarr.open_array(str(out / array_path) if array_path else str(out), mode="r")
    if array.shape != (time_points, mm.shape[2], mm.shape[1], *mm.shape[3:]):
        raise AssertionError(f"{out}: shape {array.shape} does not match the input {mm.shape}")
    for t, z, c in {(0, 0, 0), (time_points - 1, mm.shape[1] // 2, mm.shape[2] - 1)}:
        if not np.array_equal(array[t, c, z], mm[t, z, c]):
            raise AssertionError(f"{out}: plane t={t} z={z} c={c} differs from the input")


def markdown(rows: list[Row], nbytes: int, header: list[str]) -> str:
    direct = {r.workers: r.time_s for r in rows if r.job == "zarr"}
    lines = [*header, "", "| job | workers | time | CPU time | input MB/s | vs zarr direct | peak RSS | output |"]
    lines.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r.time_s / direct[r.workers]:.2f}x" if r.job != "zarr" else "1.00x"
        lines.append(
            f"| {r.label} | {r.workers} | {r.time_s:.2f} s | {r.cpu_s:.2f} s | {nbytes / MB / r.time_s:.0f} | "
            f"{ratio} | {r.peak_rss / MB:.0f} MB | {r.output_bytes / MB:.0f} MB |"
        )
    lines += ["", "Targets:", ""]
    for w in sorted(direct):
        single = next(r for r in rows if r.job == "omio-L1" and r.workers == w)
        pyramid = next(r for r in rows if r.job == "omio-L3" and r.workers == w)
        ratio = single.time_s / direct[w]
        mbps = nbytes / MB / pyramid.time_s
        lines.append(
            f"- {w} worker(s): single level {ratio:.2f}x zarr direct (target <= {RATIO_TARGET}x: "
            f"{'met' if ratio <= RATIO_TARGET else 'MISSED'}); 3 levels {mbps:.0f} MB/s (target >= "
            f"{PYRAMID_MBPS_TARGET:.0f}: {'met' if mbps >= PYRAMID_MBPS_TARGET else 'MISSED'}), peak "
            f"{pyramid.peak_rss / MB:.0f} MB (target < {PYRAMID_RSS_TARGET / MB:.0f} MB: "
            f"{'met' if pyramid.peak_rss < PYRAMID_RSS_TARGET else 'MISSED'})"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=HERE / "data")
    parser.add_argument("--time-points", type=int, default=0, help="convert only the first T points (0 = all)")
    parser.add_argument("--results", type=Path, default=HERE / "results_omezarr.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.input, args.output, args.workers, args.time_points)
        return 0
    shape = shape_for(args.size_gb)
    src = ensure_input(args.workdir, shape)
    time_points = args.time_points or shape[0]
    nbytes = math.prod((time_points, *shape[1:])) * 2
    warm(src)
    load_start = os.getloadavg()[0]
    print(f"input {src.name}: {nbytes / 1e9:.2f} GB converted (T={time_points} of {shape[0]})", flush=True)
    rows: list[Row] = []
    for workers in (1, 2):
        rows.append(run("zarr", "zarr direct (1 level)", src, args.workdir, workers, time_points, nbytes))
        rows.append(run("omio-L1", "omio to_omezarr (1 level)", src, args.workdir, workers, time_points, nbytes))
        rows.append(run("omio-L3", "omio to_omezarr (3 levels)", src, args.workdir, workers, time_points, nbytes))
    load_end = os.getloadavg()[0]
    header = [
        "# OME-TIFF -> OME-Zarr conversion",
        "",
        f"Input: uncompressed uint16 OME-TIFF, TZCYX {(time_points, *shape[1:])}, {nbytes / 1e9:.2f} GB, warm "
        "page cache. Output: NGFF 0.5 / Zarr v3, Blosc bit shuffle + zstd level 1, chunks (1, 1, 1, 1024, 1024), "
        "default shards (16 MB). "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (load average {load_start:.2f} at start, "
        f"{load_end:.2f} at end), "
        f"Python {platform.python_version()}. One run per job, each in a fresh process; times exclude imports; "
        "peak RSS = VmHWM "
        "(imports included; zarr direct reads a memmap, whose cached pages count in its RSS).",
    ]
    text = markdown(rows, nbytes, header)
    print(text)
    args.results.write_text(text)
    return 0
    # omio's bytecode, compiled as installing a wheel compiles it: this checkout is an editable install, and where
    # PYTHONDONTWRITEBYTECODE is set every job would otherwise compile omio's modules again as it imports them
    compileall.compile_dir(REPO / "omio", quiet=1)


if __name__ == "__main__":
    raise SystemExit(main())
