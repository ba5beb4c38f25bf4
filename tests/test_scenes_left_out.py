"""Scenes are never dropped silently: one-scene functions warn naming the scenes left out; `omio convert` writes all."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import omio
from omio import compat
from omio.cli import main
from omio.errors import ScenesLeftOutWarning
from omio.readers._handles import close_cached_handles

MOSAIC = "zen_3scenes_mosaic_T2_Z3_C2.czi"
"""Three scenes: TR1, P1, TR2."""


@pytest.fixture(autouse=True)
def _no_cached_handles() -> Any:
    yield
    close_cached_handles()


def plate(path: Path) -> Path:
    """An OME-TIFF with three images (scenes) of different shapes."""
    with tifffile.TiffWriter(path) as writer:
        for i, name in enumerate(["A1", "A2", "B1"]):
            writer.write(np.full((i + 1, 8, 8), i, "uint8"), metadata={"axes": "ZYX", "Name": name})
    return path


def single(path: Path) -> Path:
    tifffile.imwrite(path, np.zeros((2, 8, 8), "uint8"), metadata={"axes": "ZYX"})
    return path


def _warned(call: Callable[[], Any]) -> tuple[Any, str]:
    with pytest.warns(ScenesLeftOutWarning) as record:
        result = call()
    assert len(record) == 1, [str(r.message) for r in record]
    assert record[0].filename == __file__  # the warning points at the caller's line, not into omio
    return result, str(record[0].message)


def _silent(call: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


def test_warning_category() -> None:
    assert issubclass(ScenesLeftOutWarning, UserWarning)
    assert omio.errors.ScenesLeftOutWarning is ScenesLeftOutWarning


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("imread", lambda p: compat.imread(p)),
        ("read_tif", lambda p: compat.read_tif(p)),
        ("imconvert", lambda p: compat.imconvert(p, return_fnames=True)),
        ("convert_to_ometiff", lambda p: compat.convert_to_ometiff(p, output_dir=p.parent / "out")),
        ("convert_to_ometiff", lambda p: compat.convert_to_ometiff([p], output_dir=p.parent / "out")),
    ],
)
def test_one_scene_functions_warn_naming_the_scenes_left_out(
    tmp_path: Path, name: str, call: Callable[[Path], Any]
) -> None:
    source = plate(tmp_path / "plate.ome.tif")
    result, message = _warned(lambda: call(source))
    assert message.startswith(f"{source}: {name} used scene 0 ('A1') of 3 and left out scene(s) 1 ('A2'), 2 ('B1')")
    if name in ("imconvert", "convert_to_ometiff"):
        assert len(result) == 1 and "omio convert" in message
    else:
        assert "return_list=True" in message


def test_every_scene_read_means_no_warning(tmp_path: Path) -> None:
    source = plate(tmp_path / "plate.ome.tif")
    images, _ = _silent(lambda: compat.imread(source, return_list=True))
    assert [im.shape[1] for im in images] == [1, 2, 3]
    assert len(_silent(lambda: compat.read_tif(source, return_list=True))[0]) == 3
    _silent(lambda: compat.imread(single(tmp_path / "one.ome.tif")))
    _silent(lambda: omio.open(source, scene=2))  # choosing a scene is not leaving one out


def test_a_folder_names_each_file_with_scenes_left_out(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    source = plate(tmp_path / "in" / "plate.ome.tif")
    single(tmp_path / "in" / "other.ome.tif")
    found, message = _warned(lambda: list(omio.open_folder(tmp_path / "in")))
    assert len(found) == 2
    assert message.startswith(f"{source}: reading a folder (one scene per file) used scene 0 ('A1') of 3")
    _, via_imread = _warned(lambda: compat.imread(tmp_path / "in"))
    assert "left out scene(s) 1 ('A2'), 2 ('B1')" in via_imread


@pytest.mark.samples
def test_multi_scene_czi(samples: Path, tmp_path: Path) -> None:
    source = tmp_path / MOSAIC
    shutil.copy(samples / "czi" / MOSAIC, source)
    _, message = _warned(lambda: compat.read_czi(source))
    assert "used scene 0 ('TR1') of 3 and left out scene(s) 1 ('P1'), 2 ('TR2')" in message
    _, message = _warned(lambda: compat.imread(source))
    assert message.startswith(f"{source}: imread used scene 0 ('TR1') of 3")
    assert "(czi, scene 1 of 3)" in repr(omio.open(source, scene=1))


@pytest.mark.samples
def test_omio_convert_writes_every_scene_of_a_czi(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = samples / "czi" / MOSAIC
    assert main(["convert", str(source), str(tmp_path / "plate.ome.tif")]) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert [p.name for p in written] == [f"plate_scene{i}.ome.tif" for i in range(3)]
    for scene, path in enumerate(written):
        copy, original = omio.open(path), omio.open(source, scene=scene)
        assert copy.name == original.name
        np.testing.assert_array_equal(copy.to_numpy(), original.to_numpy())
    assert main(["convert", str(source), str(tmp_path / "p1.ome.zarr"), "--scene", "P1"]) == 0
    np.testing.assert_array_equal(omio.open(tmp_path / "p1.ome.zarr").to_numpy(), omio.open(source, scene=1).to_numpy())
