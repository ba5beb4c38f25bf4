"""Thorlabs RAW files described by a YAML sidecar instead of ``Experiment.xml`` (as in OMIO 0.3).

The sidecar ``<raw stem>_metadata.yaml`` (or the only ``.yaml`` / ``.yml`` file of the
folder) states ``T``, ``Z``, ``C``, ``Y``, ``X`` and ``bits``, and optionally
``PhysicalSizeX/Y/Z``, ``PixelUnit``, ``TimeIncrement`` and ``TimeIncrementUnit``; any
other key is kept as an annotation. The pixels are a C-ordered TZCYX stream; its size
must be exactly what the sidecar states.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np

from omio._compat_meta import NAMESPACE
from omio.errors import FileFormatError, MetadataError

if TYPE_CHECKING:
    from omio.dataset import MicroscopyDataset

_SIZE_KEYS = ("T", "Z", "C", "Y", "X")
_KNOWN_KEYS = frozenset(
    {*_SIZE_KEYS, "bits", "PhysicalSizeX", "PhysicalSizeY", "PhysicalSizeZ", "PixelUnit", "pixelunit"}
    | {"TimeIncrement", "TimeIncrementUnit"}
)


def _yaml() -> Any:
    import yaml  # a dependency of dask

    return yaml


def sidecar_path(raw: str | Path) -> Path:
    """Where :func:`create_thorlabs_raw_yaml` writes the sidecar of ``raw``."""
    path = Path(raw)
    return path.with_name(f"{path.stem}_metadata.yaml")


def find_sidecar(raw: str | Path) -> Path | None:
    """The YAML sidecar describing ``raw``, or ``None`` when its folder has none.

    Raises
    ------
    omio.errors.MetadataError
        When the folder holds several YAML files and none is ``<stem>_metadata.yaml``.
    """
    own = sidecar_path(raw)
    if own.is_file():
        return own
    found = sorted(p for p in Path(raw).parent.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
    if len(found) > 1:
        raise MetadataError(
            f"{Path(raw).parent} holds several YAML files ({', '.join(p.name for p in found)}); "
            f"name the one describing {Path(raw).name} {own.name}"
        )
    return found[0] if found else None


def uses_sidecar(raw: str | Path) -> bool:
    """Whether ``raw`` is a ``.raw`` file without ``Experiment.xml`` next to it but with a YAML sidecar."""
    path = Path(raw)
    if path.suffix.lower() != ".raw" or not path.is_file() or (path.parent / "Experiment.xml").is_file():
        return False
    return find_sidecar(path) is not None


def create_thorlabs_raw_yaml(
    fname: str,
    T: int = 1,
    Z: int = 1,
    C: int = 1,
    Y: int = 1024,
    X: int = 1024,
    bits: int = 16,
    physicalsize_xyz: tuple[float, float, float] | list[float] | None = None,
    pixelunit: str = "micron",
    time_increment: float | None = None,
    time_increment_unit: str | None = None,
    annotations: dict[str, Any] | None = None,
    verbose: bool = True,
) -> None:
    """Write the YAML sidecar ``<stem>_metadata.yaml`` next to a Thorlabs ``.raw`` file.

    Parameters
    ----------
    fname
        The ``.raw`` file (or its folder: the sidecar is then ``Image_metadata.yaml``).
    T, Z, C, Y, X
        The sizes of the pixel stream.
    bits
        Bits per pixel: 8 (uint8), 16 (uint16) or 32 (float32).
    physicalsize_xyz
        ``(X, Y, Z)`` pixel sizes in ``pixelunit``; left out when ``None`` (unknown).
    pixelunit
        The length unit.
    time_increment, time_increment_unit
        The time step and its unit (default ``"seconds"``); left out when ``None``.
    annotations
        Further keys, kept as annotations of the image.
    verbose
        Print the path written.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, omio
    >>> raw = pathlib.Path(tempfile.mkdtemp()) / "Image_0001_0001.raw"
    >>> np.zeros((2, 4, 5), "uint16").tofile(raw)
    >>> create_thorlabs_raw_yaml(str(raw), T=2, Y=4, X=5, verbose=False)
    >>> omio.imread(str(raw), verbose=False)[0].shape
    (2, 1, 1, 4, 5)
    """
    path = Path(fname)
    target = sidecar_path(path / "Image.raw" if path.is_dir() else path)
    content: dict[str, Any] = {key: int(value) for key, value in zip(_SIZE_KEYS, (T, Z, C, Y, X), strict=True)}
    content["bits"] = int(bits)
    if physicalsize_xyz is not None:
        for axis, value in zip("XYZ", physicalsize_xyz, strict=True):
            content[f"PhysicalSize{axis}"] = float(value)
    content["PixelUnit"] = pixelunit
    if time_increment is not None:
        content["TimeIncrement"] = float(time_increment)
        content["TimeIncrementUnit"] = time_increment_unit or "seconds"
    content.update(annotations or {})
    target.write_text(_yaml().safe_dump(content, sort_keys=True), encoding="utf-8")
    if verbose:
        print(f"Wrote {target}")


def _dtype(bits: int, where: Path) -> np.dtype[Any]:
    table = {8: np.uint8, 16: np.uint16, 32: np.float32}
    if bits not in table:
        raise MetadataError(f"{where}: bits must be 8, 16 or 32, got {bits}")
    return np.dtype(table[bits])


def _read_plane(path: str, offset: int, shape: tuple[int, int], dtype: str) -> np.ndarray[Any, Any]:
    plane = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    return np.array(plane)


def load_sidecar(yaml_path: Path) -> dict[str, Any]:
    """The sidecar's content, with sizes checked to be positive integers."""
    content = _yaml().safe_load(yaml_path.read_text(encoding="utf-8"))
    if not isinstance(content, Mapping):
        raise MetadataError(f"{yaml_path}: a YAML mapping of T, Z, C, Y, X, bits is expected")
    for key in (*_SIZE_KEYS, "bits"):
        value = content.get(key, 16 if key == "bits" else None)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise MetadataError(f"{yaml_path}: {key} must be a positive integer, got {value!r}")
    return dict(content)


def open_with_sidecar(raw: str | Path) -> MicroscopyDataset:
    """Open a ``.raw`` file lazily as described by its YAML sidecar.

    Raises
    ------
    omio.errors.FileFormatError
        When the file's size is not what the sidecar's sizes and ``bits`` make.
    omio.errors.MetadataError
        When the sidecar is missing or not a mapping of positive sizes.
    """
    from omio.dataset import MicroscopyDataset
    from omio.units import quantity

    path = Path(raw)
    yaml_path = find_sidecar(path)
    if yaml_path is None:
        raise MetadataError(f"{path}: no Experiment.xml and no YAML sidecar; see create_thorlabs_raw_yaml")
    md = load_sidecar(yaml_path)
    sizes = tuple(int(md[k]) for k in _SIZE_KEYS)
    dtype = _dtype(int(md.get("bits", 16)), yaml_path)
    plane = sizes[3] * sizes[4] * dtype.itemsize
    expected = plane * sizes[0] * sizes[1] * sizes[2]
    actual = path.stat().st_size
    if actual != expected:
        raise FileFormatError(
            f"{path}: {actual} bytes, but {yaml_path.name} states T*Z*C*Y*X = {'*'.join(map(str, sizes))} "
            f"pixels of {dtype.itemsize} bytes = {expected} bytes; correct the sidecar"
        )
    planes = [
        da.from_delayed(_delayed_plane(str(path), i * plane, sizes[3:], dtype.str), shape=sizes[3:], dtype=dtype)
        for i in range(sizes[0] * sizes[1] * sizes[2])
    ]
    data = da.stack(planes).reshape(sizes)
    unit = str(md.get("PixelUnit") or md.get("pixelunit") or "micron")
    physical = {a: quantity(float(md[f"PhysicalSize{a}"]), unit) for a in "XYZ" if md.get(f"PhysicalSize{a}")}
    increment = md.get("TimeIncrement")
    ds = MicroscopyDataset.from_array(
        data,
        axes="TZCYX",
        physical_pixel_sizes=physical,
        time_increment=None if not increment else quantity(float(increment), str(md.get("TimeIncrementUnit") or "s")),
        name=path.stem,
    )
    provenance = {
        "original_filename": path.name,
        "original_parentfolder": path.parent.name,
        "original_filetype": "raw",
        "original_metadata_type": "thorlabs_yaml_metadata",
        "yaml_sidecar": yaml_path.name,
    }
    extra = {str(k): v if isinstance(v, str) else repr(v) for k, v in md.items() if k not in _KNOWN_KEYS}
    return ds.with_annotations(NAMESPACE, {**extra, **provenance})


def _delayed_plane(path: str, offset: int, shape: tuple[int, ...], dtype: str) -> Any:
    from dask.delayed import delayed

    return delayed(_read_plane, pure=True)(path, offset, shape, dtype)
