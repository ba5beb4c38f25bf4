"""Benchmark: merge many TIFF files along T and write one OME-TIFF.

Each variant runs in its own child process, which reports its wall time and peak
resident memory (``ru_maxrss``), so the numbers do not mix:

- ``omio``: ``omio.open`` every file, ``omio.merge.concat(axis="T")``, ``to_ometiff``
  (lazy, streamed plane by plane).
- ``omio-zlib1``: the same with zlib level 1.
- ``tifffile-naive``: ``tifffile.imread`` every file, ``numpy.concatenate``, ``tifffile.imwrite``.
- ``tifffile-stream``: a hand-written generator over the pages of every file fed to
  ``tifffile.TiffWriter.write`` (the best one can do by hand).

Usage::

    python benchmarks/bench_merge.py                    # 50 files of 20 MB in a temporary folder
    python benchmarks/bench_merge.py --files 5 --frames 2   # quick run
"""

from __future__ import annotations

import argparse
import compileall
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("omio", "omio-zlib1", "tifffile-naive", "tifffile-stream")
SHAPE_YX = (1024, 1024)


def make_data(folder: Path, files: int, frames: int) -> list[Path]:
    """Write ``files`` uint16 TIFFs of ``frames`` x 1024 x 1024 (20 MB each for 10 frames)."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(files):
        path = folder / f"t_{i:03d}.tif"
        data = rng.integers(0, 4096, size=(frames, *SHAPE_YX), dtype=np.uint16)
        tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": "TYX"})
        paths.append(path)
    return paths


def run_variant(variant: str, paths: list[Path], out: Path) -> None:
    """Run one variant in this process (the child)."""
    import tifffile

    if variant.startswith("omio"):
        from omio._api import open as omio_open
        from omio.merge import concat

        merged = concat([omio_open(p) for p in paths], axis="T", policy="strict")
        level = 1 if variant == "omio-zlib1" else 0
        merged.to_ometiff(out, compression="zlib" if level else "none", level=level, overwrite=True)
    elif variant == "tifffile-naive":
        data = np.concatenate([tifffile.imread(p) for p in paths], axis=0)
        tifffile.imwrite(out, data, ome=True, metadata={"axes": "TYX"}, photometric="minisblack")
    elif variant == "tifffile-stream":
        shapes = []
        for p in paths:
            with tifffile.TiffFile(p) as tif:
                shapes.append(len(tif.pages))

        def planes() -> Iterator[np.ndarray[Any, Any]]:
            for p in paths:
                with tifffile.TiffFile(p) as tif:
                    for page in tif.pages:
                        yield page.asarray()

        with tifffile.TiffWriter(out, ome=True) as tw:
            tw.write(
                planes(),
                shape=(sum(shapes), *SHAPE_YX),
                dtype="uint16",
                metadata={"axes": "TYX"},
                photometric="minisblack",
            )
    else:
        raise SystemExit(f"unknown variant {variant}")


def child(variant: str, data: Path, out: Path) -> None:
    paths = sorted(data.glob("t_*.tif"))
    import tifffile  # noqa: F401 - imports are not part of the timing

    if variant.startswith("omio"):
        import omio.merge  # noqa: F401
    start = time.perf_counter()
    run_variant(variant, paths, out)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        json.dumps({"variant": variant, "seconds": seconds, "peak_rss_mb": peak_mb, "out_mb": out.stat().st_size / 1e6})
    )


def check_same(a: Path, b: Path) -> bool:
    """The first, a middle and the last plane of two outputs agree."""
    import tifffile

    with tifffile.TiffFile(a) as ta, tifffile.TiffFile(b) as tb:
        n = len(ta.pages)
        if n != len(tb.pages):
            return False
        return all(np.array_equal(ta.pages[i].asarray(), tb.pages[i].asarray()) for i in (0, n // 2, n - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--frames", type=int, default=10, help="frames of 1024x1024 uint16 per file (10 = 20 MB)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    # omio's bytecode, compiled as installing a wheel compiles it: this checkout is an editable install, and where
    # PYTHONDONTWRITEBYTECODE is set every job would otherwise compile omio's modules again as it imports them
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "omio", quiet=1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="omio-bench-"))
    try:
        data = work / "data"
        paths = make_data(data, args.files, args.frames)
        total = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{args.files} files, {total:.0f} MB in total, merged along T\n")
        rows = []
        for variant in args.variants:
            out = work / f"{variant}.ome.tif"
            cmd = [sys.executable, __file__, "--child", variant, str(data), str(out)]
            result = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            rows[-1]["same"] = check_same(work / f"{args.variants[0]}.ome.tif", out)
            if variant != args.variants[0] and not variant.startswith("omio"):
                out.unlink()
        print(
            f"| {'variant':<16} | {'seconds':>8} | {'MB/s':>7} | {'peak RSS MB':>11} | {'output MB':>9} | same pixels |"
        )
        print(f"|{'-' * 18}|{'-' * 10}|{'-' * 9}|{'-' * 13}|{'-' * 11}|-------------|")
        for r in rows:
            print(
                f"| {r['variant']:<16} | {r['seconds']:8.2f} | {total / r['seconds']:7.0f} | "
                f"{r['peak_rss_mb']:11.0f} | {r['out_mb']:9.0f} | {r['same']!s:<11} |"
            )
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
