"""Tests of the Leica reader beyond the manifest checks of tests/test_samples.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import omio
from omio.errors import DimensionError, FileFormatError, MissingDependencyError
from omio.readers import find_reader
from omio.readers._handles import close_cached_handles
from omio.readers.lif import LIF_MAGIC, LifReader

SWEEP = "lif/readlif_LeicaLASX_wavelength-sweep_example.lif"
XZ = "lif/readlif_testdata_2channel_xz.lif"


@pytest.fixture(autouse=True)
def _no_cached_handles() -> Iterator[None]:
    yield
    close_cached_handles()


def test_image_elements_are_scenes_selectable_by_path(samples: Path) -> None:
    reader = LifReader()
    assert reader.scenes(samples / XZ) == ["xzt", "xzy", "xz"]
    by_name = omio.open(samples / XZ, scene="xzy")
    assert by_name.name == "xzy" and by_name.sizes["Y"] == 23
    with pytest.raises(DimensionError, match="no image named 'nope'"):
        omio.open(samples / XZ, scene="nope")


def test_xz_scan_rule_is_recorded_and_frames_are_chunks(samples: Path) -> None:
    ds = omio.open(samples / XZ, scene="xz")
    assert ds.sizes == {"T": 1, "Z": 512, "C": 2, "Y": 1, "X": 512}
    assert "XZ scan: Z kept as Z, Y has size 1" in ds.axes_rule
    # one task per stored X-Z frame, not one per one-pixel row
    assert ds.xarray.data.numblocks == (1, 1, 2, 1, 1)
    # the stored frame is the Z x X slice of the dataset
    import liffile

    with liffile.LifFile(samples / XZ) as lif:
        stored = lif.images[2].asarray()
    np.testing.assert_array_equal(ds.to_numpy()[0, :, :, 0, :], np.moveaxis(stored, 0, 1))


def test_wavelength_sweep_folded_into_c_with_wavelengths(samples: Path) -> None:
    ds = omio.open(samples / SWEEP, scene="x_y_lambdaEmi")
    channels = ds.ome.images[0].pixels.channels
    assert [c.emission_wavelength for c in channels] == pytest.approx([550.0 + 10 * i for i in range(20)])
    assert all(c.color is not None and c.color.as_rgb_tuple()[:3] == (0, 255, 0) for c in channels)  # LUT Green
    assert ds.channel_names == [None] * 20
    assert "λ as W" in ds.axes_rule and "W folded into C" in ds.axes_rule
    excitation = omio.open(samples / SWEEP, scene="x_y_lambdaExc").ome.images[0].pixels.channels
    assert [c.excitation_wavelength for c in excitation] == pytest.approx([490.0 + 5 * i for i in range(15)])


def test_dyes_become_fluor_and_xml_is_kept(samples: Path) -> None:
    ds = omio.open(samples / XZ, scene="xzt")
    assert [c.fluor for c in ds.ome.images[0].pixels.channels] == ["FITC", "TRITC"]
    original = ds.annotations["omio:original-metadata"]
    assert original["lif:path"] == "xzt"
    assert original["lif:xml"].startswith('<Element Name="xzt"')


def test_options_are_refused(samples: Path) -> None:
    with pytest.raises(DimensionError, match="axes"):
        omio.open(samples / XZ, axes="ZYX")
    with pytest.raises(DimensionError, match="level=2"):
        omio.open(samples / XZ, level=2)


def test_missing_liffile_names_the_extra(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "liffile", None)
    with pytest.raises(MissingDependencyError, match=r"liffile.*\[lif\]"):
        omio.open(samples / XZ)


def test_corrupt_file_with_lif_magic(tmp_path: Path) -> None:
    path = tmp_path / "broken.lif"
    path.write_bytes(LIF_MAGIC + b"\x10\x00\x00\x00\x2a" + b"\xff" * 100)
    assert isinstance(find_reader(path), LifReader)
    with pytest.raises(FileFormatError, match=r"broken\.lif"):
        omio.open(path)


def test_sniff_needs_lif_magic_or_leica_xml_named_xlif(tmp_path: Path) -> None:
    reader = LifReader()
    xml = '<?xml version="1.0"?><LMSDataContainerHeader Version="2"><Element Name="a"/></LMSDataContainerHeader>'
    assert reader.sniff(tmp_path / "a.xlif", xml.encode())
    assert reader.sniff(tmp_path / "a.xlif", xml.encode("utf-16"))
    assert not reader.sniff(tmp_path / "a.xml", xml.encode())
    assert not reader.sniff(tmp_path / "a.xlif", b"<?xml version='1.0'?><Other/>")
    assert not reader.sniff(tmp_path / "a.lif", LIF_MAGIC + b"\x00" * 8)  # no 0x2A test code
