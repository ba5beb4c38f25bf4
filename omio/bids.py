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
  file; an existing but unreadable output is replaced.
- Continue on error: a failing job is recorded as ``"failed"`` with its error and
  the others go on. The report (each input, output, status, error, seconds) is
  returned and written as JSON to ``<output_root>/omio_batch_report.json``.
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
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from omio.errors import MetadataError
from omio.folders import Skipped, list_folder, name_matches, natural_key, stack_folders
from omio.policies import Axis, Policy
from omio.writers._output import atomic_output, split_suffix

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


def _subdirs(folder: Path, rule: Rule | None) -> list[Path]:
    found = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and name_matches(p.name, rule)]
    return sorted(found, key=natural_key)


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

    Returns
    -------
    BidsTable
        Rows in subject, experiment, tag, file order; ``.skipped`` lists entries
        no reader recognises.
    """
    project = Path(root)
    if not project.is_dir():
        raise FileNotFoundError(f"No such project folder: '{project}'")
    out_root = Path(output_root) if output_root is not None else project.joinpath(*DERIVATIVES)
    rows: list[BidsRow] = []
    skipped: list[Skipped] = []
    for subject in _subdirs(project, sub):
        if subject.name == DERIVATIVES[0] or subject.resolve() == out_root.resolve():
            continue
        for experiment in _subdirs(subject, exp):
            dest = out_root / subject.name / experiment.name
            tags = _subdirs(experiment, tagfolder) if tagfolder is not None else []
            listing = list_folder(experiment, pattern=pattern)
            skipped.extend(s for s in listing.skipped if s.path not in tags)
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
            tag_listings = [list_folder(t, pattern=pattern) for t in stack_folders(tags)]
            for tl in tag_listings:
                skipped.extend(tl.skipped)
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
    return BidsTable(project, out_root, tuple(rows), tuple(skipped))


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
    import dask

    started = time.perf_counter()
    inputs = tuple(str(p) for p in row.inputs)
    if _is_complete(row.output):
        return RowResult(inputs, str(row.output), "skipped", seconds=time.perf_counter() - started)
    try:
        with dask.config.set(scheduler="threads"):  # pixels of one job: local threads, also on a worker
            ds = _open_inputs(row)
            row.output.parent.mkdir(parents=True, exist_ok=True)
            written = ds.to_ometiff(
                row.output, compression=options.compression, level=options.level, overwrite=row.output.exists()
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

    Returns
    -------
    BatchReport
        One result per row, in table order; failures do not raise.
    """
    from dask.delayed import delayed
    from tqdm.auto import tqdm

    options = _Options(compression, level)
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

    table.output_root.mkdir(parents=True, exist_ok=True)
    doc = {
        "root": str(table.root),
        "output_root": str(table.output_root),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "omio_version": __version__,
        "summary": summary,
        "skipped_entries": [s.to_record() for s in table.skipped],
        "results": [r.to_record() for r in results],
    }
    with atomic_output(table.output_root / REPORT_NAME, overwrite=True) as (tmp, written):
        tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return written[0]
