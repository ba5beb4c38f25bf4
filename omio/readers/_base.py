"""The reader interface.

A reader is a small class with a ``name``, the file ``suffixes`` it claims, a
``sniff(path, head)`` test on the first bytes of a file (or on a folder), and an
``open(path, *, scene, axes, level)`` that returns an :class:`ImageSource`: the lazy
TZCYX dask array plus an OME model describing it (or a :class:`omio.lazy_ome.LazyOME`
that builds the model on first use). Readers never import the dataset
module; the dataset builds itself from what a reader returns. Third-party libraries
are imported inside the functions that use them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, runtime_checkable

from omio.errors import DimensionError

if TYPE_CHECKING:
    import dask.array as da
    import numpy as np
    from ome_types import OME

    from omio.lazy_ome import LazyOME
    from omio.readers._pread import PlaneReader

__all__ = ["ImageSource", "Reader", "SceneSelector", "as_text", "is_url", "select_scene"]

SceneSelector = int | str
"""A scene (image, series) given by 0-based index or by name."""

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")  # two letters at least: "C://" is a Windows drive


def as_text(value: Any) -> str:
    """A metadata value as annotation text (JSON for lists and dicts).

    Examples
    --------
    >>> as_text([1, 2]), as_text(0.5)
    ('[1, 2]', '0.5')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        import json

        return json.dumps(value, default=str)
    return str(value)


def is_url(location: object) -> TypeGuard[str]:
    """True for a URL (``scheme://...``) given as a string; a Windows drive path is not one.

    Examples
    --------
    >>> is_url("s3://bucket/image.ome.zarr"), is_url("C://data/a.tif"), is_url("data/a.tif")
    (True, False, False)
    """
    return isinstance(location, str) and _URL.match(location) is not None


@dataclass(frozen=True)
class ImageSource:
    """What a reader returns for one image of a file.

    Attributes
    ----------
    data
        Lazy dask array with dims exactly ``("T", "Z", "C", "Y", "X")``. Its tasks
        capture paths and offsets, never open handles, so the graph pickles.
    ome
        An OME model whose single ``Image`` describes ``data``: ``Pixels`` sizes equal
        to the array shape, ``dimension_order="XYCZT"``, physical sizes with units
        only where the file states them, ``time_increment`` only where stated, one
        ``Channel`` per C index (``name=None`` where the file names none). Instruments,
        objectives and other OME content of the file may be included.
    path
        The path the user opened, or the URL (a ``str``, kept as given) of an OME-Zarr opened remotely.
    format
        Short format name (``"ome-tiff"``, ``"imagej-tiff"``, ``"lsm"``, ``"tiff"``, ``"czi"``...).
    scenes
        Names of all images in the file in file order (``None`` where unnamed).
    scene
        Index of this image in ``scenes``.
    axes_rule
        One sentence stating how the file's own axes were mapped onto TZCYX.
    original_metadata
        Non-OME metadata of the file worth keeping (flat ``str -> str``); stored in
        the dataset's OME as a MapAnnotation so nothing is lost on writing.
    levels
        TZCYX shapes of the resolution levels available (level 0, the full resolution, first).
    read_into
        Optional fast path: fills every element of a preallocated, uninitialised,
        C-contiguous TZCYX array with the whole of ``data`` (e.g. one contiguous read instead of a task per plane). Used
        by :meth:`omio.MicroscopyDataset.to_numpy` while the dataset's pixels are
        still exactly ``data``.
    plane_reader
        Optional fast path (:class:`~omio.readers._pread.PlaneReader`): reads runs of
        consecutive planes of ``data`` (T, Z, C order) straight into a buffer, e.g. one
        byte range where the planes are stored uncompressed one after another. Used by
        the OME-TIFF writer, slab by slab, while the dataset's pixels are still exactly
        ``data`` and the file is unchanged.
    """

    data: da.Array
    ome: OME | LazyOME
    path: Path | str
    format: str
    scenes: Sequence[str | None] = (None,)
    scene: int = 0
    axes_rule: str = ""
    original_metadata: Mapping[str, str] = field(default_factory=dict)
    levels: Sequence[tuple[int, ...]] = ()
    read_into: Callable[[np.ndarray[Any, Any]], None] | None = None
    plane_reader: PlaneReader | None = None


@runtime_checkable
class Reader(Protocol):
    """The interface every reader implements (built-in or from the ``omio.readers`` entry point)."""

    name: str
    suffixes: tuple[str, ...]

    def sniff(self, path: Path, head: bytes) -> bool:
        """Return True if this reader recognises the file by its content.

        ``head`` holds the first bytes of the file (empty for a folder).
        """
        ...

    def open(
        self,
        path: Path,
        *,
        scene: SceneSelector = 0,
        axes: str | None = None,
        level: int = 0,
    ) -> ImageSource:
        """Read metadata (never pixels) and return the lazy image."""
        ...

    def scenes(self, path: Path) -> list[str | None]:
        """Return the names of all images in the file (``None`` where unnamed)."""
        ...


def select_scene(path: Path | str, scene: SceneSelector, names: Sequence[str | None]) -> int:
    """Resolve a scene given by 0-based index or by name to its index.

    Raises
    ------
    DimensionError
        For an index out of range, or a name that no image (or several) carry; the
        message lists the available images.
    """
    listing = ", ".join(f"{i}: {n!r}" for i, n in enumerate(names))
    if isinstance(scene, str):
        matches = [i for i, n in enumerate(names) if n == scene]
        if len(matches) == 1:
            return matches[0]
        what = "several images" if matches else "no image"
        raise DimensionError(f"{path}: {what} named {scene!r}; available: {listing}")
    if isinstance(scene, bool) or not isinstance(scene, int) or not 0 <= scene < len(names):
        raise DimensionError(
            f"{path}: scene {scene!r} does not exist; give an index 0..{len(names) - 1} or a name "
            f"(available: {listing})"
        )
    return scene
