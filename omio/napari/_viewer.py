"""Show a dataset in a napari viewer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omio.errors import MissingDependencyError
from omio.napari._layers import layer_data
from omio.readers._optional import install_hint

NAPARI_PACKAGE = "'napari[pyqt6]'"

if TYPE_CHECKING:
    from omio.dataset import MicroscopyDataset

__all__ = ["import_napari", "view"]


def import_napari() -> Any:
    """Import napari, or explain which extra installs it.

    Raises
    ------
    omio.errors.MissingDependencyError
        When napari (or its Qt binding) is not installed.
    """
    try:
        import napari
    except ImportError as exc:
        raise MissingDependencyError(
            "showing images needs napari with a Qt binding, which is not installed; "
            f"install it with: {install_hint(NAPARI_PACKAGE, 'napari')}"
        ) from exc
    return napari


def view(
    ds: MicroscopyDataset,
    viewer: Any = None,
    *,
    channel_axis: bool = True,
    contrast_limits: tuple[float, float] | Sequence[tuple[float, float]] | None = None,
) -> Any:
    """Add a dataset to a napari viewer (a new one by default) and return the viewer.

    The layers come from :func:`omio.napari.layer_data`: lazy, one per channel,
    physical scale, contrast limits from a small subsample. In a script, call
    ``napari.run()`` afterwards to keep the window open.
    """
    napari = import_napari()
    if viewer is None:
        viewer = napari.Viewer(title=ds.name or (Path(ds.path).name if ds.path is not None else "omio"))
    for data, kwargs, _ in layer_data(ds, channel_axis=channel_axis, contrast_limits=contrast_limits):
        viewer.add_image(data, **kwargs)
    return viewer
