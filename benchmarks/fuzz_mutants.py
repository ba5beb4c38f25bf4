"""Deterministic generator of damaged microscopy files for the mutation-fuzz campaign.

Every mutant is made from an intact source: the shared sample files (formats whose
optional reader library is missing are skipped) and small files written here with
tifffile, zarr and numpy, so the campaign also runs without the samples folder.
The same seed gives the same mutants, byte for byte.

A mutant is planned first (cheap: the intact file is parsed to locate its header,
directory, metadata and pixel regions) and materialised on demand into a folder
given by the caller, so a campaign of thousands of mutants never holds more than a
few damaged copies on disk at once.

Mutation kinds
--------------
truncation
    The file cut at many points: one byte short, half, just after the header,
    inside the directory and inside the metadata (for folders: a member file cut).
header-flip
    One byte inverted in a header, IFD / directory entry or segment header.
metadata-flip
    One byte inverted inside the metadata text (OME-XML, ImageJ description,
    CZI / LIF XML, zarr JSON, Experiment.xml); the flip always makes invalid text.
pixel-flip
    One byte inverted inside stored pixel data: undetectable in general, reported
    separately and never counted as a failure.
header-field
    A binary header field set to a damaging value (ImageWidth=0, IFD loops, odd
    offsets, CZI directory entry count one short, LIF block sizes ...).
metadata-edit
    A well-formed edit of the XML / JSON metadata that contradicts the pixels or is
    invalid (SizeZ changed, PhysicalSizeX="abc", zarr shape changed ...).
companion
    A file of a folder format missing, or of the wrong size (Thorlabs RAW one frame
    short, an OME-Zarr level folder removed ...).
mislabel
    A file under the suffix of another format, or random bytes under a known suffix.
hostile-xml
    An entity-expansion bomb or an external entity in the XML metadata.

Usage::

    python benchmarks/fuzz_mutants.py OUT_DIR [--seed 0] [--bounded]

writes every mutant into ``OUT_DIR/mutants`` and their list to ``OUT_DIR/mutants.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "KINDS",
    "SAMPLES",
    "SECRET_MARKER",
    "SECRET_NAME",
    "Mutant",
    "Source",
    "bounded",
    "generate",
    "materialize",
    "plan",
    "sources",
]

SAMPLES = Path(os.environ.get("OMIO_SAMPLES", Path(__file__).resolve().parents[2] / "shared" / "samples"))
"""The shared sample folder (``OMIO_SAMPLES`` overrides it)."""

KINDS = (
    "truncation",
    "header-flip",
    "metadata-flip",
    "pixel-flip",
    "header-field",
    "metadata-edit",
    "companion",
    "mislabel",
    "hostile-xml",
)
"""Every mutation kind, in report order."""

SECRET_NAME = "fuzz-secret.txt"
"""File an external-entity mutant points at (the campaign writes it in the working folder)."""
SECRET_MARKER = "OMIO-FUZZ-EXTERNAL-ENTITY-RESOLVED"
"""Content of :data:`SECRET_NAME`; it must never show up in a dataset's metadata."""

_OPTIONAL = {"lif": "liffile", "nd2": "nd2"}
_SAMPLE_FORMATS = {
    "czi": "czi",
    "imagej-tiff": "imagej",
    "lif": "lif",
    "lsm": "lsm",
    "nd2": "nd2",
    "ome-tiff": "ome-tiff",
    "ome-zarr": "ome-zarr",
    "thorlabs-raw": "thorlabs",
    "tiff": "tiff",
}
_LINK_BYTES = 1 << 20
"""Unchanged members of a folder larger than this are symlinked into the copy, not copied."""

Edit = Callable[[bytes], bytes | None]
"""New content of a file from its old content (``None`` deletes the file)."""


@dataclass(frozen=True)
class Source:
    """An intact file or folder that mutants are made from.

    Attributes
    ----------
    name
        Stable identifier (``"gen/ome_t7z5c1.ome.tif"``, ``"czi/zen_rgb_bgr24.czi"``).
    format
        Format family used in reports (``"ome-tiff"``, ``"czi"``, ``"ome-zarr"`` ...).
    path
        The intact file or folder.
    """

    name: str
    format: str
    path: Path


@dataclass(frozen=True)
class Mutant:
    """One damaged file or folder, described but not yet written.

    Attributes
    ----------
    id
        Unique, stable identifier (``"<source>#<kind>-<n>"``).
    format
        Format family of the source.
    kind
        One of :data:`KINDS`.
    source
        Name of the intact source the result is compared with (``None``: there is no
        intact counterpart, so any successful read is wrong).
    description
        What was done, in a few words.
    origin
        The intact file or folder the mutant starts from (``None``: made from nothing).
    name
        File or folder name of the mutant.
    edits
        ``(relative path, edit)`` pairs; the path is ``""`` for a single-file source.
    """

    id: str
    format: str
    kind: str
    source: str | None
    description: str
    origin: Path | None
    name: str
    edits: tuple[tuple[str, Edit], ...] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """Return the JSON-serialisable description of the mutant."""
        return {
            "id": self.id,
            "format": self.format,
            "kind": self.kind,
            "source": self.source,
            "description": self.description,
        }


# --- byte edits -----------------------------------------------------------------------------------------


def _truncate(n: int) -> Edit:
    return lambda b: b[:n]


def _xor(pos: int, mask: int = 0xFF) -> Edit:
    def edit(b: bytes) -> bytes:
        out = bytearray(b)
        out[pos] ^= mask
        return bytes(out)

    return edit


def _put(pos: int, new: bytes) -> Edit:
    def edit(b: bytes) -> bytes:
        out = bytearray(b)
        out[pos : pos + len(new)] = new
        return bytes(out)

    return edit


def _const(new: bytes | None) -> Edit:
    return lambda _b: new


def _json_edit(fn: Callable[[Any], Any]) -> Edit:
    def edit(b: bytes) -> bytes:
        return json.dumps(fn(json.loads(b)), indent=2).encode()

    return edit


def _stable_seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(map(str, parts)).encode()).digest()[:8], "little")


def _pick(rng: np.random.Generator, items: Sequence[Any], n: int) -> list[Any]:
    """Return up to n items chosen without replacement, in their original order."""
    if len(items) <= n:
        return list(items)
    idx = sorted(rng.choice(len(items), size=n, replace=False).tolist())
    return [items[i] for i in idx]


# --- hostile and damaged XML text -----------------------------------------------------------------------

_BOMB = (
    '<!DOCTYPE {root} [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]>"
)
_EXTERNAL = '<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "' + SECRET_NAME + '">]>'


def _root_tag(xml: str) -> tuple[str, int]:
    """Return the root element's name and the index just after its start tag."""
    match = re.search(r"<([A-Za-z_][\w:.-]*)[^>]*>", xml)
    if match is None:
        return "root", 0
    return match.group(1), match.end()


def _with_doctype(xml: str, doctype: str, reference: str) -> str:
    """Insert a DOCTYPE before the root element and an entity reference inside it."""
    root, after = _root_tag(xml)
    start = xml.find("<" + root)
    body = xml[:after] + f"<Fuzz>{reference}</Fuzz>" + xml[after:]
    return body[:start] + doctype.format(root=root) + body[start:]


def _bomb(xml: str) -> str:
    return _with_doctype(xml, _BOMB, "&lol9;")


def _external(xml: str) -> str:
    return _with_doctype(xml, _EXTERNAL, "&xxe;")


def _garble(xml: str, rng_seed: int) -> str:
    """Replace a run of characters in the middle third by angle brackets and quotes."""
    rng = np.random.default_rng(rng_seed)
    n = len(xml)
    start = n // 3 + int(rng.integers(0, max(1, n // 3)))
    junk = "".join(rng.choice(list("<>\"'&=/"), size=min(64, max(1, n - start))).tolist())
    return xml[:start] + junk + xml[start + len(junk) :]


def _sub_attr(xml: str, attr: str, fn: Callable[[str], str], tag: str | None = None) -> str | None:
    """Replace the first ``attr="value"`` (inside ``<tag``) by ``attr="fn(value)"``; None when absent."""
    pattern = rf'(<{tag}\b[^>]*?\s{attr}=")([^"]*)(")' if tag else rf'(\s{attr}=")([^"]*)(")'
    match = re.search(pattern, xml)
    if match is None:
        return None
    return xml[: match.start(2)] + fn(match.group(2)) + xml[match.end(2) :]


def _sub_element(xml: str, tag: str, fn: Callable[[str], str]) -> str | None:
    """Replace the text of the first ``<tag>text</tag>``; None when absent."""
    match = re.search(rf"(<{tag}>)([^<]*)(</{tag}>)", xml)
    if match is None:
        return None
    return xml[: match.start(2)] + fn(match.group(2)) + xml[match.end(2) :]


def _int_changes(value: str) -> list[tuple[str, str]]:
    """Return (label, new value) pairs that damage an integer size."""
    try:
        n = int(value)
    except ValueError:
        return []
    out = [("+1", str(n + 1)), ("0", "0"), ("huge 2**30", str(2**30)), ("'abc'", "abc")]
    if n > 1:
        out.insert(1, ("-1", str(n - 1)))
    return out


def _xml_damage(xml: str, seed: int) -> list[tuple[str, str]]:
    """Generic damage of an XML text: truncated, garbled, emptied."""
    return [
        ("XML truncated at half", xml[: len(xml) // 2]),
        ("XML garbled (run of markup characters)", _garble(xml, seed)),
        ("XML emptied", ""),
    ]


# --- the plan builder -----------------------------------------------------------------------------------


class _Plan:
    """Accumulates the mutants of one source."""

    def __init__(self, source: Source, seed: int) -> None:
        self.source = source
        self.seed = seed
        self.mutants: list[Mutant] = []
        self._counts: dict[str, int] = {}

    def rng(self, kind: str) -> np.random.Generator:
        return np.random.default_rng(_stable_seed(self.seed, self.source.name, kind))

    def add(
        self,
        kind: str,
        description: str,
        *edits: tuple[str, Edit],
        name: str | None = None,
        compare: bool = True,
        origin: Path | bool | None = True,
    ) -> None:
        n = self._counts.get(kind, 0)
        self._counts[kind] = n + 1
        self.mutants.append(
            Mutant(
                id=f"{self.source.name}#{kind}-{n:03d}",
                format=self.source.format,
                kind=kind,
                source=self.source.name if compare else None,
                description=description,
                origin=self.source.path if origin is True else (origin or None),
                name=name or self.source.path.name,
                edits=tuple(edits),
            )
        )

    def file(self, kind: str, description: str, edit: Edit, **kw: Any) -> None:
        self.add(kind, description, ("", edit), **kw)


def _cut_points(size: int, named: Iterable[tuple[str, int]], rng: np.random.Generator, n_random: int) -> list:
    """Return (label, length) truncation points, unique and inside (0, size)."""
    points = [("one byte short", size - 1), ("half", size // 2), *named]
    points += [(f"at random offset {int(p)}", int(p)) for p in rng.integers(1, max(2, size - 1), size=n_random)]
    seen: set[int] = set()
    out = []
    for label, n in points:
        if 0 < n < size and n not in seen:
            seen.add(n)
            out.append((label, n))
    return out


def _truncations(plan: _Plan, size: int, named: Iterable[tuple[str, int]], n_random: int = 3) -> None:
    for label, n in _cut_points(size, named, plan.rng("truncation"), n_random):
        plan.file("truncation", f"truncated to {n} of {size} bytes ({label})", _truncate(n))


def _pixel_flips(plan: _Plan, segments: Sequence[tuple[int, int]], n: int = 5, rel: str = "") -> None:
    segments = [(o, c) for o, c in segments if c > 0]
    if not segments:
        return
    rng = plan.rng("pixel-flip")
    for _ in range(n):
        offset, count = segments[int(rng.integers(0, len(segments)))]
        pos = offset + int(rng.integers(0, count))
        where = f" of {rel}" if rel else ""
        plan.add("pixel-flip", f"pixel-data byte {pos}{where} inverted", (rel, _xor(pos)))


def _text_flips(plan: _Plan, start: int, length: int, n: int, what: str, anchors: Sequence[int] = ()) -> None:
    """Invert bytes of an 8-bit text region (the result is never valid UTF-8 / ASCII text)."""
    if length <= 0:
        return
    rng = plan.rng("metadata-flip")
    positions = [start + a for a in anchors if 0 <= a < length]
    positions += [start + int(p) for p in rng.integers(0, length, size=max(0, n - len(positions)))]
    for pos in dict.fromkeys(positions):
        plan.file("metadata-flip", f"{what} byte {pos - start} (file offset {pos}) inverted", _xor(pos))


def _mislabel(plan: _Plan, suffix: str) -> None:
    stem = plan.source.path.name.split(".")[0]
    plan.file("mislabel", f"intact file renamed {stem}{suffix}", lambda b: b, name=f"{stem}{suffix}")


# --- TIFF -----------------------------------------------------------------------------------------------

_TIFF_TYPES = {1: "B", 2: "B", 3: "H", 4: "I", 5: "I", 6: "b", 7: "B", 8: "h", 9: "i", 10: "i", 11: "f", 12: "d"}
_TIFF_TYPES |= {13: "I", 16: "Q", 17: "q", 18: "Q"}
_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_TAG_NAMES = {
    256: "ImageWidth",
    257: "ImageLength",
    258: "BitsPerSample",
    259: "Compression",
    262: "Photometric",
    270: "ImageDescription",
    273: "StripOffsets",
    277: "SamplesPerPixel",
    278: "RowsPerStrip",
    279: "StripByteCounts",
    284: "PlanarConfiguration",
    322: "TileWidth",
    323: "TileLength",
    324: "TileOffsets",
    325: "TileByteCounts",
    330: "SubIFDs",
    339: "SampleFormat",
    34412: "CZ_LSMINFO",
}
_REQUIRED_TAGS = frozenset({256, 257, 273, 279, 322, 323, 324, 325})
"""Tags whose loss makes a TIFF unreadable (their tag codes are flipped; other tag codes are not)."""


@dataclass(frozen=True)
class _Tag:
    code: int
    type: int
    count: int
    entry: int  # file offset of the 12 / 20 byte entry
    value: int  # file offset of the value bytes (inline or not)


@dataclass(frozen=True)
class _Ifd:
    offset: int
    next_pos: int
    tags: dict[int, _Tag]
    sub: bool


@dataclass(frozen=True)
class _TiffLayout:
    order: str
    big: bool
    ifds: list[_Ifd]

    @property
    def header_size(self) -> int:
        return 16 if self.big else 8

    @property
    def first_pos(self) -> int:
        return 8 if self.big else 4

    @property
    def offset_fmt(self) -> str:
        return self.order + ("Q" if self.big else "I")

    def values(self, buf: bytes, tag: _Tag) -> list[int]:
        fmt = _TIFF_TYPES.get(tag.type)
        if fmt is None or tag.count > 1 << 20:
            return []
        size = _TIFF_SIZES[tag.type]
        raw = buf[tag.value : tag.value + size * tag.count]
        if len(raw) != size * tag.count:
            return []
        return [int(v) for v in struct.unpack(f"{self.order}{tag.count}{fmt}", raw)]

    def segments(self, buf: bytes) -> list[tuple[int, int]]:
        out = []
        for ifd in self.ifds:
            for offs, counts in ((273, 279), (324, 325)):
                if offs in ifd.tags and counts in ifd.tags:
                    out += list(zip(self.values(buf, ifd.tags[offs]), self.values(buf, ifd.tags[counts]), strict=False))
        return [(o, c) for o, c in out if 0 < o < len(buf) and o + c <= len(buf)]


def _tiff_layout(buf: bytes, limit: int = 64) -> _TiffLayout | None:
    """Walk the IFD chain (and SubIFD chains) of a TIFF; at most ``limit`` IFDs per chain."""
    if buf[:2] not in (b"II", b"MM"):
        return None
    order = "<" if buf[:2] == b"II" else ">"
    big = struct.unpack(order + "H", buf[2:4])[0] == 43
    ofmt, cfmt, esize = (order + "Q", order + "Q", 20) if big else (order + "I", order + "H", 12)
    osize, csize = struct.calcsize(ofmt), struct.calcsize(cfmt)
    first = struct.unpack(ofmt, buf[4 + 4 * big : 4 + 4 * big + osize])[0]
    ifds: list[_Ifd] = []
    seen: set[int] = set()

    def chain(offset: int, sub: bool) -> None:
        for _ in range(limit):
            if not offset or offset in seen or offset + csize > len(buf):
                return
            seen.add(offset)
            n = struct.unpack(cfmt, buf[offset : offset + csize])[0]
            entries = offset + csize
            next_pos = entries + n * esize
            if next_pos + osize > len(buf):
                return
            tags = {}
            for i in range(n):
                e = entries + i * esize
                code, typ = struct.unpack(order + "HH", buf[e : e + 4])
                count = struct.unpack(ofmt if big else order + "I", buf[e + 4 : e + 4 + osize])[0]
                vpos = e + 4 + osize
                if count * _TIFF_SIZES.get(typ, 1) > osize:
                    vpos = struct.unpack(ofmt, buf[vpos : vpos + osize])[0]
                tags.setdefault(code, _Tag(code, typ, count, e, vpos))
            ifds.append(_Ifd(offset, next_pos, tags, sub))
            offset = struct.unpack(ofmt, buf[next_pos : next_pos + osize])[0]

    chain(first, False)
    layout = _TiffLayout(order, big, [])
    for ifd in list(ifds):
        if 330 in ifd.tags:
            for sub in layout.values(buf, ifd.tags[330])[:8]:
                chain(sub, True)
    return _TiffLayout(order, big, ifds)


def _tiff_set(layout: _TiffLayout, tag: _Tag, value: int, index: int = 0) -> Edit:
    fmt = _TIFF_TYPES.get(tag.type, "I")
    return _put(tag.value + index * _TIFF_SIZES.get(tag.type, 4), struct.pack(layout.order + fmt, value))


def _tiff_set_count(layout: _TiffLayout, tag: _Tag, count: int) -> Edit:
    return _put(tag.entry + 4, struct.pack(layout.offset_fmt, count))


def _tiff_replace_value(layout: _TiffLayout, tag: _Tag, new: bytes) -> Edit:
    """Store ``new`` (type and count kept from ``tag``) at the end of the file and point the tag at it."""
    osize = 8 if layout.big else 4

    def edit(b: bytes) -> bytes:
        out = bytearray(b)
        count = len(new) // _TIFF_SIZES.get(tag.type, 1)
        out[tag.entry + 4 : tag.entry + 4 + osize] = struct.pack(layout.offset_fmt, count)
        vpos = tag.entry + 4 + osize
        if len(new) <= osize:
            out[vpos : vpos + osize] = new.ljust(osize, b"\0")
            return bytes(out)
        out += b"\0" * (len(out) % 2)
        out[vpos : vpos + osize] = struct.pack(layout.offset_fmt, len(out))
        return bytes(out + new)

    return edit


def _description(buf: bytes, layout: _TiffLayout) -> tuple[_Tag, bytes] | None:
    ifd = layout.ifds[0] if layout.ifds else None
    if ifd is None or 270 not in ifd.tags:
        return None
    tag = ifd.tags[270]
    return tag, buf[tag.value : tag.value + tag.count]


def _plan_tiff(plan: _Plan) -> None:
    buf = plan.source.path.read_bytes()
    layout = _tiff_layout(buf)
    if layout is None or not layout.ifds:
        return
    size = len(buf)
    first, last = layout.ifds[0], layout.ifds[-1]
    segments = layout.segments(buf)
    desc = _description(buf, layout)
    named = [
        ("just after the header", layout.header_size),
        ("inside the first IFD", first.offset + 6),
        ("at the last IFD", last.offset),
        ("inside the first IFD's entries", (first.offset + first.next_pos) // 2),
    ]
    if desc:
        named.append(("inside the ImageDescription", desc[0].value + desc[0].count // 2))
    if segments:
        named.append(("inside the first pixel segment", segments[0][0] + segments[0][1] // 2))
    _truncations(plan, size, named)
    _tiff_header_flips(plan, layout)
    _tiff_metadata_flips(plan, buf, layout)
    _pixel_flips(plan, segments)
    _tiff_header_fields(plan, buf, layout)
    fmt = plan.source.format
    if desc and fmt in ("ome-tiff", "bigtiff") and desc[1].lstrip().startswith(b"<"):
        _ome_tiff_edits(plan, layout, *desc)
    elif desc and fmt == "imagej" and desc[1].startswith(b"ImageJ="):
        _imagej_edits(plan, layout, *desc)
    if fmt == "lsm":
        _lsm_edits(plan, layout, buf)
    _mislabel(plan, ".czi")


def _tiff_header_flips(plan: _Plan, layout: _TiffLayout) -> None:
    o = layout.order
    candidates = [
        ("TIFF byte-order mark byte 0", 0),
        ("TIFF magic number byte", 2 if o == "<" else 3),
        ("first-IFD offset low byte", layout.first_pos + (0 if o == "<" else 3 + 4 * layout.big)),
        ("first-IFD offset high byte", layout.first_pos + (3 + 4 * layout.big if o == "<" else 0)),
    ]
    osize = 8 if layout.big else 4
    low, high = (0, osize - 1) if o == "<" else (osize - 1, 0)
    for k, ifd in enumerate(layout.ifds[:3] + layout.ifds[-1:]):
        name = f"{'Sub' if ifd.sub else ''}IFD at {ifd.offset} ({k})"
        candidates.append((f"{name} entry count low byte", ifd.offset + (0 if o == "<" else 1 + 6 * layout.big)))
        candidates.append((f"{name} next-IFD pointer low byte", ifd.next_pos + low))
        candidates.append((f"{name} next-IFD pointer high byte", ifd.next_pos + high))
        for code, tag in ifd.tags.items():
            if code not in _TAG_NAMES:
                continue
            t = f"{name} {_TAG_NAMES[code]} entry"
            vsize = _TIFF_SIZES.get(tag.type, 4)
            if code in _REQUIRED_TAGS:  # without them the file is a different but valid TIFF
                candidates.append((f"{t} tag-code byte", tag.entry + (0 if o == "<" else 1)))
            candidates += [
                (f"{t} type byte", tag.entry + (2 if o == "<" else 3)),
                (f"{t} count low byte", tag.entry + 4 + low),
                (f"{t} value low byte", tag.value + (0 if o == "<" else vsize - 1)),
                (f"{t} value high byte", tag.value + (vsize - 1 if o == "<" else 0)),
            ]
    for label, pos in _pick(plan.rng("header-flip"), candidates, 24):
        plan.file("header-flip", f"{label} inverted (offset {pos})", _xor(pos))


def _tiff_metadata_flips(plan: _Plan, buf: bytes, layout: _TiffLayout) -> None:
    ifd = layout.ifds[0]
    for code, what in ((270, "ImageDescription"),):  # text only: a flipped binary value (LSM, IJ tags) is valid
        tag = ifd.tags.get(code)
        if tag is None or tag.count * _TIFF_SIZES.get(tag.type, 1) <= 8:
            continue
        text = buf[tag.value : tag.value + tag.count]
        anchors = [m.end() for m in re.finditer(rb'Size[XYZCT]="|images=|slices=|channels=|spacing=', text)]
        _text_flips(plan, tag.value, tag.count, 8, what, anchors[:4])


def _tiff_header_fields(plan: _Plan, buf: bytes, layout: _TiffLayout) -> None:
    size = len(buf)
    ifd = layout.ifds[0]
    tags = ifd.tags
    fields: list[tuple[str, Edit]] = []
    for code, value, label in (
        (256, 0, "ImageWidth=0"),
        (257, 0, "ImageLength=0"),
        (278, 0, "RowsPerStrip=0"),
        (258, 13, "BitsPerSample=13"),
        (258, 0, "BitsPerSample=0"),
        (277, 0, "SamplesPerPixel=0"),
        (259, 9999, "Compression=9999 (unknown)"),
        (262, 99, "Photometric=99"),
        (284, 7, "PlanarConfiguration=7"),
        (322, 0, "TileWidth=0"),
        (256, 65535 if tags.get(256, _Tag(0, 3, 1, 0, 0)).type == 3 else 2**31 - 1, "ImageWidth huge"),
    ):
        if code in tags:
            fields.append((f"IFD 0 {label}", _tiff_set(layout, tags[code], value)))
    for offs, counts, what in ((273, 279, "Strip"), (324, 325, "Tile")):
        if offs in tags and counts in tags:
            fields.append(
                (f"IFD 0 first {what}Offsets beyond the end of file", _tiff_set(layout, tags[offs], size + 4096))
            )
            fields.append((f"IFD 0 first {what}ByteCounts=0", _tiff_set(layout, tags[counts], 0)))
            huge = 2**31 - 1 if _TIFF_SIZES.get(tags[counts].type, 4) >= 4 else 65535
            fields.append((f"IFD 0 first {what}ByteCounts huge ({huge})", _tiff_set(layout, tags[counts], huge)))
    if 270 in tags:
        fields.append(("IFD 0 ImageDescription count huge", _tiff_set_count(layout, tags[270], 2**31 - 1)))
    ofmt = layout.offset_fmt
    first = layout.ifds[0].offset
    fields += [
        ("first-IFD offset made odd (+1)", _put(layout.first_pos, struct.pack(ofmt, first + 1))),
        ("first-IFD offset beyond the end of file", _put(layout.first_pos, struct.pack(ofmt, size + 1024))),
        ("first-IFD offset = 0", _put(layout.first_pos, struct.pack(ofmt, 0))),
        ("first-IFD offset into the header (4)", _put(layout.first_pos, struct.pack(ofmt, 4))),
        (
            "IFD 0 entry count huge",
            _put(first, struct.pack(layout.order + ("Q" if layout.big else "H"), 2**40 if layout.big else 0xFFFF)),
        ),
        ("IFD 0 entry count 0", _put(first, struct.pack(layout.order + ("Q" if layout.big else "H"), 0))),
    ]
    main = [i for i in layout.ifds if not i.sub]
    fields.append(("IFD 0 next-IFD pointer loops to itself", _put(main[0].next_pos, struct.pack(ofmt, first))))
    if len(main) > 1:
        fields.append(
            (
                f"last IFD (of {len(main)}) next-IFD pointer loops back to IFD 0",
                _put(main[-1].next_pos, struct.pack(ofmt, first)),
            )
        )
        fields.append(("IFD 1 next-IFD pointer loops back to IFD 0", _put(main[1].next_pos, struct.pack(ofmt, first))))
        fields.append(
            ("IFD 0 next-IFD pointer made odd (+1)", _put(main[0].next_pos, struct.pack(ofmt, main[1].offset + 1)))
        )
        fields.append(
            ("IFD 0 next-IFD pointer beyond the end of file", _put(main[0].next_pos, struct.pack(ofmt, size + 64)))
        )
    subs = [i for i in layout.ifds if i.sub]
    for ifd in layout.ifds:
        if 330 in ifd.tags:
            tag = ifd.tags[330]
            fields.append(("SubIFDs offset beyond the end of file", _tiff_set(layout, tag, size + 4096)))
            fields.append(("SubIFDs offset = 0", _tiff_set(layout, tag, 0)))
            fields.append(("SubIFDs offset made odd", _tiff_set(layout, tag, layout.values(buf, tag)[0] + 1)))
            fields.append(("SubIFDs count huge", _tiff_set_count(layout, tag, 2**20)))
            break
    if subs:
        fields.append(
            (
                "first SubIFD chain cut: next pointer beyond the end of file",
                _put(subs[0].next_pos, struct.pack(ofmt, size + 8)),
            )
        )
        fields.append(("SubIFD next pointer loops to the main IFD 0", _put(subs[0].next_pos, struct.pack(ofmt, first))))
        fields.append(("file cut just before the last SubIFD", _truncate(subs[-1].offset)))
        if 256 in subs[0].tags:
            fields.append(("first SubIFD ImageWidth=0", _tiff_set(layout, subs[0].tags[256], 0)))
    for label, edit in fields:
        plan.file("header-field", label, edit)


def _replace_description(plan: _Plan, layout: _TiffLayout, tag: _Tag, kind: str, label: str, text: str) -> None:
    plan.file(kind, label, _tiff_replace_value(layout, tag, text.encode("utf-8", errors="surrogateescape") + b"\0"))


def _ome_tiff_edits(plan: _Plan, layout: _TiffLayout, tag: _Tag, raw: bytes) -> None:
    xml = raw.rstrip(b"\0").decode("utf-8", errors="surrogateescape")
    edits: list[tuple[str, str | None]] = list(_xml_damage(xml, plan.seed))
    for attr in ("SizeZ", "SizeT", "SizeC", "SizeX", "SizeY"):
        for label, new in _int_changes(re.search(rf'\s{attr}="(\d+)"', xml).group(1) if f"{attr}=" in xml else ""):
            edits.append((f"OME Pixels {attr} {label}", _sub_attr(xml, attr, lambda _v, n=new: n, "Pixels")))
    edits += [
        ("OME SizeZ=1e9", _sub_attr(xml, "SizeZ", lambda _v: "1000000000", "Pixels")),
        (
            "OME Pixels Type changed to float",
            _sub_attr(xml, "Type", lambda v: "double" if v != "double" else "uint8", "Pixels"),
        ),
        ("OME DimensionOrder invalid (XYZZT)", _sub_attr(xml, "DimensionOrder", lambda _v: "XYZZT", "Pixels")),
        ("OME PhysicalSizeX='abc'", _sub_attr(xml, "PhysicalSizeX", lambda _v: "abc")),
        ("OME PhysicalSizeX negative", _sub_attr(xml, "PhysicalSizeX", lambda v: "-" + v)),
        ("OME PhysicalSizeXUnit bogus", _sub_attr(xml, "PhysicalSizeXUnit", lambda _v: "furlong")),
        ("OME TimeIncrement='abc'", _sub_attr(xml, "TimeIncrement", lambda _v: "abc")),
        ("OME every TiffData removed", re.sub(r"<TiffData\b[^>]*?(/>|>.*?</TiffData>)", "", xml, flags=re.S)),
        ("OME first TiffData IFD=99999", _sub_attr(xml, "IFD", lambda _v: "99999", "TiffData")),
        ("OME first TiffData IFD=-1", _sub_attr(xml, "IFD", lambda _v: "-1", "TiffData")),
        ("OME first TiffData PlaneCount huge", _sub_attr(xml, "PlaneCount", lambda _v: "1000000000", "TiffData")),
        ("OME first TiffData FirstZ beyond SizeZ", _sub_attr(xml, "FirstZ", lambda _v: "9999", "TiffData")),
        ("OME first Channel removed", re.sub(r"<Channel\b[^>]*?(/>|>.*?</Channel>)", "", xml, count=1, flags=re.S)),
        ("OME Channel SamplesPerPixel=3", _sub_attr(xml, "SamplesPerPixel", lambda _v: "3", "Channel")),
        ("OME root namespace changed", xml.replace("http://www.openmicroscopy.org/Schemas/OME/2016-06", "urn:x", 1)),
        (
            "OME UUID FileName points to a missing file",
            re.sub(r'(<UUID\b[^>]*?FileName=")[^"]*', r"\1missing.ome.tif", xml, count=1),
        ),
    ]
    for label, new in edits:
        if (new is not None and new != xml) or label.startswith("XML"):
            _replace_description(plan, layout, tag, "metadata-edit", label, new or "")
    _replace_description(plan, layout, tag, "hostile-xml", "entity-expansion bomb in the OME-XML", _bomb(xml))
    _replace_description(plan, layout, tag, "hostile-xml", "external entity in the OME-XML", _external(xml))


def _imagej_edits(plan: _Plan, layout: _TiffLayout, tag: _Tag, raw: bytes) -> None:
    text = raw.rstrip(b"\0").decode("latin-1")

    def setkey(key: str, value: str | None) -> str:
        lines = [ln for ln in text.splitlines() if not ln.startswith(key + "=")]
        if value is not None:
            lines.insert(1, f"{key}={value}")
        return "\n".join(lines) + "\n"

    values = dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln)
    edits: list[tuple[str, str]] = []
    for key in ("images", "slices", "channels", "frames"):
        n = int(values.get(key, "1")) if values.get(key, "1").isdigit() else 1
        edits += [(f"ImageJ {key}={n + 1} (was {n})", setkey(key, str(n + 1)))]
        if n > 1:
            edits += [(f"ImageJ {key}={n - 1} (was {n})", setkey(key, str(n - 1)))]
        edits += [(f"ImageJ {key}=0", setkey(key, "0")), (f"ImageJ {key}=abc", setkey(key, "abc"))]
    edits += [
        ("ImageJ slices huge (1000000000)", setkey("slices", "1000000000")),
        ("ImageJ frames huge, hyperstack", setkey("frames", "100000000")),
        ("ImageJ spacing=abc", setkey("spacing", "abc")),
        ("ImageJ spacing negative", setkey("spacing", "-2")),
        ("ImageJ finterval=abc", setkey("finterval", "abc")),
        ("ImageJ unit garbled", setkey("unit", "\x7f\x01")),
        ("ImageJ description truncated at half", text[: len(text) // 2]),
    ]
    for label, new in edits:
        _replace_description(plan, layout, tag, "metadata-edit", label, new)


_LSM_FIELDS = (
    ("DimensionZ", 16, "i"),
    ("DimensionChannels", 20, "i"),
    ("DimensionTime", 24, "i"),
    ("VoxelSizeX", 40, "d"),
)


def _lsm_edits(plan: _Plan, layout: _TiffLayout, buf: bytes) -> None:
    tag = layout.ifds[0].tags.get(34412)
    if tag is None:
        return
    for name, off, fmt in _LSM_FIELDS:
        pos = tag.value + off
        old = struct.unpack(layout.order + fmt, buf[pos : pos + struct.calcsize(fmt)])[0]
        news = [-1.0, float("nan"), 0.0] if fmt == "d" else [0, old + 1, 2**30, -1]
        for new in news:
            plan.file(
                "metadata-edit", f"CZ_LSMINFO {name}={new} (was {old})", _put(pos, struct.pack(layout.order + fmt, new))
            )


# --- CZI ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CziEntry:
    offset: int  # file offset of the DV entry in the directory
    dims: dict[str, int]  # dimension letter -> file offset of its 20-byte dimension entry
    filepos: int
    data: tuple[int, int]  # pixel data (offset, size)


@dataclass(frozen=True)
class _CziLayout:
    dir_pos: int
    meta_pos: int
    xml: tuple[int, int]
    entries: list[_CziEntry]


def _czi_entry(buf: bytes, pos: int) -> tuple[int, dict[str, int], int, int]:
    """Return (entry size, dimension offsets, subblock file position, pixel type) of a DV entry."""
    filepos = struct.unpack("<q", buf[pos + 6 : pos + 14])[0]
    ndims = struct.unpack("<i", buf[pos + 28 : pos + 32])[0]
    dims = {}
    for i in range(max(0, min(ndims, 64))):
        d = pos + 32 + 20 * i
        dims[buf[d : d + 4].rstrip(b"\0").decode("ascii", "replace")] = d
    return 32 + 20 * ndims, dims, filepos, ndims


def _czi_layout(buf: bytes) -> _CziLayout | None:
    if not buf.startswith(b"ZISRAWFILE"):
        return None
    dir_pos, meta_pos = struct.unpack("<qq", buf[84:100])
    xml_size = struct.unpack("<i", buf[meta_pos + 32 : meta_pos + 36])[0]
    count = struct.unpack("<i", buf[dir_pos + 32 : dir_pos + 36])[0]
    entries = []
    pos = dir_pos + 160
    for _ in range(count):
        size, dims, filepos, _n = _czi_entry(buf, pos)
        meta_size, _att, data_size = struct.unpack("<iiq", buf[filepos + 32 : filepos + 48])
        own_size = _czi_entry(buf, filepos + 48)[0]
        start = filepos + 32 + max(256, 16 + own_size) + meta_size
        entries.append(_CziEntry(pos, dims, filepos, (start, data_size)))
        pos += size
    return _CziLayout(dir_pos, meta_pos, (meta_pos + 288, xml_size), entries)


def _czi_metadata(layout: _CziLayout, xml: bytes) -> Edit:
    """Append a metadata segment holding ``xml`` and point the file header at it."""

    def edit(b: bytes) -> bytes:
        out = bytearray(b)
        out += b"\0" * (-len(out) % 32)
        where = len(out)
        data = struct.pack("<ii", len(xml), 0) + b"\0" * 248 + xml
        data += b"\0" * (-len(data) % 32)
        out += b"ZISRAWMETADATA".ljust(16, b"\0") + struct.pack("<qq", len(data), len(data)) + data
        out[92:100] = struct.pack("<q", where)
        return bytes(out)

    return edit


def _plan_czi(plan: _Plan) -> None:
    buf = plan.source.path.read_bytes()
    layout = _czi_layout(buf)
    if layout is None:
        return
    (xml_at, xml_size), first = layout.xml, layout.entries[0]
    named = [
        ("just after the file header segment header", 32),
        ("just after the file header segment", 544),
        ("inside the directory", layout.dir_pos + 160 + 16),
        ("just before the directory", layout.dir_pos),
        ("inside the metadata XML", xml_at + xml_size // 2),
        ("inside the first subblock's pixels", first.data[0] + first.data[1] // 2),
    ]
    _truncations(plan, len(buf), named)
    _czi_header_flips(plan, layout)
    xml = buf[xml_at : xml_at + xml_size]
    anchors = [m.end() for m in re.finditer(rb"<Size[XYZCT]>|<Value>", xml)]
    _text_flips(plan, xml_at, xml_size, 8, "metadata XML", anchors[:4])
    _pixel_flips(plan, [e.data for e in layout.entries])
    _czi_header_fields(plan, buf, layout)
    _czi_xml_edits(plan, layout, xml.decode("utf-8", errors="surrogateescape"))
    _mislabel(plan, ".tif")


def _czi_header_flips(plan: _Plan, layout: _CziLayout) -> None:
    candidates = [
        ("file header segment id byte 0", 0),
        ("file header segment used-size byte", 24),
        ("file header version byte", 32),
        ("file header directory position low byte", 84),
        ("file header directory position byte 2", 86),
        ("file header metadata position low byte", 92),
        ("file header metadata position byte 2", 94),
        ("directory segment id byte 0", layout.dir_pos),
        ("directory entry count low byte", layout.dir_pos + 32),
        ("directory entry count high byte", layout.dir_pos + 35),
        ("metadata segment id byte 0", layout.meta_pos),
        ("metadata XML size low byte", layout.meta_pos + 32),
        ("metadata XML size byte 2", layout.meta_pos + 34),
    ]
    rng = plan.rng("header-flip")
    for e in _pick(rng, layout.entries, 3):
        candidates += [
            (f"directory entry at {e.offset} schema byte", e.offset),
            (f"directory entry at {e.offset} pixel type", e.offset + 2),
            (f"directory entry at {e.offset} file position byte 1", e.offset + 7),
            (f"directory entry at {e.offset} compression", e.offset + 18),
            (f"directory entry at {e.offset} dimension count", e.offset + 28),
            (f"subblock at {e.filepos} segment id byte", e.filepos),
            (f"subblock at {e.filepos} data size byte 2", e.filepos + 42),
        ]
        for dim, d in list(e.dims.items())[:3]:
            candidates += [
                (f"directory entry at {e.offset} {dim} size byte", d + 8),
                (f"directory entry at {e.offset} {dim} dimension letter", d),
            ]
    for label, pos in _pick(rng, candidates, 20):
        plan.file("header-flip", f"{label} inverted (offset {pos})", _xor(pos))


def _czi_header_fields(plan: _Plan, buf: bytes, layout: _CziLayout) -> None:
    size = len(buf)
    count_at = layout.dir_pos + 32
    count = len(layout.entries)
    e = layout.entries[0]
    fields: list[tuple[str, Edit]] = [
        (f"directory entry count one short ({count - 1})", _put(count_at, struct.pack("<i", count - 1))),
        (f"directory entry count one more ({count + 1})", _put(count_at, struct.pack("<i", count + 1))),
        ("directory entry count 0", _put(count_at, struct.pack("<i", 0))),
        ("directory entry count huge (2**31-1)", _put(count_at, struct.pack("<i", 2**31 - 1))),
        ("directory entry count negative", _put(count_at, struct.pack("<i", -5))),
        ("file header directory position beyond the end of file", _put(84, struct.pack("<q", size + 4096))),
        ("file header directory position = 0", _put(84, struct.pack("<q", 0))),
        ("file header directory position odd (+1)", _put(84, struct.pack("<q", layout.dir_pos + 1))),
        ("file header metadata position beyond the end of file", _put(92, struct.pack("<q", size + 4096))),
        ("metadata XML size huge", _put(layout.meta_pos + 32, struct.pack("<i", 2**31 - 1))),
        ("metadata XML size negative", _put(layout.meta_pos + 32, struct.pack("<i", -1))),
        ("entry 0 subblock file position beyond the end of file", _put(e.offset + 6, struct.pack("<q", size + 4096))),
        ("entry 0 subblock file position negative", _put(e.offset + 6, struct.pack("<q", -32))),
        ("entry 0 pixel type 99 (unknown)", _put(e.offset + 2, struct.pack("<i", 99))),
        ("entry 0 compression 1234 (unknown)", _put(e.offset + 18, struct.pack("<i", 1234))),
        ("entry 0 dimension count 0", _put(e.offset + 28, struct.pack("<i", 0))),
        ("entry 0 dimension count huge", _put(e.offset + 28, struct.pack("<i", 100000))),
        ("subblock 0 data size huge", _put(e.filepos + 40, struct.pack("<q", 2**40))),
        ("subblock 0 data size 0", _put(e.filepos + 40, struct.pack("<q", 0))),
    ]
    for dim, d in e.dims.items():
        if dim in ("X", "Y"):
            fields.append((f"entry 0 {dim} size 0", _put(d + 8, struct.pack("<i", 0))))
            fields.append((f"entry 0 {dim} stored size 0", _put(d + 16, struct.pack("<i", 0))))
            fields.append(
                (
                    f"entry 0 {dim} size doubled",
                    _put(d + 8, struct.pack("<i", 2 * struct.unpack("<i", buf[d + 8 : d + 12])[0])),
                )
            )
        if dim in ("X", "Y", "Z", "C", "T", "S", "M"):
            fields.append((f"entry 0 {dim} start beyond the sizes (2**30)", _put(d + 4, struct.pack("<i", 2**30))))
        if dim in ("Z", "C", "T"):
            fields.append((f"entry 0 {dim} start -5", _put(d + 4, struct.pack("<i", -5))))
            fields.append((f"entry 0 {dim} size 1000", _put(d + 8, struct.pack("<i", 1000))))
    last = layout.entries[-1]
    if "C" in last.dims:
        fields.append(("last entry C start 99 (beyond SizeC)", _put(last.dims["C"] + 4, struct.pack("<i", 99))))
    for label, edit in fields:
        plan.file("header-field", label, edit)


def _czi_xml_edits(plan: _Plan, layout: _CziLayout, xml: str) -> None:
    edits: list[tuple[str, str | None]] = list(_xml_damage(xml, plan.seed))
    for tag in ("SizeX", "SizeY", "SizeZ", "SizeT", "SizeC", "SizeS", "SizeM"):
        match = re.search(rf"<{tag}>(\d+)</{tag}>", xml)
        if match:
            for label, new in _int_changes(match.group(1)):
                edits.append((f"CZI XML {tag} {label}", _sub_element(xml, tag, lambda _v, n=new: n)))
    edits += [
        ("CZI XML Scaling Distance Value='abc'", _sub_element(xml, "Value", lambda _v: "abc")),
        ("CZI XML Scaling Distance Value negative", _sub_element(xml, "Value", lambda v: "-" + v.strip())),
        ("CZI XML PixelType bogus", _sub_element(xml, "PixelType", lambda _v: "Gray99")),
        ("CZI XML Channel Id duplicated", re.sub(r'(<Channel Id=")[^"]*', r"\1Channel:0", xml)),
        ("CZI XML Information removed", re.sub(r"<Information>.*</Information>", "", xml, count=1, flags=re.S)),
        ("CZI XML Interval Increment='abc'", _sub_element(xml, "Increment", lambda _v: "abc")),
    ]
    for label, new in edits:
        if new is not None and (new != xml or label.startswith("XML")):
            plan.file("metadata-edit", label, _czi_metadata(layout, new.encode("utf-8", errors="surrogateescape")))
    plan.file(
        "hostile-xml", "entity-expansion bomb in the CZI metadata XML", _czi_metadata(layout, _bomb(xml).encode())
    )
    plan.file("hostile-xml", "external entity in the CZI metadata XML", _czi_metadata(layout, _external(xml).encode()))


# --- LIF ------------------------------------------------------------------------------------------------


def _lif_blocks(buf: bytes, start: int) -> list[tuple[int, int, int]]:
    """Return (header offset, data offset, data size) of the memory blocks after the XML."""
    out = []
    pos = start
    while pos + 22 <= len(buf) and len(out) < 4096:
        id0, _size, id1, size1, id2, strlen = struct.unpack("<IIBQBI", buf[pos : pos + 22])
        if id0 != 0x70 or id1 != 0x2A or id2 != 0x2A:
            break
        data = pos + 22 + 2 * strlen
        out.append((pos, data, size1))
        pos = data + size1
    return out


def _lif_xml(xml: str) -> Edit:
    new = xml.encode("utf-16-le", errors="surrogatepass")

    def edit(b: bytes) -> bytes:
        strlen = struct.unpack("<I", b[9:13])[0]
        head = struct.pack("<IIBI", 0x70, len(new) + 5, 0x2A, len(new) // 2)
        return head + new + b[13 + 2 * strlen :]

    return edit


def _plan_lif(plan: _Plan) -> None:
    buf = plan.source.path.read_bytes()
    id0, _size, id1, strlen = struct.unpack("<IIBI", buf[:13])
    if id0 != 0x70 or id1 != 0x2A:
        return
    xml_end = 13 + 2 * strlen
    blocks = _lif_blocks(buf, xml_end)
    named = [
        ("just after the header", 13),
        ("inside the XML", 13 + strlen),
        ("just after the XML", xml_end),
        ("inside the first memory block header", xml_end + 10),
    ]
    data = [(d, s) for _h, d, s in blocks if s > 0]
    if data:
        named.append(("inside the first image's pixels", data[0][0] + data[0][1] // 2))
    _truncations(plan, len(buf), named)
    candidates = [
        ("header test value byte", 0),
        ("header block size low byte", 4),
        ("header 0x2A marker", 8),
        ("XML length low byte", 9),
        ("XML length byte 2", 11),
    ]
    for h, _d, _s in blocks[:4]:
        candidates += [
            (f"memory block at {h} test value", h),
            (f"memory block at {h} marker", h + 8),
            (f"memory block at {h} size byte 2", h + 11),
            (f"memory block at {h} name length", h + 18),
        ]
    for label, pos in _pick(plan.rng("header-flip"), candidates, 16):
        plan.file("header-flip", f"{label} inverted (offset {pos})", _xor(pos))
    xml = buf[13:xml_end].decode("utf-16-le", errors="surrogatepass")
    # an inverted high byte of a UTF-16 code unit gives an unpaired surrogate: never valid text
    rng = plan.rng("metadata-flip")
    anchors = [13 + 2 * m.end() + 1 for m in re.finditer(r'NumberOfElements="|DimID="|Resolution="', xml)][:4]
    for pos in anchors + [13 + 2 * int(p) + 1 for p in rng.integers(0, strlen, size=6)]:
        plan.file("metadata-flip", f"LIF XML high byte at offset {pos} made a lone surrogate", _xor(pos, 0xDC))
    _pixel_flips(plan, data)
    fields: list[tuple[str, Edit]] = [
        ("XML length one short", _put(9, struct.pack("<I", strlen - 1))),
        ("XML length one more", _put(9, struct.pack("<I", strlen + 1))),
        ("XML length huge", _put(9, struct.pack("<I", 2**31 - 1))),
        ("XML length 0", _put(9, struct.pack("<I", 0))),
    ]
    for h, _d, s in blocks[:2]:
        fields += [
            (f"memory block at {h} size huge", _put(h + 9, struct.pack("<Q", 2**40))),
            (f"memory block at {h} size one short", _put(h + 9, struct.pack("<Q", max(0, s - 1)))),
            (f"memory block at {h} name length huge", _put(h + 18, struct.pack("<I", 2**30))),
        ]
    for label, edit in fields:
        plan.file("header-field", label, edit)
    _lif_xml_edits(plan, xml)
    _mislabel(plan, ".czi")


def _lif_xml_edits(plan: _Plan, xml: str) -> None:
    edits: list[tuple[str, str | None]] = list(_xml_damage(xml, plan.seed))
    match = re.search(r'NumberOfElements="(\d+)"', xml)
    for label, new in _int_changes(match.group(1) if match else ""):
        edits.append((f"LIF first NumberOfElements {label}", _sub_attr(xml, "NumberOfElements", lambda _v, n=new: n)))
    edits += [
        ("LIF first DimID=99", _sub_attr(xml, "DimID", lambda _v: "99")),
        ("LIF first DimID='abc'", _sub_attr(xml, "DimID", lambda _v: "abc")),
        ("LIF first DimID duplicated (2 -> 1)", _sub_attr(xml, "DimID", lambda v: "2" if v == "1" else "1")),
        ("LIF first BytesInc=0", _sub_attr(xml, "BytesInc", lambda _v: "0")),
        ("LIF first BytesInc huge", _sub_attr(xml, "BytesInc", lambda _v: str(2**40))),
        ("LIF first channel Resolution=12", _sub_attr(xml, "Resolution", lambda _v: "12")),
        ("LIF first Length='abc'", _sub_attr(xml, "Length", lambda _v: "abc")),
        (
            "LIF first Memory Size doubled",
            _sub_attr(xml, "Size", lambda v: str(2 * int(v)) if v.isdigit() else v, "Memory"),
        ),
        ("LIF first MemoryBlockID points to no block", _sub_attr(xml, "MemoryBlockID", lambda _v: "MemBlock_99999")),
    ]
    for label, new in edits:
        if new is not None and (new != xml or label.startswith("XML")):
            plan.file("metadata-edit", label, _lif_xml(new))
    plan.file("hostile-xml", "entity-expansion bomb in the LIF XML", _lif_xml(_bomb(xml)))
    plan.file("hostile-xml", "external entity in the LIF XML", _lif_xml(_external(xml)))


# --- ND2 ------------------------------------------------------------------------------------------------

_ND2_MAP = b"ND2 CHUNK MAP SIGNATURE 0000001!"


def _nd2_chunks(buf: bytes) -> tuple[int, dict[str, tuple[int, int]]]:
    """Return the chunk map's file offset and {chunk name: (offset, size)}."""
    if buf[-40:-8] != _ND2_MAP:
        return -1, {}
    at = struct.unpack("<Q", buf[-8:])[0]
    _magic, name_len, data_len = struct.unpack("<IIQ", buf[at : at + 16])
    body = buf[at + 16 + name_len : at + 16 + name_len + data_len]
    chunks: dict[str, tuple[int, int]] = {}
    pos = 0
    while pos < len(body):
        end = body.find(b"!", pos)
        if end < 0 or body[pos : end + 1] == _ND2_MAP:
            break
        name = body[pos : end + 1].decode("latin-1")
        chunks[name] = struct.unpack("<QQ", body[end + 1 : end + 17])
        pos = end + 17
    return at, chunks


def _plan_nd2(plan: _Plan) -> None:
    buf = plan.source.path.read_bytes()
    at, chunks = _nd2_chunks(buf)
    named = [("just after the first chunk header", 16), ("inside the chunk map", at + 64), ("before the chunk map", at)]
    _truncations(plan, len(buf), named)
    candidates = [("first chunk magic byte", 0), ("first chunk name length", 4), ("first chunk data length byte 1", 9)]
    candidates += [("chunk-map signature byte", len(buf) - 20), ("chunk-map offset low byte", len(buf) - 8)]
    candidates += [("chunk-map offset byte 1", len(buf) - 7), ("chunk-map chunk magic", max(0, at))]

    def chunk_data(name: str, offset: int) -> tuple[int, int]:
        _m, nlen, dlen = struct.unpack("<IIQ", buf[offset : offset + 16])
        return offset + 16 + nlen, dlen

    pixel, meta = [], []
    for name, (offset, _size) in chunks.items():
        if name.startswith("ImageDataSeq|"):
            pixel.append(chunk_data(name, offset))
            candidates.append((f"{name} chunk data length byte 0", offset + 8))
        elif name.startswith(("ImageAttributes", "ImageMetadata")):
            meta.append((name, chunk_data(name, offset)))
    for label, pos in _pick(plan.rng("header-flip"), candidates, 12):
        plan.file("header-flip", f"{label} inverted (offset {pos})", _xor(pos))
    rng = plan.rng("metadata-flip")
    for name, (offset, size) in meta[:3]:
        for p in rng.integers(0, max(1, size), size=3):
            plan.file("metadata-flip", f"{name} chunk byte {int(p)} inverted", _xor(offset + int(p)))
    # the first 8 bytes of every image chunk are its timestamp, not pixels
    _pixel_flips(plan, [(o + 8, s - 8) for o, s in pixel])
    if at > 0:
        fields = [("chunk-map offset beyond the end of file", _put(len(buf) - 8, struct.pack("<Q", len(buf) + 99)))]
        fields.append(("chunk-map offset = 0", _put(len(buf) - 8, struct.pack("<Q", 0))))
        first = next((n for n in chunks if n.startswith("ImageDataSeq|")), None)
        if first:
            body = buf.find(first.encode(), at)
            fields.append(
                (
                    f"chunk map: {first} offset beyond the end of file",
                    _put(body + len(first), struct.pack("<Q", len(buf) + 4096)),
                )
            )
        for label, edit in fields:
            plan.file("header-field", label, edit)
    _mislabel(plan, ".tif")


# --- folders: OME-Zarr and Thorlabs ---------------------------------------------------------------------


def _members(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _plan_zarr(plan: _Plan) -> None:
    folder = plan.source.path
    files = _members(folder)
    meta = [f for f in files if f.rsplit("/", 1)[-1] in (".zattrs", ".zarray", ".zgroup", "zarr.json")]
    arrays = [
        f
        for f in meta
        if f.endswith(".zarray") or (f.endswith("zarr.json") and b'"array"' in (folder / f).read_bytes())
    ]
    chunks = [f for f in files if f not in meta and not f.startswith("OME/")]
    level0 = [a for a in arrays if a.rsplit("/", 1)[0] in ("0", "0/0")] or arrays[:1]
    rng = plan.rng("truncation")
    for rel in _pick(rng, chunks, 3):
        size = (folder / rel).stat().st_size
        for label, n in (("one byte short", size - 1), ("half", size // 2), ("to 0 bytes", 0)):
            plan.add("truncation", f"chunk {rel} truncated {label}", (rel, _truncate(n)))
    for rel in meta:
        size = (folder / rel).stat().st_size
        plan.add("truncation", f"{rel} truncated at half", (rel, _truncate(size // 2)))
    rng = plan.rng("metadata-flip")
    for rel in meta:
        size = (folder / rel).stat().st_size
        for p in rng.integers(0, size, size=2):
            plan.add("metadata-flip", f"{rel} byte {int(p)} inverted", (rel, _xor(int(p))))
    pixel_rng = plan.rng("pixel-flip")
    for rel in _pick(pixel_rng, chunks, 4):
        size = (folder / rel).stat().st_size
        if size:
            pos = int(pixel_rng.integers(0, size))
            plan.add("pixel-flip", f"chunk {rel} byte {pos} inverted", (rel, _xor(pos)))
    _zarr_json_edits(plan, folder, meta, level0)
    levels = sorted({a.rsplit("/", 1)[0] for a in arrays if "/" in a})
    for lvl in levels[:2]:
        plan.add(
            "companion",
            f"level array folder {lvl} removed",
            *((m, _const(None)) for m in files if m.startswith(lvl + "/")),
        )
    for rel in level0:
        plan.add("companion", f"array metadata {rel} removed", (rel, _const(None)))
    if "OME/METADATA.ome.xml" in files:
        xml = (folder / "OME/METADATA.ome.xml").read_text(errors="surrogateescape")
        rel = "OME/METADATA.ome.xml"
        for label, new in [
            *_xml_damage(xml, plan.seed),
            ("OME-XML SizeC +1", _sub_attr(xml, "SizeC", lambda v: str(int(v) + 1), "Pixels")),
        ]:
            plan.add("metadata-edit", f"{rel}: {label}", (rel, _const((new or "").encode(errors="surrogateescape"))))
        plan.add("hostile-xml", "entity-expansion bomb in OME/METADATA.ome.xml", (rel, _const(_bomb(xml).encode())))
        plan.add("hostile-xml", "external entity in OME/METADATA.ome.xml", (rel, _const(_external(xml).encode())))


def _zarr_json_edits(plan: _Plan, folder: Path, meta: list[str], level0: list[str]) -> None:
    edits: list[tuple[str, str, Edit]] = []
    for rel in meta:
        edits.append((rel, "invalid JSON (closing brace removed)", lambda b: b.rstrip().rstrip(b"}")))
        edits.append((rel, "invalid UTF-8 (0xFF 0xFE prepended)", lambda b: b"\xff\xfe" + b))
        edits.append((rel, "JSON replaced by a list", _const(b"[]")))
    # a zarr array may legally grow or shrink (missing chunks read as the fill value): a changed
    # extent is damage only where OME/METADATA.ome.xml states the size
    with_xml = (folder / "OME" / "METADATA.ome.xml").is_file()
    for rel in level0:
        doc = json.loads((folder / rel).read_bytes())
        v3 = doc.get("zarr_format") == 3
        for label, fn in _zarr_array_changes(v3):
            if with_xml or label not in _LEGAL_RESHAPES:
                edits.append((rel, label, _json_edit(fn)))
    group = [
        m
        for m in meta
        if m.rsplit("/", 1)[-1] in (".zattrs", "zarr.json") and "multiscales" in (folder / m).read_text()
    ]
    for rel in group[:1]:
        for label, fn in _ngff_changes():
            edits.append((rel, label, _json_edit(fn)))
    for rel, label, edit in edits:
        plan.add("metadata-edit", f"{rel}: {label}", (rel, edit))


_LEGAL_RESHAPES = ("shape: last axis +1", "shape: last axis -1", "shape: first axis doubled")


def _zarr_array_changes(v3: bool) -> list[tuple[str, Callable[[Any], Any]]]:
    def shape(fn: Callable[[list[int]], list[int]]) -> Callable[[Any], Any]:
        return lambda d: {**d, "shape": fn(list(d["shape"]))}

    def chunks(fn: Callable[[list[int]], list[int]]) -> Callable[[Any], Any]:
        if v3:
            return lambda d: {
                **d,
                "chunk_grid": {
                    **d["chunk_grid"],
                    "configuration": {"chunk_shape": fn(d["chunk_grid"]["configuration"]["chunk_shape"])},
                },
            }
        return lambda d: {**d, "chunks": fn(list(d["chunks"]))}

    dtype_key = "data_type" if v3 else "dtype"
    return [
        ("shape: last axis +1", shape(lambda s: [*s[:-1], s[-1] + 1])),
        ("shape: last axis -1", shape(lambda s: [*s[:-1], max(0, s[-1] - 1)])),
        ("shape: first axis doubled", shape(lambda s: [2 * s[0] + 1, *s[1:]])),
        ("shape: one axis removed", shape(lambda s: s[1:])),
        ("shape: huge first axis", shape(lambda s: [2**40, *s[1:]])),
        ("shape: negative axis", shape(lambda s: [-1, *s[1:]])),
        ("chunk size 0", chunks(lambda c: [0, *c[1:]])),
        ("chunk shape with fewer axes", chunks(lambda c: c[1:])),
        ("dtype changed", lambda d: {**d, dtype_key: "float64" if v3 else "<f8"}),
        ("dtype bogus", lambda d: {**d, dtype_key: "u17"}),
        ("zarr_format 9", lambda d: {**d, "zarr_format": 9}),
    ]


def _ngff_changes() -> list[tuple[str, Callable[[Any], Any]]]:
    def ms(fn: Callable[[dict[str, Any]], None]) -> Callable[[Any], Any]:
        def edit(d: Any) -> Any:
            holder = d["attributes"]["ome"] if "attributes" in d and "ome" in d["attributes"] else d
            fn(holder["multiscales"][0])
            return d

        return edit

    def omero(fn: Callable[[dict[str, Any]], None]) -> Callable[[Any], Any]:
        def edit(d: Any) -> Any:
            holder = d["attributes"]["ome"] if "attributes" in d and "ome" in d["attributes"] else d
            if "omero" in holder:
                fn(holder["omero"])
            return d

        return edit

    def scale(value: Any) -> Callable[[dict[str, Any]], None]:
        def fn(m: dict[str, Any]) -> None:
            t = m["datasets"][0]["coordinateTransformations"][0]
            t["scale"] = [value] * len(t["scale"])

        return fn

    def colour(c: dict[str, Any]) -> None:
        c["channels"][0]["color"] = "zzzzzz"

    return [
        ("scale 'abc'", ms(scale("abc"))),
        ("scale negative", ms(scale(-0.5))),
        ("scale 0", ms(scale(0))),
        (
            "scale with fewer entries",
            ms(lambda m: m["datasets"][0]["coordinateTransformations"][0].update(scale=[1.0])),
        ),
        ("axes removed", ms(lambda m: m.pop("axes", None))),
        ("axes duplicated name", ms(lambda m: [a.update(name="x") for a in m["axes"]])),
        ("axis unit bogus", ms(lambda m: m["axes"][-1].update(unit="parsec-ish"))),
        ("datasets empty", ms(lambda m: m.update(datasets=[]))),
        ("dataset path to a missing array", ms(lambda m: m["datasets"][0].update(path="nowhere"))),
        ("multiscales version 9.9", ms(lambda m: m.update(version="9.9"))),
        ("omero colour 'zzzzzz'", omero(colour)),
        ("omero channels emptied", omero(lambda c: c.update(channels=[]))),
        ("omero channel label not a string", omero(lambda c: c["channels"][0].update(label=17))),
    ]


def _plan_thorlabs(plan: _Plan) -> None:
    folder = plan.source.path
    xml_rel, raw_rel = "Experiment.xml", next(m for m in _members(folder) if m.lower().endswith(".raw"))
    xml = (folder / xml_rel).read_text(errors="surrogateescape")
    raw_size = (folder / raw_rel).stat().st_size
    x = int(_attr(xml, "LSM", "pixelX") or 1)
    y = int(_attr(xml, "LSM", "pixelY") or 1)
    frame = 2 * x * y
    for label, n in (("one byte short", raw_size - 1), ("half", raw_size // 2), ("to 0 bytes", 0)):
        plan.add("truncation", f"{raw_rel} truncated {label}", (raw_rel, _truncate(n)))
    plan.add("truncation", "Experiment.xml truncated at half", (xml_rel, _truncate(len(xml.encode()) // 2)))
    rng = plan.rng("metadata-flip")
    anchors = [m.end() for m in re.finditer(r'(pixelX|frames|timepoints|Set|steps)="', xml)][:4]
    for p in anchors + [int(v) for v in rng.integers(0, len(xml.encode()), size=4)]:
        plan.add("metadata-flip", f"Experiment.xml byte {p} inverted", (xml_rel, _xor(p)))
    _pixel_flips(plan, [(0, raw_size)], n=3, rel=raw_rel)
    companions = [
        ("RAW file one frame short", (raw_rel, _truncate(raw_size - frame))),
        ("RAW file one frame long", (raw_rel, lambda b: b + b[-frame:])),
        ("RAW file removed", (raw_rel, _const(None))),
        ("Experiment.xml removed", (xml_rel, _const(None))),
        (
            "second RAW file Image_0002_0001.raw added",
            ("Image_0002_0001.raw", lambda _b: (folder / raw_rel).read_bytes()),
        ),
    ]
    for label, edit in companions:
        plan.add("companion", label, edit)
    mode = _attr(xml, "CaptureMode", "mode")
    t_tag, t_attr = ("Streaming", "frames") if mode == "1" else ("Timelapse", "timepoints")
    edits: list[tuple[str, str | None]] = list(_xml_damage(xml, plan.seed))
    edits += [
        (f"{t_tag} {t_attr}=1e9", _sub_attr(xml, t_attr, lambda _v: "1000000000", t_tag)),
        (f"{t_tag} {t_attr}=0", _sub_attr(xml, t_attr, lambda _v: "0", t_tag)),
        (f"{t_tag} {t_attr} +1", _sub_attr(xml, t_attr, lambda v: str(int(v) + 1), t_tag)),
        (
            "ZStage steps=1e6 (zFastEnable on)",
            _sub_attr(
                _sub_attr(xml, "steps", lambda _v: "1000000", "ZStage") or xml,
                "zFastEnable",
                lambda _v: "1",
                "Streaming",
            )
            if mode == "1"
            else _sub_attr(xml, "steps", lambda _v: "1000000", "ZStage"),
        ),
        ("ChannelEnable drops a channel (Set=1)", _sub_attr(xml, "Set", lambda _v: "1", "ChannelEnable")),
        ("ChannelEnable Set=0", _sub_attr(xml, "Set", lambda _v: "0", "ChannelEnable")),
        ("ChannelEnable Set=255", _sub_attr(xml, "Set", lambda _v: "255", "ChannelEnable")),
        (
            "Date uTime='abc' and date garbled",
            _sub_attr(
                _sub_attr(xml, "uTime", lambda _v: "abc", "Date") or xml, "date", lambda _v: "99/99/9999 99:99", "Date"
            ),
        ),
        ("Date uTime huge", _sub_attr(xml, "uTime", lambda _v: "99999999999999999999", "Date")),
        ("LSM pixelX +1", _sub_attr(xml, "pixelX", lambda v: str(int(v) + 1), "LSM")),
        ("LSM pixelX='abc'", _sub_attr(xml, "pixelX", lambda _v: "abc", "LSM")),
        ("LSM pixelSizeUM='abc'", _sub_attr(xml, "pixelSizeUM", lambda _v: "abc", "LSM")),
        ("LSM pixelSizeUM negative", _sub_attr(xml, "pixelSizeUM", lambda v: "-" + v, "LSM")),
        ("Timelapse intervalSec='abc'", _sub_attr(xml, "intervalSec", lambda _v: "abc", "Timelapse")),
        ("CaptureMode mode=7", _sub_attr(xml, "mode", lambda _v: "7", "CaptureMode")),
        ("Wavelengths emptied", re.sub(r"<Wavelength\b[^>]*/>", "", xml)),
        ("Streaming flybackFrames=-1", _sub_attr(xml, "flybackFrames", lambda _v: "-1", "Streaming")),
    ]
    for label, new in edits:
        if new is not None and (new != xml or label.startswith("XML")):
            plan.add(
                "metadata-edit", f"Experiment.xml: {label}", (xml_rel, _const(new.encode(errors="surrogateescape")))
            )
    plan.add("hostile-xml", "entity-expansion bomb in Experiment.xml", (xml_rel, _const(_bomb(xml).encode())))
    plan.add("hostile-xml", "external entity in Experiment.xml", (xml_rel, _const(_external(xml).encode())))


def _attr(xml: str, tag: str, attr: str) -> str | None:
    match = re.search(rf'<{tag}\b[^>]*?\s{attr}="([^"]*)"', xml)
    return match.group(1) if match else None


# --- generated sources ----------------------------------------------------------------------------------

_UUID = "urn:uuid:00000000-0000-4000-8000-00000000f022"


def _pixels(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray[Any, Any]:
    info = np.iinfo(np.dtype(dtype))
    return np.random.default_rng(seed).integers(0, min(int(info.max), 4000) + 1, size=shape, dtype=dtype)


def _write_ome_t7z5c1(path: Path) -> None:
    import tifffile

    metadata = {
        "axes": "TZCYX",
        "UUID": _UUID,
        "PhysicalSizeX": 0.5,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": 0.5,
        "PhysicalSizeYUnit": "µm",
        "PhysicalSizeZ": 2.0,
        "PhysicalSizeZUnit": "µm",
        "TimeIncrement": 1.5,
        "TimeIncrementUnit": "s",
        "Channel": {"Name": ["GFP"]},
    }
    tifffile.imwrite(
        path, _pixels((7, 5, 1, 24, 20), "uint16", 1), ome=True, photometric="minisblack", metadata=metadata
    )


def _write_ome_multichannel(path: Path) -> None:
    import tifffile

    metadata = {
        "axes": "ZCYX",
        "UUID": _UUID,
        "PhysicalSizeX": 0.25,
        "PhysicalSizeY": 0.25,
        "PhysicalSizeZ": 1.0,
        "Channel": {"Name": ["DAPI", "GFP", "RFP"]},
    }
    data = _pixels((4, 3, 16, 20), "uint8", 2)
    tifffile.imwrite(path, data, ome=True, photometric="minisblack", compression="zlib", metadata=metadata)


def _write_imagej(path: Path) -> None:
    import tifffile

    data = _pixels((5, 2, 24, 16), "uint16", 3)
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"axes": "ZCYX", "spacing": 1.5, "unit": "um"},
    )


def _write_bigtiff_pyramid(path: Path) -> None:
    import tifffile

    data = _pixels((2, 64, 64), "uint16", 4)
    metadata = {
        "axes": "CYX",
        "UUID": _UUID,
        "PhysicalSizeX": 0.5,
        "PhysicalSizeY": 0.5,
        "Channel": {"Name": ["a", "b"]},
    }
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tif:
        opts = {"photometric": "minisblack", "tile": (16, 16)}
        tif.write(data, subifds=2, metadata=metadata, **opts)
        tif.write(data[:, ::2, ::2], subfiletype=1, **opts)
        tif.write(data[:, ::4, ::4], subfiletype=1, **opts)


def _write_plain_pages(path: Path) -> None:
    import tifffile

    with tifffile.TiffWriter(path) as tif:
        for page in _pixels((6, 16, 24), "uint16", 5):
            tif.write(page, photometric="minisblack", metadata=None)


def _ngff_multiscale(axes: list[dict[str, str]], scales: list[list[float]], name: str) -> dict[str, Any]:
    return {
        "name": name,
        "axes": axes,
        "datasets": [
            {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": s}]} for i, s in enumerate(scales)
        ],
    }


def _omero(names: list[str], colours: list[str]) -> dict[str, Any]:
    window = {"min": 0, "max": 4000, "start": 0, "end": 4000}
    return {
        "channels": [
            {"label": n, "color": c, "active": True, "window": window} for n, c in zip(names, colours, strict=True)
        ]
    }


def _write_ngff(path: Path, version: str) -> None:
    import zarr

    v3 = version == "0.5"
    data = _pixels((2, 2, 3, 16, 16), "uint16", 6 if v3 else 7)
    axes = [
        {"name": "t", "type": "time", "unit": "second"},
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    scales = [[2.0, 1.0, 1.5, 0.5, 0.5], [2.0, 1.0, 1.5, 1.0, 1.0]]
    multiscale = _ngff_multiscale(axes, scales, "generated")
    omero = _omero(["ch0", "ch1"], ["FF0000", "00FF00"])
    group = zarr.open_group(path, mode="w", zarr_format=3 if v3 else 2)
    if v3:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale], "omero": omero}
    else:
        group.attrs.update({"multiscales": [{**multiscale, "version": "0.4"}], "omero": omero})
    for i, level in enumerate((data, data[..., ::2, ::2])):
        opts: dict[str, Any] = {"compressors": None} if not v3 else {}
        if not v3:
            opts["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        arr = group.create_array(str(i), shape=level.shape, chunks=(1, 1, 1, 16, 16), dtype=level.dtype, **opts)
        arr[...] = level


_THORLABS_XML = """<?xml version="1.0"?>
<ThorImageExperiment>
  <Date date="05/05/2020 17:14:26" uTime="1588691666" />
  <Wavelengths>
    <Wavelength name="ChanA" exposureTimeMS="0" />
    <Wavelength name="ChanB" exposureTimeMS="0" />
    <ChannelEnable Set="3" />
  </Wavelengths>
  <ZStage name="Z" steps="2" stepSizeUM="1.5" enable="1" />
  <Timelapse timepoints="3" intervalSec="2" triggerMode="0" />
  <LSM name="GG" pixelX="12" pixelY="10" pixelSizeUM="0.5" frameRate="10" />
  <Streaming enable="0" frames="1" zFastEnable="0" flybackFrames="0" />
  <CaptureMode mode="0" />
  <RawData onlyEnabledChannels="1" />
</ThorImageExperiment>
"""


def _write_thorlabs(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "Experiment.xml").write_text(_THORLABS_XML)
    _pixels((3, 2, 2, 10, 12), "uint16", 8).astype("<u2").tofile(path / "Image_0001_0001.raw")


_GENERATED: tuple[tuple[str, str, Callable[[Path], None]], ...] = (
    ("ome_t7z5c1.ome.tif", "ome-tiff", _write_ome_t7z5c1),
    ("ome_z4c3_zlib.ome.tif", "ome-tiff", _write_ome_multichannel),
    ("imagej_zc.tif", "imagej", _write_imagej),
    ("bigtiff_subifd_pyramid.ome.tif", "bigtiff", _write_bigtiff_pyramid),
    ("plain_pages.tif", "tiff", _write_plain_pages),
    ("ngff04.ome.zarr", "ome-zarr", lambda p: _write_ngff(p, "0.4")),
    ("ngff05.ome.zarr", "ome-zarr", lambda p: _write_ngff(p, "0.5")),
    ("thorlabs_raw", "thorlabs", _write_thorlabs),
)


def _sample_sources(samples: Path) -> list[Source]:
    manifest = samples / "MANIFEST.json"
    if not manifest.is_file():
        return []
    out = []
    for key, entry in sorted(json.loads(manifest.read_text())["files"].items()):
        fmt = _SAMPLE_FORMATS.get(entry["format"])
        module = _OPTIONAL.get(fmt or "")
        if fmt is None or (module and importlib.util.find_spec(module) is None):
            continue
        path = samples / key
        if fmt == "tiff" and path.is_file() and path.read_bytes()[2:4] in (b"\x2b\x00", b"\x00\x2b"):
            fmt = "bigtiff"
        if path.exists():
            out.append(Source(key, fmt, path))
    return out


def sources(work: Path, samples: Path | None = SAMPLES) -> list[Source]:
    """Return the intact sources, writing the generated ones into ``work/generated`` if absent.

    Parameters
    ----------
    work
        A folder owned by the caller.
    samples
        The shared sample folder (``None`` or a missing folder: generated sources only).

    Returns
    -------
    list of Source
        Generated sources first, then the samples in key order.
    """
    out = []
    gen = Path(work) / "generated"
    gen.mkdir(parents=True, exist_ok=True)
    for name, fmt, write in _GENERATED:
        path = gen / name
        if not path.exists():
            tmp = gen / f".{name}.partial"
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
            write(tmp)
            tmp.rename(path)
        out.append(Source(f"gen/{name}", fmt, path))
    if samples is not None:
        out += _sample_sources(Path(samples))
    return out


# --- planning -------------------------------------------------------------------------------------------

_PLANNERS: dict[str, Callable[[_Plan], None]] = {
    "tiff": _plan_tiff,
    "bigtiff": _plan_tiff,
    "ome-tiff": _plan_tiff,
    "imagej": _plan_tiff,
    "lsm": _plan_tiff,
    "czi": _plan_czi,
    "lif": _plan_lif,
    "nd2": _plan_nd2,
    "ome-zarr": _plan_zarr,
    "thorlabs": _plan_thorlabs,
}


def _random_files(seed: int) -> list[Mutant]:
    """Random bytes under known suffixes: nothing to compare with, so any successful read is wrong."""
    out = []
    for i, suffix in enumerate((".ome.tif", ".czi", ".lif", ".nd2", ".tif")):
        rng = np.random.default_rng(_stable_seed(seed, "random", suffix))
        data = rng.integers(0, 256, size=4096 + 512 * i, dtype=np.uint8).tobytes()
        out.append(
            Mutant(
                id=f"random{suffix}#mislabel-000",
                format="random",
                kind="mislabel",
                source=None,
                description=f"4 KiB of random bytes named noise{suffix}",
                origin=None,
                name=f"noise{suffix}",
                edits=(("", _const(data)),),
            )
        )
    # a TIFF header in front of random bytes, and a CZI magic in front of random bytes
    for magic, suffix in ((b"II*\x00\x08\x00\x00\x00", ".tif"), (b"ZISRAWFILE".ljust(16, b"\0"), ".czi")):
        rng = np.random.default_rng(_stable_seed(seed, "magic", suffix))
        data = magic + rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes()
        out.append(
            Mutant(
                id=f"random{suffix}#mislabel-001",
                format="random",
                kind="mislabel",
                source=None,
                description=f"{suffix} magic number followed by random bytes",
                origin=None,
                name=f"magic{suffix}",
                edits=(("", _const(data)),),
            )
        )
    return out


def plan(sources_: Sequence[Source], seed: int = 0) -> list[Mutant]:
    """Return every mutant of the sources, in a deterministic order.

    Parameters
    ----------
    sources_
        The intact sources (see :func:`sources`).
    seed
        Seed of every random choice (positions of flips and random truncations).

    Returns
    -------
    list of Mutant
    """
    out: list[Mutant] = []
    for source in sources_:
        p = _Plan(source, seed)
        _PLANNERS[source.format](p)
        out += p.mutants
    return out + _random_files(seed)


def bounded(mutants: Sequence[Mutant], per_stratum: int = 2, seed: int = 0) -> list[Mutant]:
    """Return a deterministic stratified subset: up to ``per_stratum`` mutants per (format, kind).

    Within a stratum the mutants are taken round-robin over the sources (generated
    sources first), so each stratum mixes sources; the choice inside a source is
    seeded.

    Parameters
    ----------
    mutants
        The full plan.
    per_stratum
        Mutants kept per (format, kind) pair.
    seed
        Seed of the choice inside each source.

    Returns
    -------
    list of Mutant
        In the order of ``mutants``.
    """
    strata: dict[tuple[str, str], dict[str | None, list[Mutant]]] = {}
    for m in mutants:
        strata.setdefault((m.format, m.kind), {}).setdefault(m.source or m.id, []).append(m)
    keep: set[str] = set()
    for (fmt, kind), by_source in strata.items():
        queues = []
        for src, items in by_source.items():
            rng = np.random.default_rng(_stable_seed(seed, "bounded", fmt, kind, src))
            queues.append([items[i] for i in rng.permutation(len(items))])
        queues.sort(key=lambda q: (not (q[0].source or "").startswith("gen/"), q[0].source or q[0].id))
        taken = 0
        while taken < per_stratum and any(queues):
            for q in queues:
                if q and taken < per_stratum:
                    keep.add(q.pop(0).id)
                    taken += 1
    return [m for m in mutants if m.id in keep]


# --- materialising --------------------------------------------------------------------------------------


def _clone_tree(src: Path, dst: Path) -> None:
    """Copy a folder; members larger than 1 MiB are symlinked (they are replaced, never written through)."""
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.stat().st_size > _LINK_BYTES:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path.resolve())
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    dst.mkdir(parents=True, exist_ok=True)


def materialize(mutant: Mutant, dest: Path) -> Path:
    """Write the mutant into the folder ``dest`` (created) and return its path.

    Parameters
    ----------
    mutant
        A planned mutant.
    dest
        An empty folder owned by the caller.

    Returns
    -------
    Path
        ``dest / mutant.name``: the damaged file or folder.
    """
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / mutant.name
    if mutant.origin is not None and mutant.origin.is_dir():
        _clone_tree(mutant.origin, target)
        for rel, edit in mutant.edits:
            member = target / rel
            old = member.read_bytes() if member.exists() else b""
            new = edit(old)
            member.unlink(missing_ok=True)
            if new is not None:
                member.parent.mkdir(parents=True, exist_ok=True)
                member.write_bytes(new)
        return target
    data: bytes | None = mutant.origin.read_bytes() if mutant.origin is not None else b""
    for rel, edit in mutant.edits:
        if rel:
            raise ValueError(f"{mutant.id}: a single-file mutant edits only the file itself, not {rel!r}")
        data = edit(data) if data is not None else None
    if data is not None:
        target.write_bytes(data)
    return target


def generate(
    out: Path, seed: int = 0, *, subset: bool = False, samples: Path | None = SAMPLES
) -> list[tuple[Mutant, Path]]:
    """Write every mutant (or the bounded subset) into ``out/mutants`` and list them in ``out/mutants.json``.

    Parameters
    ----------
    out
        A folder owned by the caller; generated sources go to ``out/generated``.
    seed
        Seed of the plan.
    subset
        Only the bounded stratified subset.
    samples
        The shared sample folder, or ``None`` for generated sources only.

    Returns
    -------
    list of (Mutant, Path)
        Each mutant and where it was written.
    """
    out = Path(out)
    mutants = plan(sources(out, samples), seed)
    if subset:
        mutants = bounded(mutants, seed=seed)
    written = []
    for i, m in enumerate(mutants):
        written.append((m, materialize(m, out / "mutants" / f"{i:05d}")))
    listing = [{**m.summary(), "path": str(p.relative_to(out))} for m, p in written]
    (out / "mutants.json").write_text(json.dumps(listing, indent=1))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the mutants into a folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write into (created)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bounded", action="store_true", help="only the bounded stratified subset")
    parser.add_argument("--no-samples", action="store_true", help="generated sources only")
    args = parser.parse_args(argv)
    written = generate(args.out, args.seed, subset=args.bounded, samples=None if args.no_samples else SAMPLES)
    counts: dict[tuple[str, str], int] = {}
    for m, _p in written:
        counts[m.format, m.kind] = counts.get((m.format, m.kind), 0) + 1
    for (fmt, kind), n in sorted(counts.items()):
        print(f"{fmt:10s} {kind:14s} {n:5d}")
    print(f"{len(written)} mutants in {args.out / 'mutants'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
