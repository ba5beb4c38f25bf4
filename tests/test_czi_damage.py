"""Damaged CZI files: every kind of damage is an omio error naming the file, never a wrong image.

Each test edits a copy of a real sample (a truncation, a header or directory field, the
XML metadata) and checks that opening, or at the latest reading, raises a
FileFormatError that names the file and says what disagrees.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import omio
from omio.errors import FileFormatError, MetadataError
from omio.readers import czi as czi_module
from omio.readers._handles import close_cached_handles

pytestmark = pytest.mark.samples

MOSAIC = "zen_3scenes_mosaic_T2_Z3_C2.czi"
"""Three scenes (17, 1 and 10 mosaic tiles per plane), T=2, Z=3, C=2."""
STACK = "zen_celldivision_T3_Z5_C2.czi"
"""One scene, one subblock per plane, T=3, Z=5, C=2."""


@pytest.fixture(autouse=True)
def _no_cached_handles() -> Any:
    yield
    close_cached_handles()


def _source(samples: Path, name: str) -> bytearray:
    return bytearray((samples / "czi" / name).read_bytes())


def _write(tmp_path: Path, data: bytes | bytearray) -> Path:
    path = tmp_path / "damaged.czi"
    path.write_bytes(bytes(data))
    return path


def _read_everything(path: Path) -> None:
    """Open every scene, read its pixels and build its OME model."""
    for scene in range(len(omio.scenes(path))):
        ds = omio.open(path, scene=scene)
        ds.to_numpy()
        assert ds.ome.images


def _fails(path: Path, pattern: str) -> FileFormatError:
    with pytest.raises(FileFormatError, match=rf"damaged\.czi: .*{pattern}") as info:
        _read_everything(path)
    return info.value


def _layout(path: Path) -> dict[str, Any]:
    """Segment positions and directory entries of an intact file."""
    import czifile

    with czifile.CziFile(path) as czi:
        header = czi.header
        return {
            "directory": header.directory_position,
            "metadata": header.metadata_position,
            "entries": list(czi.subblock_directory),
        }


def _dim_field(data: bytearray, entry: Any, dim: str) -> int:
    """Offset of a directory entry's dimension record (name, start, size, coordinate, stored size)."""
    for j in range(entry.dimensions_count):
        offset = entry.offset + 32 + 20 * j
        if data[offset : offset + 4].rstrip(b"\0") == dim.encode():
            return offset
    raise AssertionError(f"no {dim} in entry")


# --------------------------------------------------------------------------- truncation


@pytest.mark.parametrize("name", [MOSAIC, STACK])
@pytest.mark.parametrize("where", ["header", "directory", "metadata", "first subblock", "last subblock", "one short"])
def test_truncation_anywhere(samples: Path, tmp_path: Path, name: str, where: str) -> None:
    data = _source(samples, name)
    layout = _layout(samples / "czi" / name)
    entries = sorted(layout["entries"], key=lambda e: e.file_position)
    cut = {
        "header": 100,
        "directory": layout["directory"] + 200,
        "metadata": layout["metadata"] + 1000,
        "first subblock": entries[0].file_position + 300,
        "last subblock": entries[-1].file_position + 300,
        "one short": len(data) - 1,
    }[where]
    _fails(_write(tmp_path, data[:cut]), "trunc")


# --------------------------------------------------------------------------- file header


@pytest.mark.parametrize(("field", "offset"), [("directory", 32 + 52), ("metadata", 32 + 60)])
@pytest.mark.parametrize("value", ["zero", "shifted", "huge"])
def test_header_segment_positions(samples: Path, tmp_path: Path, field: str, offset: int, value: str) -> None:
    data = _source(samples, MOSAIC)
    position = struct.unpack_from("<q", data, offset)[0]
    new = {"zero": 0, "shifted": position + 8, "huge": 2**50}[value]
    struct.pack_into("<q", data, offset, new)
    _fails(_write(tmp_path, data), "file header places the")


def test_damaged_header_segment(samples: Path, tmp_path: Path) -> None:
    data = _source(samples, STACK)
    data[12] ^= 0xFF  # inside the file header's segment id
    _fails(_write(tmp_path, data), "file header segment cannot be read")


# --------------------------------------------------------------------------- subblock directory


@pytest.mark.parametrize("delta", [-1, +1, 10**6])
def test_directory_entry_count(samples: Path, tmp_path: Path, delta: int) -> None:
    data = _source(samples, MOSAIC)
    offset = _layout(samples / "czi" / MOSAIC)["directory"] + 32
    struct.pack_into("<i", data, offset, struct.unpack_from("<i", data, offset)[0] + delta)
    _fails(_write(tmp_path, data), r"subblock directory (at offset \d+ )?declares \d+ entries")


@pytest.mark.parametrize(
    ("dim", "field", "value", "message"),
    [
        ("Z", 4, 5, "declares SizeZ=5, but the subblock directory holds 6 planes (Z 0..5)"),  # beyond the sizes
        ("Z", 4, -1, "declares SizeZ=5, but the subblock directory holds 6 planes (Z -1..4)"),
        ("T", 4, 3, "declares SizeT=3, but the subblock directory holds 4 planes"),
        ("C", 4, 2, "declares SizeC=2, but the subblock directory holds 3 planes"),
        ("Z", 8, 2, "spans 2 Z planes"),
        ("X", 8, 2**30, "declares SizeX=240, but the subblock directory holds 1073741824 pixels"),
        ("Y", 8, -30, "Y size is -30"),
        ("X", 4, 2**30, "declares SizeX=240"),
    ],
)
def test_directory_entry_outside_the_declared_sizes(
    samples: Path, tmp_path: Path, dim: str, field: int, value: int, message: str
) -> None:
    data = _source(samples, STACK)
    entry = _layout(samples / "czi" / STACK)["entries"][-1]
    struct.pack_into("<i", data, _dim_field(data, entry, dim) + field, value)
    _fails(_write(tmp_path, data), re.escape(message))


@pytest.mark.parametrize("change", ["scene", "mosaic index", "plane"])
def test_directory_entry_moved_within_the_declared_sizes(samples: Path, tmp_path: Path, change: str) -> None:
    """A tile moved to another scene, tile index or plane leaves a plane short of a tile."""
    data = _source(samples, MOSAIC)
    entries = _layout(samples / "czi" / MOSAIC)["entries"]
    entry = next(e for e in entries if e.scene_index == 2 and e.mosaic_index == 3)
    dim, value = {"scene": ("S", 0), "mosaic index": ("M", 4), "plane": ("Z", (entry.start[3] + 1) % 3)}[change]
    struct.pack_into("<i", data, _dim_field(data, entry, dim) + 4, value)
    _fails(_write(tmp_path, data), r"holds the mosaic tiles \[.*\] but another plane holds")


def test_directory_entry_shifted_inside_the_scene(samples: Path, tmp_path: Path) -> None:
    """A tile moved by a pixel stays inside every declared size: the subblock's own entry disagrees."""
    data = _source(samples, MOSAIC)
    entries = [e for e in _layout(samples / "czi" / MOSAIC)["entries"] if e.scene_index == 2]
    xs = [e.start[5] for e in entries]
    entry = next(e for e in entries if min(xs) < e.start[5] and e.start[5] + e.shape[5] < max(xs))
    offset = _dim_field(data, entry, "X") + 4
    struct.pack_into("<i", data, offset, entry.start[5] + 1)
    path = _write(tmp_path, data)
    omio.open(path, scene=2)  # every declared size still fits: the subblock is checked when read
    _fails(path, "that subblock describes other pixels")


@pytest.mark.parametrize(
    ("field", "value", "message"), [(6, 2**40, "beyond the end of the file"), (2, 77, "pixel type")]
)
def test_directory_entry_fields(samples: Path, tmp_path: Path, field: int, value: int, message: str) -> None:
    data = _source(samples, STACK)
    entry = _layout(samples / "czi" / STACK)["entries"][3]
    struct.pack_into("<q" if field == 6 else "<i", data, entry.offset + field, value)
    _fails(_write(tmp_path, data), message)


def test_directory_entry_pointing_at_another_subblock(samples: Path, tmp_path: Path) -> None:
    data = _source(samples, STACK)
    entries = _layout(samples / "czi" / STACK)["entries"]
    struct.pack_into("<q", data, entries[3].offset + 6, entries[4].file_position)
    _fails(_write(tmp_path, data), "points at the same subblock")


# --------------------------------------------------------------------------- XML metadata


def _edit_xml(data: bytearray, metadata: int, edit: Callable[[str], str]) -> bytearray:
    """Rewrite the XML in place (same byte length: padded with spaces, or indentation removed)."""
    size = struct.unpack_from("<i", data, metadata + 32)[0]
    start = metadata + 32 + 256
    text = edit(data[start : start + size].decode())
    raw = text.encode()
    if len(raw) > size:
        raw = re.sub(rb">\s+<", b"><", raw)
    assert len(raw) <= size
    data[start : start + size] = raw.ljust(size)
    return data


@pytest.mark.parametrize("tag", ["SizeX", "SizeY", "SizeZ", "SizeT", "SizeC", "SizeS", "SizeM"])
@pytest.mark.parametrize("value", ["up", "down", "0", "1073741824", "abc", "removed"])
def test_xml_size_edits(samples: Path, tmp_path: Path, tag: str, value: str) -> None:
    data = _source(samples, MOSAIC)

    def edit(xml: str) -> str:
        match = re.search(rf"<{tag}>(\d+)</{tag}>", xml)
        assert match is not None
        stated = int(match.group(1))
        new = {"up": str(stated + 1), "down": str(stated - 1), "removed": None}.get(value, value)
        return xml.replace(match.group(0), "" if new is None else f"<{tag}>{new}</{tag}>", 1)

    _edit_xml(data, _layout(samples / "czi" / MOSAIC)["metadata"], edit)
    _fails(_write(tmp_path, data), f"XML metadata .*{tag}")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda xml: xml.replace("<Information>", "<Informatio>", 1), "XML metadata cannot be parsed"),
        (lambda xml: xml.replace("<Information>", "<X>", 1).replace("</Information>", "</X>", 1), "no Metadata/"),
        (lambda xml: "", "XML metadata cannot be parsed"),
        (lambda xml: re.sub(r'<Channel Id="Channel:1".*?</Channel>', "", xml, flags=re.S), "describes 1 channels"),
        (lambda xml: re.sub(r'<Scene Index="2".*?</Scene>', "", xml, flags=re.S), "lists 2 scenes"),
    ],
)
def test_xml_structure_edits(samples: Path, tmp_path: Path, edit: Callable[[str], str], message: str) -> None:
    data = _edit_xml(_source(samples, MOSAIC), _layout(samples / "czi" / MOSAIC)["metadata"], edit)
    _fails(_write(tmp_path, data), message)


def test_the_only_channel_dropped(samples: Path, tmp_path: Path) -> None:
    name = "zen_s1_t1_c1_z1.czi"
    drop = re.compile(r"<Channel Id=.*?</Channel>", re.S)
    data = _edit_xml(_source(samples, name), _layout(samples / "czi" / name)["metadata"], lambda xml: drop.sub("", xml))
    _fails(_write(tmp_path, data), "describes 0 channels, but the subblock directory holds 1")


@pytest.mark.parametrize("value", [0, -1, 2**30])
def test_metadata_segment_xml_size(samples: Path, tmp_path: Path, value: int) -> None:
    data = _source(samples, STACK)
    struct.pack_into("<i", data, _layout(samples / "czi" / STACK)["metadata"] + 32, value)
    _fails(_write(tmp_path, data), "bytes of XML")


# --------------------------------------------------------------------------- bounds


def test_stitched_area_is_bounded_by_the_area_covered(samples: Path, tmp_path: Path) -> None:
    """A tile moved far away, with a declared width to match, must not make a huge stitched scene."""
    data = _source(samples, MOSAIC)
    layout = _layout(samples / "czi" / MOSAIC)
    entry = next(e for e in layout["entries"] if e.scene_index == 1)  # scene 1: one 64 x 64 tile per plane at x=0
    struct.pack_into("<i", data, _dim_field(data, entry, "X") + 4, 99_999 - 64)
    _edit_xml(data, layout["metadata"], lambda xml: xml.replace("<SizeX>645</SizeX>", "<SizeX>99999</SizeX>", 1))
    path = _write(tmp_path, data)
    with pytest.raises(FileFormatError, match=r"scene 1 spans 99999 x 64 pixels, but its subblocks cover only"):
        omio.open(path, scene=1)


def test_read_tasks_are_bounded(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(czi_module, "MAX_TASKS", 11)
    path = samples / "czi" / MOSAIC
    with pytest.raises(FileFormatError, match=r"scene 1 would need 12 read tasks"):
        omio.open(path, scene=1)
    monkeypatch.setattr(czi_module, "MAX_TASKS", 12)
    assert omio.open(path, scene=1).shape == (2, 3, 2, 64, 64)


def test_sparse_scenes_still_open(samples: Path) -> None:
    """Scenes with different tiles and bounding boxes are not damage."""
    path = samples / "czi" / MOSAIC
    shapes = [omio.open(path, scene=i).shape for i in range(3)]
    assert shapes == [(2, 3, 2, 122, 295), (2, 3, 2, 64, 64), (2, 3, 2, 237, 352)]


@pytest.mark.parametrize("value", ["abc", "-1E-06", "nan"])
@pytest.mark.parametrize("what", ["Distance", "Increment", "TimeSpan"])
def test_a_stated_size_that_is_not_a_size_is_an_error(samples: Path, tmp_path: Path, what: str, value: str) -> None:
    name = STACK if what == "TimeSpan" else MOSAIC
    pattern = {
        "Distance": r"(<Distance Id=\"X\">\s*<Value>)[^<]*(</Value>)",
        "Increment": r"(<Increment>)[^<]*(<)",
        "TimeSpan": r"(<TimeSpan>\s*<Value>)[^<]*(</Value>)",
    }[what]

    def edit(xml: str) -> str:
        new, count = re.subn(pattern, rf"\g<1>{value}\g<2>", xml, count=1)
        assert count == 1, f"{name} states no {what}"
        return new

    data = _edit_xml(_source(samples, name), _layout(samples / "czi" / name)["metadata"], edit)
    with pytest.raises(MetadataError, match=rf"damaged\.czi: .*{value}.*not a number >= 0"):
        _read_everything(_write(tmp_path, data))


@pytest.mark.parametrize("value", ["abc", "-500", "inf"])
@pytest.mark.parametrize("what", ["ExcitationWavelength", "EmissionWavelength", "NominalMagnification", "LensNA"])
def test_a_stated_optical_value_that_is_not_a_number_is_an_error(
    samples: Path, tmp_path: Path, what: str, value: str
) -> None:
    """Wavelengths and objective values are checked on opening, not read as "unset" when damaged."""

    def edit(xml: str) -> str:
        new, count = re.subn(rf"(<{what}>)[^<]*(</{what}>)", rf"\g<1>{value}\g<2>", xml, count=1)
        assert count == 1, f"{STACK} states no {what}"
        return new

    data = _edit_xml(_source(samples, STACK), _layout(samples / "czi" / STACK)["metadata"], edit)
    with pytest.raises(MetadataError, match=rf"damaged\.czi: .*{what}.*{value}.*not a number >= 0"):
        omio.open(_write(tmp_path, data))


def test_a_zero_optical_value_is_unset(samples: Path, tmp_path: Path) -> None:
    def edit(xml: str) -> str:
        for what in ("ExcitationWavelength", "NominalMagnification"):
            xml, count = re.subn(rf"(<{what}>)[^<]*(</{what}>)", r"\g<1>0\g<2>", xml)
            assert count >= 1
        return xml

    data = _edit_xml(_source(samples, STACK), _layout(samples / "czi" / STACK)["metadata"], edit)
    ome = omio.open(_write(tmp_path, data)).ome
    assert all(c.excitation_wavelength is None for c in ome.images[0].pixels.channels)
    assert ome.instruments[0].objectives[0].nominal_magnification is None
    original = omio.open(samples / "czi" / STACK).ome
    assert original.instruments[0].objectives[0].nominal_magnification is not None
