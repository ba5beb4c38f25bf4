"""The ``omio`` command line: ``info``, ``convert`` and ``demo``.

Errors print one clear line and exit with status 1 (2 for usage errors); pass
``--debug`` for the full traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _info(args: argparse.Namespace) -> int:
    import omio

    path = Path(args.path)
    names = omio.scenes(path)
    ds = omio.open(path, scene=args.scene)
    if args.json:
        md = ds.metadata
        md["scenes"] = names
        md["size_on_disk"] = _disk_size(path)
        md.pop("Annotations", None)
        print(json.dumps(md, default=str, indent=2))
    else:
        print(ds)
        print(f"  {'scenes:':<16}{names}")
        print(f"  {'size on disk:':<16}{_disk_size(path)} bytes")
    return 0


def _disk_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _convert(args: argparse.Namespace) -> int:
    import omio

    ds = omio.open(args.input, scene=args.scene)
    out = ds.to_ometiff(
        args.output,
        compression=args.compression,
        level=args.level,
        overwrite=args.overwrite,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    print(out)
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Generate a small sample, open it, print its summary, write and re-read an OME-TIFF."""
    import numpy as np
    import tifffile

    import omio

    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    sample = folder / "demo_cells.tif"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:256]
    stack = np.empty((5, 2, 256, 256), np.uint16)
    for z in range(5):
        for c in range(2):
            blob = 1000 * np.exp(-(((yy - 128 - 20 * c) ** 2 + (xx - 100 - 10 * z) ** 2) / 800.0))
            stack[z, c] = (blob + rng.poisson(50, (256, 256))).astype(np.uint16)
    tifffile.imwrite(
        sample,
        stack,
        imagej=True,
        resolution=(1 / 0.207, 1 / 0.207),
        metadata={"axes": "ZCYX", "spacing": 0.5, "unit": "micron"},
    )
    ds = omio.open(sample)
    print(ds)
    out = ds.isel(Z=slice(1, 4)).to_ometiff(folder / "demo_cells.ome.tif", compression="zlib", level=6)
    back = omio.open(out)
    print(f"\nwrote {out} ({out.stat().st_size} bytes), read back:")
    print(back)
    same = bool(np.array_equal(back.to_numpy(), ds.isel(Z=slice(1, 4)).to_numpy()))
    print(f"\npixels identical after the round trip: {same}")
    return 0 if same else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omio", description="Open Microscopy Image I/O")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="summarize a file", epilog="example: omio info cells.czi --json")
    p.add_argument("path")
    p.add_argument("--scene", default=0, type=_scene)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_info)

    p = sub.add_parser("convert", help="convert to OME-TIFF", epilog="example: omio convert a.czi a.ome.tif --level 6")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--scene", default=0, type=_scene)
    p.add_argument("--compression", default="zlib", choices=["zlib", "zstd", "lzw", "none"])
    p.add_argument("--level", default=6, type=int)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_convert)

    p = sub.add_parser("demo", help="run the main job on a small generated sample")
    p.add_argument("--output", default="demo-output", help="folder for the sample and the OME-TIFF")
    p.set_defaults(func=_demo)
    return parser


def _scene(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    func: Any = args.func
    try:
        return int(func(args))
    except Exception as exc:
        if args.debug:
            raise
        from omio.errors import OmioError

        kind = "error" if isinstance(exc, (OmioError, OSError)) else f"unexpected error ({type(exc).__name__})"
        print(f"omio: {kind}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
