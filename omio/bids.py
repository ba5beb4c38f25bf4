"""BIDS-like projects: discovery, then batch conversion to OME-TIFF.

A project is ``root/<subject>/<experiment>/[<tag folder>/]<images>``, e.g.::

    project/
      sub-01/exp_TP001/image.tif
      sub-01/exp_TP002/TAG_01/image1.czi
      sub-01/exp_TP002/TAG_02/image2.czi
      sub-01/exp_TP003/image1.tif, image2.tif

Subjects, experiments and tag folders are recognised by rules: a plain string
matches folder names *containing* it (as in OMIO: ``exp="TP"`` matches
``exp_TP001``), a compiled ``re.Pattern`` is searched in the name. An experiment
folder that is itself an acquisition (a Thorlabs folder) is one input.

Two steps:

1. :func:`scan` lists the conversion jobs as a :class:`BidsTable` (one
   :class:`BidsRow` per output) that can be inspected (``.to_records()``,
   ``.to_pandas()``) before anything is written. It reads no pixels.
2. :func:`convert` runs the jobs and returns a :class:`BatchReport`.

Output layout
-------------
Outputs go to ``<root>/derivatives/omio/`` (BIDS's place for derived data; the
``derivatives`` folder is never scanned) unless ``output_root`` is given, mirroring
the input tree: ``sub-01/exp_TP001/image.ome.tif``,
``sub-01/exp_TP002/TAG_01/image1.ome.tif``. A merged job is named after its
folder: ``sub-01/exp_TP003/exp_TP003_merged.ome.tif`` (files of an experiment
merged) or ``sub-01/exp_TP002/exp_TP002_tags_merged.ome.tif`` (tag folders merged).
Two inputs of one folder with the same stem (``a.tif``, ``a.czi``) get their
format in the name (``a_tif.ome.tif``, ``a_czi.ome.tif``). A source is never
overwritten: an output path equal to an input is refused when scanning.

Batch behaviour
---------------
- Resumable: a job whose output already exists and opens as an OME-TIFF is
  ``"skipped"``. Outputs are written atomically, so a killed run leaves no half
  file (its hidden temporaries are removed by the next run). Anything else at an
  output path is never replaced unless ``overwrite=True``: the job fails with
  :class:`~omio.errors.OutputExistsError`. ``overwrite=True`` converts every job
  again.
- Safe discovery: broken symbolic links, link loops and unreadable entries are
  skipped with their reason (``BidsTable.skipped``, and ``skipped_entries`` in the
  report); links leading out of the project are skipped unless
  ``follow_symlinks=True``.
- Never outside the output root: every output is checked after resolving links; a
  job whose output would land elsewhere (a symbolic link under the output root)
  fails with :class:`~omio.errors.OutputError` and nothing is written for it.
- Continue on error: a failing job is recorded as ``"failed"`` with its error and
  the others go on. The report (each input, output, status, error, seconds) is
  returned and written as JSON to ``<output_root>/omio_batch_report.json``, which
  replaces an earlier report but nothing else (another file there keeps its place
  and the report takes a free name).
- A tqdm progress bar counts input files.
- Jobs run as dask tasks: on the local threaded scheduler by default, or on an
  existing ``dask.distributed`` cluster when ``client=`` is given (pixels are
  read and written by the workers, which must see the same file system).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from omio._scheduler import local_computations
from omio.errors import MetadataError, OutputExistsError
from omio.folders import FolderListing, Skipped, list_folder, subfolders, unreadable_reason
from omio.policies import Axis, Policy
from omio.writers._output import atomic_output, prepare_output, split_suffix

if TYPE_CHECKING:
    from omio.dataset import MicroscopyDataset

__all__ = ["BatchReport", "BidsRow", "BidsTable", "RowResult", "convert", "output_names", "scan"]

Rule = str | re.Pattern[str]
Status = Literal["converted", "skipped", "failed"]
Compression = Literal["zlib", "zstd", "lzw", "none"]
REPORT_NAME = "omio_batch_report.json"
DERIVATIVES = ("derivatives", "omio")


@dataclass(frozen=True)
class BidsRow:
    """One conversion job: its inputs (merged in order when more than one) and its output."""

    subject: str
    experiment: str
    tag: str | None
    inputs: tuple[Path, ...]
    output: Path
    merge_along: Axis | None = None
    policy: Policy = "strict"

    def to_record(self) -> dict[str, Any]:
        """The row as JSON-safe values."""
        rec = asdict(self)
        rec["inputs"] = [str(p) for p in self.inputs]
        rec["output"] = str(self.output)
        return rec


@dataclass(frozen=True)
class BidsTable(Sequence[BidsRow]):
    """The jobs :func:`scan` found, to inspect before converting; behaves as a list of rows."""

    root: Path
    output_root: Path
    rows: tuple[BidsRow, ...]
    skipped: tuple[Skipped, ...] = ()

    @overload
    def __getitem__(self, index: int) -> BidsRow: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[BidsRow]: ...
    def __getitem__(self, index: int | slice) -> BidsRow | Sequence[BidsRow]:
        return self.rows[index]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[BidsRow]:
        return iter(self.rows)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per row (JSON-safe)."""
        return [r.to_record() for r in self.rows]

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame`` (needs pandas, which omio does not require)."""
        import pandas as pd

        return pd.DataFrame.from_records(self.to_records())


@dataclass(frozen=True)
class RowResult:
    """The outcome of one job."""

    inputs: tuple[str, ...]
    output: str
    status: Status
    error: str | None = None
    seconds: float = 0.0
    written: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The result as JSON-safe values."""
        rec = asdict(self)
        rec["inputs"] = list(self.inputs)
        return rec


@dataclass(frozen=True)
class BatchReport:
    """What a batch did: one :class:`RowResult` per job, and where the JSON report is."""

    results: tuple[RowResult, ...]
    report_path: Path | None = None
    summary: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no job failed."""
        return all(r.status != "failed" for r in self.results)

    @property
    def failed(self) -> list[RowResult]:
        """The failed jobs."""
        return [r for r in self.results if r.status == "failed"]

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per job (JSON-safe)."""
        return [r.to_record() for r in self.results]


# ---------------------------------------------------------------------- discovery


@dataclass
class _Walk:
    """Discovery inside the project root: what is found, and what is skipped and why."""

    root: Path
    follow_symlinks: bool
    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, entries: Iterable[Skipped]) -> None:
        """Record skipped entries, each path once."""
        seen = {s.path for s in self.skipped}
        self.skipped.extend(s for s in entries if s.path not in seen)

    def subdirs(self, folder: Path, rule: Rule | None) -> list[Path]:
        try:
            found, skipped = subfolders(folder, rule, root=self.root, follow_symlinks=self.follow_symlinks)
        except OSError as exc:  # a folder found inside the project that cannot be listed
            self.skip([Skipped(folder, unreadable_reason(exc))])
            return []
        self.skip(skipped)
        return found

    def listing(self, folder: Path, pattern: str | None) -> FolderListing:
        try:
            return list_folder(folder, pattern=pattern, root=self.root, follow_symlinks=self.follow_symlinks)
        except OSError as exc:
            self.skip([Skipped(folder, unreadable_reason(exc))])
            return FolderListing(folder, ())


def output_names(inputs: Sequence[Path]) -> dict[Path, str]:
    """``<stem>.ome.tif`` per input; stems used twice get their format added."""
    stems = {p: split_suffix(p)[0] for p in inputs}
    counts = Counter(stems.values())
    out = {}
    for p, stem in stems.items():
        fmt = split_suffix(p)[1].lstrip(".").replace(".", "-") or "dir"
        out[p] = f"{stem}_{fmt}.ome.tif" if counts[stem] > 1 else f"{stem}.ome.tif"
    return out


def scan(
    root: str | Path,
    *,
    sub: Rule = "sub-",
    exp: Rule | None = None,
    tagfolder: Rule | None = None,
    merge_tagfolders: bool = False,
    merge_files: bool = False,
    merge_along: Axis = "T",
    policy: Policy = "strict",
    output_root: str | Path | None = None,
    pattern: str | None = None,
    follow_symlinks: bool = False,
) -> BidsTable:
    """Find the conversion jobs of a BIDS-like project (reads no pixels).

    Parameters
    ----------
    root
        The project folder.
    sub, exp, tagfolder
        Rules for subject, experiment and tag folder names (substring or compiled
        pattern); ``exp=None`` takes every sub-folder of a subject, ``tagfolder=None``
        means no tag folders.
    merge_tagfolders
        Merge the images of all tag folders of an experiment into one output
        (folder after folder in natural order); otherwise one output per image.
    merge_files
        Merge the images directly in an experiment folder into one output.
    merge_along, policy
        Axis and policy of those merges (see :func:`omio.merge.concat`).
    output_root
        Where outputs go (default ``<root>/derivatives/omio``).
    pattern
        A glob on image file names (``"*.czi"``).
    follow_symlinks
        Follow symbolic links that lead out of ``root``. By default they are skipped
        and recorded, as are broken links, link loops and unreadable entries.

    Returns
    -------
    BidsTable
        Rows in subject, experiment, tag, file order; ``.skipped`` lists the entries
        not used and why (no reader recognises them, or they cannot be read).
    """
    project = Path(root)
    if not project.is_dir():
        raise FileNotFoundError(f"No such project folder: '{project}'")
    out_root = Path(output_root) if output_root is not None else project.joinpath(*DERIVATIVES)
    rows: list[BidsRow] = []
    walk = _Walk(project, follow_symlinks)
    for subject in walk.subdirs(project, sub):
        if subject.name == DERIVATIVES[0] or subject.resolve() == out_root.resolve():
            continue
        for experiment in walk.subdirs(subject, exp):
            dest = out_root / subject.name / experiment.name
            tags = walk.subdirs(experiment, tagfolder) if tagfolder is not None else []
            listing = walk.listing(experiment, pattern)
            walk.skip(s for s in listing.skipped if s.path not in tags)
            base: dict[str, Any] = {"subject": subject.name, "experiment": experiment.name, "policy": policy}
            if listing.is_acquisition:
                rows.append(BidsRow(tag=None, inputs=(experiment,), output=dest / f"{experiment.name}.ome.tif", **base))
                continue
            files = list(listing.files)
            if merge_files and files:
                out = dest / f"{experiment.name}_merged.ome.tif"
                rows.append(BidsRow(tag=None, inputs=tuple(files), output=out, merge_along=merge_along, **base))
            else:
                rows.extend(
                    BidsRow(tag=None, inputs=(f,), output=dest / n, **base) for f, n in output_names(files).items()
                )
            tag_listings = [walk.listing(t, pattern) for t in tags]
            for tl in tag_listings:
                walk.skip(tl.skipped)
            if merge_tagfolders and tags:
                stacked = tuple(f for tl in tag_listings for f in tl.files)
                if stacked:
                    out = dest / f"{experiment.name}_tags_merged.ome.tif"
                    rows.append(
                        BidsRow(
                            tag="+".join(t.name for t in tags),
                            inputs=stacked,
                            output=out,
                            merge_along=merge_along,
                            **base,
                        )
                    )
            else:
                for tag, tl in zip(tags, tag_listings, strict=True):
                    for f, n in output_names(tl.files).items():
                        rows.append(BidsRow(tag=tag.name, inputs=(f,), output=dest / tag.name / n, **base))
    _check_outputs(rows)
    return BidsTable(project, out_root, tuple(rows), tuple(walk.skipped))


def _check_outputs(rows: Sequence[BidsRow]) -> None:
    inputs = {p.resolve() for r in rows for p in r.inputs}
    outputs = [r.output.resolve() for r in rows]
    clash = sorted(str(o) for o in outputs if o in inputs)
    dupes = sorted(str(o) for o, n in Counter(outputs).items() if n > 1)
    if clash or dupes:
        raise MetadataError(
            f"the output layout would overwrite sources {clash} or write one output twice {dupes}; "
            "choose another output_root"
        )


# ---------------------------------------------------------------------- conversion


@dataclass(frozen=True)
class _Options:
    compression: Compression
    level: int
    output_root: Path
    overwrite: bool


def _is_complete(path: Path) -> bool:
    """An output is complete when it exists and opens as an OME-TIFF (outputs are atomic)."""
    from omio._api import open as omio_open
    from omio.errors import OmioError

    if not path.is_file():
        return False
    try:
        return omio_open(path).source.format.startswith("ome")
    except (OmioError, OSError):
        return False


def _open_inputs(row: BidsRow) -> MicroscopyDataset:
    from omio._api import open as omio_open
    from omio.merge import concat

    datasets = [omio_open(p) for p in row.inputs]
    if row.merge_along is None and len(datasets) == 1:
        return datasets[0]
    return concat(datasets, axis=row.merge_along or "T", policy=row.policy)


def _convert_row(row: BidsRow, options: _Options) -> RowResult:
    """Convert one job; never raises for a problem of the job (a dask task)."""
    started = time.perf_counter()
    inputs = tuple(str(p) for p in row.inputs)
    try:
        prepare_output(row.output, options.output_root)  # never outside the output root
        if not options.overwrite and (row.output.exists() or row.output.is_symlink()):
            if _is_complete(row.output):
                return RowResult(inputs, str(row.output), "skipped", seconds=time.perf_counter() - started)
            raise OutputExistsError(
                f"{row.output} exists and is not a complete OME-TIFF; it is replaced only with overwrite=True "
                "(omio batch --overwrite), or remove it"
            )
        with local_computations():  # pixels of one job: computed where the job runs, also on a worker
            ds = _open_inputs(row)
            written = ds.to_ometiff(
                row.output, compression=options.compression, level=options.level, overwrite=options.overwrite
            )
    except Exception as exc:  # continue-on-error: every failure is recorded in the report
        error = f"{type(exc).__name__}: {exc}"
        return RowResult(inputs, str(row.output), "failed", error=error, seconds=time.perf_counter() - started)
    return RowResult(inputs, str(row.output), "converted", seconds=time.perf_counter() - started, written=str(written))


def convert(
    table: BidsTable,
    *,
    client: Any = None,
    compression: Compression = "zlib",
    level: int = 6,
    progress: bool = True,
    num_workers: int | None = None,
    report: bool = True,
    overwrite: bool = False,
) -> BatchReport:
    """Convert every job of a :class:`BidsTable` to OME-TIFF.

    Parameters
    ----------
    table
        From :func:`scan`.
    client
        A ``dask.distributed.Client``: jobs run on its cluster. Default: the local
        threaded scheduler of this process.
    compression, level
        OME-TIFF compression (see :meth:`MicroscopyDataset.to_ometiff`).
    progress
        Show a tqdm progress bar over input files.
    num_workers
        Jobs run at once on the local scheduler (default: dask's).
    report
        Write ``omio_batch_report.json`` into the output root.
    overwrite
        Convert every job again and replace its output. By default a job whose output
        is a complete OME-TIFF is skipped, and one whose output path holds anything
        else fails with :class:`~omio.errors.OutputExistsError` (nothing is replaced).

    Returns
    -------
    BatchReport
        One result per row, in table order; failures do not raise. A job whose output
        would lead outside the output root (through a symbolic link) fails with
        :class:`~omio.errors.OutputError` and nothing is written for it.
    """
    from dask.delayed import delayed
    from tqdm.auto import tqdm

    options = _Options(compression, level, table.output_root, overwrite)
    tasks = [delayed(_convert_row, pure=False)(row, options) for row in table.rows]
    bar = tqdm(total=sum(len(r.inputs) for r in table.rows), unit="file", desc="omio batch", disable=not progress)
    try:
        if client is not None:
            results = _run_distributed(client, tasks, bar)
        else:
            results = _run_local(tasks, bar, num_workers)
    finally:
        bar.close()
    summary: dict[str, int] = dict(Counter(str(r.status) for r in results))
    path = _write_report(table, results, summary) if report else None
    return BatchReport(tuple(results), path, summary)


def _run_local(tasks: Sequence[Any], bar: Any, num_workers: int | None) -> list[RowResult]:
    from dask.base import compute
    from dask.callbacks import Callback

    class _Progress(Callback):
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            if isinstance(result, RowResult):
                bar.update(len(result.inputs))

    with _Progress():  # type: ignore[no-untyped-call, unused-ignore]
        out = compute(*tasks, scheduler="threads", num_workers=num_workers)  # type: ignore[no-untyped-call, unused-ignore]
    return list(out)


def _run_distributed(client: Any, tasks: Sequence[Any], bar: Any) -> list[RowResult]:
    from distributed import as_completed

    futures = client.compute(list(tasks))
    for fut in as_completed(futures):  # type: ignore[no-untyped-call, unused-ignore]
        bar.update(len(fut.result().inputs))
    return [f.result() for f in futures]


def _write_report(table: BidsTable, results: Sequence[RowResult], summary: dict[str, int]) -> Path:
    from omio import __version__

    doc = {
        "root": str(table.root),
        "output_root": str(table.output_root),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "omio_version": __version__,
        "summary": summary,
        "skipped_entries": [s.to_record() for s in table.skipped],
        "results": [r.to_record() for r in results],
    }
    table.output_root.mkdir(parents=True, exist_ok=True)
    path = _report_path(table.output_root)
    with atomic_output(path, overwrite=_is_report(path)) as (tmp, written):
        tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return written[0]


def _report_path(root: Path) -> Path:
    """``omio_batch_report.json``, or ``omio_batch_report_<n>.json`` when another file has that name.

    The first name that is free or holds an earlier report is used, so a re-run replaces its own report.
    """
    stem, suffix = split_suffix(Path(REPORT_NAME))
    for n in range(1000):
        path = root / (REPORT_NAME if n == 0 else f"{stem}_{n}{suffix}")
        if not (path.exists() or path.is_symlink()) or _is_report(path):
            return path
    return root / REPORT_NAME  # atomic_output picks a free name


def _is_report(path: Path) -> bool:
    """True when ``path`` is an earlier batch report (a plain file): only that is replaced."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(doc, dict) and "omio_version" in doc and "results" in doc
