"""OMIO 0.3's public API, called as OMIO 0.3's documentation shows, on generated files and the samples."""

from __future__ import annotations

import inspect
import os
import shutil
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr

import omio
import omio.omio as om
from omio._api import open as omio_open
from omio.errors import FileFormatError, MetadataError, OmioError

OMIO03_FUNCTIONS = {
    "imread": "fname zarr_store zarr_store_path reuse_disk_cache on_error return_list recursive folder_stacks "
    "merge_folder_stacks merge_multiple_files_in_folder merge_along_axis zeropadding physicalsize_xyz pixelunit "
    "collapse_ome_multifile_series verbose",
    "imwrite": "fname images metadatas compression_level relative_path overwrite return_fnames indicate_merged_files "
    "verbose",
    "imconvert": "fname zarr_store reuse_disk_cache recursive folder_stacks merge_folder_stacks "
    "merge_multiple_files_in_folder merge_along_axis collapse_ome_multifile_series zeropadding physicalsize_xyz "
    "pixelunit compression_level relative_path overwrite return_fnames cleanup_cache verbose",
    "bids_batch_convert": "fname sub exp exp_match_mode tagfolder merge_multiple_files_in_folder merge_tagfolders "
    "merge_along_axis collapse_ome_multifile_series zeropadding zarr_store reuse_disk_cache recursive "
    "physicalsize_xyz pixelunit compression_level relative_path overwrite cleanup_cache return_fnames verbose",
    "read_tif": "fname physicalsize_xyz pixelunit zarr_store zarr_store_path return_list reuse_disk_cache verbose",
    "read_czi": "fname physicalsize_xyz pixelunit zarr_store zarr_store_path return_list reuse_disk_cache verbose",
    "read_thorlabs_raw": "fname physicalsize_xyz pixelunit zarr_store zarr_store_path return_list reuse_disk_cache "
    "on_error verbose",
    "create_thorlabs_raw_yaml": "fname T Z C Y X bits physicalsize_xyz pixelunit time_increment time_increment_unit "
    "annotations verbose",
    "cleanup_omio_cache": "fname full_cleanup verbose",
    "create_empty_image": "shape dtype fill_value zarr_store zarr_store_path zarr_store_name return_metadata "
    "input_metadata verbose",
    "create_empty_metadata": "physicalsize_xyz pixelunit time_increment time_increment_unit shape annotations "
    "input_metadata verbose",
    "update_metadata_from_image": "metadata image run_checkup verbose",
    "OME_metadata_checkup": "metadata namespace verbose",
    "open_in_napari": "images metadatas image_name zarr_mode cache_folder_name axes_full viewer returns layer_names "
    "blending fname verbose",
    "hello_world": "",
    "discover_bids_like_batch_images": "project_root subject_ids subject_prefix tag_folder_levels image_patterns "
    "exclude_name_contains folder_stacks collapse_ome_multifile_series verbose",
    "batch_create_thorlabs_raw_yaml_templates": "project_root report_name raw_template_metadata overwrite_existing "
    "verbose",
    "bids_batch_process": "project_root subject_ids subject_prefix tag_folder_levels image_patterns "
    "exclude_name_contains folder_stacks merge_along_axis zeropadding collapse_ome_multifile_series "
    "output_folder_name output_suffix skip_processed load_func process_func save_func load_options "
    "processing_options save_options method_name raw_template_metadata write_error_reports write_run_report "
    "run_report_name run_report_format continue_on_error verbose",
}
DEFAULTS_03 = {
    ("imread", "on_error"): "raise",
    ("imwrite", "compression_level"): 3,
    ("imconvert", "compression_level"): 3,
    ("imconvert", "relative_path"): "omio_converted",
    ("bids_batch_convert", "exp_match_mode"): "startswith",
    ("bids_batch_process", "subject_prefix"): "ID",
    ("bids_batch_process", "output_suffix"): "_omio_converted",
    ("bids_batch_process", "exclude_name_contains"): ("Preview",),
    ("create_thorlabs_raw_yaml", "Y"): 1024,
}


def write(path: Path, value: int, shape: tuple[int, ...] = (2, 8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.full(shape, value, "uint16"), photometric="minisblack")


@pytest.mark.parametrize("name", sorted(OMIO03_FUNCTIONS))
def test_every_function_has_omio03_parameters_in_order(name: str) -> None:
    func = getattr(om, name)
    assert getattr(omio, name) is func and name in omio.__all__ and name in om.__all__
    assert list(inspect.signature(func).parameters) == OMIO03_FUNCTIONS[name].split()
    for (fn, param), value in DEFAULTS_03.items():
        if fn == name:
            assert inspect.signature(func).parameters[param].default == value


def test_record_types_and_version() -> None:
    for name in ("BatchImageRecord", "BatchProcessResult", "BatchErrorRecord", "BatchSkippedRecord"):
        assert getattr(omio, name) is getattr(om, name)
    assert om.version == omio.__version__
    assert om.BatchProcessResult().processed == ()


def test_imread_returns_numpy_zarr_and_lists(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.tif", 1)
    write(tmp_path / "d" / "b.tif", 2, (3, 8, 8))
    img, md = om.imread(str(tmp_path / "d" / "a.tif"))
    assert isinstance(img, np.ndarray) and img.shape == (2, 1, 1, 8, 8)
    assert md["PhysicalSizeX"] is None and md["TimeIncrement"] is None  # unknown stays None
    ann = md["Annotations"]
    assert ann["Namespace"] == "omio:metadata" and ann["original_filename"] == "a.tif"
    assert ann["original_parentfolder"] == "d" and ann["original_filetype"] == "tif"
    images, mds = om.imread([str(tmp_path / "d" / "a.tif"), str(tmp_path / "d" / "b.tif")])
    assert [i.shape[0] for i in images] == [2, 3] and len(mds) == 2
    mem, _ = om.imread(str(tmp_path / "d" / "a.tif"), zarr_store="memory")
    assert isinstance(mem, zarr.Array) and np.array_equal(mem[:], img)
    disk, _ = om.imread(str(tmp_path / "d" / "a.tif"), zarr_store="disk")
    assert isinstance(disk, zarr.Array) and (tmp_path / "d" / ".omio_cache" / "a.zarr").is_dir()
    om.cleanup_omio_cache(str(tmp_path / "d" / "a.tif"))
    assert not (tmp_path / "d" / ".omio_cache" / "a.zarr").exists()
    merged, mmd = om.imread(str(tmp_path / "d"), merge_multiple_files_in_folder=True, merge_along_axis="T")
    assert merged[:, 0, 0, 0, 0].tolist() == [1, 1, 2, 2, 2] and mmd["SizeT"] == 5
    _, smd = om.imread(str(tmp_path / "d" / "a.tif"), physicalsize_xyz=(0.2, 0.2, 1.0), pixelunit="micron")
    assert smd["PhysicalSizeX"] == pytest.approx(0.2) and smd["PhysicalSizeXUnit"] == "micron"


def test_imread_validation_matches_omio03(tmp_path: Path) -> None:
    write(tmp_path / "a.tif", 1)
    with pytest.raises(ValueError, match="merge_along_axis"):
        om.imread(str(tmp_path), merge_multiple_files_in_folder=True, merge_along_axis="X")
    with pytest.raises(ValueError, match="zarr_store"):
        om.imread(str(tmp_path / "a.tif"), zarr_store="cloud")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_error"):
        om.imread(str(tmp_path / "a.tif"), on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        om.imread(str(tmp_path / "missing.tif"))
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    assert om.imread(str(tmp_path / "junk.tif"), on_error="return_none") == (None, None)


def test_folder_stacks(tmp_path: Path) -> None:
    write(tmp_path / "TAG_01" / "x.tif", 1)
    write(tmp_path / "TAG_02" / "y.tif", 2)
    images, _ = om.imread(str(tmp_path / "TAG_01"), folder_stacks=True)
    assert len(images) == 2
    merged, _ = om.imread(str(tmp_path / "TAG_01"), merge_folder_stacks=True)
    assert merged[:, 0, 0, 0, 0].tolist() == [1, 1, 2, 2]


def test_templates_and_imwrite(tmp_path: Path) -> None:
    image = om.create_empty_image((1, 2, 1, 4, 4), dtype=np.uint8, fill_value=5)
    assert isinstance(image, np.ndarray) and image.max() == 5
    md = om.create_empty_metadata(physicalsize_xyz=(0.3, 0.3, 2.0), annotations={"lab": "x"})
    assert md["PhysicalSizeX"] == 0.3 and md["TimeIncrement"] is None and md["shape"] is None
    md = om.update_metadata_from_image(md, image)
    assert md["shape"] == (1, 2, 1, 4, 4) and md["SizeZ"] == 2
    with pytest.raises(ValueError):
        om.update_metadata_from_image(md, np.zeros((3, 4)))
    assert om.OME_metadata_checkup({"axes": "TZCYX", "foo": 1})["Annotations"] == {
        "Namespace": "omio:metadata",
        "foo": 1,
    }
    out = tmp_path / "w" / "out.tif"
    assert om.imwrite(str(out), image, md) is None
    names = om.imwrite(str(out), image, md, return_fnames=True)
    assert names == [str(tmp_path / "w" / "out 1.ome.tif")]  # a taken name, as OMIO 0.3 names it
    names = om.imwrite(str(out), [image, image], [md, md], return_fnames=True, relative_path="sub")
    assert [Path(n).relative_to(tmp_path / "w").as_posix() for n in names or []] == [
        "sub/out_001.ome.tif",
        "sub/out_002.ome.tif",
    ]
    (merged,) = om.imwrite(str(out), image, md, return_fnames=True, indicate_merged_files=True) or []
    assert Path(merged).name == "out_merged.ome.tif"
    back, bmd = om.imread(str(tmp_path / "w" / "out.ome.tif"))
    assert np.array_equal(back, image) and bmd["Annotations"]["lab"] == "x"
    assert bmd["PhysicalSizeZ"] == pytest.approx(2.0) and bmd["PhysicalSizeZUnit"] == "micron"
    zimg = om.create_empty_image((1, 1, 1, 4, 4), zarr_store="disk", zarr_store_path=str(tmp_path), zarr_store_name="b")
    assert isinstance(zimg, zarr.Array) and (tmp_path / ".omio_cache" / "b.zarr").is_dir()


def test_imwrite_takes_a_dask_image_and_streams(tmp_path: Path) -> None:
    image = da.ones((2, 1, 1, 8, 8), dtype="uint16", chunks=(1, 1, 1, 8, 8))
    (name,) = om.imwrite(str(tmp_path / "lazy.tif"), image, {"axes": "TZCYX"}, return_fnames=True) or []
    assert omio_open(name).shape == (2, 1, 1, 8, 8)


def test_imconvert_outputs_like_omio03(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.tif", 1)
    write(tmp_path / "d" / "b.tif", 2)
    os.chdir(tmp_path)
    assert om.imconvert("d/a.tif", return_fnames=True) == ["d/omio_converted/a.ome.tif"]
    assert om.imconvert("d", return_fnames=True) == ["d/omio_converted/a 1.ome.tif", "d/omio_converted/b.ome.tif"]
    assert om.imconvert("d", merge_multiple_files_in_folder=True, return_fnames=True) == [
        "d/omio_converted/a_merged.ome.tif"
    ]
    assert om.imconvert("d/a.tif", relative_path=None, return_fnames=True) == ["d/a.ome.tif"]
    assert om.imconvert("d/b.tif") is None
    with pytest.raises(ValueError, match="merge_along_axis"):
        om.imconvert("d", merge_multiple_files_in_folder=True, merge_along_axis="X")


def test_bids_batch_convert_positional_like_omio03(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root / "sub-01" / "exp_TP001" / "a.tif", 1)
    write(root / "sub-01" / "exp_TP002" / "TAG_01" / "x.tif", 2)
    write(root / "sub-01" / "exp_TP002" / "TAG_02" / "y.tif", 3)
    rel = [
        Path(p).relative_to(root).as_posix()
        for p in om.bids_batch_convert(str(root), "sub-", "exp", return_fnames=True) or []
    ]
    assert rel == ["sub-01/exp_TP001/omio_converted/a.ome.tif"]
    tags = om.bids_batch_convert(str(root), "sub-", "exp", "startswith", "TAG_", return_fnames=True) or []
    assert [Path(p).parent.parent.name for p in tags] == ["TAG_01", "TAG_02"]
    (merged,) = (
        om.bids_batch_convert(str(root), "sub-", "exp", tagfolder="TAG_", merge_tagfolders=True, return_fnames=True)
        or []
    )
    assert Path(merged).name == "sub-01_exp_TP002_TAG_merged_merged.ome.tif"
    assert omio_open(merged).shape[0] == 4
    regex = om.bids_batch_convert(str(root), "sub-", r"exp_TP00[1]", "regex", relative_path=None, return_fnames=True)
    assert [Path(p).name for p in regex or []] == ["a.ome.tif"]
    with pytest.raises(ValueError, match="exp_match_mode"):
        om.bids_batch_convert(str(root), "sub-", "exp", "fuzzy")
    with pytest.raises(ValueError, match="folder"):
        om.bids_batch_convert(str(root / "sub-01" / "exp_TP001" / "a.tif"), "sub-", "exp")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert om.bids_batch_convert(str(empty), "sub-", "exp", return_fnames=True) == []
    assert list(empty.iterdir()) == []  # nothing written into an empty project


def test_bids_batch_process_and_raw_yaml_templates(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root / "ID01" / "TP001" / "a.tif", 1)
    write(root / "ID01" / "TP001" / "a_Preview.tif", 9)
    write(root / "ID02" / "TP001" / "c.tif", 3)
    write(root / "ID02" / "TP001" / "time01" / "x.tif", 4)
    write(root / "ID02" / "TP001" / "time02" / "y.tif", 5)
    records = om.discover_bids_like_batch_images(root, folder_stacks="time")
    assert [(r.subject_id, r.image_path.name, r.input_kind) for r in records] == [
        ("ID01", "a.tif", "file"),
        ("ID02", "c.tif", "file"),
        ("ID02", "time01", "folder_stack"),
    ]
    result = om.bids_batch_process(root, folder_stacks="time", verbose=False)
    assert isinstance(result, om.BatchProcessResult) and not result.failed
    outputs = sorted(p.output_path.relative_to(root).as_posix() for p in result.processed)
    assert outputs == [
        "ID01/TP001/omio_converted/a_omio_converted.ome.tif",
        "ID02/TP001/omio_converted/c_omio_converted.ome.tif",
        "ID02/TP001/omio_converted/time_omio_converted.ome.tif",
    ]
    assert omio_open(root / outputs[2]).shape[0] == 4
    assert result.run_report_yaml_path == root / "omio_batch_run_report.yaml"
    again = om.bids_batch_process(root, folder_stacks="time", verbose=False)
    assert len(again.skipped) == 3 and {s.stage for s in again.skipped} == {"already_processed"}

    def double(*, image: Any, metadata: dict[str, Any], record: Any, processing_options: dict[str, Any]) -> Any:
        return image * processing_options["factor"], metadata, {"details": "scaled"}

    custom = om.bids_batch_process(
        root, process_func=double, processing_options={"factor": 2}, output_suffix="_x2", verbose=False
    )
    assert om.imread(str(custom.processed[0].output_path))[0].max() == 2
    np.arange(2 * 3 * 4 * 5, dtype="uint16").tofile(root / "ID02" / "TP001" / "s.raw")
    template = {"T": 2, "Z": 3, "C": 1, "Y": 4, "X": 5, "bits": 16}
    failing = om.bids_batch_process(root, raw_template_metadata=template, verbose=False)
    assert [(f.input_path.name, f.stage) for f in failing.failed] == [("s.raw", "load")]
    assert failing.error_report_path is not None and failing.local_error_report_paths
    with pytest.raises(OmioError):  # no Experiment.xml and no YAML sidecar yet
        om.bids_batch_process(root, continue_on_error=False, write_run_report=False, verbose=False)
    made = om.batch_create_thorlabs_raw_yaml_templates(root, verbose=False)
    assert [r.status for r in made.records] == ["created"]
    assert [r.status for r in om.batch_create_thorlabs_raw_yaml_templates(root, verbose=False).records] == ["exists"]
    final = om.bids_batch_process(root, verbose=False)
    assert not final.failed and [p.input_path.name for p in final.processed] == ["s.raw"]


def test_thorlabs_raw_yaml_sidecar(tmp_path: Path) -> None:
    raw = tmp_path / "Image_0001_0001.raw"
    data = np.arange(2 * 3 * 2 * 4 * 5, dtype="uint16")
    data.tofile(raw)
    om.create_thorlabs_raw_yaml(
        str(raw),
        T=2,
        Z=3,
        C=2,
        Y=4,
        X=5,
        physicalsize_xyz=(0.5, 0.5, 2.0),
        time_increment=0.1,
        annotations={"who": "me"},
    )
    img, md = om.read_thorlabs_raw(str(raw))
    assert np.array_equal(img, data.reshape(2, 3, 2, 4, 5))
    assert md["PhysicalSizeZ"] == 2.0 and md["TimeIncrement"] == pytest.approx(0.1)
    assert md["TimeIncrementUnit"] == "seconds" and md["Annotations"]["who"] == "me"
    assert md["Annotations"]["original_metadata_type"] == "thorlabs_yaml_metadata"
    lazy, _ = omio.imread(str(raw), zarr_store="memory")
    assert lazy.shape == (2, 3, 2, 4, 5)
    om.create_thorlabs_raw_yaml(str(raw), T=3, Z=3, C=2, Y=4, X=5)  # states more pixels than the file holds
    with pytest.raises(FileFormatError, match="bytes"):
        om.read_thorlabs_raw(str(raw))
    (tmp_path / "Image_0001_0001_metadata.yaml").write_text("T: -1\nZ: 1\nC: 1\nY: 4\nX: 5\n")
    with pytest.raises(MetadataError, match="positive"):
        om.imread(str(raw))


def test_samples_read_like_omio03(samples: Path, tmp_path: Path) -> None:
    tif = samples / "ome-tiff" / "bioformats_artificial_single-channel.ome.tif"
    img, md = om.read_tif(str(tif))
    assert isinstance(img, np.ndarray) and img.shape == md["shape"] and md["axes"] == "TZCYX"
    czi = samples / "czi" / "zen_s1_t1_c1_z1.czi"
    cimg, cmd = om.read_czi(str(czi))
    assert cimg.shape == omio_open(czi).shape and cmd["PhysicalSizeXUnit"] == "micron"
    scenes, _ = om.read_czi(
        str(samples / "czi" / "zen_3scenes_mosaic_T2_Z3_C2.czi"), zarr_store="memory", return_list=True
    )
    assert len(scenes) == 3 and all(isinstance(s, zarr.Array) for s in scenes)
    thor = samples / "thorlabs" / "utils2p_mouse_kidney_raw_T5_C2"
    raw = next(thor.glob("*.raw"))
    rimg, rmd = om.read_thorlabs_raw(str(raw))
    assert rimg.shape == omio_open(thor).shape and rmd["SizeT"] == 5
    shutil.copy(tif, tmp_path / tif.name)
    (out,) = om.imconvert(str(tmp_path / tif.name), return_fnames=True) or []
    assert np.array_equal(om.imread(out)[0], img)
