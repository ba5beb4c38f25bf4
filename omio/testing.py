"""Public test helpers: dataset equality and reader conformance checks.

Plugin authors can run :func:`check_reader_conformance` on their reader and a sample
file; omio's own test suite uses it for every built-in reader.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from omio.dataset import MicroscopyDataset
from omio.dims import DIMS
from omio.lazy_ome import LazyOME
from omio.readers._base import ImageSource, Reader, is_url
from omio.readers._handles import close_cached_handles
from omio.record import ImageRecord

__all__ = ["assert_dataset_equal", "check_reader_conformance", "open_files"]


def open_files(path: str | os.PathLike[str]) -> list[str]:
    """Return the file descriptors of this process that point into ``path`` (a file or folder)."""
    target = str(Path(path).resolve())
    out: list[str] = []
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return out
    for fd in fd_dir.iterdir():
        try:
            dest = os.readlink(fd)
        except OSError:
            continue
        if dest == target or dest.startswith(target.rstrip("/") + "/"):
            out.append(dest)
    return out


def assert_dataset_equal(
    actual: MicroscopyDataset,
    expected: MicroscopyDataset,
    *,
    check_pixels: bool = True,
    rtol: float = 1e-6,
) -> None:
    """Assert that two datasets have equal shape, dtype, metadata and (optionally) pixels.

    Compares physical pixel sizes (after unit conversion, relative tolerance
    ``rtol``), time increment, channel names, the image name, the origin and the
    plane table (:attr:`~omio.MicroscopyDataset.planes`, values and units).
    """
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    for axis in ("X", "Y", "Z"):
        a, e = actual.physical_pixel_sizes[axis], expected.physical_pixel_sizes[axis]
        assert (a is None) == (e is None), f"physical size {axis}: {a} != {e}"
        if a is not None and e is not None:
            assert np.isclose(a.to(e.units).magnitude, e.magnitude, rtol=rtol), f"physical size {axis}: {a} != {e}"
    a_t, e_t = actual.time_increment, expected.time_increment
    assert (a_t is None) == (e_t is None), f"time increment {a_t} != {e_t}"
    if a_t is not None and e_t is not None:
        assert np.isclose(a_t.to(e_t.units).magnitude, e_t.magnitude, rtol=rtol), f"time increment {a_t} != {e_t}"
    assert actual.channel_names == expected.channel_names, (
        f"channels {actual.channel_names} != {expected.channel_names}"
    )
    assert actual.name == expected.name, f"name {actual.name!r} != {expected.name!r}"
    for axis in ("X", "Y", "Z", "T"):
        a_o, e_o = actual.origin[axis], expected.origin[axis]
        assert (a_o is None) == (e_o is None), f"origin {axis}: {a_o} != {e_o}"
        if a_o is not None and e_o is not None:
            assert np.isclose(a_o.to(e_o.units).magnitude, e_o.magnitude, rtol=rtol), f"origin {axis}: {a_o} != {e_o}"
    a_p, e_p = actual.planes, expected.planes
    assert a_p.attrs["units"] == e_p.attrs["units"], f"plane table units {a_p.attrs['units']} != {e_p.attrs['units']}"
    assert list(a_p.index) == list(e_p.index) and list(a_p.columns) == list(e_p.columns), (
        f"plane table rows or columns differ: {len(a_p)} x {list(a_p.columns)} != {len(e_p)} x {list(e_p.columns)}"
    )
    np.testing.assert_allclose(a_p.to_numpy(), e_p.to_numpy(), rtol=rtol, err_msg="plane table values differ")
    if check_pixels:
        np.testing.assert_array_equal(actual.to_numpy(), expected.to_numpy())


def check_reader_conformance(reader: Reader, path: str | os.PathLike[str], **options: Any) -> ImageSource:
    """Check that a reader honours omio's reader contract on one file.

    Checks: the file is recognised by ``sniff``; ``open`` reads no pixels (no dask
    task runs) and leaves no file open; the result has dims TZCYX and an OME model
    matching its shape and dtype; ``scenes`` agrees; the dask graph pickles and the
    unpickled graph computes the same first plane after every cached handle was
    closed; computing leaves nothing open once the handle cache is cleared. ``path``
    may be a URL (a ``str``) for a reader that opens URLs.

    Returns
    -------
    ImageSource
        What the reader returned, for further checks.
    """
    import dask

    p: Any = path if is_url(path) else Path(path)  # a URL (an OME-Zarr) goes to the reader as the string given
    head = p.read_bytes()[:512] if isinstance(p, Path) and p.is_file() else b""
    assert reader.sniff(p, head), f"{reader.name} does not recognise {p}"
    close_cached_handles()
    calls: list[Any] = []

    def _forbid(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        raise AssertionError(f"{reader.name}.open computed pixel data")

    with dask.config.set(scheduler=_forbid):
        source = reader.open(p, **options)
        ome = source.ome.model() if isinstance(source.ome, LazyOME) else source.ome
    assert not calls, f"{reader.name}.open computed pixel data"
    assert not open_files(p), f"{reader.name}.open left files open: {open_files(p)}"
    assert source.data.ndim == len(DIMS), f"{reader.name} returned {source.data.ndim} dims, not TZCYX"
    if isinstance(source.ome, LazyOME):
        stated, built = source.ome.record, ImageRecord.of(ome)
        assert stated == built, f"{reader.name}: labels stated before the OME model {stated} != the model's {built}"
    px = ome.images[0].pixels
    declared = (px.size_t, px.size_z, px.size_c, px.size_y, px.size_x)
    assert declared == tuple(source.data.shape), f"OME sizes {declared} != data shape {source.data.shape}"
    assert len(px.channels) == px.size_c, "one OME Channel per C index is required"
    assert list(reader.scenes(p)) == list(source.scenes), "scenes() disagrees with open().scenes"
    first = np.asarray(source.data[0, 0, 0].compute())
    clone = pickle.loads(pickle.dumps(source.data))
    close_cached_handles()
    again = np.asarray(clone[0, 0, 0].compute(scheduler="sync"))
    np.testing.assert_array_equal(first, again)
    close_cached_handles()
    assert not open_files(p), f"files left open after compute: {open_files(p)}"
    return source
