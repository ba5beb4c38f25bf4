"""Tests of the Olympus OIB/OIF reader on OIF datasets generated here.

oiffile cannot write, and no OIB/OIF sample is available: an OIF dataset (UTF-16
main settings file plus a ``.oif.files`` folder of plane TIFFs, as FluoView writes
it) is generated with tifffile. OIB (the same set inside an OLE2 compound file) is
only checked for recognition and errors.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile

import omio
from omio.errors import DimensionError, FileFormatError, MissingDependencyError
from omio.readers import find_reader
from omio.readers._handles import close_cached_handles
from omio.readers.oif import OLE2_MAGIC, OifReader
from omio.testing import assert_dataset_equal, check_reader_conformance

T, Z, C, Y, X = 2, 3, 2, 16, 20
DATA = (np.arange(T * Z * C * Y * X, dtype="uint16") * 7).reshape(T, Z, C, Y, X)


@pytest.fixture(autouse=True)
def _no_cached_handles() -> Iterator[None]:
    yield
    close_cached_handles()


def write_oif(folder: Path, *, skip: tuple[int, int, int] | None = None, t_unit: str = "ms") -> Path:
    """Write an FV1000-style OIF dataset holding DATA (axis order XYCZT), optionally without one plane."""
    main = folder / "cells.oif"
    store = folder / "cells.oif.files"
    store.mkdir()
    axes = [
        ("X", X, "um"),
        ("Y", Y, "um"),
        ("C", C, ""),
        ("Z", Z, "nm"),
        ("T", T, t_unit),
        ("A", 0, ""),
        ("L", 0, ""),
        ("P", 0, ""),
    ]
    lines = ["[ProfileSaveInfo]", 'Name="cells"', 'Version="1.0"']
    for i, (code, size, unit) in enumerate(axes):
        lines += [f"[Axis {i} Parameters Common]", f'AxisCode="{code}"', f"MaxSize={size}", f'PixUnit="{unit}"']
        lines += {"Z": ["Interval=1500.0"], "T": ["Interval=2500.0"]}.get(code, [])
    lines += ["[Axis Parameter Common]", 'AxisOrder="XYCZT"']
    lines += ["[Reference Image Parameter]", "ValidBitCounts=12", "WidthConvertValue=0.207", 'WidthUnit="um"']
    lines += ["HeightConvertValue=0.207", 'HeightUnit="um"']
    for c, (name, dye) in enumerate((("CH1", "DAPI"), ("CH2", "None"))):
        lines += [f"[Channel {c + 1} Parameters]", f'CH Name="{name}"', f'DyeName="{dye}"']
        lines += ["EmissionWavelength=461", "ExcitationWavelength=0"]
    main.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-16"))
    for t, z, c in np.ndindex(T, Z, C):
        if (t, z, c) != skip:
            tifffile.imwrite(store / f"s_C{c + 1:03d}Z{z + 1:03d}T{t + 1:03d}.tif", DATA[t, z, c])
    return main


def test_generated_oif_passes_conformance_and_reads_every_plane(tmp_path: Path) -> None:
    path = write_oif(tmp_path)
    source = check_reader_conformance(OifReader(), path)
    assert source.format == "oif"
    ds = omio.open(path)
    assert ds.sizes == {"T": T, "Z": Z, "C": C, "Y": Y, "X": X}
    np.testing.assert_array_equal(ds.to_numpy(), DATA)
    assert ds.xarray.data.chunks[2] == (1, 1)  # one plane per chunk


def test_generated_oif_metadata(tmp_path: Path) -> None:
    ds = omio.open(write_oif(tmp_path))
    sizes = ds.physical_pixel_sizes
    assert sizes["X"] is not None and sizes["X"].to("micrometer").magnitude == pytest.approx(0.207)
    assert sizes["Z"] is not None and sizes["Z"].to("micrometer").magnitude == pytest.approx(1.5)  # 1500 nm
    inc = ds.time_increment
    assert inc is not None and inc.to("second").magnitude == pytest.approx(2.5)
    assert ds.channel_names == ["CH1", "CH2"]
    channels = ds.ome.images[0].pixels.channels
    assert [(c.fluor, c.emission_wavelength, c.excitation_wavelength) for c in channels] == [
        ("DAPI", 461.0, None),
        (None, 461.0, None),
    ]
    original = ds.annotations["omio:original-metadata"]
    assert original["oif:Axis Parameter Common:AxisOrder"] == "XYCZT"
    assert "AxisOrder 'TZCYX'" in ds.axes_rule


def test_interval_without_time_unit_is_not_a_time_increment(tmp_path: Path) -> None:
    assert omio.open(write_oif(tmp_path, t_unit="um")).time_increment is None


def test_absent_plane_is_zero_and_stated(tmp_path: Path) -> None:
    ds = omio.open(write_oif(tmp_path, skip=(1, 2, 0)))
    assert "1 absent plane(s) are 0" in ds.axes_rule
    data = ds.to_numpy()
    assert not data[1, 2, 0].any()
    np.testing.assert_array_equal(data[1, 2, 1], DATA[1, 2, 1])


def test_round_trip_through_ometiff(tmp_path: Path) -> None:
    ds = omio.open(write_oif(tmp_path))
    back = omio.open(ds.to_ometiff(tmp_path / "copy.ome.tif"))
    assert_dataset_equal(back, ds)


def test_missing_storage_folder_raises(tmp_path: Path) -> None:
    path = write_oif(tmp_path)
    for f in (tmp_path / "cells.oif.files").iterdir():
        f.unlink()
    (tmp_path / "cells.oif.files").rmdir()
    with pytest.raises(FileFormatError, match=r"cells\.oif: its plane folder cells\.oif\.files is missing"):
        omio.open(path)


def test_options_are_refused(tmp_path: Path) -> None:
    path = write_oif(tmp_path)
    with pytest.raises(DimensionError, match="axes"):
        omio.open(path, axes="ZYX")
    with pytest.raises(DimensionError, match="scene 1 does not exist"):
        omio.open(path, scene=1)


def test_missing_oiffile_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_oif(tmp_path)
    monkeypatch.setitem(sys.modules, "oiffile", None)
    with pytest.raises(MissingDependencyError, match=r"pip install oiffile .*'\.\[olympus\]'"):
        omio.open(path)


def test_oib_is_recognised_by_ole2_magic_and_suffix(tmp_path: Path) -> None:
    reader = OifReader()
    assert reader.sniff(tmp_path / "a.oib", OLE2_MAGIC + bytes(8))
    assert not reader.sniff(tmp_path / "a.doc", OLE2_MAGIC + bytes(8))  # other compound files are not OIB
    assert not reader.sniff(tmp_path / "a.oib", b"II*\x00")
    assert not reader.sniff(tmp_path / "a.oif", b"\x00\x01")
    broken = tmp_path / "broken.oib"
    broken.write_bytes(OLE2_MAGIC + bytes(600))
    assert isinstance(find_reader(broken), OifReader)
    with pytest.raises(FileFormatError, match=r"broken\.oib"):
        omio.open(broken)
