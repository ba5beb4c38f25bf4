"""OMIO 0.3's batch API: discovery, ``bids_batch_process``, ``bids_batch_convert`` and RAW YAML templates.

Reading and writing go through :mod:`omio.compat` (and so through
:class:`~omio.MicroscopyDataset`); this module only walks folders, calls the stages
and keeps the records and reports.
"""

from __future__ import annotations

import ast
import datetime
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omio._compat_meta import NAMESPACE
from omio._compat_raw import create_thorlabs_raw_yaml, sidecar_path
from omio.compat import CONVERTED_FOLDER, _check_axis, _free_name, _policy, _write_legacy, imconvert, imread
from omio.folders import natural_key

__all__ = [
    "BatchErrorRecord",
    "BatchImageRecord",
    "BatchProcessResult",
    "BatchProcessedRecord",
    "BatchRawYamlTemplateRecord",
    "BatchRawYamlTemplateResult",
    "BatchSkippedRecord",
    "batch_create_thorlabs_raw_yaml_templates",
    "bids_batch_convert",
    "bids_batch_process",
    "discover_bids_like_batch_images",
]

DEFAULT_IMAGE_PATTERNS = ("*.ome.tif", "*.ome.tiff", "*.tif", "*.tiff", "*.czi", "*.lsm", "*.raw")
"""The files :func:`discover_bids_like_batch_images` finds when no ``image_patterns`` are given."""

DEFAULT_RAW_TEMPLATE = {"T": 1, "Z": 1, "C": 1, "Y": 1, "X": 1, "bits": 16, "pixelunit": "micron"}
"""Sizes put in RAW YAML templates until edited (physical sizes and time stay unknown)."""

ERROR_REPORT_PREFIX = "omio_batch_error_report_"


@dataclass(frozen=True)
class BatchImageRecord:
    """One image (or folder stack) found in a BIDS-like project."""

    subject_id: str
    tag_folders: tuple[str, ...]
    image_path: Path
    scan_dir: Path
    output_scope_dir: Path
    input_kind: str = "file"
    folder_stack_tag: str | None = None
    folder_stack_paths: tuple[Path, ...] = ()


@dataclass(frozen=True)
class BatchProcessedRecord:
    """An image processed and written by :func:`bids_batch_process`."""

    input_path: Path
    output_path: Path
    subject_id: str
    tag_folders: tuple[str, ...]


@dataclass(frozen=True)
class BatchSkippedRecord:
    """An image :func:`bids_batch_process` left alone, and why."""

    input_path: Path
    reason: str
    subject_id: str
    tag_folders: tuple[str, ...] = ()
    stage: str = "unknown"
    output_path: Path | None = None


@dataclass(frozen=True)
class BatchErrorRecord:
    """An image that failed in :func:`bids_batch_process`: the stage (load, process, save) and the error."""

    timestamp: str
    input_path: Path
    relative_path: str
    stage: str
    exception_type: str
    message: str
    subject_id: str
    tag_folders: tuple[str, ...] = ()
    output_dir: Path | None = None
    output_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchProcessResult:
    """What :func:`bids_batch_process` did, and the reports it wrote."""

    processed: tuple[BatchProcessedRecord, ...] = ()
    skipped: tuple[BatchSkippedRecord, ...] = ()
    failed: tuple[BatchErrorRecord, ...] = ()
    discovered: tuple[BatchImageRecord, ...] = ()
    report_path: Path | None = None
    run_report_yaml_path: Path | None = None
    error_report_path: Path | None = None
    local_error_report_paths: tuple[Path, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class BatchRawYamlTemplateRecord:
    """A RAW file seen by :func:`batch_create_thorlabs_raw_yaml_templates`; ``status``: created, exists, missing."""

    raw_path: Path
    yaml_path: Path | None
    template_metadata: dict[str, Any]
    status: str
    reason: str = ""


@dataclass(frozen=True)
class BatchRawYamlTemplateResult:
    """The error report read and a record per RAW file."""

    report_path: Path | None
    records: tuple[BatchRawYamlTemplateRecord, ...] = ()


# --------------------------------------------------------------------------- discovery


def _tokens(value: str | Path | Iterable[str | Path] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, Path)):
        return (str(value),)
    return tuple(str(v) for v in value)


def _excluded(name: str, exclude: Sequence[str]) -> bool:
    return any(token in name for token in exclude)


def _child_dirs(parent: Path, exclude: Sequence[str]) -> list[Path]:
    skip = {CONVERTED_FOLDER, ".omio_cache"}
    found = [p for p in parent.iterdir() if p.is_dir() and p.name not in skip and not _excluded(p.name, exclude)]
    return sorted(found, key=natural_key)


def _chains(folder: Path, levels: Sequence[tuple[str, ...]], exclude: Sequence[str]) -> list[list[Path]]:
    if not levels:
        return [[]]
    matching = [d for d in _child_dirs(folder, exclude) if any(t in d.name for t in levels[0])]
    return [[d, *rest] for d in matching for rest in _chains(d, levels[1:], exclude)]


def _series_members(path: Path) -> set[str]:
    """Other files an OME-TIFF's OME-XML names (the rest of a multi-file series)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            xml = tif.ome_metadata or ""
    except (OSError, tifffile.TiffFileError):
        return set()
    return set(re.findall(r'FileName="([^"]+)"', xml)) - {path.name}


def _images(folder: Path, patterns: Sequence[str], exclude: Sequence[str], collapse: bool) -> list[Path]:
    found = {p for pattern in patterns for p in folder.glob(pattern) if p.is_file() and not _excluded(p.name, exclude)}
    ordered = sorted(found, key=natural_key)
    if not collapse:
        return ordered
    dropped: set[str] = set()
    for p in ordered:
        if p.name not in dropped and p.name.lower().endswith((".ome.tif", ".ome.tiff")):
            dropped |= _series_members(p)
    return [p for p in ordered if p.name not in dropped]


def discover_bids_like_batch_images(
    project_root: str | Path,
    *,
    subject_ids: Iterable[str | Path] | None = None,
    subject_prefix: str = "ID",
    tag_folder_levels: Sequence[Iterable[str | Path] | None] | None = None,
    image_patterns: str | Sequence[str] | None = None,
    exclude_name_contains: str | Sequence[str] | None = ("Preview",),
    folder_stacks: str | Path | Sequence[str | Path] | None = None,
    collapse_ome_multifile_series: bool = True,
    verbose: bool = False,
) -> list[BatchImageRecord]:
    """Find the images of a BIDS-like project: ``<root>/<subject>/<level 1>/.../<level n>/<images>``.

    Parameters
    ----------
    project_root
        The project folder.
    subject_ids
        The subject folders to use; default: every folder whose name starts with ``subject_prefix``.
    subject_prefix
        Prefix of subject folder names (default ``"ID"``).
    tag_folder_levels
        Per level below a subject, the tokens a folder name must contain (any of them);
        empty levels are skipped. ``None``: one level matching ``"TP"``.
    image_patterns
        Glob patterns of the images in the last level (default: OME-TIFF, TIFF, CZI, LSM, RAW).
    exclude_name_contains
        Files and folders whose names contain one of these are left out.
    folder_stacks
        Tags of folder stacks below the last level: folders ``<tag>01``, ``<tag>02``...
        become one record (``input_kind="folder_stack"``).
    collapse_ome_multifile_series
        Keep one file of a multi-file OME-TIFF series (the one naming the others).
    verbose
        Print how many records were found.

    Returns
    -------
    list of BatchImageRecord
        Sorted by subject, folders and name.

    Raises
    ------
    FileNotFoundError
        When ``project_root`` is not a folder.
    """
    root = Path(project_root)
    if not root.is_dir():
        raise FileNotFoundError(f"project root {root} is not a folder")
    exclude = _tokens(exclude_name_contains)
    patterns = _tokens(image_patterns) or DEFAULT_IMAGE_PATTERNS
    levels = (
        [t for t in (_tokens(level) for level in tag_folder_levels) if t]
        if tag_folder_levels is not None
        else [("TP",)]
    )
    if subject_ids is not None:
        subjects = [root / Path(s).name for s in subject_ids if (root / Path(s).name).is_dir()]
    else:
        subjects = [d for d in _child_dirs(root, exclude) if d.name.startswith(subject_prefix)]
    records = []
    for subject in subjects:
        for chain in _chains(subject, levels, exclude):
            folder = chain[-1] if chain else subject
            tags = tuple(p.name for p in chain)
            records += [
                BatchImageRecord(subject.name, tags, p, folder, folder)
                for p in _images(folder, patterns, exclude, collapse_ome_multifile_series)
            ]
            for tag in _tokens(folder_stacks):
                members = tuple(d for d in _child_dirs(folder, exclude) if d.name.startswith(tag))
                if members:
                    records.append(
                        BatchImageRecord(subject.name, tags, members[0], folder, folder, "folder_stack", tag, members)
                    )
    if verbose:
        print(f"Found {len(records)} image(s) in {root}")
    return records


# --------------------------------------------------------------------------- processing


def _identity(
    *, image: Any, metadata: dict[str, Any], record: BatchImageRecord, processing_options: dict[str, Any]
) -> Any:
    return image, metadata


def _lazy_load(path: Path, **options: Any) -> tuple[Any, dict[str, Any]]:
    """The default loader when nothing processes the pixels: a dask array (nothing is read until written)."""
    from omio._compat_meta import legacy_metadata
    from omio.compat import _open_legacy

    keys = ("folder_stacks", "merge_folder_stacks", "merge_along_axis", "zeropadding", "physicalsize_xyz", "pixelunit")
    datasets, _, _ = _open_legacy(
        path,
        caller="bids_batch_process",
        hint="process them with your own load_func (e.g. omio.open(path, scene=i))",
        **{k: v for k, v in options.items() if k in keys},
    )
    if len(datasets) != 1:
        raise ValueError(f"{path} holds {len(datasets)} images; give folder_stacks or merge options to merge them")
    return datasets[0].data, legacy_metadata(datasets[0])


def _default_save(
    *,
    image: Any,
    metadata: dict[str, Any],
    record: BatchImageRecord,
    output_dir: Path,
    output_path: Path,
    save_options: dict[str, Any],
) -> Path:
    from omio._compat_meta import dataset_from_legacy

    options = dict(save_options)
    target = _free_name(output_dir, output_path.name[: -len(".ome.tif")], bool(options.get("overwrite", False)))
    level = int(options.get("compression_level", 3))
    return _write_legacy(
        dataset_from_legacy(image, metadata), target, level=level, overwrite=bool(options.get("overwrite", False))
    )


def _output_path(record: BatchImageRecord, output_folder_name: str | Path, output_suffix: str) -> tuple[Path, Path]:
    folder = Path(output_folder_name)
    output_dir = folder if folder.is_absolute() else record.output_scope_dir / folder
    source = (
        record.scan_dir / record.folder_stack_tag
        if record.input_kind == "folder_stack" and record.folder_stack_tag
        else record.image_path
    )
    stem = source.name
    for suffix in (".ome.tiff", ".ome.tif", source.suffix):
        if suffix and stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return output_dir, output_dir / f"{stem}{output_suffix}.ome.tif"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _timestamp() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def _error_dict(error: BatchErrorRecord) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(error).items()}


def _write_error_report(
    folder: Path, timestamp: str, errors: Sequence[BatchErrorRecord], template: Mapping[str, Any]
) -> Path:
    """A report readable by :func:`batch_create_thorlabs_raw_yaml_templates` (Python literals)."""
    raw = {
        str(e.input_path): {"reason": e.message, "stage": e.stage, "template_metadata": dict(template)}
        for e in errors
        if e.input_path.suffix.lower() == ".raw"
    }
    path = folder / f"{ERROR_REPORT_PREFIX}{timestamp}.txt"
    lines = [
        f"# omio batch error report {timestamp}",
        "# OMIO_BATCH_FAILED_RAW_FILES: edit template_metadata, then run batch_create_thorlabs_raw_yaml_templates",
        f"OMIO_BATCH_ERRORS = {[_error_dict(e) for e in errors]!r}",
        f"OMIO_BATCH_FAILED_RAW_FILES = {raw!r}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _write_run_reports(
    root: Path, name: str, formats: set[str], timestamp: str, events: Sequence[dict[str, Any]]
) -> tuple[Path | None, Path | None]:
    """Add this run's events to ``<name>.yaml`` (kept across runs) and render ``<name>.txt`` from it."""
    import yaml

    yaml_path, txt_path = root / f"{name}.yaml", root / f"{name}.txt"
    payload: dict[str, Any] = {"files": {}}
    if yaml_path.is_file():
        loaded = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
        payload = loaded if isinstance(loaded, dict) and isinstance(loaded.get("files"), dict) else payload
    payload.update(omio_batch_run_report_version=1, project_root=str(root), last_updated=timestamp)
    for event in events:
        key = event.pop("input")
        entry = payload["files"].setdefault(key, {"runs": []})
        entry.update(subject_id=event.pop("subject_id"), tag_folders=list(event.pop("tag_folders")), input_path=key)
        entry["runs"].append({"timestamp": timestamp, **event})
        entry["latest_status"] = event["status"]
        if "output_path" in event:
            entry["latest_output_path"] = event["output_path"]
    written_yaml = written_txt = None
    if "yaml" in formats:
        yaml_path.write_text(yaml.safe_dump(payload, sort_keys=False, allow_unicode=True), encoding="utf-8")
        written_yaml = yaml_path
    if "txt" in formats:
        lines = [f"omio batch run report: {root}", f"last updated: {timestamp}", ""]
        for key, entry in payload["files"].items():
            lines.append(f"{key} [{str(entry['latest_status']).upper()}]")
            if entry.get("latest_output_path"):
                lines.append(f"    output: {entry['latest_output_path']}")
            lines += [
                f"    - {run['timestamp']} | {run['status']} | {run.get('stage') or run.get('method', '')}"
                for run in entry["runs"]
            ]
        txt_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written_txt = txt_path
    return written_yaml, written_txt


def _pair(result: Any, what: str) -> tuple[Any, Any, dict[str, Any]]:
    if not isinstance(result, tuple) or len(result) not in (2, 3):
        raise TypeError(f"{what} must return (image, metadata) or (image, metadata, info)")
    info = result[2] if len(result) == 3 else {}
    return result[0], result[1], info if isinstance(info, dict) else {"details": info}


def bids_batch_process(
    project_root: str | Path,
    *,
    subject_ids: Iterable[str | Path] | None = None,
    subject_prefix: str = "ID",
    tag_folder_levels: Sequence[Iterable[str | Path] | None] | None = None,
    image_patterns: str | Sequence[str] | None = None,
    exclude_name_contains: str | Sequence[str] | None = ("Preview",),
    folder_stacks: str | Path | Sequence[str | Path] | None = None,
    merge_along_axis: str = "T",
    zeropadding: bool = True,
    collapse_ome_multifile_series: bool = True,
    output_folder_name: str | Path = CONVERTED_FOLDER,
    output_suffix: str = "_omio_converted",
    skip_processed: bool = True,
    load_func: Callable[..., Any] | None = None,
    process_func: Callable[..., Any] | None = None,
    save_func: Callable[..., Any] | None = None,
    load_options: dict[str, Any] | None = None,
    processing_options: dict[str, Any] | None = None,
    save_options: dict[str, Any] | None = None,
    method_name: str = "omio_batch_process",
    raw_template_metadata: dict[str, Any] | None = None,
    write_error_reports: bool = True,
    write_run_report: bool = True,
    run_report_name: str = "omio_batch_run_report",
    run_report_format: str | Sequence[str] = ("yaml", "txt"),
    continue_on_error: bool = True,
    verbose: bool = True,
) -> BatchProcessResult:
    """Load, process and save every image of a BIDS-like project, with run and error reports.

    Images are found by :func:`discover_bids_like_batch_images` (same parameters). For each:
    ``load_func(path, **load_options)`` gives ``(image, metadata)`` (default: the image, lazy
    when nothing processes it, numpy as :func:`omio.imread` otherwise); ``process_func(image=,
    metadata=, record=, processing_options=)`` gives ``(image, metadata[, info])`` (default:
    unchanged); ``save_func(image=, metadata=, record=, output_dir=, output_path=,
    save_options=)`` writes it (default: OME-TIFF ``<output_folder_name>/<name><output_suffix>.ome.tif``
    in the image's folder; ``save_options`` may give ``compression_level``, ``overwrite``).

    Parameters
    ----------
    skip_processed
        Skip images whose output exists (a re-run resumes).
    method_name
        The method named in the run report (default: ``process_func``'s name when given).
    raw_template_metadata
        The sizes written for failed RAW files in error reports, for
        :func:`batch_create_thorlabs_raw_yaml_templates`.
    write_error_reports
        Write ``omio_batch_error_report_<time>.txt`` in the project root and in each failing folder.
    write_run_report, run_report_name, run_report_format
        Keep ``<run_report_name>.yaml`` / ``.txt`` in the project root across runs.
    continue_on_error
        Record a failure and go on (default), or raise it.

    Returns
    -------
    BatchProcessResult

    Raises
    ------
    ValueError
        For an unknown ``merge_along_axis`` or ``run_report_format``.
    """
    _check_axis(merge_along_axis)
    formats = (
        {run_report_format.lower()} if isinstance(run_report_format, str) else {f.lower() for f in run_report_format}
    )
    if not formats <= {"yaml", "txt"}:
        raise ValueError(f"run_report_format must be 'yaml' and/or 'txt', got {run_report_format!r}")
    root = Path(project_root)
    records = discover_bids_like_batch_images(
        root,
        subject_ids=subject_ids,
        subject_prefix=subject_prefix,
        tag_folder_levels=tag_folder_levels,
        image_patterns=image_patterns,
        exclude_name_contains=exclude_name_contains,
        folder_stacks=folder_stacks,
        collapse_ome_multifile_series=collapse_ome_multifile_series,
        verbose=verbose,
    )
    loader = load_func or (_lazy_load if process_func is None else imread)
    processor = process_func or _identity
    saver = save_func or _default_save
    method = (
        getattr(process_func, "__name__", method_name)
        if process_func and method_name == "omio_batch_process"
        else method_name
    )
    template = dict(raw_template_metadata or DEFAULT_RAW_TEMPLATE)
    stamp = _timestamp()
    processed: list[BatchProcessedRecord] = []
    skipped: list[BatchSkippedRecord] = []
    failed: list[BatchErrorRecord] = []
    events: list[dict[str, Any]] = []
    for record in records:
        output_dir, output_path = _output_path(record, output_folder_name, output_suffix)
        base = {
            "input": _relative(record.image_path, root),
            "subject_id": record.subject_id,
            "tag_folders": record.tag_folders,
        }
        if skip_processed and output_path.exists():
            skipped.append(
                BatchSkippedRecord(
                    record.image_path,
                    f"output exists: {output_path}",
                    record.subject_id,
                    record.tag_folders,
                    "already_processed",
                    output_path,
                )
            )
            events.append({**base, "status": "already_processed", "output_path": _relative(output_path, root)})
            continue
        options = dict(load_options or {})
        if record.input_kind == "folder_stack":
            options.update(
                folder_stacks=True, merge_folder_stacks=True, merge_along_axis=merge_along_axis, zeropadding=zeropadding
            )
        stage = "load"
        try:
            image, metadata, _ = _pair(loader(record.image_path, **options), "load_func")
            if image is None or metadata is None:
                raise ValueError("the load stage returned no image")
            stage = "process"
            result = processor(
                image=image, metadata=metadata, record=record, processing_options=dict(processing_options or {})
            )
            image, metadata, info = _pair(result, "process_func")
            stage = "save"
            output_dir.mkdir(parents=True, exist_ok=True)
            opts = {"verbose": verbose, **(save_options or {})}
            saved = saver(
                image=image,
                metadata=metadata,
                record=record,
                output_dir=output_dir,
                output_path=output_path,
                save_options=opts,
            )
            written = Path(saved[0] if isinstance(saved, (list, tuple)) else saved) if saved else output_path
        except Exception as exc:
            if not continue_on_error:
                raise
            error = BatchErrorRecord(
                stamp,
                record.image_path,
                _relative(record.image_path, root),
                stage,
                type(exc).__name__,
                str(exc),
                record.subject_id,
                record.tag_folders,
                output_dir,
                output_path,
            )
            failed.append(error)
            events.append(
                {
                    **base,
                    "status": "failed",
                    "stage": stage,
                    "exception_type": error.exception_type,
                    "message": error.message,
                }
            )
            if verbose:
                print(f"failed [{stage}] {record.image_path}: {type(exc).__name__}: {exc}")
            continue
        processed.append(BatchProcessedRecord(record.image_path, written, record.subject_id, record.tag_folders))
        event = {
            **base,
            "status": "processed",
            "method": str(info.get("method_name", method)),
            "output_path": _relative(written, root),
        }
        if info.get("details"):
            event["details"] = str(info["details"])
        events.append(event)
        if verbose:
            print(f"wrote {written}")
    local: list[Path] = []
    error_path = None
    if write_error_reports and failed:
        error_path = _write_error_report(root, stamp, failed, template)
        for folder in sorted({e.input_path.parent for e in failed}):
            if folder.resolve() != root.resolve():
                local.append(
                    _write_error_report(folder, stamp, [e for e in failed if e.input_path.parent == folder], template)
                )
    yaml_path = txt_path = None
    if write_run_report and records:
        yaml_path, txt_path = _write_run_reports(root, run_report_name, formats, stamp, events)
    return BatchProcessResult(
        tuple(processed), tuple(skipped), tuple(failed), tuple(records), txt_path, yaml_path, error_path, tuple(local)
    )


def _latest_error_report(root: Path) -> Path | None:
    reports = sorted(root.glob(f"{ERROR_REPORT_PREFIX}*.txt"))
    return reports[-1] if reports else None


def _failed_raw_files(report: Path) -> dict[str, Any]:
    tree = ast.parse(report.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "OMIO_BATCH_FAILED_RAW_FILES" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, dict):
                return value
    return {}


def batch_create_thorlabs_raw_yaml_templates(
    project_root: str | Path,
    *,
    report_name: str | Path | None = None,
    raw_template_metadata: dict[str, Any] | None = None,
    overwrite_existing: bool = False,
    verbose: bool = True,
) -> BatchRawYamlTemplateResult:
    """Write YAML sidecars for the RAW files a batch error report lists (see :func:`create_thorlabs_raw_yaml`).

    Parameters
    ----------
    project_root
        The project folder holding ``omio_batch_error_report_<time>.txt``.
    report_name
        The report to read (relative to ``project_root``); default: the latest.
    raw_template_metadata
        Sizes and units for files whose report entry has none
        (keys of :func:`create_thorlabs_raw_yaml`: ``T``, ``Z``, ``C``, ``Y``, ``X``, ``bits``, ...).
    overwrite_existing
        Replace existing sidecars (default: keep them, status ``"exists"``).
    verbose
        Print what was created.

    Returns
    -------
    BatchRawYamlTemplateResult

    Raises
    ------
    FileNotFoundError
        When there is no error report.
    """
    root = Path(project_root)
    report = _latest_error_report(root) if report_name is None else root / report_name
    if report is None or not report.is_file():
        raise FileNotFoundError(f"no batch error report {report_name or ERROR_REPORT_PREFIX + '*.txt'} in {root}")
    fallback = dict(raw_template_metadata or DEFAULT_RAW_TEMPLATE)
    records = []
    for raw_name, entry in _failed_raw_files(report).items():
        raw = Path(raw_name)
        given = entry.get("template_metadata") if isinstance(entry, dict) else None
        template = dict(given if isinstance(given, dict) else fallback)
        sidecar = sidecar_path(raw)
        if not raw.is_file():
            records.append(BatchRawYamlTemplateRecord(raw, None, template, "missing", "the RAW file does not exist"))
        elif sidecar.exists() and not overwrite_existing:
            records.append(BatchRawYamlTemplateRecord(raw, sidecar, template, "exists", "a YAML sidecar exists"))
        else:
            create_thorlabs_raw_yaml(str(raw), verbose=verbose, **template)
            records.append(BatchRawYamlTemplateRecord(raw, sidecar, template, "created"))
    return BatchRawYamlTemplateResult(report, tuple(records))


# --------------------------------------------------------------------------- OMIO 0.3's older converter


def _matches(name: str, pattern: str, mode: str) -> bool:
    if mode == "startswith":
        return name.startswith(pattern)
    if mode == "exact":
        return name == pattern
    return re.match(pattern, name) is not None


def bids_batch_convert(
    fname: str,
    sub: str,
    exp: str,
    exp_match_mode: str = "startswith",
    tagfolder: str | None = None,
    merge_multiple_files_in_folder: bool = False,
    merge_tagfolders: bool = False,
    merge_along_axis: str = "T",
    collapse_ome_multifile_series: bool = True,
    zeropadding: bool = True,
    zarr_store: str | None = None,
    reuse_disk_cache: bool = False,
    recursive: bool = False,
    physicalsize_xyz: Any = None,
    pixelunit: str = "micron",
    compression_level: int = 3,
    relative_path: str | None = CONVERTED_FOLDER,
    overwrite: bool = False,
    cleanup_cache: bool = True,
    return_fnames: bool = False,
    verbose: bool = True,
) -> list[str] | None:
    """Convert ``<fname>/<sub*>/<exp*>/[<tagfolder*>/]`` images to OME-TIFF (OMIO 0.3's older batch converter).

    Each experiment folder (or each tag folder) is converted by :func:`omio.imconvert`
    into its ``relative_path`` sub-folder. With ``merge_tagfolders`` the tag folders of
    an experiment are merged into ``<exp>/<relative_path>/<sub>_<exp>_<tag>_merged_merged.ome.tif``.

    Parameters
    ----------
    fname
        The project folder.
    sub
        Prefix of subject folders.
    exp, exp_match_mode
        Experiment folder names: ``"startswith"``, ``"exact"`` or ``"regex"`` (``re.match``).
    tagfolder
        Prefix of tag folders inside experiments (then files directly in experiments are ignored).
    merge_multiple_files_in_folder, merge_tagfolders, merge_along_axis, zeropadding
        Merging, as in :func:`omio.imread`.
    compression_level, relative_path, overwrite, return_fnames
        As in :func:`omio.imconvert`.
    recursive, physicalsize_xyz, pixelunit
        Passed to :func:`omio.imconvert`.
    collapse_ome_multifile_series, zarr_store, reuse_disk_cache, cleanup_cache, verbose
        Passed to :func:`omio.imconvert`.

    Returns
    -------
    list of str or None
        With ``return_fnames``, the files written.

    Raises
    ------
    ValueError
        When ``fname`` is not a folder, or for an unknown ``exp_match_mode`` or ``merge_along_axis``.
    """
    root = Path(fname)
    if not root.is_dir():
        raise ValueError(f"bids_batch_convert: fname must be an existing folder, got {fname!r}")
    if exp_match_mode not in ("startswith", "exact", "regex"):
        raise ValueError(f"exp_match_mode must be 'startswith', 'exact' or 'regex', got {exp_match_mode!r}")
    axis = _check_axis(merge_along_axis)
    convert = {
        "merge_along_axis": axis,
        "zeropadding": zeropadding,
        "physicalsize_xyz": physicalsize_xyz,
        "pixelunit": pixelunit,
        "compression_level": compression_level,
        "relative_path": relative_path,
        "overwrite": overwrite,
        "recursive": recursive,
        "return_fnames": True,
    }
    written: list[str] = []
    for subject in _child_dirs(root, ()):
        if not subject.name.startswith(sub):
            continue
        for experiment in (d for d in _child_dirs(subject, ()) if _matches(d.name, exp, exp_match_mode)):
            if tagfolder is None:
                if any(p.is_file() for p in experiment.iterdir()):
                    written += (
                        imconvert(experiment, merge_multiple_files_in_folder=merge_multiple_files_in_folder, **convert)
                        or []
                    )
                continue
            tags = [d for d in _child_dirs(experiment, ()) if d.name.startswith(tagfolder)]
            if merge_tagfolders and tags:
                written.append(_convert_tag_stack(subject, experiment, tagfolder, tags, **convert))
            else:
                for tag in tags:
                    written += (
                        imconvert(tag, merge_multiple_files_in_folder=merge_multiple_files_in_folder, **convert) or []
                    )
    return written if return_fnames else None


def _convert_tag_stack(subject: Path, experiment: Path, tagfolder: str, tags: list[Path], **options: Any) -> str:
    from omio.folders import open_folder_stack

    ds = open_folder_stack(tags, merge_along=options["merge_along_axis"], policy=_policy(options["zeropadding"]))
    if options["physicalsize_xyz"] is not None:
        from omio.units import quantity

        ds = ds.with_metadata(
            physical_pixel_sizes={
                a: quantity(float(v), options["pixelunit"])
                for a, v in zip("XYZ", options["physicalsize_xyz"], strict=True)
            }
        )
    ds = ds.with_annotations(NAMESPACE, {"original_filename": f"{subject.name}_{experiment.name}_{tagfolder}merged"})
    folder = experiment / options["relative_path"] if options["relative_path"] else experiment
    target = _free_name(folder, f"{subject.name}_{experiment.name}_{tagfolder}merged_merged", options["overwrite"])
    return str(_write_legacy(ds, target, level=options["compression_level"], overwrite=options["overwrite"]))
