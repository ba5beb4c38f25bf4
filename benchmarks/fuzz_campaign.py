"""Mutation-fuzz campaign: open every damaged file of ``fuzz_mutants`` and classify what omio does.

Each case runs ``omio.open(path)``, ``to_numpy()``, ``.ome``, ``repr()`` and
``.metadata``, then writes the dataset as OME-TIFF and reads that back, in a worker
subprocess (so a hang or a crash is killed and counted without stopping the
campaign), and compares the result with the intact source handled the same way.
The write-back must give exactly the pixels ``to_numpy`` gave: the writer reads the
file by its own paths (one byte range per slab where the planes are one run of
bytes), so a damaged file must mean the same to both.

Outcomes
--------
ok
    Identical to the intact file (or intact-equivalent).
omio-error
    An ``omio.errors.OmioError`` (or FileNotFoundError / PermissionError for a
    missing companion file).
raw
    Any other exception escaping omio (type and message recorded).
hang
    Over the per-case time limit; the worker is killed and replaced.
crash
    The worker died from a signal (or exited) during the case.
wrong
    Returned without error, but shape, dtype, pixels, physical sizes, time
    increment, channel names or scenes differ from the intact file (or the
    mutant has no intact counterpart, or an external entity was resolved).
log-only-wrong
    Wrong, but a warning or a log record (WARNING or above) was emitted.
pixel-flip
    A byte flip inside pixel data: reported separately whatever happens, never a
    failure.

Usage::

    python benchmarks/fuzz_campaign.py [--bounded] [--jobs 2] [--timeout 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzz_mutants as fm

__all__ = [
    "FAILURES",
    "OUTCOMES",
    "CaseResult",
    "format_report",
    "run_campaign",
    "select_mutants",
]

OUTCOMES = ("ok", "omio-error", "raw", "hang", "crash", "wrong", "log-only-wrong", "pixel-flip")
"""Every outcome, in report order."""
FAILURES = ("raw", "hang", "crash", "wrong", "log-only-wrong")
"""The outcomes that are failures."""
SLOW_OPEN_S = 1.0
"""A damaged file whose ``omio.open`` takes longer than this is flagged."""
_STARTUP_S = 180.0
_INTACT = "intact:"


@dataclass
class CaseResult:
    """What happened to one mutant (or one intact source).

    Attributes
    ----------
    id, format, kind, source, description
        From the mutant (``kind`` is ``"intact"`` for a source).
    outcome
        One of :data:`OUTCOMES` (``"intact-failed"`` when the intact source itself
        cannot be read: its mutants are then not compared).
    detail
        For ``pixel-flip`` the outcome the case would otherwise have; else the
        exception type, the differing fields or the signal.
    message
        Exception message (shortened), or what differs.
    open_s
        Seconds spent in ``omio.open`` (``None`` when it did not return).
    total_s
        Seconds of the whole case, as seen by the worker or the time limit.
    warnings
        Number of warnings and log records (WARNING or above) emitted.
    """

    id: str
    format: str
    kind: str
    source: str | None
    description: str
    outcome: str = ""
    detail: str = ""
    message: str = ""
    open_s: float | None = None
    total_s: float | None = None
    warnings: int = 0
    fingerprint: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        """True for the failure outcomes."""
        return self.outcome in FAILURES

    @property
    def slow(self) -> bool:
        """True when a damaged file took longer than :data:`SLOW_OPEN_S` to open."""
        return self.kind != "intact" and self.open_s is not None and self.open_s > SLOW_OPEN_S


# --- the worker (runs in a subprocess) ------------------------------------------------------------------


def _quantity(q: Any, unit: str) -> float | str | None:
    if q is None:
        return None
    try:
        return float(q.to(unit).magnitude)
    except Exception:
        return repr(q)


def _fingerprint(ds: Any, array: Any) -> dict[str, Any]:
    import numpy as np

    arr = np.ascontiguousarray(array)
    data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    return {
        "shape": [int(s) for s in ds.shape],
        "dtype": str(np.dtype(ds.dtype)),
        "array_shape": [int(s) for s in arr.shape],
        "pixels": hashlib.sha256(data).hexdigest(),
        "physical_sizes": {k: _quantity(v, "micrometer") for k, v in ds.physical_pixel_sizes.items()},
        "time_increment": _quantity(ds.time_increment, "second"),
        "channel_names": list(ds.channel_names),
        "scenes": list(ds.scenes),
    }


def _written_back(ds: Any, array: Any) -> str:
    """``"same"`` if an OME-TIFF written from ``ds`` reads back as ``array``, else ``"differs"``."""
    import numpy as np

    import omio

    target = Path("written-back.ome.tif")  # in the worker's scratch folder
    try:
        back = omio.open(ds.to_ometiff(target, compression="zlib", level=1, overwrite=True)).to_numpy()
    finally:
        target.unlink(missing_ok=True)
    a, b = np.ascontiguousarray(array), np.ascontiguousarray(back)
    same = a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    return "same" if same else "differs"


def _read(path: Path) -> dict[str, Any]:
    """Open, read and describe one file; every exception is caught and described."""
    import logging
    import warnings

    import omio
    from omio.errors import OmioError

    records: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(f"log {record.name}: {record.getMessage()[:200]}")

    handler = _Collect(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    out: dict[str, Any] = {"open_s": None}
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ds = omio.open(path)
                out["open_s"] = time.perf_counter() - start
                array = ds.to_numpy()
                ome = ds.ome
                text = repr(ds) + repr(ds.metadata) + repr(ome)
                written = _written_back(ds, array)
                out["fingerprint"] = {**_fingerprint(ds, array), "written_back": written}
                out["secret"] = fm.SECRET_MARKER in text
                out["status"] = "returned"
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                own = isinstance(exc, OmioError | FileNotFoundError | PermissionError)
                out["status"] = "omio-error" if own else "raw"
                out["error"] = f"{type(exc).__module__}.{type(exc).__qualname__}"
                out["message"] = str(exc)[:400]
        # an unclosed-file ResourceWarning comes from garbage collection, not from this file's damage
        kept = [w for w in caught if not issubclass(w.category, ResourceWarning)]
        out["resource_warnings"] = len(caught) - len(kept)
        records += [f"warning {w.category.__name__}: {str(w.message)[:200]}" for w in kept]
    finally:
        root.removeHandler(handler)
    out["total_s"] = time.perf_counter() - start
    out["warnings"] = records[:5]
    out["n_warnings"] = len(records)
    return out


def _worker(args: argparse.Namespace) -> int:
    """Serve cases read as JSON lines on stdin; answer one JSON line each on the protocol pipe."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by the libraries goes to stderr, not into the protocol
    if args.memory_gb:
        import resource

        limit = int(args.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import omio  # noqa: F401 - imported before the first case so its time is not counted

    samples = None if args.no_samples else args.samples
    sources = {s.name: s for s in fm.sources(args.work, samples)}
    mutants = {m.id: m for m in fm.plan(list(sources.values()), args.seed)}
    if args.plan and _plan_digest(mutants) != args.plan:
        print("the mutant plan differs from the campaign's (was fuzz_mutants.py changed?)", file=sys.stderr)
        return 2
    for source in sources.values():
        if source.name.startswith("gen/"):
            _read(source.path)  # warm-up: lazy imports are not counted in the first cases' times
    scratch = Path(tempfile.mkdtemp(prefix="worker-", dir=args.work))
    os.chdir(scratch)
    (scratch / fm.SECRET_NAME).write_text(fm.SECRET_MARKER)
    if args.setup:
        code = Path(args.setup).read_text()
        exec(compile(code, args.setup, "exec"), {"__name__": "fuzz_setup"})
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        case = json.loads(line)["id"]
        if case.startswith(_INTACT):
            result = _read(sources[case[len(_INTACT) :]].path)
        else:
            folder = scratch / "case"
            shutil.rmtree(folder, ignore_errors=True)
            try:
                path = fm.materialize(mutants[case], folder)
                result = _read(path)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        protocol.write(json.dumps({"id": case, **result}) + "\n")
    return 0


def _plan_digest(ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


# --- the pool of workers (parent side) ------------------------------------------------------------------


class _Worker:
    """One worker subprocess and the case it is running."""

    def __init__(self, command: list[str]) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self.buffer = b""
        self.case: str | None = None
        self.deadline = time.monotonic() + _STARTUP_S
        self.ready = False
        self.served = 0

    def fileno(self) -> int:
        assert self.proc.stdout is not None
        return self.proc.stdout.fileno()

    def send(self, case: str, timeout: float) -> None:
        assert self.proc.stdin is not None
        self.case = case
        self.deadline = time.monotonic() + timeout
        self.proc.stdin.write(json.dumps({"id": case}).encode() + b"\n")
        self.proc.stdin.flush()
        self.served += 1

    def lines(self) -> tuple[list[dict[str, Any]], bool]:
        """Return the complete lines available, and False when the worker has closed its output."""
        chunk = os.read(self.fileno(), 1 << 16)
        if not chunk:
            return [], False
        self.buffer += chunk
        *done, self.buffer = self.buffer.split(b"\n")
        return [json.loads(d) for d in done if d.strip()], True

    def stop(self, kill: bool = False) -> int | None:
        """End the worker (closing its pipes) and return its exit code."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if kill:
            self.proc.kill()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc.stdout.close()
        return code


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"worker exited with code {code}"


def _run_cases(
    cases: Sequence[str], command: list[str], jobs: int, timeout: float, recycle: int, progress: bool
) -> dict[str, dict[str, Any]]:
    """Run the cases on ``jobs`` workers; return the raw worker answer per case id."""
    pending = list(reversed(cases))
    answers: dict[str, dict[str, Any]] = {}
    workers: list[_Worker] = []
    started = time.monotonic()
    reported = 0
    try:
        while pending or any(w.case for w in workers):
            while len(workers) < min(jobs, len(pending) + sum(1 for w in workers if w.case)):
                workers.append(_Worker(command))
            for w in workers:
                if w.ready and w.case is None and pending:
                    w.send(pending.pop(), timeout)
            now = time.monotonic()
            busy = [w.deadline for w in workers if w.case is not None or not w.ready]
            wait = max(0.0, min(busy) - now) if busy else 0.1
            readable, _, _ = select.select(workers, [], [], min(wait, 1.0))
            for w in list(readable):
                lines, alive = w.lines()
                for answer in lines:
                    if answer.get("ready"):
                        w.ready = True
                    elif answer.get("id") == w.case:
                        answers[w.case] = answer
                        w.case = None
                if not alive:
                    if w.case is not None:
                        answers[w.case] = {"status": "crash", "message": _describe_exit(w.stop())}
                    else:
                        code = w.stop()
                        if not w.ready:
                            raise RuntimeError(f"a campaign worker failed to start ({_describe_exit(code)})")
                    workers.remove(w)
                elif w.case is None and w.served >= recycle:
                    w.stop()
                    workers.remove(w)
            now = time.monotonic()
            for w in list(workers):
                if now > w.deadline and (w.case is not None or not w.ready):
                    if w.case is None:
                        w.stop(kill=True)
                        raise RuntimeError("a campaign worker did not start in time")
                    answers[w.case] = {"status": "hang", "total_s": timeout, "message": f"no answer in {timeout:g} s"}
                    w.stop(kill=True)
                    workers.remove(w)
            if progress and len(answers) >= reported + 100:
                reported = len(answers)
                print(f"{reported}/{len(cases)} cases, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        for w in workers:
            w.stop(kill=True)
    return answers


# --- classification -------------------------------------------------------------------------------------


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    return bool(a == b)


def _differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    out = []
    for key, value in want.items():
        other = got.get(key)
        if key == "physical_sizes":
            same = set(value) == set(other or {}) and all(_close(value[k], other[k]) for k in value)
        else:
            same = _close(other, value)
        if not same:
            shown = "sha256 differs" if key == "pixels" else f"{other!r} instead of {value!r}"
            out.append(f"{key}: {shown}"[:300])
    return out


def _classify(result: CaseResult, answer: dict[str, Any], intact: CaseResult | None) -> None:
    status = answer.get("status", "crash")
    result.open_s = answer.get("open_s")
    result.total_s = answer.get("total_s")
    result.warnings = int(answer.get("n_warnings", 0))
    result.message = answer.get("message", "")
    if status in ("omio-error", "raw"):
        outcome, result.detail = status, answer.get("error", "")
    elif status in ("hang", "crash"):
        outcome, result.detail = status, answer.get("message", "")
    elif result.kind == "intact":
        outcome, result.fingerprint = "ok", answer.get("fingerprint")
    else:
        diffs = []
        if result.source is None:
            diffs.append("read without error although there is no intact file")
        elif intact is not None and intact.fingerprint is not None:
            diffs += _differences(answer.get("fingerprint") or {}, intact.fingerprint)
        if answer.get("secret"):
            diffs.append("an external entity was resolved into the metadata")
        if diffs:
            outcome = "log-only-wrong" if result.warnings else "wrong"
            result.detail = "; ".join(d.split(":")[0] for d in diffs)
            result.message = "; ".join(diffs)[:600]
            if answer.get("warnings"):
                result.message += " | emitted: " + " / ".join(answer["warnings"][:2])
        else:
            outcome = "ok"
    inconsistent = (answer.get("fingerprint") or {}).get("written_back") == "differs"
    if result.kind == "pixel-flip" and not inconsistent:  # a file whose reads disagree is wrong, flipped or not
        result.detail = f"{outcome}: {result.detail}" if result.detail else outcome
        outcome = "pixel-flip"
    elif inconsistent and outcome != "wrong":
        outcome, result.detail = "wrong", "written_back"
        result.message = "the OME-TIFF written from it reads back other pixels than to_numpy gave"
    if result.kind == "intact" and outcome != "ok":
        result.detail = f"{outcome}: {result.detail}"
        outcome = "intact-failed"
    result.outcome = outcome


# --- campaign -------------------------------------------------------------------------------------------


def select_mutants(mutants: Sequence[fm.Mutant], bounded: bool, seed: int = 0) -> list[fm.Mutant]:
    """Return the mutants of a campaign: all of them, or the bounded stratified subset."""
    return fm.bounded(mutants, seed=seed) if bounded else list(mutants)


def run_campaign(
    work: Path,
    *,
    bounded: bool = False,
    jobs: int = 2,
    timeout: float = 20.0,
    seed: int = 0,
    samples: Path | None = fm.SAMPLES,
    ids: Iterable[str] | None = None,
    setup: Path | None = None,
    memory_gb: float = 4.0,
    recycle: int = 300,
    progress: bool = False,
) -> list[CaseResult]:
    """Run the campaign and return one result per intact source and per mutant, in plan order.

    Parameters
    ----------
    work
        A folder owned by the caller (generated sources and worker scratch folders).
    bounded
        Only the bounded stratified subset.
    jobs
        Worker subprocesses run at once.
    timeout
        Seconds per case before it counts as a hang.
    seed
        Seed of the mutants.
    samples
        The shared sample folder, or ``None`` for generated sources only.
    ids
        Only these mutant ids (after the bounded selection).
    setup
        A Python file every worker runs before its first case (to check that the
        harness catches a faulty reader).
    memory_gb
        Address-space limit of each worker (0: none).
    recycle
        A worker is replaced after this many cases.
    progress
        Print progress on stderr.

    Returns
    -------
    list of CaseResult
    """
    work = Path(work).resolve()
    sources = fm.sources(work, samples)
    everything = fm.plan(sources, seed)
    mutants = select_mutants(everything, bounded, seed)
    if ids is not None:
        wanted = set(ids)
        mutants = [m for m in mutants if m.id in wanted]
    used = {m.source for m in mutants}
    intact = [s for s in sources if s.name in used]
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--work", str(work), "--seed", str(seed)]
    command += ["--memory-gb", str(memory_gb), "--plan", _plan_digest(m.id for m in everything)]
    command += ["--no-samples"] if samples is None else ["--samples", str(samples)]
    if setup is not None:
        command += ["--setup", str(Path(setup).resolve())]
    cases = [_INTACT + s.name for s in intact] + [m.id for m in mutants]
    answers = _run_cases(cases, command, jobs, timeout, recycle, progress)
    results: dict[str, CaseResult] = {}
    for s in intact:
        r = CaseResult(_INTACT + s.name, s.format, "intact", s.name, "intact source")
        _classify(r, answers.get(r.id, {}), None)
        results[s.name] = r
    out = list(results.values())
    for m in mutants:
        r = CaseResult(m.id, m.format, m.kind, m.source, m.description)
        base = results.get(m.source) if m.source else None
        if base is not None and base.outcome != "ok":
            r.outcome, r.detail = "intact-failed", "the intact source cannot be read"
        else:
            _classify(r, answers.get(m.id, {}), base)
        out.append(r)
    return out


# --- report ---------------------------------------------------------------------------------------------


def _table(results: Sequence[CaseResult]) -> list[str]:
    columns = [*OUTCOMES, "intact-failed"]
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for r in results:
        if r.kind != "intact":
            counts.setdefault((r.format, r.kind), {}).setdefault(r.outcome, 0)
            counts[r.format, r.kind][r.outcome] += 1
    if not any(c.get("intact-failed") for c in counts.values()):
        columns.remove("intact-failed")
    head = f"{'format':10s} {'kind':14s} " + " ".join(f"{c:>{max(5, len(c))}s}" for c in columns) + "  total"
    lines = [head, "-" * len(head)]
    totals = dict.fromkeys(columns, 0)
    for (fmt, kind), row in sorted(counts.items(), key=lambda kv: (kv[0][0], fm.KINDS.index(kv[0][1]))):
        cells = " ".join(f"{row.get(c, 0) or '.':>{max(5, len(c))}}" for c in columns)
        lines.append(f"{fmt:10s} {kind:14s} {cells}  {sum(row.values()):5d}")
        for c in columns:
            totals[c] += row.get(c, 0)
    lines.append("-" * len(head))
    cells = " ".join(f"{totals[c]:>{max(5, len(c))}}" for c in columns)
    lines.append(f"{'total':10s} {'':14s} {cells}  {sum(totals.values()):5d}")
    return lines


def failure_classes(results: Sequence[CaseResult]) -> list[tuple[tuple[str, str, str, str], list[CaseResult]]]:
    """Group the failures by (format, kind, outcome, exception type or symptom)."""
    groups: dict[tuple[str, str, str, str], list[CaseResult]] = {}
    for r in results:
        if r.failed:
            symptom = r.detail if r.outcome in ("raw", "hang") else r.detail.split(";")[0]
            if r.outcome == "crash":
                symptom = r.detail
            groups.setdefault((r.format, r.kind, r.outcome, symptom), []).append(r)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def format_report(results: Sequence[CaseResult], *, list_failures: bool = True) -> str:
    """Return the printable report: the table, failure classes, every failure and the slow opens."""
    lines = _table(results)
    bad_intact = [r for r in results if r.kind == "intact" and r.outcome != "ok"]
    for r in bad_intact:
        lines.append(f"intact source cannot be read: {r.source}: {r.detail} {r.message}")
    pixel = {}
    for r in results:
        if r.outcome == "pixel-flip":
            key = r.detail.split(":")[0]
            pixel[key] = pixel.get(key, 0) + 1
    if pixel:
        lines.append("pixel-data flips (not failures): " + ", ".join(f"{k} {v}" for k, v in sorted(pixel.items())))
    classes = failure_classes(results)
    lines.append(f"\nfailure classes: {len(classes)}")
    for (fmt, kind, outcome, symptom), members in classes:
        example = members[0]
        lines.append(f"  {len(members):4d} x {outcome:14s} {fmt}/{kind}: {symptom[:80]}")
        lines.append(f"         e.g. {example.id}: {example.description} -> {example.message[:160]}")
    failures = [r for r in results if r.failed]
    if list_failures and failures:
        lines.append(f"\nfailures: {len(failures)}")
        for r in failures:
            lines.append(f"  [{r.outcome}] {r.id}: {r.description} -> {r.detail}: {r.message[:300]}")
    slow = sorted((r for r in results if r.slow), key=lambda r: -(r.open_s or 0))
    lines.append(f"\ndamaged-file opens over {SLOW_OPEN_S:g} s: {len(slow)}")
    for r in slow[:20]:
        lines.append(f"  {r.open_s:6.2f} s {r.id}: {r.description}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (also the worker's)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bounded", action="store_true", help="run the bounded stratified subset")
    parser.add_argument("--jobs", type=int, default=2, help="worker subprocesses (default 2)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every case result to this JSON file")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary folder, removed)")
    parser.add_argument("--samples", type=Path, default=fm.SAMPLES, help="shared sample folder")
    parser.add_argument("--no-samples", action="store_true", help="generated sources only")
    parser.add_argument("--only", action="append", help="run only mutant ids containing this text (repeatable)")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit per worker (0: none)")
    parser.add_argument("--setup", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    with tempfile.TemporaryDirectory(prefix="omio-fuzz-") as tmp:
        work = args.work or Path(tmp)
        ids = None
        if args.only:
            everything = fm.plan(fm.sources(work, None if args.no_samples else args.samples), args.seed)
            ids = [m.id for m in everything if any(o in m.id for o in args.only)]
        start = time.monotonic()
        results = run_campaign(
            work,
            bounded=args.bounded,
            jobs=args.jobs,
            timeout=args.timeout,
            seed=args.seed,
            samples=None if args.no_samples else args.samples,
            ids=ids,
            memory_gb=args.memory_gb,
            progress=True,
        )
        elapsed = time.monotonic() - start
    print(format_report(results))
    print(f"\n{sum(r.kind != 'intact' for r in results)} mutants in {elapsed:.0f} s ({args.jobs} jobs)")
    if args.json:
        doc = {
            "seed": args.seed,
            "bounded": args.bounded,
            "timeout": args.timeout,
            "elapsed_s": elapsed,
            "cases": [{k: v for k, v in asdict(r).items() if k != "fingerprint"} for r in results],
        }
        args.json.write_text(json.dumps(doc, indent=1))
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
