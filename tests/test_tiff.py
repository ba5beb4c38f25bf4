"""The TIFF family: ImageJ, LSM-like, OME-TIFF and plain TIFF written here, laziness, axes rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import omio
from omio.errors import DimensionError, FileFormatError
from omio.readers import _pread as pread_module
from omio.readers import tiff as tiff_reader


def stack(shape: tuple[int, ...], dtype: str = "uint16") -> np.ndarray[Any, Any]:
    return (np.arange(int(np.prod(shape))) % 4000).astype(dtype).reshape(shape)


def test_imagej_hyperstack_metadata(tmp_path: Path) -> None:
    data = stack((3, 4, 2, 16, 20))
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.25),
        metadata={"axes": "TZCYX", "spacing": 0.75, "unit": "micron", "finterval": 1.5},
    )
    ds = omio.open(path)
    assert ds.source.format == "imagej-tiff"
    assert ds.shape == (3, 4, 2, 16, 20)
    assert ds.physical_pixel_sizes["X"].magnitude == pytest.approx(0.25)  # type: ignore[union-attr]
    assert ds.physical_pixel_sizes["Z"].magnitude == pytest.approx(0.75)  # type: ignore[union-attr]
    assert ds.time_increment.to("second").magnitude == pytest.approx(1.5)  # type: ignore[union-attr]
    np.testing.assert_array_equal(ds.to_numpy(), data)
    assert ds.annotations["omio:original-metadata"]["imagej:spacing"] == "0.75"


def test_imagej_nanometre_unit_stays_nanometre(tmp_path: Path) -> None:
    path = tmp_path / "nm.tif"
    tifffile.imwrite(
        path,
        stack((2, 8, 8)),
        imagej=True,
        resolution=(1 / 80.0, 1 / 80.0),
        metadata={"axes": "ZYX", "unit": "nm", "spacing": 200},
    )
    ds = omio.open(path)
    x = ds.physical_pixel_sizes["X"]
    assert x is not None and str(x.units) == "nanometer" and x.magnitude == pytest.approx(80)
    back = omio.open(ds.to_ometiff(tmp_path / "nm.ome.tif"))
    bx = back.physical_pixel_sizes["X"]
    assert bx is not None and str(bx.units) == "nanometer" and bx.magnitude == pytest.approx(80)


def test_plain_multipage_tiff_rule_and_override(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    data = stack((6, 10, 12))
    tifffile.imwrite(path, data, metadata=None)
    ds = omio.open(path)
    assert ds.shape == (6, 1, 1, 10, 12)
    assert "taken as T" in ds.axes_rule and "taken as T" in repr(ds)
    as_z = omio.open(path, axes="ZYX")
    assert as_z.shape == (1, 6, 1, 10, 12) and "user" in as_z.axes_rule
    as_c = omio.open(path, axes="cyx")
    assert as_c.shape == (1, 1, 6, 10, 12)
    np.testing.assert_array_equal(as_c.to_numpy()[0, 0, 3], data[3])
    for bad in ("YX", "ZZX", "ABX", 5):
        with pytest.raises(DimensionError):
            omio.open(path, axes=bad)  # type: ignore[arg-type]


def test_plain_tiff_resolution_only_in_inch_or_cm(tmp_path: Path) -> None:
    cm = tmp_path / "cm.tif"
    tifffile.imwrite(cm, stack((8, 8)), resolution=(10000.0, 10000.0), resolutionunit="CENTIMETER", metadata=None)
    assert omio.open(cm).physical_pixel_sizes["X"].magnitude == pytest.approx(1.0)  # type: ignore[union-attr]
    none = tmp_path / "none.tif"
    tifffile.imwrite(none, stack((8, 8)), resolution=(5.0, 5.0), resolutionunit="NONE", metadata=None)
    assert omio.open(none).physical_pixel_sizes["X"] is None


def test_rgb_samples_become_channels(tmp_path: Path) -> None:
    path = tmp_path / "rgb.tif"
    data = stack((10, 12, 3), "uint8")
    tifffile.imwrite(path, data, photometric="rgb", metadata=None)
    ds = omio.open(path)
    assert ds.shape == (1, 1, 3, 10, 12) and ds.channel_names == ["R", "G", "B"]
    assert [c[:3] if c else None for c in ds.channel_colors] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    np.testing.assert_array_equal(ds.sel(C="B").to_numpy()[0, 0, 0], data[..., 2])


def test_multiseries_ome_tiff_scenes(tmp_path: Path) -> None:
    path = tmp_path / "two.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(stack((2, 8, 8)), metadata={"axes": "ZYX", "Name": "first"})
        tw.write(stack((3, 6, 6), "uint8"), metadata={"axes": "CYX", "Name": "second"})
    assert omio.scenes(path) == ["first", "second"]
    second = omio.open(path, scene="second")
    assert second.shape == (1, 1, 3, 6, 6) and second.dtype == np.uint8
    assert omio.open(path, scene=1).name == "second"
    both = omio.open_all(path)
    assert [d.name for d in both] == ["first", "second"]
    with pytest.raises(DimensionError, match="no image named"):
        omio.open(path, scene="third")
    with pytest.raises(DimensionError, match="scene 5"):
        omio.open(path, scene=5)


def test_multifile_ome_tiff_set(tmp_path: Path) -> None:
    """An OME-TIFF set whose planes are spread over two files (TiffData with UUID/FileName)."""
    import uuid

    data = stack((2, 8, 8))
    ids = [f"urn:uuid:{uuid.uuid4()}" for _ in range(2)]
    names = ["set_0.ome.tif", "set_1.ome.tif"]
    tiffdata = "".join(
        f'<TiffData FirstZ="{i}" IFD="0" PlaneCount="1"><UUID FileName="{names[i]}">{ids[i]}</UUID></TiffData>'
        for i in range(2)
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
        f'UUID="{{uuid}}"><Image ID="Image:0" Name="set"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" '
        'SizeX="8" SizeY="8" SizeZ="2" SizeC="1" SizeT="1" PhysicalSizeX="0.5">'
        f'<Channel ID="Channel:0:0" SamplesPerPixel="1"/>{tiffdata}</Pixels></Image></OME>'
    )
    for i in range(2):
        tifffile.imwrite(tmp_path / names[i], data[i], description=xml.replace("{uuid}", ids[i]), metadata=None)
    ds = omio.open(tmp_path / names[0])
    assert ds.shape == (1, 2, 1, 8, 8)
    np.testing.assert_array_equal(ds.to_numpy()[0, :, 0], data)


def test_opening_reads_no_pixels_and_slicing_reads_only_needed_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.ome.tif"
    data = stack((4, 10, 2, 64, 64))
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "TZCYX"})
    reads: list[int] = []
    original = tiff_reader._read_page

    def counting(path: str, index: int, shape: tuple[int, ...], dtype: str) -> Any:
        reads.append(index)
        return original(path, index, shape, dtype)

    monkeypatch.setattr(tiff_reader, "_read_page", counting)
    ds = omio.open(path)
    sub = ds.isel(T=2, Z=slice(3, 5), C=1)
    assert reads == []
    np.testing.assert_array_equal(sub.to_numpy()[0, :, 0], data[2, 3:5, 1])
    assert sorted(reads) == [2 * 20 + 3 * 2 + 1, 2 * 20 + 4 * 2 + 1]


def test_truncated_stack_raises_instead_of_returning_fewer_planes(tmp_path: Path) -> None:
    for kind in ("imagej", "ome", "plain"):
        path = tmp_path / f"{kind}.tif"
        data = stack((6, 64, 64))
        if kind == "imagej":
            tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZYX"})
        elif kind == "ome":
            tifffile.imwrite(path, data, ome=True, metadata={"axes": "ZYX"})
        else:
            tifffile.imwrite(path, data, metadata=None)
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) * 2 // 3])
        with pytest.raises(FileFormatError, match=str(path.name)):
            omio.open(path).to_numpy()


def test_lsm_sample_metadata(samples: Path) -> None:
    ds = omio.open(samples / "lsm" / "jimpipeline_test_512x512_u16.lsm")
    assert ds.source.format == "lsm"
    assert ds.scenes == [None]  # the thumbnail series is not an image
    assert ds.physical_pixel_sizes["Z"] is None  # Zeiss' 1e-19 m placeholder
    assert ds.channel_names == ["ChS1"]


@pytest.mark.parametrize(
    ("case", "direct", "pread"),
    [
        ("ome", True, True),
        ("imagej", True, True),
        ("plain-user-axes", True, True),
        ("rgb", False, False),  # samples move in front of Y, X: the chunked path reorders them
        ("big-endian", True, True),  # the bytes are swapped in place after the read
        ("compressed", True, False),  # tifffile decodes the pages into the buffer
        ("user-reordered", False, False),
    ],
)
def test_whole_read_fast_path_matches_the_chunked_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, direct: bool, pread: bool
) -> None:
    path = tmp_path / f"{case}.tif"
    axes = None
    if case == "ome":
        tifffile.imwrite(path, stack((2, 3, 2, 9, 7)), ome=True, metadata={"axes": "TZCYX"})
    elif case == "imagej":
        tifffile.imwrite(path, stack((2, 3, 2, 9, 7)), imagej=True, metadata={"axes": "TZCYX"})
    elif case == "plain-user-axes":
        tifffile.imwrite(path, stack((5, 9, 7)), photometric="minisblack")
        axes = "ZYX"
    elif case == "rgb":
        tifffile.imwrite(path, stack((3, 9, 7, 3), "uint8"), photometric="rgb")
    elif case == "big-endian":
        tifffile.imwrite(path, stack((4, 9, 7)), byteorder=">", photometric="minisblack")
    elif case == "compressed":
        tifffile.imwrite(path, stack((2, 3, 2, 9, 7)), ome=True, metadata={"axes": "TZCYX"}, compression="zlib")
    else:
        tifffile.imwrite(path, stack((4, 9, 7)), photometric="minisblack")
        axes = "YZX"
    ds = omio.open(path, axes=axes)
    expected = ds.data.compute(scheduler="sync")
    store_calls: list[int] = []
    real_store = omio.dataset.da.store

    def counting_store(*args: Any, **kwargs: Any) -> Any:
        store_calls.append(1)
        return real_store(*args, **kwargs)

    monkeypatch.setattr(omio.dataset.da, "store", counting_store)
    pread_calls: list[int] = []
    real_fill = pread_module.fill_from_file
    monkeypatch.setattr(pread_module, "fill_from_file", lambda *a, **k: (pread_calls.append(1), real_fill(*a, **k))[1])
    np.testing.assert_array_equal(ds.to_numpy(), expected)
    assert bool(store_calls) is not direct
    assert bool(pread_calls) is pread
    # Any change to the pixels leaves the fast path: a slice goes through the chunked graph.
    store_calls.clear()
    np.testing.assert_array_equal(ds.isel(Y=slice(1, 4)).to_numpy(), expected[:, :, :, 1:4])
    assert store_calls


def test_graph_name_is_the_same_in_another_process(tmp_path: Path) -> None:
    """Caches keyed by dask names (``MicroscopyDataset.cache``, dask's own) find the same file's array again."""
    import subprocess
    import sys

    path = tmp_path / "named.ome.tif"
    tifffile.imwrite(path, stack((2, 3, 16, 16)), ome=True, metadata={"axes": "TZYX"})
    code = f"import omio; print(omio.open({str(path)!r}).data.name)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == omio.open(path).data.name
    tifffile.imwrite(path, stack((2, 3, 16, 16)) + 1, ome=True, metadata={"axes": "TZYX"})  # same size, new pixels
    assert omio.open(path).data.name != other


def test_whole_read_of_a_file_rewritten_after_opening_reads_what_it_now_holds(tmp_path: Path) -> None:
    """The byte offset found on opening is used only while the file is unchanged (size and mtime)."""
    path = tmp_path / "a.ome.tif"
    tifffile.imwrite(path, stack((2, 3, 2, 9, 7)), ome=True, metadata={"axes": "TZCYX"})
    ds = omio.open(path)
    new = stack((2, 3, 2, 9, 7)) + 1
    tifffile.imwrite(path, new, ome=True, metadata={"axes": "TZCYX"}, compression="zlib")  # other offsets
    np.testing.assert_array_equal(ds.to_numpy(), new)
