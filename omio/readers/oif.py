"""Reader for Olympus FluoView OIB and OIF files (through ``oiffile``).

An OIF dataset is a main settings file (``.oif``, UTF-16 ini text) next to a
``<name>.oif.files`` folder holding one TIFF per plane; an OIB file is the same set
stored in one OLE2 compound file. Opening reads the settings only; pixels are read
by dask tasks, one per plane TIFF, which capture the path and the plane's file name
and fetch the open dataset from the per-process handle cache, so graphs pickle and
run on any worker.

Mapping onto TZCYX (stated in ``ImageSource.axes_rule``): the main file's
``AxisOrder`` names the axes (T, Z, C, Y, X keep their meaning); other axes (the
lambda axis ``L``...) follow the rule of :mod:`omio.dims` (folded into C
channel-major). Planes the settings announce but the dataset lacks are 0.

Metadata: X and Y pixel sizes from ``[Reference Image Parameter]``
``Width/HeightConvertValue`` with their units, the Z step and the time interval from
the Z and T axes' ``Interval`` in their ``PixUnit`` (a T interval whose unit is not
a time unit is not used); channel names from ``CH Name``, dyes, excitation and
emission wavelengths from ``[Channel <i> Parameters]``. Every setting of the main
file is kept as original metadata.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omio import units
from omio.dims import to_tzcyx
from omio.errors import DimensionError, FileFormatError, MetadataError
from omio.lazy_ome import deferred_make_ome
from omio.readers._base import ImageSource, SceneSelector, select_scene
from omio.readers._handles import cached_handle
from omio.readers._lazy import array_from_chunks
from omio.readers._optional import library_errors, require
from omio.units import Measure

if TYPE_CHECKING:
    import oiffile

__all__ = ["OifReader"]

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""First bytes of an OLE2 compound file (OIB; also old Office documents, hence the suffix check)."""
SETTINGS_STARTS = (b"\xff\xfe[\x00", b"[")
"""First bytes of an Olympus settings file (UTF-16 with BOM, or UTF-8)."""


# --------------------------------------------------------------------------- handles and tasks


class _OifHandle:
    """An open OifFile shared by the dask tasks of one process (reads are serialised)."""

    def __init__(self, path: str) -> None:
        import oiffile

        self.oif = oiffile.OifFile(path)
        self.lock = threading.Lock()

    def plane(self, member: str) -> np.ndarray[Any, Any]:
        """Return the pixels of one plane TIFF of the dataset."""
        with self.lock:
            return np.asarray(self.oif.asarray(member))

    def close(self) -> None:
        """Close the file."""
        self.oif.close()


def _open_oif(path: str) -> _OifHandle:
    """Open an OIB/OIF dataset for the handle cache (module level, so its name is a stable key)."""
    return _OifHandle(path)


def _read_plane(path: str, member: str | None, shape: tuple[int, int], dtype: str) -> np.ndarray[Any, Any]:
    """Read one plane TIFF (a dask task); ``member`` None is a plane the dataset lacks (0)."""
    if member is None:
        return np.zeros(shape, dtype=dtype)
    with _wrap_errors(path, f"reading {member}"):
        plane = cached_handle(_open_oif, path).plane(member)
    if plane.shape != shape:
        raise FileFormatError(f"{path}: plane {member} has shape {plane.shape}, the settings say {shape}")
    return plane.astype(dtype, copy=False)


def _wrap_errors(path: str | os.PathLike[str], doing: str) -> AbstractContextManager[None]:
    """Turn the library's exceptions into FileFormatError naming the file."""
    hint = "the file may be truncated or corrupt, or the .oif.files folder incomplete"
    return library_errors(path, doing, what="Olympus OIB/OIF file", hint=hint)


# --------------------------------------------------------------------------- metadata


def _number(value: Any) -> float | None:
    """Return a positive finite float, else ``None``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) and x > 0 else None


def _measure(value: Any, unit: Any, base: str) -> Measure | None:
    """Return ``value`` in ``unit`` if both are usable and ``unit`` converts to ``base``, else ``None``.

    ``base`` is ``"micrometer"`` for lengths or ``"second"`` for times.
    """
    x = _number(value)
    if x is None or not isinstance(unit, str) or not unit.strip():
        return None
    try:
        name = units.unit_name(unit.strip())
    except MetadataError:
        return None
    if units.convert(Measure(1.0, name), base) is None:
        return None
    return Measure(x, name)


def _in(value: Measure | None, unit: str) -> Measure | None:
    """``value`` in ``unit`` (a convertible one), the factor first as pint converts."""
    if value is None or value.units == unit:
        return value
    factor = units.convert(Measure(1.0, value.units), unit)
    assert factor is not None
    return Measure(value.magnitude * factor, unit)


def _axis(settings: Mapping[str, Any], code: str) -> Mapping[str, Any]:
    """Return the ``[Axis <i> Parameters Common]`` section of an axis code ({} if absent)."""
    for i in range(8):
        section = settings.get(f"Axis {i} Parameters Common", {})
        if section.get("AxisCode") == code:
            return dict(section)
    return {}


def _physical_sizes(settings: Mapping[str, Any]) -> dict[str, Measure | None]:
    """Return X, Y from the reference image's convert values and Z from the Z axis interval, in µm."""
    ref = settings.get("Reference Image Parameter", {})
    z = _axis(settings, "Z")
    found = {
        "X": _measure(ref.get("WidthConvertValue"), ref.get("WidthUnit"), "micrometer"),
        "Y": _measure(ref.get("HeightConvertValue"), ref.get("HeightUnit"), "micrometer"),
        "Z": _measure(z.get("Interval"), z.get("PixUnit"), "micrometer"),
    }
    return {axis: _in(m, "micrometer") for axis, m in found.items()}


def _time_increment(settings: Mapping[str, Any]) -> Measure | None:
    """Return the T axis interval when its unit is a time unit."""
    t = _axis(settings, "T")
    return _measure(t.get("Interval"), t.get("PixUnit"), "second")


def _channels(settings: Mapping[str, Any], n: int) -> tuple[list[str | None], list[dict[str, Any]]]:
    """Return the name and OME Channel fields of each of ``n`` channels."""
    names: list[str | None] = []
    extras: list[dict[str, Any]] = []
    for c in range(n):
        section = settings.get(f"Channel {c + 1} Parameters", {})
        name = section.get("CH Name")
        names.append(str(name) if name not in (None, "") else None)
        extra: dict[str, Any] = {}
        dye = section.get("DyeName")
        if dye not in (None, "", "None"):
            extra["fluor"] = str(dye)
        for key, field in (
            ("EmissionWavelength", "emission_wavelength"),
            ("ExcitationWavelength", "excitation_wavelength"),
        ):
            value = _number(section.get(key))
            if value is not None:
                extra[field] = value
        extras.append(extra)
    return names, extras


def _original_metadata(settings: Mapping[str, Any]) -> dict[str, str]:
    """Return every setting of the main file as ``oif:<section>:<key>`` (binary LUT data left out)."""
    out: dict[str, str] = {}
    for section, values in settings.items():
        if isinstance(values, Mapping):
            out.update({f"oif:{section}:{key}": str(value) for key, value in values.items()})
    return out


# --------------------------------------------------------------------------- the reader


class OifReader:
    """Reader for Olympus OIB and OIF files (needs ``pip install oiffile``).

    Examples
    --------
    >>> reader = OifReader()
    >>> reader.name, reader.suffixes
    ('olympus', ('.oib', '.oif'))
    >>> reader.sniff(Path("a.oib"), OLE2_MAGIC), reader.sniff(Path("a.doc"), OLE2_MAGIC)
    (True, False)
    """

    name = "olympus"
    suffixes: tuple[str, ...] = (".oib", ".oif")

    def sniff(self, path: Path, head: bytes) -> bool:
        """Return True for an OLE2 compound file named ``.oib`` or a settings file named ``.oif``."""
        suffix = Path(path).suffix.lower()
        if suffix == ".oib":
            return head.startswith(OLE2_MAGIC)
        return suffix == ".oif" and head.startswith(SETTINGS_STARTS)

    def scenes(self, path: Path) -> list[str | None]:
        """Return the images of the file: always one, unnamed."""
        with self._open(Path(path)):
            return [None]

    def open(
        self,
        path: Path,
        *,
        scene: SceneSelector = 0,
        axes: str | None = None,
        level: int = 0,
    ) -> ImageSource:
        """Read the settings (never pixels) and return the lazy TZCYX image.

        Parameters
        ----------
        path
            The ``.oib`` file, or the ``.oif`` main file next to its ``.oif.files`` folder.
        scene
            Must be 0: the file holds one image.
        axes
            Not supported: the axes are named by the settings (``AxisOrder``).
        level
            Must be 0.

        Raises
        ------
        MissingDependencyError
            When ``oiffile`` is not installed.
        DimensionError
            For ``axes``, a level other than 0, or a scene other than 0.
        FileFormatError
            When the file is not readable or its planes cannot be mapped onto the axes.
        """
        path = Path(path)
        if axes is not None:
            raise DimensionError(
                f"{path}: axes={axes!r} is not supported for OIB/OIF files: the settings name the axes (AxisOrder)"
            )
        if level != 0:
            raise DimensionError(f"{path}: OIB/OIF files have one resolution level; level={level} does not exist")
        select_scene(path, scene, [None])
        folder = path.with_name(path.name + ".files")
        if path.suffix.lower() == ".oif" and not folder.is_dir():
            raise FileFormatError(
                f"{path}: its plane folder {folder.name} is missing; an OIF file is read with the folder "
                "next to it, so copy or move the two together"
            )
        with self._open(path) as oif, _wrap_errors(path, "reading the settings"):
            return self._open_image(oif, path)

    # -- internals

    @staticmethod
    @contextmanager
    def _open(path: Path) -> Iterator[oiffile.OifFile]:
        require("oiffile", extra="olympus", what="Olympus OIB/OIF", path=path)
        with _wrap_errors(path, "reading the settings"):
            handle = _open_oif(os.fspath(path))
        try:
            yield handle.oif
        finally:
            handle.close()

    @staticmethod
    def _open_image(oif: oiffile.OifFile, path: Path) -> ImageSource:
        axes, shape = oif.axes, tuple(max(int(n), 1) for n in oif.shape)
        if len(axes) < 2 or axes[-2:] != "YX":
            raise FileFormatError(f"{path}: the settings give axes {axes!r}; omio reads images whose planes are Y, X")
        outer_axes, outer_shape = axes[:-2], shape[:-2]
        plane_shape = (shape[-2], shape[-1])
        series = oif.series[0] if oif.series else None
        members: dict[tuple[int, ...], str] = {}
        if series is not None and series.axes == outer_axes:
            members = {tuple(index): series[i] for i, index in enumerate(series.indices)}
        elif outer_axes:
            raise FileFormatError(
                f"{path}: the plane files cannot be mapped onto the axes {axes!r} the settings give "
                "(the .oif.files folder may be incomplete or renamed)"
            )
        elif series is not None:
            members = {(): series[0]}
        dtype = np.dtype(oif.dtype).newbyteorder("<").str
        args = np.empty(outer_shape, dtype=object)
        for idx in itertools.product(*(range(n) for n in outer_shape)):
            args[idx] = (os.fspath(path), members.get(idx), plane_shape, dtype)
        st = os.stat(path)
        native = array_from_chunks(
            _read_plane,
            args,
            plane_shape,
            np.dtype(dtype),
            name="oif",
            source=str(path),
            token=(os.path.abspath(path), st.st_size, st.st_mtime_ns),
        )
        mapping = to_tzcyx(native, axes)
        settings = oif.mainfile
        base_names, base_extra = _channels(settings, dict(zip(axes, shape, strict=True)).get("C", 1))
        extras = [base_extra[p.channel] for p in mapping.channels]
        ome = deferred_make_ome(
            mapping.data.shape,
            mapping.data.dtype,
            physical_sizes=_physical_sizes(settings),
            time_increment=_time_increment(settings),
            channel_names=[p.name(base_names) for p in mapping.channels],
            later=lambda: {"channel_extra": extras},
        )
        missing = sum(1 for m in args.flat if m[1] is None)
        rule = f"OIF AxisOrder {axes!r} (outer to inner)" + (f"; {missing} absent plane(s) are 0" if missing else "")
        return ImageSource(
            data=mapping.data,
            ome=ome,
            path=path,
            format="oib" if oif.is_oib else "oif",
            axes_rule=f"{rule}; {mapping.rule}",
            original_metadata=_original_metadata(settings),
            levels=[tuple(mapping.data.shape)],
        )
