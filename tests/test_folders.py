"""Reading folders of images and folder stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from omio.errors import FileFormatError, MergeError
from omio.folders import FolderContents, list_folder, natural_key, open_folder, open_folder_stack
from omio.merge import merge_provenance

THORLABS_XML = """<?xml version="1.0"?>
<ThorImageExperiment>
  <Date date="05/05/2020 17:14:26" uTime="1588691666" />
  <Wavelengths>
    <Wavelength name="ChanA" exposureTimeMS="0" />
    <ChannelEnable Set="1" />
  </Wavelengths>
  <ZStage name="Z" steps="1" stepSizeUM="2" enable="1" />
  <Timelapse timepoints="1" intervalSec="0" triggerMode="0" />
  <LSM name="GG" pixelX="6" pixelY="4" pixelSizeUM="0.5" frameRate="10" />
  <Streaming enable="1" frames="3" zFastEnable="0" flybackFrames="0" />
  <CaptureMode mode="1" />
  <RawData onlyEnabledChannels="1" />
</ThorImageExperiment>
"""


def write(path: Path, value: int, shape: tuple[int, ...] = (2, 8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.full(shape, value, "uint16"), photometric="minisblack")


def test_natural_order_and_skipped_record(tmp_path: Path) -> None:
    for i in (10, 2, 1):
        write(tmp_path / f"img_{i}.tif", i)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.tif").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    contents = open_folder(tmp_path)
    assert isinstance(contents, FolderContents)
    assert [p.name for p in contents.files] == ["img_1.tif", "img_2.tif", "img_10.tif"]
    assert [int(ds.to_numpy().max()) for ds in contents] == [1, 2, 10]
    reasons = {s.path.name: s.reason for s in contents.skipped}
    assert set(reasons) == {"notes.txt", ".hidden.tif", "sub"}
    assert "unsupported format" in reasons["notes.txt"]
    assert "hidden" in reasons[".hidden.tif"]


def test_sort_key_files_and_pattern(tmp_path: Path) -> None:
    for i in (1, 2, 3):
        write(tmp_path / f"img_{i}.tif", i)
    rev = open_folder(tmp_path, sort_key=lambda p: -int(p.stem.split("_")[1]))
    assert [p.name for p in rev.files] == ["img_3.tif", "img_2.tif", "img_1.tif"]
    explicit = open_folder(tmp_path, files=["img_2.tif", tmp_path / "img_1.tif"])
    assert [p.name for p in explicit.files] == ["img_2.tif", "img_1.tif"]
    only = open_folder(tmp_path, pattern="*_3.tif")
    assert [p.name for p in only.files] == ["img_3.tif"] and len(only.skipped) == 2
    assert natural_key("a2") < natural_key("a10")


def test_merge_folder_along_z_with_padding(tmp_path: Path) -> None:
    write(tmp_path / "a_1.tif", 1, (2, 8, 8))
    write(tmp_path / "a_2.tif", 2, (3, 6, 8))
    (tmp_path / "readme.md").write_text("x")
    stack = open_folder(tmp_path, merge_along="Z", policy="pad", sort_key=natural_key)
    # plain multi-page TIFF pages are T by the stated rule; merge along Z pads T
    assert stack.shape == (3, 2, 1, 8, 8)
    values = stack.to_numpy()
    assert values[:2, 0].min() == 1 and values[2, 0].max() == 0
    assert values[:, 1, 0, :6].min() == 2 and values[:, 1, 0, 6:].max() == 0
    prov = merge_provenance(stack)
    assert prov is not None
    assert [Path(s["path"]).name for s in prov["sources"]] == ["a_1.tif", "a_2.tif"]
    assert [Path(s["path"]).name for s in prov["extra"]["skipped"]] == ["readme.md"]
    with pytest.raises(MergeError, match="size T is 3"):
        open_folder(tmp_path, merge_along="Z")


def test_corrupt_file_raises_or_is_skipped(tmp_path: Path) -> None:
    write(tmp_path / "good.tif", 1)
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + b"\x00" * 20)
    with pytest.raises(FileFormatError, match=r"bad\.tif"):
        open_folder(tmp_path)
    contents = open_folder(tmp_path, on_error="skip")
    assert [p.name for p in contents.files] == ["good.tif"]
    assert [s.path.name for s in contents.skipped] == ["bad.tif"]


def test_thorlabs_folder_is_one_dataset(tmp_path: Path) -> None:
    acq = tmp_path / "acq"
    acq.mkdir()
    (acq / "Experiment.xml").write_text(THORLABS_XML)
    np.arange(3 * 4 * 6, dtype="<u2").tofile(acq / "Image_0001_0001.raw")
    listing = list_folder(acq)
    assert listing.is_acquisition and listing.files == (acq,)
    contents = open_folder(acq)
    assert len(contents) == 1 and contents[0].shape == (3, 1, 1, 4, 6)
    write(tmp_path / "other.tif", 5, (3, 4, 6))
    parent = open_folder(tmp_path)
    assert [p.name for p in parent.files] == ["acq", "other.tif"]


def test_folder_stack_with_explicit_order(tmp_path: Path) -> None:
    for tag, value in (("TAG_02", 2), ("TAG_01", 1), ("TAG_10", 10)):
        write(tmp_path / tag / "image.tif", value, (1, 4, 4))
    (tmp_path / "other").mkdir()
    merged = open_folder_stack(tmp_path, tag="TAG_", merge_along="T")
    assert merged.to_numpy()[:, 0, 0, 0, 0].tolist() == [1, 2, 10]
    prov = merge_provenance(merged)
    assert prov is not None and [Path(f).name for f in prov["extra"]["folders"]] == ["TAG_01", "TAG_02", "TAG_10"]
    chosen = open_folder_stack([tmp_path / "TAG_10", tmp_path / "TAG_01"], merge_along="T")
    assert chosen.to_numpy()[:, 0, 0, 0, 0].tolist() == [10, 1]
    with pytest.raises(MergeError, match="no folders match"):
        open_folder_stack(tmp_path, tag="NOPE_")
