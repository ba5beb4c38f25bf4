"""BIDS-like discovery and batch conversion: layout, resume, errors, distributed."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from omio._api import open as omio_open
from omio.bids import BatchReport, convert, scan
from omio.merge import merge_provenance


def write(path: Path, value: int, shape: tuple[int, ...] = (2, 8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.full(shape, value, "uint16"), photometric="minisblack")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Two subjects, three experiments each (plain files, tag folders, several files), one corrupt file."""
    root = tmp_path / "project"
    for s, sub in enumerate(("sub-01", "sub-02")):
        write(root / sub / "exp_TP001" / "image.tif", 10 * s + 1)
        write(root / sub / "exp_TP002" / "TAG_01" / "image1.tif", 10 * s + 2)
        write(root / sub / "exp_TP002" / "TAG_02" / "image2.tif", 10 * s + 3)
        write(root / sub / "exp_TP003" / "image1.tif", 10 * s + 4)
        write(root / sub / "exp_TP003" / "image2.tif", 10 * s + 5)
    (root / "sub-01" / "exp_TP001" / "notes.txt").write_text("lab notes")
    (root / "sub-02" / "exp_TP003" / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 40)
    (root / "README").write_text("not a subject")
    return root


def digest(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_scan_is_an_inspectable_table(project: Path) -> None:
    table = scan(project, sub="sub-", exp="TP", tagfolder="TAG_", merge_tagfolders=True)
    records = table.to_records()
    outputs = [Path(r["output"]).relative_to(project / "derivatives" / "omio").as_posix() for r in records]
    assert outputs[:4] == [
        "sub-01/exp_TP001/image.ome.tif",
        "sub-01/exp_TP002/exp_TP002_tags_merged.ome.tif",
        "sub-01/exp_TP003/image1.ome.tif",
        "sub-01/exp_TP003/image2.ome.tif",
    ]
    assert len(records) == 9  # 4 for sub-01, 5 for sub-02 (with the broken file)
    merged = records[1]
    assert [Path(p).parent.name for p in merged["inputs"]] == ["TAG_01", "TAG_02"]
    assert merged["merge_along"] == "T" and merged["tag"] == "TAG_01+TAG_02"
    assert [s.path.name for s in table.skipped] == ["notes.txt"]
    json.dumps(records)  # JSON-safe
    per_tag = scan(project, exp="TP", tagfolder="TAG_")
    assert "sub-01/exp_TP002/TAG_02/image2.ome.tif" in {
        Path(r.output).relative_to(per_tag.output_root).as_posix() for r in per_tag
    }


def test_batch_converts_reports_and_resumes(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = digest(project)
    table = scan(project, exp="TP", tagfolder="TAG_", merge_tagfolders=True, merge_files=True, merge_along="T")
    report = convert(table, progress=True)
    assert "omio batch" in capsys.readouterr().err
    assert report.summary == {"converted": 5, "failed": 1}
    (failed,) = report.failed
    assert any(i.endswith("broken.tif") for i in failed.inputs) and "FileFormatError" in (failed.error or "")
    assert not Path(failed.output).exists()
    # sources untouched, outputs correct and carry provenance
    assert {k: v for k, v in digest(project).items() if "derivatives" not in k} == before
    out = omio_open(project / "derivatives/omio/sub-02/exp_TP002/exp_TP002_tags_merged.ome.tif")
    assert out.to_numpy()[:, 0, 0, 0, 0].tolist() == [12, 12, 13, 13]
    prov = merge_provenance(out)
    assert prov is not None and [Path(s["path"]).name for s in prov["sources"]] == ["image1.tif", "image2.tif"]
    # the JSON report lists every job
    assert report.report_path is not None
    doc = json.loads(report.report_path.read_text())
    assert doc["summary"] == report.summary and len(doc["results"]) == len(table)
    assert {r["status"] for r in doc["results"]} == {"converted", "failed"}
    # complete outputs are skipped; anything else at an output path is replaced only with overwrite=True
    stale = Path(table[0].output)
    stale.write_bytes(b"II*\x00truncated")
    again = convert(table, progress=False)
    assert again.summary == {"skipped": 4, "failed": 2}
    refused = next(r for r in again.results if r.output == str(stale))
    assert refused.status == "failed" and "OutputExistsError" in (refused.error or "")
    assert "overwrite" in (refused.error or "") and stale.read_bytes() == b"II*\x00truncated"
    forced = convert(table, progress=False, overwrite=True)
    assert forced.summary == {"converted": 5, "failed": 1}
    assert omio_open(stale).shape == (2, 1, 1, 8, 8)
    assert not list(project.rglob("*omio-partial*"))


def test_batch_on_a_two_worker_local_cluster(project: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    table = scan(project, exp="TP", tagfolder="TAG_", output_root=tmp_path / "out")
    with warnings.catch_warnings():
        # distributed may warn about its own event loop / port use while starting and stopping workers
        warnings.filterwarnings("ignore", category=UserWarning, module=r"distributed(\..*)?")
        warnings.filterwarnings("ignore", category=ResourceWarning)
        with (
            distributed.LocalCluster(
                n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            report = convert(table, client=client, progress=False)
            workers = set(client.run(lambda: 1))
    assert isinstance(report, BatchReport)
    assert len(workers) == 2
    assert report.summary == {"converted": 10, "failed": 1}
    assert [r.output for r in report.results] == [str(r.output) for r in table]
    assert omio_open(tmp_path / "out/sub-01/exp_TP002/TAG_02/image2.ome.tif").to_numpy().max() == 3


def test_batch_on_local_threads_leaves_the_dask_configuration_alone(project: Path, tmp_path: Path) -> None:
    import dask

    table = scan(project, exp="TP", tagfolder="TAG_", output_root=tmp_path / "out")
    before = dask.config.get("scheduler", None)
    for _ in range(3):  # jobs entering and leaving at once in several threads
        report = convert(table, num_workers=4, progress=False, overwrite=True)
        assert report.summary == {"converted": 10, "failed": 1}
        assert dask.config.get("scheduler", None) == before


def test_local_computations_are_private_to_their_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import threading

    import dask
    import dask.local
    import dask.threaded

    from omio._scheduler import local_computations, scheduler

    monkeypatch.setitem(sys.modules, "distributed", sys.modules.get("distributed", object()))  # a client may exist
    configured = dask.config.get("scheduler", None)
    entered = [threading.Event(), threading.Event()]
    leave = [threading.Event(), threading.Event()]
    seen: list[object] = []

    def job(i: int) -> None:
        with local_computations():
            entered[i].set()
            leave[i].wait(5)
            seen.append(scheduler(local=dask.local.get_sync))

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    threads[0].start()
    entered[0].wait(5)
    threads[1].start()
    entered[1].wait(5)
    assert scheduler() is None  # this thread is not inside the block: dask (and a client) choose
    leave[0].set()  # the first to enter leaves first
    threads[0].join(5)
    leave[1].set()
    threads[1].join(5)
    assert seen == [dask.local.get_sync, dask.local.get_sync]
    assert scheduler() is None
    assert dask.config.get("scheduler", None) == configured
    monkeypatch.delitem(sys.modules, "distributed")
    assert scheduler() is dask.threaded.get
