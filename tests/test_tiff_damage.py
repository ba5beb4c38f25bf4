"""Damaged TIFF files: what the metadata declares is checked against the pages, never re-read in silence."""

from __future__ import annotations

import logging
import re
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import omio
from omio.errors import FileFormatError, MetadataError, OmioError

RNG = np.random.default_rng(7)
PIXELS = RNG.integers(0, 4000, (7, 5, 1, 16, 24), dtype="uint16")


def ome_tiff(tmp_path: Path, name: str = "cells.ome.tif") -> Path:
    path = tmp_path / name
    tifffile.imwrite(
        path,
        PIXELS,
        metadata={"axes": "TZCYX", "PhysicalSizeX": 0.2, "PhysicalSizeZ": 1.0, "Channel": {"Name": ["GFP"]}},
    )
    return path


def imagej_tiff(tmp_path: Path, **kwargs: Any) -> Path:
    path = tmp_path / "hyper.tif"
    data = PIXELS[0].reshape(5, 1, 16, 24).repeat(2, axis=1)  # Z5 C2
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZCYX", "spacing": 2.0, "unit": "um"}, **kwargs)
    return path


def edit_description(path: Path, edit: Callable[[bytes], bytes]) -> Path:
    """Rewrite the first page's ImageDescription in place (same length: padded with spaces or cut)."""
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages.first.tags["ImageDescription"]
        offset, count = tag.valueoffset, tag.count
    data = bytearray(path.read_bytes())
    new = edit(bytes(data[offset : offset + count]))
    data[offset : offset + count] = new[:count].ljust(count, b" ")
    path.write_bytes(bytes(data))
    return path


def set_tag(path: Path, page: int, code: int, value: int) -> Path:
    """Overwrite the inline value of a SHORT or LONG tag of a classic TIFF page."""
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[page].tags[code]  # type: ignore[union-attr]
        offset, dtype = tag.valueoffset, tag.dtype
    data = bytearray(path.read_bytes())
    fmt = "<H" if dtype == 3 else "<I"
    data[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(data))
    return path


def sub(pattern: bytes, replacement: bytes) -> Callable[[bytes], bytes]:
    def edit(text: bytes) -> bytes:
        new, n = re.subn(pattern, replacement, text, count=1)
        assert n == 1, pattern
        return new

    return edit


def outcome(path: Path) -> OmioError:
    """The omio error opening and reading ``path`` raises (fails the test if it reads without one)."""
    with pytest.raises(OmioError) as info:
        ds = omio.open(path)
        ds.to_numpy()
        ds.ome  # noqa: B018
    return info.value


def test_intact_files_read_as_written(tmp_path: Path) -> None:
    ds = omio.open(ome_tiff(tmp_path))
    assert ds.shape == PIXELS.shape and ds.channel_names == ["GFP"]
    np.testing.assert_array_equal(ds.to_numpy(), PIXELS)
    assert omio.open(imagej_tiff(tmp_path)).shape == (1, 5, 2, 16, 24)


@pytest.mark.parametrize(
    ("label", "edit"),
    [
        ("truncated XML", lambda text: text[: len(text) // 2]),
        ("garbled element", sub(rb"<Pixels ", b"<Pixelz ")),
        ("emptied", lambda text: b""),
        ("SizeZ smaller than the pages", sub(rb'SizeZ="5"', b'SizeZ="4"')),
        ("SizeZ larger than the pages", sub(rb'SizeZ="5"', b'SizeZ="6"')),
        ("SizeZ not a number", sub(rb'SizeZ="5"', b'SizeZ="abc"')),
        ("SizeZ huge", sub(rb'SizeZ="5"', b'SizeZ="1000000000"')),
        ("SizeT smaller than the pages", sub(rb'SizeT="7"', b'SizeT="1"')),
        ("PhysicalSizeX not a number", sub(rb'PhysicalSizeX="0.2"', b'PhysicalSizeX="abc"')),
    ],
)
def test_damaged_ome_xml_is_an_error_not_a_plain_tiff(
    tmp_path: Path, label: str, edit: Callable[[bytes], bytes]
) -> None:
    path = edit_description(ome_tiff(tmp_path), edit)
    error = outcome(path)
    assert str(path) in str(error), label


def test_file_cut_before_its_ome_xml_is_an_error(tmp_path: Path) -> None:
    path = ome_tiff(tmp_path)
    with tifffile.TiffFile(path) as tif:
        xml_at = tif.pages.first.tags["ImageDescription"].valueoffset
    data = path.read_bytes()
    assert xml_at > len(data) // 2  # written after the pixels: an interrupted copy loses it
    for cut in (len(data) - 1, xml_at + 10, xml_at - 1):
        path.write_bytes(data[:cut])
        assert isinstance(outcome(path), FileFormatError), cut


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (sub(rb"slices=5", b"slices=2"), FileFormatError),
        (sub(rb"slices=5", b"slices=999999999"), OmioError),
        (sub(rb"channels=2", b"channels=3"), FileFormatError),
        (sub(rb"images=10", b"images=7"), FileFormatError),
        (sub(rb"spacing=2.0", b"spacing=abc"), MetadataError),
        (sub(rb"ImageJ=", b"XmageJ="), FileFormatError),
        (sub(rb"unit=um", b"unit um"), MetadataError),
        (sub(rb"spacing=", b"spa\x9ccing="), MetadataError),  # a flipped byte in a key: the Z step is lost
        (sub(rb"spacing=2.0", b"spacing=0  "), MetadataError),  # ImageJ writes no spacing for 'unset'
        (sub(rb"unit=um", b"unit=0 "), MetadataError),  # not a unit (not read as 'uncalibrated')
    ],
)
def test_damaged_imagej_description_is_an_error(tmp_path: Path, edit: Callable[[bytes], bytes], error: type) -> None:
    path = edit_description(imagej_tiff(tmp_path), edit)
    assert isinstance(outcome(path), error)


@pytest.mark.parametrize(
    ("code", "value"),
    [(256, 24 + 256), (256, 2**20), (257, 15), (258, 8), (258, 32)],  # width, length, bits per sample
    ids=["width", "huge-width", "length", "bits-8", "bits-32"],
)
def test_size_tags_that_disagree_with_the_stored_bytes_are_an_error(tmp_path: Path, code: int, value: int) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, PIXELS[:, 0, 0])
    assert isinstance(outcome(set_tag(path, 0, code, value)), FileFormatError)


def test_a_cut_imagej_description_is_an_error(tmp_path: Path) -> None:
    path = imagej_tiff(tmp_path)
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages.first.tags["ImageDescription"]
        offset, count = tag.valueoffset, tag.count
    data = bytearray(path.read_bytes())
    text = bytes(data[offset : offset + count])
    cut = text.index(b"spacing=2") + len(b"spacing=")  # 'spacing=2.0' would read as 'spacing=' + whatever is left
    data[offset : offset + count] = text[:cut].ljust(count, b"\0")
    path.write_bytes(bytes(data))
    assert "ends inside a line" in str(outcome(path))


def test_pixel_data_over_the_description_is_an_error(tmp_path: Path) -> None:
    path = imagej_tiff(tmp_path)
    with tifffile.TiffFile(path) as tif:
        description = tif.pages.first.tags["ImageDescription"].valueoffset
    assert "overlap" in str(outcome(set_tag(path, 0, 273, description + 4)))


def test_ome_pixel_type_must_be_what_the_pages_store(tmp_path: Path) -> None:
    path = edit_description(ome_tiff(tmp_path), sub(rb'Type="uint16"', b'Type="int16" '))
    assert "holds int16 pixels but its pages store 16-bit uint16" in str(outcome(path))


@pytest.mark.samples
@pytest.mark.parametrize(("voxel", "words"), [("X", "only one of X and Y"), ("Y", "only one of X and Y")])
def test_lsm_voxel_size_of_one_lateral_axis_lost_is_an_error(
    tmp_path: Path, samples: Path, voxel: str, words: str
) -> None:
    source = samples / "lsm" / "jimpipeline_test_512x512_u16.lsm"
    with tifffile.TiffFile(source) as tif:
        value = tif.lsm_metadata[f"VoxelSize{voxel}"]  # type: ignore[index]
    data = source.read_bytes()
    stored = struct.pack("<d", value)
    assert data.count(stored) >= 1
    at = data.index(stored) if voxel == "X" else data.index(stored, data.index(stored) + 8)
    path = tmp_path / "scan.lsm"
    path.write_bytes(data[:at] + bytes(8) + data[at + 8 :])
    assert words in str(outcome(path))


def test_zero_rows_per_strip_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, PIXELS[:, 0, 0], rowsperstrip=4)  # a zero would split the pages into other series
    assert "RowsPerStrip=0" in str(outcome(set_tag(path, 0, 278, 0)))


def test_zero_rows_per_strip_on_a_later_page_reads_by_the_first_pages_layout(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, PIXELS[:, 0, 0], rowsperstrip=4)
    set_tag(path, 3, 278, 0)  # later pages are decoded with the first page's strip layout
    np.testing.assert_array_equal(omio.open(path).to_numpy()[:, 0, 0], PIXELS[:, 0, 0])


@pytest.mark.parametrize(("code", "value"), [(256, 24 + 2**16), (277, 3)], ids=["width", "samples"])
def test_a_later_page_whose_sizes_disagree_with_its_bytes_is_an_error(tmp_path: Path, code: int, value: int) -> None:
    path = tmp_path / "plain.tif"
    with tifffile.TiffWriter(path) as tif:  # pages without a description: the damaged one would be a scene of its own
        for plane in PIXELS[:, 0, 0]:
            tif.write(plane, photometric="minisblack", metadata=None)
    assert "page 3" in str(outcome(set_tag(path, 3, code, value)))


def test_a_tag_value_tifffile_cannot_parse_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, PIXELS[:, 0, 0])
    assert "PHOTOMETRIC" in str(outcome(set_tag(path, 0, 262, 99)))


def test_zero_tile_size_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, PIXELS[:, 0, 0, :16, :16], tile=(16, 16))
    assert isinstance(outcome(set_tag(path, 0, 322, 0)), FileFormatError)


def test_overlapping_strips_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, PIXELS[:, 0, 0])
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[4].dataoffsets[0]  # type: ignore[union-attr]
    assert "overlap" in str(outcome(set_tag(path, 4, 273, offset - 64)))


def test_a_loop_in_the_ifd_chain_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, PIXELS[:, 0, 0])
    with tifffile.TiffFile(path) as tif:
        first, last = tif.pages[0].offset, tif.pages[-1].offset  # type: ignore[union-attr]
        entries = len(tif.pages[-1].tags)  # type: ignore[union-attr]
    data = bytearray(path.read_bytes())
    next_ifd = last + 2 + 12 * entries
    data[next_ifd : next_ifd + 4] = struct.pack("<I", first)
    path.write_bytes(bytes(data))
    assert isinstance(outcome(path), FileFormatError)


def test_unreferenced_pages_are_an_error(tmp_path: Path) -> None:
    """A plain TIFF whose pages the OME-XML of another writer does not all describe."""
    path = tmp_path / "extra.ome.tif"
    with tifffile.TiffWriter(path) as writer:
        writer.write(PIXELS[:, :, 0], metadata={"axes": "TZYX"})
    edit_description(path, sub(rb'SizeT="7"', b'SizeT="6"'))
    assert "pages" in str(outcome(path))


def test_ome_name_without_ome_xml_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.ome.tif"
    tifffile.imwrite(path, PIXELS[:, 0, 0], metadata=None, description="acquired on Tuesday")
    assert "no OME-XML" in str(outcome(path))


def test_another_threads_tifffile_log_is_not_blamed_on_this_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tifffile's logger is process-wide: a damaged file read by another thread must not fail this one."""
    path = ome_tiff(tmp_path)
    real = tifffile.TiffFile

    def opened_while_another_thread_logs(*args: Any, **kwargs: Any) -> tifffile.TiffFile:
        other = threading.Thread(target=logging.getLogger("tifffile").error, args=("invalid page offset 12",))
        other.start()
        other.join()
        return real(*args, **kwargs)

    monkeypatch.setattr(tifffile, "TiffFile", opened_while_another_thread_logs)
    logging.getLogger("tifffile").propagate = False
    try:
        assert omio.open(path).shape == PIXELS.shape
    finally:
        logging.getLogger("tifffile").propagate = True


def test_this_threads_damage_log_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ome_tiff(tmp_path)
    real = tifffile.TiffFile

    def opened_with_a_damage_log(*args: Any, **kwargs: Any) -> tifffile.TiffFile:
        logging.getLogger("tifffile").warning("<TiffTag.fromfile> raised TiffFileError('invalid value offset 99')")
        return real(*args, **kwargs)

    monkeypatch.setattr(tifffile, "TiffFile", opened_with_a_damage_log)
    logging.getLogger("tifffile").propagate = False
    try:
        assert "invalid value offset" in str(outcome(path))
    finally:
        logging.getLogger("tifffile").propagate = True


def test_an_axis_beyond_any_microscope_is_refused_before_coordinates_are_made(tmp_path: Path) -> None:
    path = tmp_path / "wide.tif"
    tifffile.imwrite(path, np.zeros((4, 64), "uint8"), compression="zlib")
    assert "beyond" in str(outcome(set_tag(path, 0, 256, 2**25)))


@pytest.mark.parametrize("cut", ["both", "second"])
def test_a_cut_subifd_chain_is_an_error_at_every_level(tmp_path: Path, cut: str) -> None:
    path = tmp_path / "pyramid.ome.tif"
    data = RNG.integers(0, 255, (2, 64, 64), dtype="uint8")
    with tifffile.TiffWriter(path, bigtiff=True) as writer:
        writer.write(data, subifds=2, metadata={"axes": "TYX"}, tile=(16, 16))
        writer.write(data[:, ::2, ::2], subfiletype=1, tile=(16, 16))
        writer.write(data[:, ::4, ::4], subfiletype=1, tile=(16, 16))
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[1].tags[330]  # type: ignore[union-attr]
        offset, first = tag.valueoffset, tag.value[0]
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 16] = struct.pack("<QQ", 0 if cut == "both" else first, 0)
    path.write_bytes(bytes(raw))
    for level in (0, 1, 2):
        with pytest.raises(FileFormatError, match="SubIFD chain"):
            omio.open(path, level=level)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (sub(rb'PhysicalSizeX="0.2"', b'PhysicalSizeX="-0.2"'), "physical size X -0.2"),
        (sub(rb'PhysicalSizeZ="1.0"', b'PhysicalSizeZ="NaN"'), "physical size Z nan"),
    ],
)
def test_impossible_ome_values_are_metadata_errors(tmp_path: Path, edit: Callable[[bytes], bytes], words: str) -> None:
    path = edit_description(ome_tiff(tmp_path), edit)
    error = outcome(path)
    assert isinstance(error, MetadataError) and words in str(error)


def test_negative_imagej_spacing_is_a_metadata_error(tmp_path: Path) -> None:
    path = edit_description(imagej_tiff(tmp_path), sub(rb"spacing=2.0", b"spacing=-2."))
    assert "physical size Z -2.0" in str(outcome(path))


def test_ome_xml_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = edit_description(ome_tiff(tmp_path), sub(rb'Name="GFP"', b'Name="\xfeFP"'))
    assert "UTF-8" in str(outcome(path))


def test_tifffile_shape_description_must_match_the_pages(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, PIXELS[:6, 0, 0])
    edit_description(path, sub(rb'"shape": \[6,', b'"shape": [7,'))
    assert isinstance(outcome(path), FileFormatError)


def test_damage_tifffile_reports_while_decoding_a_page_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "packed.tif"
    tifffile.imwrite(path, PIXELS[:3, 0, 0].astype("uint8"), compression="zlib", photometric="minisblack")
    set_tag(path, 0, 258, 13)  # 13 bits per sample: the strip decodes short and tifffile pads it
    with pytest.raises(FileFormatError, match="is damaged"):
        omio.open(path).isel(T=0).to_numpy()


def test_omio_errors_without_the_file_name_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import omio.readers.tiff as tiff_reader

    path = ome_tiff(tmp_path)

    def nameless(*args: Any) -> None:
        raise MetadataError("the channel count is unreadable")

    monkeypatch.setattr(tiff_reader, "_check_structure", nameless)
    with pytest.raises(MetadataError, match=rf"^{re.escape(str(path))}: the channel count is unreadable"):
        omio.open(path)


def test_channel_elements_must_add_up_to_size_c(tmp_path: Path) -> None:
    path = tmp_path / "three.ome.tif"
    data = RNG.integers(0, 255, (3, 8, 8), dtype="uint8")
    tifffile.imwrite(path, data, metadata={"axes": "CYX", "Channel": {"Name": ["DAPI", "GFP", "RFP"]}})
    edit_description(path, lambda text: re.sub(rb"<Channel [^>]*><LightPath/></Channel>", b"", text, count=1))
    assert str(path) in str(outcome(path))  # tifffile refuses such OME-XML itself, or omio's channel count does


@pytest.mark.parametrize("value", [b"NaN", b"inf", b"-INF", b"abc"])
@pytest.mark.parametrize("attribute", [b"DeltaT", b"PositionX"])
def test_a_plane_value_that_is_not_a_finite_number_is_a_metadata_error(
    tmp_path: Path, attribute: bytes, value: bytes
) -> None:
    path = tmp_path / "planes.ome.tif"
    tifffile.imwrite(
        path, PIXELS[:2, :1], metadata={"axes": "TZCYX", "Plane": {"DeltaT": [0.0, 1.0], "PositionX": [5.0, 5.0]}}
    )
    edit_description(path, sub(attribute + rb'="[^"]*"', attribute + b'="' + value + b'"'))
    error = outcome(path)
    assert isinstance(error, MetadataError) and attribute.decode() in str(error)
