"""Merging datasets: policies, laziness, invariants and provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omio._api import open as omio_open
from omio.dataset import MicroscopyDataset
from omio.errors import MergeError
from omio.merge import concat, merge_provenance
from omio.policies import SourceMeta, check_compatible, plan_merge

DIMS = "TZCYX"


def make(shape: tuple[int, ...], *, fill: int = 1, dtype: str = "uint16", **kw: Any) -> MicroscopyDataset:
    kw.setdefault("physical_pixel_sizes", {"X": 0.5, "Y": 0.5, "Z": 2.0})
    kw.setdefault("time_increment", 1.5)
    arr = np.full(shape, fill, dtype=dtype)
    return MicroscopyDataset.from_array(arr, axes="TZCYX", **kw)


class CountingArray:
    """An array-like that counts reads (to prove laziness)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self.dtype = np.dtype("uint8")
        self.ndim = len(shape)
        self.reads = 0

    def __getitem__(self, key: Any) -> np.ndarray[Any, Any]:
        out = np.ones(self.shape, self.dtype)[key]
        self.reads += out.size > 0  # dask probes the dtype with empty slices
        return out


def test_concat_is_lazy_and_padding_is_lazy() -> None:
    sources = [CountingArray((2, 1, 1, 8, 8)), CountingArray((1, 1, 1, 6, 8))]
    datasets = [MicroscopyDataset.from_array(da.from_array(s, chunks=(1, 1, 1, 8, 8)), axes="TZCYX") for s in sources]
    merged = concat(datasets, axis="T", policy="pad")
    assert merged.is_lazy
    assert [s.reads for s in sources] == [0, 0]
    values = merged.to_numpy()
    assert all(s.reads > 0 for s in sources)
    assert values.shape == (3, 1, 1, 8, 8)
    assert values[2, 0, 0, 6:].sum() == 0 and values[2, 0, 0, :6].min() == 1


@pytest.mark.parametrize(
    ("kind", "b_kwargs", "expected"),
    [
        ("size", {"shape": (1, 2, 1, 4, 4)}, "size Z is 2"),
        ("dtype", {"dtype": "uint8"}, "dtype is uint8"),
        ("pixel size", {"physical_pixel_sizes": {"X": 0.6, "Y": 0.5, "Z": 2.0}}, "physical size X is 0.6"),
        ("missing pixel size", {"physical_pixel_sizes": {"X": 0.5, "Y": 0.5}}, "physical size Z is None"),
        ("time increment", {"time_increment": 3.0}, "time increment is 3"),
        ("channel names", {"channel_names": ["RFP"]}, "channel names are ['RFP']"),
    ],
)
def test_strict_reports_each_mismatch_kind(kind: str, b_kwargs: dict[str, Any], expected: str) -> None:
    a = make((1, 1, 1, 4, 4), channel_names=["GFP"])
    kw = {"channel_names": ["GFP"], **b_kwargs}
    shape = kw.pop("shape", (1, 1, 1, 4, 4))
    b = make(shape, **kw)
    with pytest.raises(MergeError) as info:
        concat([a, b], axis="T", policy="strict", labels=["a.tif", "b.tif"])
    message = str(info.value)
    assert expected in message, kind
    assert "b.tif" in message and "a.tif" in message


def test_strict_lists_all_mismatches_at_once() -> None:
    a = make((1, 1, 1, 4, 4), channel_names=["GFP"])
    b = make((1, 2, 1, 4, 5), dtype="uint8", channel_names=["GFP"], physical_pixel_sizes={"X": 1, "Y": 0.5, "Z": 2})
    c = make((1, 1, 1, 3, 4), channel_names=["GFP"])
    with pytest.raises(MergeError) as info:
        concat([a, b, c], axis="T", labels=["a", "b", "c"])
    lines = str(info.value).splitlines()[1:]
    assert len(lines) == 5  # b: Z, X, dtype, pixel size X; c: Y
    assert sum("c: size Y is 3" in line for line in lines) == 1


def test_unit_conversion_and_tolerance() -> None:
    a = make((1, 1, 1, 4, 4), physical_pixel_sizes={"X": "0.5 um", "Y": "500 nm", "Z": "2 um"})
    b = make((1, 1, 1, 4, 4), physical_pixel_sizes={"X": "500.0000001 nm", "Y": "0.5 um", "Z": "0.002 mm"})
    assert concat([a, b], axis="Z").sizes["Z"] == 2
    c = make((1, 1, 1, 4, 4), physical_pixel_sizes={"X": "501 nm", "Y": "0.5 um", "Z": "2 um"})
    with pytest.raises(MergeError, match="physical size X"):
        concat([a, c], axis="Z")


def test_pad_never_mixes_scales_or_silently_promotes() -> None:
    a = make((1, 1, 1, 4, 4))
    with pytest.raises(MergeError, match="physical size Y"):
        concat([a, make((1, 1, 1, 5, 4), physical_pixel_sizes={"X": 0.5, "Y": 1, "Z": 2})], axis="T", policy="pad")
    b = make((1, 1, 1, 4, 4), dtype="uint8", fill=7)
    with pytest.raises(MergeError, match="dtype"):
        concat([a, b], axis="T", policy="pad")
    merged = concat([a, b], axis="T", policy="pad", promote_dtype=True)
    assert merged.dtype == np.uint16
    assert merged.to_numpy()[1].max() == 7
    assert merge_provenance(merged)["promoted_from"] == ["uint16", "uint8"]  # type: ignore[index]


def test_pad_refuses_mismatched_overlapping_channels() -> None:
    a = make((1, 1, 2, 4, 4), channel_names=["GFP", "RFP"])
    b = make((1, 1, 1, 4, 4), channel_names=["GFP"])
    assert concat([a, b], axis="T", policy="pad").channel_names == ["GFP", "RFP"]
    c = make((1, 1, 1, 4, 4), channel_names=["DAPI"])
    with pytest.raises(MergeError, match="mix channels"):
        concat([a, c], axis="T", policy="pad")


def test_coordinates_continue_and_channels_are_made_unique() -> None:
    a = make((2, 3, 1, 4, 4), channel_names=["GFP"])
    b = make((3, 2, 1, 4, 4), channel_names=["GFP"])
    t = concat([a, b], axis="T", policy="pad")
    np.testing.assert_allclose(t.xarray["T"].values, np.arange(5) * 1.5)
    assert t.xarray["T"].attrs["units"] == "second"
    z = concat([a.isel(T=0), b.isel(T=0)], axis="Z")
    np.testing.assert_allclose(z.xarray["Z"].values, np.arange(5) * 2.0)
    c = concat([a, a, make((2, 3, 1, 4, 4), channel_names=["GFP_2"])], axis="C")
    assert c.channel_names == ["GFP", "GFP_3", "GFP_2"]
    assert merge_provenance(c)["renamed_channels"] == [[1, "GFP", "GFP_3"]]  # type: ignore[index]


def test_provenance_survives_writing(tmp_path: Path) -> None:
    a = make((2, 1, 1, 4, 4), fill=1).with_annotations("lab:note", {"sample": "A"})
    b = make((1, 1, 1, 4, 6), fill=2)
    merged = concat([a, b], axis="T", policy="pad")
    back = omio_open(merged.to_ometiff(tmp_path / "m.ome.tif"))
    prov = merge_provenance(back)
    assert prov is not None
    assert prov["axis"] == "T" and prov["policy"] == "pad" and prov["n_sources"] == 2
    assert prov["omio_version"]
    first, second = prov["sources"]
    assert (first["start"], first["stop"], second["start"], second["stop"]) == (0, 2, 2, 3)
    assert second["shape"] == [1, 1, 1, 4, 6]
    assert first["padding"]["X"] == 2 and second["padding"]["X"] == 0
    assert first["annotations"]["lab:note"] == {"sample": "A"}
    np.testing.assert_array_equal(back.to_numpy(), merged.to_numpy())


def test_policies_are_pure_metadata_functions() -> None:
    a = SourceMeta("a", (1, 1, 2, 4, 4), np.dtype("uint8"), channel_names=("x", "y"))
    b = SourceMeta("b", (1, 1, 1, 4, 4), np.dtype("uint8"), channel_names=("z",))
    plan = plan_merge([a, b], axis="C")
    assert plan.shape == (1, 1, 3, 4, 4) and plan.channel_names == ("x", "y", "z")
    assert check_compatible([a, b], axis="T") == ["b: size C is 1, a has 2"]
    with pytest.raises(MergeError, match="merge axis"):
        plan_merge([a], axis="Y")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- hypothesis invariants

shapes = st.tuples(*(st.integers(1, 3) for _ in range(3)), st.integers(1, 5), st.integers(1, 5))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape_list=st.lists(shapes, min_size=1, max_size=4),
    axis=st.sampled_from(["T", "Z", "C"]),
    seed=st.integers(0, 2**16),
)
def test_pad_merge_invariants(shape_list: list[tuple[int, ...]], axis: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(1, 200, size=s, dtype=np.uint8) for s in shape_list]
    datasets = [MicroscopyDataset.from_array(a, axes="TZCYX") for a in arrays]
    merged = concat(datasets, axis=axis, policy="pad")  # type: ignore[arg-type]
    k = DIMS.index(axis)
    expected = [max(s[i] for s in shape_list) for i in range(5)]
    expected[k] = sum(s[k] for s in shape_list)
    assert merged.shape == tuple(expected)
    out = merged.to_numpy()
    covered = np.zeros(out.shape, dtype=bool)
    prov = merge_provenance(merged)
    assert prov is not None and len(prov["sources"]) == len(arrays)
    for arr, src in zip(arrays, prov["sources"], strict=True):
        assert src["shape"] == list(arr.shape)
        assert src["stop"] - src["start"] == arr.shape[k]
        where = tuple(slice(src["offset"][d], src["offset"][d] + n) for d, n in zip(DIMS, arr.shape, strict=True))
        np.testing.assert_array_equal(out[where], arr)
        covered[where] = True
        assert all(src["padding"][d] == expected[i] - arr.shape[i] for i, d in enumerate(DIMS) if d != axis)
    assert not out[~covered].any()  # padding is zero
    assert out[covered].min() >= 1


@settings(max_examples=20, deadline=None)
@given(shape=shapes, n=st.integers(2, 4), axis=st.sampled_from(["T", "Z", "C"]))
def test_strict_merge_of_matching_shapes(shape: tuple[int, ...], n: int, axis: str) -> None:
    datasets = [MicroscopyDataset.from_array(np.full(shape, i + 1, "uint8"), axes="TZCYX") for i in range(n)]
    merged = concat(datasets, axis=axis)  # type: ignore[arg-type]
    k = DIMS.index(axis)
    out = merged.to_numpy()
    assert out.shape[k] == n * shape[k]
    for i in range(n):
        part = np.take(out, range(i * shape[k], (i + 1) * shape[k]), axis=k)
        assert (part == i + 1).all()
