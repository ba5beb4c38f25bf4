"""The ``omio`` command line: ``info``, ``convert``, ``batch``, ``view`` and ``demo``.

Every subcommand is a thin layer over the library: it parses options, calls one
omio function and prints the result. Errors print one line (``omio: error: ...``)
and exit with status 1 (2 for usage errors); ``--debug`` shows the full traceback.
Progress bars are drawn on long work when stderr is a terminal, unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from omio.policies import Axis, Policy
from omio.writers import ometiff, omezarr

if TYPE_CHECKING:
    from omio.dataset import MicroscopyDataset

__all__ = ["main"]

TARGETS = {"ometiff": (".ome.tif", ".ome.tiff"), "zarr": (".ome.zarr", ".zarr")}
COMPRESSIONS = {"ometiff": get_args(ometiff.Compression), "zarr": get_args(omezarr.Compression)}


class UsageError(Exception):
    """A command line that parses but cannot be carried out as written (exit status 2)."""


# ---------------------------------------------------------------------- subcommands


def _info(args: argparse.Namespace) -> int:
    import omio
    from omio._display import flat_metadata

    path = Path(args.path)
    if path.is_dir() and not _opens_as_one(path):
        return _folder_info(path)
    names = omio.scenes(path)
    ds = omio.open(path, scene=args.scene)
    on_disk = _disk_size(path)
    if args.json:
        md = flat_metadata(ds, annotations=False)
        md.update(scenes=names, scene=args.scene, size_on_disk=on_disk)
        print(json.dumps(md, default=str, indent=2))
    else:
        print(ds)
        print(f"  {'format:':<16}{ds.source.format}")
        print(f"  {'scenes:':<16}{len(names)}" + (f" {names}" if any(names) else ""))
        print(f"  {'size on disk:':<16}{on_disk} bytes")
    return 0


def _opens_as_one(folder: Path) -> bool:
    """True when a reader opens the folder itself as one image (an OME-Zarr, a Thorlabs acquisition)."""
    from omio.errors import UnsupportedFormatError
    from omio.readers import find_reader

    try:
        find_reader(folder)
    except UnsupportedFormatError:
        return False
    return True


def _folder_info(folder: Path) -> int:
    """Say what opens a folder that is not itself an image: its images, one line each, and the calls to use."""
    from omio.folders import list_folder
    from omio.readers import find_reader

    listing = list_folder(folder)
    print(f"{folder}: a folder, not one image; {len(listing.files)} entries omio opens:")
    for entry in listing.files:
        print(f"  {entry.name:<40}{find_reader(entry).name}")
    for skip in listing.skipped:
        print(f"  {skip.path.name:<40}skipped: {skip.reason}")
    print(
        "open them with omio.open_folder(path) (one dataset per file, or merged with merge_along=...), "
        "convert them with 'omio convert FILE...' or, for a project tree, 'omio batch'"
    )
    return 0


def _disk_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _convert(args: argparse.Namespace) -> int:
    import omio

    target = _target(args.output, args.to)
    if args.compression is not None and args.compression not in COMPRESSIONS[target]:
        raise UsageError(f"--compression {args.compression} is not available for {target}: {COMPRESSIONS[target]}")
    if len(args.inputs) > 1 and args.merge_along is None:
        raise UsageError(f"{len(args.inputs)} inputs given: say how to merge them with --merge-along T, Z or C")
    if args.scene is None:
        counts = {p: len(omio.scenes(p)) for p in args.inputs}
        several = {p: n for p, n in counts.items() if n > 1}
        if several and len(args.inputs) > 1:
            raise UsageError(
                f"{', '.join(f'{p} has {n} scenes' for p, n in several.items())}; "
                "say which scene of each input to merge with --scene"
            )
        if several:
            for scene in range(counts[args.inputs[0]]):
                print(_write(omio.open(args.inputs[0], scene=scene), _scene_output(args.output, scene), target, args))
            return 0
    datasets = [omio.open(p, scene=args.scene or 0) for p in args.inputs]
    if args.merge_along is not None:
        ds = omio.concat(datasets, axis=args.merge_along, policy=args.policy)
    else:
        ds = datasets[0]
    print(_write(ds, args.output, target, args))
    return 0


def _scene_output(output: str, scene: int) -> str:
    """``cells.ome.tif`` -> ``cells_scene1.ome.tif``: the output of one scene of a multi-scene input."""
    from omio.writers._output import split_suffix

    path = Path(output)
    stem, suffix = split_suffix(path)
    return str(path.with_name(f"{stem}_scene{scene}{suffix}"))


def _target(output: str, to: str | None) -> str:
    if to is not None:
        return to
    name = output.rstrip("/").lower()
    for target, suffixes in TARGETS.items():
        if name.endswith(suffixes):
            return target
    raise UsageError(f"cannot tell the output format from '{output}': name it *.ome.tif or *.ome.zarr, or use --to")


def _write(ds: MicroscopyDataset, output: str, target: str, args: argparse.Namespace) -> Path:
    """Write with the writer's own defaults for every option not given on the command line."""
    options: dict[str, Any] = {"overwrite": args.overwrite, "progress": _progress(args)}
    if args.compression is not None:
        options["compression"] = args.compression
    if target == "zarr":
        if args.level is not None:
            options["compression_level"] = args.level
        if args.levels is not None:
            options["levels"] = args.levels
        return ds.to_omezarr(output, **options)
    if args.level is not None:
        options["level"] = args.level
    if args.levels is not None:
        options["pyramid"] = True if args.levels == "auto" else args.levels
    return ds.to_ometiff(output, **options)


def _batch(args: argparse.Namespace) -> int:
    from omio import bids

    table = bids.scan(
        args.root,
        sub=args.sub,
        exp=args.exp,
        tagfolder=args.tagfolder,
        merge_tagfolders=args.merge_tagfolders,
        merge_files=args.merge_files,
        merge_along=args.merge_along,
        policy=args.policy,
        output_root=args.output_root,
        pattern=args.pattern,
        follow_symlinks=args.follow_symlinks,
    )
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(_client(args.scheduler)) if args.scheduler else None
        report = bids.convert(
            table,
            client=client,
            compression=args.compression,
            level=args.level,
            progress=_progress(args),
            num_workers=args.workers,
            overwrite=args.overwrite,
        )
    summary = ", ".join(f"{n} {status}" for status, n in sorted(report.summary.items())) or "nothing to do"
    print(f"{len(table)} jobs: {summary}")
    if table.skipped:
        print(f"entries skipped: {len(table.skipped)} (see skipped_entries in the report)")
    print(f"report: {report.report_path}")
    for failed in report.failed:
        print(f"failed: {', '.join(failed.inputs)}: {failed.error}", file=sys.stderr)
    return 0 if report.ok else 1


def _client(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError as exc:
        from omio.errors import MissingDependencyError
        from omio.readers._optional import install_hint

        hint = install_hint("distributed", "distributed")
        raise MissingDependencyError(f"--scheduler needs dask.distributed: {hint}") from exc
    return Client(address)  # type: ignore[no-untyped-call, unused-ignore]


def _view(args: argparse.Namespace) -> int:
    import omio

    ds = omio.open(args.path, scene=args.scene)
    ds.view()
    import napari

    napari.run()
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


# ---------------------------------------------------------------------- parser


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _scene(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    common.add_argument("--quiet", action="store_true", help="no progress bars")

    parser = argparse.ArgumentParser(
        prog="omio",
        description="Open Microscopy Image I/O: inspect, convert and view microscopy files.",
        epilog="Run 'omio <command> --help' for the options and examples of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def add(name: str, summary: str, examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[common],
            help=summary,
            description=summary,
            epilog="examples:\n" + examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add(
        "info",
        "Summarize a file: format, scenes, dims, dtype, pixel sizes, time increment, channels, size on disk.",
        "  omio info cells.czi\n  omio info cells.czi --scene 2\n  omio info stack.ome.tif --json | jq .PhysicalSizeX",
    )
    p.add_argument("path", help="a microscopy file or acquisition folder")
    p.add_argument("--scene", default=0, type=_scene, help="scene or series, by 0-based index or name (default 0)")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=_info)

    p = add(
        "convert",
        "Convert one file, or several merged along an axis, to OME-TIFF or OME-Zarr.",
        "  omio convert cells.czi cells.ome.tif --level 6\n"
        "  omio convert cells.czi cells.ome.zarr --levels auto\n"
        "  omio convert t0.tif t1.tif t2.tif movie.ome.tif --merge-along T --policy pad\n"
        "  omio convert big.lsm out.ome.tif --compression zstd --level 3 --overwrite",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="one or more microscopy files")
    p.add_argument("output", metavar="OUTPUT", help="*.ome.tif / *.ome.tiff or *.ome.zarr")
    p.add_argument("--to", choices=list(TARGETS), help="output format (default: from the OUTPUT suffix)")
    p.add_argument(
        "--scene",
        default=None,
        type=_scene,
        help="scene or series of each input, by 0-based index or name (default: every scene of a multi-scene "
        "input, each written to OUTPUT with _scene<i> before its suffix)",
    )
    p.add_argument(
        "--compression",
        choices=sorted({c for cs in COMPRESSIONS.values() for c in cs}),
        help=f"OME-TIFF: {', '.join(COMPRESSIONS['ometiff'])} (default {_default(ometiff.write_ometiff)}); "
        f"OME-Zarr: {', '.join(COMPRESSIONS['zarr'])} (default {_default(omezarr.write_omezarr)})",
    )
    p.add_argument("--level", type=int, help="compression level (zlib 0-9, zstd 1-22; default: the writer's)")
    p.add_argument(
        "--levels",
        type=_levels,
        metavar="N|auto",
        help="resolution levels including the full one (default 1); auto halves Y and X until they fit 256 pixels",
    )
    p.add_argument("--merge-along", choices=get_args(Axis), help="merge several inputs along this axis")
    p.add_argument("--policy", default="strict", choices=get_args(Policy), help="merge policy (default strict)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (default: pick a free name)")
    p.set_defaults(func=_convert)

    p = add(
        "batch",
        "Convert a BIDS-like project (ROOT/<subject>/<experiment>/[<tag>/]<images>) to OME-TIFF "
        "and write a JSON report.",
        "  omio batch project --exp TP\n"
        "  omio batch project --exp TP --tagfolder TAG_ --merge-tagfolders --merge-along T\n"
        "  omio batch project --output-root /scratch/out --scheduler tcp://10.0.0.5:8786",
    )
    p.add_argument("root", help="the project folder")
    p.add_argument("--sub", default="sub-", help="subject folders contain this text (default 'sub-')")
    p.add_argument("--exp", help="experiment folders contain this text (default: every sub-folder)")
    p.add_argument("--tagfolder", help="tag folders contain this text (default: no tag folders)")
    p.add_argument("--merge-tagfolders", action="store_true", help="merge the images of all tag folders")
    p.add_argument("--merge-files", action="store_true", help="merge the images directly in an experiment")
    p.add_argument("--merge-along", default="T", choices=get_args(Axis), help="axis of those merges (default T)")
    p.add_argument("--policy", default="strict", choices=get_args(Policy), help="merge policy (default strict)")
    p.add_argument("--pattern", help="glob on image file names, e.g. '*.czi'")
    p.add_argument("--output-root", help="where outputs go (default ROOT/derivatives/omio)")
    p.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="follow symbolic links that lead out of ROOT (default: skip them)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="convert every job again and replace its output (default: skip complete outputs, never replace others)",
    )
    p.add_argument("--compression", default="zlib", choices=COMPRESSIONS["ometiff"], help="default zlib")
    p.add_argument("--level", default=6, type=int, help="compression level (zlib 0-9, zstd 1-22; default 6)")
    p.add_argument("--workers", type=int, help="jobs at once on this machine (default: dask's)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the jobs on this dask.distributed scheduler")
    p.set_defaults(func=_batch)

    p = add("view", "Show a file in napari.", "  omio view cells.czi\n  omio view cells.czi --scene 1")
    p.add_argument("path", help="a microscopy file or acquisition folder")
    p.add_argument("--scene", default=0, type=_scene, help="scene or series, by 0-based index or name (default 0)")
    p.set_defaults(func=_view)

    p = add(
        "demo",
        "Generate a small sample, summarize it, write part of it as OME-TIFF and read it back.",
        "  omio demo\n  omio demo --output /tmp/omio-demo",
    )
    p.add_argument("--output", default="demo-output", help="folder for the sample and the OME-TIFF")
    p.set_defaults(func=_demo)
    return parser


def _default(writer: Any) -> str:
    """The default compression of a writer function (so the help cannot drift from it)."""
    return str(inspect.signature(writer).parameters["compression"].default)


def _levels(text: str) -> int | str:
    if text == "auto":
        return text
    if not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"expected a number of levels >= 1 or 'auto', got {text!r}")
    return int(text)


def _version() -> str:
    from omio import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status.

    Parameters
    ----------
    argv
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when omio (or the system) reports an error, 2 for usage errors.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    func: Any = args.func
    try:
        status = int(func(args))
        sys.stdout.flush()  # inside the handlers: a reader that has gone is seen here, not at exit
        return status
    except UsageError as exc:
        parser.exit(2, f"omio {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        print("omio: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _pipe_closed()
    except Exception as exc:
        if args.debug:
            raise
        from omio.errors import OmioError

        kind = "error" if isinstance(exc, (OmioError, OSError)) else f"unexpected error ({type(exc).__name__})"
        print(f"omio: {kind}: {exc}", file=sys.stderr)
        return 1


def _pipe_closed() -> int:
    """End quietly when the reader of the output has gone (``omio info f | head -1``), as Unix tools do.

    Standard output is pointed at the null device so that the interpreter's final
    flush cannot fail again; the status is 128 + SIGPIPE, as for a tool the signal ended.
    """
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)
    return 128 + 13


if __name__ == "__main__":
    sys.exit(main())
