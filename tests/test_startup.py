"""What opening a file, printing it and reading a plane import: never the OME model, pint, napari or distributed.

Each check runs in a fresh interpreter (the modules a process has imported cannot be
unloaded). The OME model is still built, in full, when ``ds.ome`` asks for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from omio import units
from tests.test_oif import write_oif

HEAVY = ("pint", "ome_types", "napari", "distributed", "pint_xarray")

SAMPLE_FILES = {
    "tiff": "tiff/thorimage_ChanA_Preview_plain.tif",
    "ome-tiff": "ome-tiff/bioformats_artificial_multi-channel-z-series.ome.tif",
    "imagej": "imagej/neubias_xyzc_16bit__dna_conf_wf.tif",
    "lsm": "lsm/jimpipeline_test_512x512_u16.lsm",
    "czi": "czi/zen_celldivision_T3_Z5_C2.czi",
    "nd2": "nd2/pims_cluster.nd2",
    "lif": "lif/readlif_testdata_2channel_xz.lif",
    "ome-zarr": "ome-zarr/tiledb_CMU-1-Small-Region.ome.zarr",
    "thorlabs": "thorlabs/utils2p_mouse_kidney_raw_T5_C2",
}

OPEN_AND_PRINT = f"""
import sys
import omio
from omio.record import ImageRecord

ds = omio.open(sys.argv[1])
repr(ds)
ds.isel(T=0, Z=0, C=0).to_numpy()
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
model = ds.ome
assert len(model.images[0].pixels.channels) == ds.sizes["C"]
assert ImageRecord.of(model) == ds.record, (ImageRecord.of(model), ds.record)
print(sorted(m for m in ("ome_types",) if m in sys.modules))
"""


def run(code: str, *args: str) -> list[str]:
    """Run ``code`` in a fresh interpreter and return its output lines."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_import_omio_imports_nothing_heavy() -> None:
    assert run(f"import sys, omio; print(sorted(m for m in {HEAVY!r} if m in sys.modules))") == ["[]"]


@pytest.mark.parametrize("kind", sorted(SAMPLE_FILES))
def test_open_print_and_read_a_plane_import_nothing_heavy(samples: Path, kind: str) -> None:
    before, after = run(OPEN_AND_PRINT, str(samples / SAMPLE_FILES[kind]))
    assert before == "[]"
    assert after == "['ome_types']"  # the model is built when asked for


def test_open_print_and_read_a_plane_of_an_oif_import_nothing_heavy(tmp_path: Path) -> None:
    before, after = run(OPEN_AND_PRINT, str(write_oif(tmp_path)))
    assert before == "[]"
    assert after == "['ome_types']"


@pytest.mark.parametrize("kind", ["czi", "nd2", "lif", "ome-zarr"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_info_builds_no_ome_model(samples: Path, kind: str, as_json: bool) -> None:
    code = f"""
import sys
from omio.cli import main
status = main(["info", *sys.argv[1:]])
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
sys.exit(status)
"""
    lines = run(code, *(["--json"] if as_json else []), str(samples / SAMPLE_FILES[kind]))
    assert lines[-1] == "[]"
    if as_json:
        info = json.loads("\n".join(lines[:-1]))
        assert "Annotations" not in info
        assert info["PhysicalSizeXUnit"] in (None, "µm")


def test_unit_symbols_are_those_of_pint_and_ome() -> None:
    reg = units.registry()
    for name, (kind, _, symbol) in units._USUAL.items():
        assert format(reg.Unit(name), "~P") == symbol, name
        if kind == "[length]":
            assert units.ome_length_symbol(name) == units.ome_length_unit(name).value, name
        else:
            assert units.ome_time_symbol(name) == units.ome_time_unit(name).value, name
    assert units.symbol("reference_frame") == "reference_frame"
    assert units.ome_length_symbol("foot") == "ft"


XARRAY_PLANE = """
import sys
import warnings
import omio

warnings.simplefilter("error")  # importing pint-xarray later must not warn about an overridden accessor
ds = omio.open(sys.argv[1])
plane = ds.xarray.isel(T=0, Z=0, C=0).values
assert (plane == ds.isel(T=0, Z=0, C=0).to_numpy()[0, 0, 0]).all()
print(sorted(m for m in ("pint", "pint_xarray", "ome_types") if m in sys.modules))
if sys.argv[2] == "accessor":
    quantified = ds.xarray.pint.quantify()  # imports pint-xarray on first use
    print(quantified["X"].data.units)
import pint_xarray
import xarray as xr
assert type(vars(xr.DataArray)["pint"]).__module__ == "xarray.core.extensions", vars(xr.DataArray)["pint"]
print(type(ds.xarray.pint).__name__, type(ds.xarray.to_dataset(name="a").pint).__name__)
"""


@pytest.mark.parametrize("first", ["accessor", "import"])
def test_xarray_path_imports_pint_xarray_only_for_its_accessor(samples: Path, first: str) -> None:
    path = samples / SAMPLE_FILES["czi"]
    lines = run(XARRAY_PLANE, str(path), first)
    assert lines[0] == "[]"  # reading through ds.xarray imports neither pint nor pint-xarray
    if first == "accessor":
        assert lines[1] == "micrometer"
    assert lines[-1] == "PintDataArrayAccessor PintDatasetAccessor"


CONVERT = """
import sys
import omio
import omio.units

omio.open(sys.argv[1]).isel(T=0, Z=0).to_ometiff(sys.argv[2])
print(omio.units._REGISTRY is None)
"""


@pytest.mark.parametrize("kind", sorted(SAMPLE_FILES))
def test_writing_an_ometiff_builds_no_unit_registry(samples: Path, tmp_path: Path, kind: str) -> None:
    # the OME-XML and resolution tags of the usual units need no pint registry (~0.2 s of one core held
    # beside the encoding threads)
    assert run(CONVERT, str(samples / SAMPLE_FILES[kind]), str(tmp_path / "out.ome.tif")) == ["True"]
