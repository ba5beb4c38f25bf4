"""RGB colour samples are shown red, green and blue by every reader, from one definition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

import omio
from omio.dims import SAMPLE_COLORS

RGB = [(*SAMPLE_COLORS[s], 255) for s in "RGB"]


def _rgb(shape: tuple[int, ...]) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) % 251).astype("uint8").reshape(shape)


def test_sample_colours_are_red_green_blue() -> None:
    assert SAMPLE_COLORS == {"R": (255, 0, 0), "G": (0, 255, 0), "B": (0, 0, 255)}


@pytest.mark.parametrize("ome", [False, True])
def test_rgb_tiff_and_ome_tiff_get_the_same_colours(tmp_path: Path, ome: bool) -> None:
    path = tmp_path / ("rgb.ome.tif" if ome else "rgb.tif")
    tifffile.imwrite(path, _rgb((2, 12, 10, 3)), photometric="rgb", metadata={"axes": "ZYXS"} if ome else None)
    if ome:  # one Channel of three samples and no Color: the file states no colour
        with tifffile.TiffFile(path) as tif:
            xml = tif.ome_metadata
        assert xml is not None and 'SamplesPerPixel="3"' in xml and "Color=" not in xml
    ds = omio.open(path)
    assert ds.source.format == ("ome-tiff" if ome else "tiff")
    assert ds.channel_names == ["R", "G", "B"]
    assert ds.channel_colors == RGB


def test_rgb_ome_tiff_colours_survive_a_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "rgb.ome.tif"
    tifffile.imwrite(path, _rgb((12, 10, 3)), photometric="rgb", metadata={"axes": "YXS"})
    back = omio.open(omio.open(path).to_ometiff(tmp_path / "copy.ome.tif"))
    assert back.channel_colors == RGB


def test_stated_ome_channel_colours_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "two.ome.tif"
    ds = omio.from_array(np.zeros((2, 4, 4), "uint8"), "CYX", channel_colors=[(255, 0, 255), (0, 255, 255)])
    assert omio.open(ds.to_ometiff(path)).channel_colors == [(255, 0, 255, 255), (0, 255, 255, 255)]


@pytest.mark.samples
def test_rgb_czi_gets_the_same_colours(samples: Path) -> None:
    ds = omio.open(samples / "czi" / "zen_rgb_bgr24.czi")
    assert ds.channel_colors == RGB
