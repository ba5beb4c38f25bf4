"""Readers from other packages, through the ``omio.readers`` entry-point group."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile

import omio
from omio.metadata import make_ome
from omio.readers import ImageSource, SceneSelector, find_reader, readers
from omio.testing import check_reader_conformance


def _load_npy(path: str) -> np.ndarray[Any, Any]:
    return np.load(path)


class NpyReader:
    """A third-party reader as a plugin author writes it: 5-D TZCYX ``.npy`` files."""

    name = "npy-plugin"
    suffixes = (".npy",)

    def sniff(self, path: Path, head: bytes) -> bool:
        return head.startswith(b"\x93NUMPY")

    def scenes(self, path: Path) -> list[str | None]:
        return [None]

    def open(self, path: Path, *, scene: SceneSelector = 0, axes: str | None = None, level: int = 0) -> ImageSource:
        with open(path, "rb") as fh:
            np.lib.format.read_magic(fh)
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        data = da.from_delayed(dask.delayed(_load_npy)(str(path)), shape, dtype)
        return ImageSource(data=data, ome=make_ome(shape, dtype), path=Path(path), format="npy")


class GreedyReader(NpyReader):
    """Claims every file: must never take a file from a built-in reader."""

    name = "greedy"

    def sniff(self, path: Path, head: bytes) -> bool:
        return True


class ShadowTiffReader(NpyReader):
    """Reuses a built-in reader's name."""

    name = "tiff"


class NotAReader:
    """Has no sniff, open or scenes."""

    name = "not-a-reader"


def _fail_on_load() -> None:
    raise RuntimeError("plugin import failed")


ENTRY_POINTS = {
    "npy": "tests.test_plugins:NpyReader",
    "greedy": "tests.test_plugins:GreedyReader",
    "shadow": "tests.test_plugins:ShadowTiffReader",
    "incomplete": "tests.test_plugins:NotAReader",
    "missing": "tests.test_plugins:DoesNotExist",
    "crashing": "tests.test_plugins:_fail_on_load",
}


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Install fake ``omio.readers`` entry points; yields the warning messages of loading them."""
    real = importlib.metadata.entry_points

    def entry_points(**params: Any) -> Any:
        if params.get("group") != "omio.readers":
            return real(**params)
        return [importlib.metadata.EntryPoint(n, v, "omio.readers") for n, v in ENTRY_POINTS.items()]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    readers.cache_clear()
    with pytest.warns(UserWarning) as record:
        readers()
    yield [str(w.message) for w in record]
    readers.cache_clear()


def test_plugin_reader_is_used_for_its_format_and_passes_conformance(plugins: list[str], tmp_path: Path) -> None:
    path = tmp_path / "stack.npy"
    data = np.arange(2 * 3 * 2 * 4 * 5, dtype="uint16").reshape(2, 3, 2, 4, 5)
    np.save(path, data)
    reader = find_reader(path)
    assert type(reader).__name__ == "NpyReader" and reader.name == "npy-plugin"  # loaded by the entry point
    check_reader_conformance(reader, path)
    ds = omio.open(path)
    np.testing.assert_array_equal(ds.to_numpy(), data)
    assert ds.metadata["format"] == "npy"


def test_broken_plugins_warn_by_name_and_never_hide_builtins(plugins: list[str], tmp_path: Path) -> None:
    text = "\n".join(plugins)
    for name in ("incomplete", "missing", "crashing", "shadow"):
        assert f"'{name}'" in text, f"no warning names the broken plugin {name!r}: {plugins}"
    assert "plugin import failed" in text
    names = [r.name for r in readers()]
    assert names.count("tiff") == 1 and "not-a-reader" not in names
    assert names.index("greedy") > names.index("olympus")  # plugins come after every built-in
    tif = tmp_path / "a.tif"
    tifffile.imwrite(tif, np.zeros((4, 5), dtype="uint8"))
    # neither the shadowing nor the greedy plugin takes it
    assert type(find_reader(tif)).__module__ == "omio.readers.tiff"


def test_greedy_plugin_only_gets_what_no_builtin_recognises(plugins: list[str], tmp_path: Path) -> None:
    unknown = tmp_path / "notes.txt"
    unknown.write_text("not an image")
    assert find_reader(unknown).name == "greedy"
