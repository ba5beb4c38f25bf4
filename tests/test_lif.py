"""Tests of the Leica reader beyond the manifest checks of tests/test_samples.py."""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import omio
from omio.errors import DimensionError, FileFormatError, MissingDependencyError, UnsupportedFormatError
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


# --- damaged files (generated, no samples needed) ---

LIF_DIMS = ((1, 6, 1), (2, 4, 6), (3, 3, 24))  # (DimID, NumberOfElements, BytesInc): X, Y, Z of one uint8 channel


def lif_bytes(
    dims: tuple[tuple[int, int, int], ...] = LIF_DIMS,
    channels: tuple[int, ...] = (0, 72),
    n_channels_stored: int = 2,
    block_size: int | None = None,
) -> tuple[bytes, np.ndarray]:
    """Return a version-2 LIF file with one uint8 image (default: 2 channels x Z=3 x Y=4 x X=6) and its pixels."""
    pixels = np.arange(n_channels_stored * 72, dtype=np.uint8)
    chans = "".join(
        f'<ChannelDescription DataType="0" ChannelTag="0" Resolution="8" NameOfMeasuredQuantity="" Min="0" '
        f'Max="255" Unit="" LUTName="Green" IsLUTInverted="0" BytesInc="{inc}" BitInc="0"/>'
        for inc in channels
    )
    dimensions = "".join(
        f'<DimensionDescription DimID="{i}" NumberOfElements="{n}" Origin="0" Length="{(n - 1) * 1e-6}" '
        f'Unit="m" BitInc="0" BytesInc="{inc}"/>'
        for i, n, inc in dims
    )
    size = pixels.nbytes if block_size is None else block_size
    xml = (
        '<LMSDataContainerHeader Version="2"><Element Name="f"><Data><Experiment/></Data>'
        '<Memory Size="0" MemoryBlockID="MemBlock_1"/><Children><Element Name="img"><Data><Image>'
        f"<ImageDescription><Channels>{chans}</Channels><Dimensions>{dimensions}</Dimensions></ImageDescription>"
        f'</Image></Data><Memory Size="{size}" MemoryBlockID="MemBlock_2"/><Children/></Element></Children>'
        "</Element></LMSDataContainerHeader>"
    )

    def block(name: str, data: bytes, declared: int) -> bytes:
        ident = name.encode("utf-16-le")
        return struct.pack("<IIBQBI", 0x70, 0, 0x2A, declared, 0x2A, len(name)) + ident + data

    text = xml.encode("utf-16-le")
    head = struct.pack("<IIBI", 0x70, len(text) + 5, 0x2A, len(xml)) + text
    return head + block("MemBlock_1", b"", 0) + block("MemBlock_2", pixels.tobytes(), size), pixels


def write_lif(tmp_path: Path, data: bytes, name: str = "gen.lif") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_generated_lif_reads_back(tmp_path: Path) -> None:
    data, pixels = lif_bytes()
    ds = omio.open(write_lif(tmp_path, data))
    assert ds.sizes == {"T": 1, "Z": 3, "C": 2, "Y": 4, "X": 6}
    np.testing.assert_array_equal(ds.to_numpy()[0], pixels.reshape(2, 3, 4, 6).transpose(1, 0, 2, 3))


@pytest.mark.parametrize(
    ("dims", "channels", "match"),
    [
        (((1, 7, 1), (2, 4, 6), (3, 3, 24)), (0, 72), "strides do not describe a layout"),  # X one more
        (((1, 6, 1), (2, 4, 6), (3, 2, 24)), (0, 72), "do not fit its strides"),  # Z one less
        (((1, 6, 1), (2, 4, 6), (3, 4, 24)), (0, 72), "do not fit its strides"),  # Z one more
        (((1, 6, 1), (2, 4, 6), (3, 10**9, 24)), (0, 72), "do not fit its strides"),  # absurd
        (((1, 6, 1), (2, 4, 6), (3, 3, 24)), (0, 72, 144), "describes 216 bytes"),  # a channel too many
        (((1, 6, 1), (2, 4, 6), (3, 3, 24)), (0,), "groups of 1 but it has 1|holds 144"),  # a channel missing
        (((1, 6, 1), (2, 4, 7), (3, 3, 24)), (0, 72), "strides do not describe a layout"),  # BytesInc
        (((1, 6, 2), (2, 4, 6), (3, 3, 24)), (0, 72), "strides do not describe a layout"),
        (((1, 6, 1), (2, 4, 6), (3, 3, 24)), (0, 71), "channel BytesInc"),
        (((1, 6, 1), (1, 4, 6), (3, 3, 24)), (0, 72), "repeats a DimID"),
        (((2, 6, 1), (3, 4, 6), (4, 3, 24)), (0, 72), "no X dimension"),  # an XZT scan relabelled YZT
        (((2, 6, 1), (1, 4, 6), (3, 3, 24)), (0, 72), "no X dimension"),  # X and Y swapped
        (((1, 6, 1), (2, 4, 6), (12, 3, 24)), (0, 72), "not a LIF dimension"),
        (((1, 6, 1), (2, 4, 6), (0, 3, 24)), (0, 72), "not a LIF dimension"),
        (((1, 6, 1), (2, 0, 6), (3, 3, 24)), (0, 72), "not a valid dimension"),
    ],
)
def test_declared_layout_must_tile_the_memory_block(
    tmp_path: Path, dims: tuple[tuple[int, int, int], ...], channels: tuple[int, ...], match: str
) -> None:
    data, _ = lif_bytes(dims, channels)
    with pytest.raises(FileFormatError, match=match):
        omio.open(write_lif(tmp_path, data))


@pytest.mark.parametrize(("attr", "value"), [("NumberOfElements", "x"), ("BytesInc", "-"), ("Length", "nan")])
def test_non_numeric_fields_are_named(tmp_path: Path, attr: str, value: str) -> None:
    data, _ = lif_bytes()
    old = f'{attr}="'.encode("utf-16-le")
    start = data.index(old) + len(old)
    end = data.index('"'.encode("utf-16-le"), start)
    new = value.ljust((end - start) // 2).encode("utf-16-le")  # same length: the header stays right
    assert len(new) == end - start
    with pytest.raises(FileFormatError, match=attr):
        omio.open(write_lif(tmp_path, data[:start] + new + data[end:]))


@pytest.mark.parametrize("declared", [143, 145, 288, 2**40])
def test_memory_block_size_must_match_the_layout(tmp_path: Path, declared: int) -> None:
    data, _ = lif_bytes(block_size=declared)
    with pytest.raises(FileFormatError, match="memory block"):
        omio.open(write_lif(tmp_path, data))


def test_truncated_anywhere_is_an_error_never_a_result(tmp_path: Path) -> None:
    data, _ = lif_bytes()
    for cut in [*range(0, 40, 3), len(data) // 2, len(data) - 150, len(data) - 72, len(data) - 1]:
        path = write_lif(tmp_path, data[:cut], f"cut{cut}.lif")
        with pytest.raises((FileFormatError, UnsupportedFormatError)):
            omio.open(path).to_numpy()


def test_header_lengths_past_the_end_are_refused_before_reading(tmp_path: Path) -> None:
    data, _ = lif_bytes()
    xml_huge = data[:9] + struct.pack("<I", 2**31) + data[13:]
    with pytest.raises(FileFormatError, match="XML description of"):
        omio.open(write_lif(tmp_path, xml_huge, "xml.lif"))
    block = data.index(struct.pack("<IIBQBI", 0x70, 0, 0x2A, 0, 0x2A, 10))
    id_huge = data[: block + 18] + struct.pack("<I", 2**31) + data[block + 22 :]
    with pytest.raises(FileFormatError, match="declares an id of"):
        omio.open(write_lif(tmp_path, id_huge, "id.lif"))


def test_unit_of_the_wrong_kind_is_an_error(tmp_path: Path) -> None:
    data, _ = lif_bytes()
    damaged = data.replace('Unit="m"'.encode("utf-16-le"), 'Unit="s"'.encode("utf-16-le"), 1)
    with pytest.raises(FileFormatError, match="is not a unit of length"):
        omio.open(write_lif(tmp_path, damaged))
