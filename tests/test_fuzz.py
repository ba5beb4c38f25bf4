"""Mutation fuzzing: damaged files raise omio errors; nothing escapes raw, hangs, crashes or reads wrong.

Runs the bounded stratified subset of ``benchmarks/fuzz_mutants.py`` through the
worker-subprocess harness of ``benchmarks/fuzz_campaign.py`` (the full campaign is
``python benchmarks/fuzz_campaign.py``).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fuzz_campaign as fc
import fuzz_mutants as fm

TIMEOUT_S = 10.0
GENERATED_FORMATS = {"tiff", "bigtiff", "ome-tiff", "imagej", "ome-zarr", "thorlabs", "random"}


def digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under a folder, by relative path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_clean(results: Sequence[fc.CaseResult]) -> None:
    """Fail with the report when any case is raw, hung, crashed, wrong or log-only-wrong."""
    bad = [r for r in results if r.failed or r.outcome == "intact-failed"]
    assert not bad, "\n" + fc.format_report(results)


def test_generator_is_deterministic(tmp_path: Path) -> None:
    first = fm.generate(tmp_path / "a", seed=3, subset=True, samples=None)
    second = fm.generate(tmp_path / "b", seed=3, subset=True, samples=None)
    assert [m.summary() for m, _ in first] == [m.summary() for m, _ in second]
    assert digest(tmp_path / "a" / "mutants") == digest(tmp_path / "b" / "mutants")
    other = fm.plan(fm.sources(tmp_path / "a", None), seed=4)
    assert [m.description for m in other] != [m.description for m, _ in first]


def test_plan_covers_every_format_and_kind(tmp_path: Path) -> None:
    mutants = fm.plan(fm.sources(tmp_path, None))
    assert {m.format for m in mutants} == GENERATED_FORMATS
    assert {m.kind for m in mutants} == set(fm.KINDS)
    assert len({m.id for m in mutants}) == len(mutants)
    pairs = {(m.format, m.kind) for m in mutants}
    subset = fm.bounded(mutants)
    assert {(m.format, m.kind) for m in subset} == pairs
    assert len(subset) < len(mutants) / 4


def test_plan_with_samples_covers_every_sample(samples: Path, tmp_path: Path) -> None:
    found = fm.sources(tmp_path, samples)
    mutants = fm.plan(found)
    assert {s.name for s in found} <= {m.source for m in mutants}
    assert {"czi", "lsm", "ome-zarr", "thorlabs"} <= {m.format for m in mutants}
    assert {(m.format, m.kind) for m in fm.bounded(mutants)} == {(m.format, m.kind) for m in mutants}
    assert [m.id for m in fm.plan(fm.sources(tmp_path, samples))] == [m.id for m in mutants]


def test_bounded_campaign_generated_sources(tmp_path: Path) -> None:
    results = fc.run_campaign(tmp_path, bounded=True, jobs=2, timeout=TIMEOUT_S, samples=None)
    assert {r.format for r in results} == GENERATED_FORMATS
    assert_clean(results)


def test_bounded_campaign_samples(samples: Path, tmp_path: Path) -> None:
    everything = fm.plan(fm.sources(tmp_path, samples))
    ids = [m.id for m in fm.bounded(everything) if m.source is not None and not m.source.startswith("gen/")]
    results = fc.run_campaign(tmp_path, jobs=2, timeout=TIMEOUT_S, samples=samples, ids=ids)
    assert_clean(results)


FAULTY_READER = """
import os
import signal
import time
import warnings
from pathlib import Path

import omio

real_open = omio.open


def faulty_open(path, **kwargs):
    name = Path(path).name
    if name == "plain_pages.czi":
        raise KeyError("a reader bug")
    if name == "bigtiff_subifd_pyramid.czi":
        time.sleep(60)
    if name == "ome_t7z5c1.czi":
        os.kill(os.getpid(), signal.SIGSEGV)
    ds = real_open(path, **kwargs)
    if name == "ome_z4c3_zlib.czi":
        warnings.warn("something looked odd", UserWarning)
        return ds.apply(lambda a: a + 1)
    if name == "imagej_zc.czi":
        return ds.apply(lambda a: a + 1)
    return ds


omio.open = faulty_open
"""


def test_harness_catches_a_faulty_reader(tmp_path: Path) -> None:
    setup = tmp_path / "faulty_reader.py"
    setup.write_text(FAULTY_READER)
    expected = {
        "gen/plain_pages.tif": "raw",
        "gen/bigtiff_subifd_pyramid.ome.tif": "hang",
        "gen/ome_t7z5c1.ome.tif": "crash",
        "gen/ome_z4c3_zlib.ome.tif": "log-only-wrong",
        "gen/imagej_zc.tif": "wrong",
        "gen/thorlabs_raw": "ok",
    }
    mutants = fm.plan(fm.sources(tmp_path, None))
    ids = [m.id for m in mutants if m.kind == "mislabel" and m.source in expected]
    ids += [next(m.id for m in mutants if m.source == "gen/thorlabs_raw" and m.kind == "metadata-edit")]
    ids += ["random.ome.tif#mislabel-000"]
    results = fc.run_campaign(tmp_path, jobs=2, timeout=5.0, samples=None, ids=ids, setup=setup)
    got = {r.source: r.outcome for r in results if r.kind == "mislabel"}
    assert got == {k: v for k, v in expected.items() if k != "gen/thorlabs_raw"} | {None: "omio-error"}
    thorlabs = [r for r in results if r.source == "gen/thorlabs_raw" and r.kind != "intact"]
    assert [r.outcome for r in thorlabs] == ["omio-error"]
    assert "SIGSEGV" in next(r.detail for r in results if r.outcome == "crash")
    assert "KeyError" in next(r.detail for r in results if r.outcome == "raw")
    with pytest.raises(AssertionError, match="failure classes"):
        assert_clean(results)


def test_classification_of_wrong_results() -> None:
    intact = fc.CaseResult("intact:x", "tiff", "intact", "x", "intact source")
    fingerprint = {
        "shape": [1, 1, 1, 2, 2],
        "dtype": "uint8",
        "array_shape": [1, 1, 1, 2, 2],
        "pixels": "aa",
        "physical_sizes": {"X": 0.5, "Y": 0.5, "Z": None},
        "time_increment": None,
        "channel_names": ["a"],
        "scenes": [None],
        "written_back": "same",
    }
    fc._classify(intact, {"status": "returned", "fingerprint": fingerprint}, None)
    assert intact.outcome == "ok"
    cases = {
        "same": ({"fingerprint": fingerprint}, "ok"),
        "size": ({"fingerprint": {**fingerprint, "physical_sizes": {"X": 0.7, "Y": 0.5, "Z": None}}}, "wrong"),
        "names": ({"fingerprint": {**fingerprint, "channel_names": [None]}, "n_warnings": 1}, "log-only-wrong"),
        "secret": ({"fingerprint": fingerprint, "secret": True}, "wrong"),
        "written-back": ({"fingerprint": {**fingerprint, "written_back": "differs"}}, "wrong"),
    }
    for name, (answer, outcome) in cases.items():
        result = fc.CaseResult(name, "tiff", "truncation", "x", name)
        fc._classify(result, {"status": "returned", **answer}, intact)
        assert result.outcome == outcome, name
    flip = fc.CaseResult("p", "tiff", "pixel-flip", "x", "p")
    fc._classify(flip, {"status": "raw", "error": "builtins.ValueError"}, intact)
    assert flip.outcome == "pixel-flip" and not flip.failed
    # a flipped pixel is no failure, but a file that reads one way and writes another is
    flipped = {**fingerprint, "pixels": "bb"}
    for written, outcome in (("same", "pixel-flip"), ("differs", "wrong")):
        flip = fc.CaseResult("p", "tiff", "pixel-flip", "x", "p")
        fc._classify(flip, {"status": "returned", "fingerprint": {**flipped, "written_back": written}}, intact)
        assert flip.outcome == outcome, written
