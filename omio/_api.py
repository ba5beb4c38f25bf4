"""Top-level functions: ``omio.open`` and ``omio.open_all``."""

from __future__ import annotations

from pathlib import Path

from omio.dataset import MicroscopyDataset
from omio.readers import SceneSelector, open_source, scene_names

__all__ = ["open", "open_all", "scenes"]


def open(
    path: str | Path,
    *,
    scene: SceneSelector = 0,
    axes: str | None = None,
    level: int = 0,
) -> MicroscopyDataset:
    """Open one image of a microscopy file lazily (reads metadata only).

    Parameters
    ----------
    path
        A TIFF / OME-TIFF / ImageJ / LSM / CZI file, or a Thorlabs folder (or its
        ``.raw`` / ``Experiment.xml``). The format is found from the content. An
        OME-Zarr can also be given as a URL (``"s3://bucket/img.ome.zarr"``,
        ``"file:///data/img.ome.zarr"``), read through zarr and fsspec (plus the
        filesystem's package, e.g. ``s3fs``); other formats only as local paths.
    scene
        The image (scene, series) by 0-based index or by name; see :func:`scenes`.
    axes
        Override the file's axis meaning, one letter per axis of the stored series
        (e.g. ``"ZYX"`` for a plain multi-page TIFF that is a Z stack).
    level
        Resolution level of a pyramidal file (0 = full resolution).

    Returns
    -------
    MicroscopyDataset
        Lazy; pixels are read only when computed, written or viewed.

    Raises
    ------
    omio.errors.UnsupportedFormatError, omio.errors.FileFormatError
        For files no reader recognises, or recognised but corrupt ones.
    """
    return MicroscopyDataset.from_source(open_source(path, scene=scene, axes=axes, level=level))


def scenes(path: str | Path) -> list[str | None]:
    """Return the names of the images (scenes, series) in a file (``None`` where unnamed)."""
    return scene_names(path)


def open_all(path: str | Path, *, axes: str | None = None) -> list[MicroscopyDataset]:
    """Open every image (scene, series) of a file lazily, in file order."""
    return [open(path, scene=i, axes=axes) for i in range(len(scenes(path)))]
