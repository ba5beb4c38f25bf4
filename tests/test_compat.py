"""OMIO's functional API: imread, imwrite, convert_to_ometiff, batch conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from omio import compat
from omio._api import open as omio_open
from omio.errors import MergeError, MetadataError
from omio.merge import merge_provenance


def write(path: Path, value: int, shape: tuple[int, ...] = (2, 8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.full(shape, value, "uint16"), photometric="minisblack")


def test_imread_file_folder_and_merge(tmp_path: Path) -> None:
    write(tmp_path / "img_1.tif", 1)
    write(tmp_path / "img_2.tif", 2, (3, 8, 8))
    img, md = compat.imread(tmp_path / "img_1.tif")
    assert isinstance(img, np.ndarray) and img.shape == (2, 1, 1, 8, 8)  # numpy, as OMIO 0.3
    assert md["axes"] == "TZCYX" and md["SizeT"] == 2
    images, mds = compat.imread(tmp_path, return_list=True)
    assert [i.shape[0] for i in images] == [2, 3] and len(mds) == 2
    merged, mmd = compat.imread(tmp_path, merge_multiple_files_in_folder=True, merge_along_axis="T")
    assert isinstance(merged, np.ndarray)
    assert merged[:, 0, 0, 0, 0].tolist() == [1, 1, 2, 2, 2]
    assert mmd["Annotations"]["omio:merge:axis"] == "T"
    listed, _ = compat.imread(tmp_path)  # a folder without merge: lists, as OMIO 0.3
    assert isinstance(listed, list) and len(listed) == 2
    write(tmp_path / "img_3.tif", 3, (1, 4, 8))
    with pytest.raises(MergeError, match="size Y"):
        compat.imread(tmp_path, merge_multiple_files_in_folder=True, zeropadding=False)
    padded, _ = compat.imread(tmp_path, merge_multiple_files_in_folder=True, zeropadding=True)
    assert padded.shape == (6, 1, 1, 8, 8)


def test_imwrite_round_trip_keeps_metadata(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 16, dtype="uint16").reshape(2, 3, 4, 4)
    md = {
        "axes": "CZYX",
        "PhysicalSizeX": 200.0,
        "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 0.2,
        "PhysicalSizeZ": 1.5,
        "channel_names": ["GFP", "RFP"],
        "Annotations": {"lab:info": {"operator": "ada"}},
    }
    (name,) = compat.imwrite(tmp_path / "out.tif", data, md, compression_level=3, return_fnames=True)
    assert Path(name).name == "out.ome.tif"
    img, back = compat.imread(name)
    np.testing.assert_array_equal(np.asarray(img)[0].transpose(1, 0, 2, 3), data)
    assert back["PhysicalSizeX"] == pytest.approx(200.0) and back["PhysicalSizeXUnit"] == "nm"
    assert back["PhysicalSizeZ"] == pytest.approx(1.5) and back["channel_names"] == ["GFP", "RFP"]
    assert back["Annotations"]["lab:info:operator"] == "ada"
    again = compat.imwrite(tmp_path / "out.ome.tif", [data, data], [md, md], return_fnames=True)
    assert [Path(p).name for p in again or []] == ["out_001.ome.tif", "out_002.ome.tif"]
    with pytest.raises(MetadataError, match="axes"):
        compat.imwrite(tmp_path / "bad.ome.tif", data, {"axes": "ZYX"})


def test_convert_to_ometiff_file_folder_and_names(tmp_path: Path) -> None:
    src = tmp_path / "cells.ome.tif"
    compat.imwrite(src, np.ones((1, 1, 1, 4, 4), "uint8"), {"axes": "TZCYX"})
    before = src.read_bytes()
    (out,) = compat.convert_to_ometiff(src)
    assert out.name == "cells_1.ome.tif" and src.read_bytes() == before  # the source is never overwritten
    folder = tmp_path / "exp"
    write(folder / "a_2.tif", 2)
    write(folder / "a_10.tif", 10)
    outs = compat.convert_to_ometiff(folder)
    assert [p.relative_to(folder).as_posix() for p in outs] == [
        "omio_converted/a_2.ome.tif",
        "omio_converted/a_10.ome.tif",
    ]
    (merged,) = compat.convert_to_ometiff(folder, merge_multiple_files_in_folder=True, compression_level=0)
    assert merged.name == "exp_merged.ome.tif"
    ds = omio_open(merged)
    assert ds.to_numpy()[:, 0, 0, 0, 0].tolist() == [2, 2, 10, 10]
    assert merge_provenance(ds) is not None


def test_bids_batch_function_names(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write(root / "sub-01" / "exp_TP001" / "TAG_01" / "a.tif", 1)
    write(root / "sub-01" / "exp_TP001" / "TAG_02" / "b.tif", 2)
    report = compat.convert_bids_batch_to_ometiff(
        root, sub="sub-", exp="TP", tagfolder="TAG_", merge_tagfolders=True, progress=False
    )
    assert report.summary == {"converted": 1}
    out = root / "derivatives/omio/sub-01/exp_TP001/exp_TP001_tags_merged.ome.tif"
    assert omio_open(out).shape == (4, 1, 1, 8, 8)
    again = compat.convert_bids_batch_to_ometiff(root, "sub-", "TP", "TAG_", True, progress=False)
    assert again.summary == {"skipped": 1}
