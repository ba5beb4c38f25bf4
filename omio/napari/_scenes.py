"""The scenes of a multi-scene file in napari: a dock widget listing them, and adding one's layers.

The plugin's reader opens the first scene of a file (as napari expects one image per
file) and, when the file holds more, docks this list in the viewer: activating a scene
(double-click or Enter) adds its layers, named ``"<scene>: <channel>"``. Nothing is
opened until it is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omio.napari._layers import layer_data

__all__ = ["add_scene", "dock_scene_list", "scene_list"]

SHOWN = " (shown)"


def scene_label(index: int, name: str | None) -> str:
    """How a scene is named in the list and in its layers' names."""
    return name or f"scene {index}"


def add_scene(viewer: Any, path: str | Path, index: int, name: str | None = None) -> list[Any]:
    """Open scene ``index`` of ``path`` lazily and add its layers to ``viewer``; return the layers.

    Layer names are ``"<scene>: <channel>"`` so that scenes with the same channels stay apart.
    """
    from omio._api import open as open_dataset

    layers = []
    for data, kwargs, _ in layer_data(open_dataset(path, scene=index)):
        kwargs["name"] = f"{scene_label(index, name)}: {kwargs['name']}"
        layers.append(viewer.add_image(data, **kwargs))
    return layers


def scene_list(viewer: Any, path: str | Path, names: Sequence[str | None], shown: Sequence[int] = (0,)) -> Any:
    """A ``QListWidget`` of the scenes of ``path``; activating one adds its layers (once).

    ``shown``: scenes whose layers the viewer already has (marked as shown).
    """
    from qtpy.QtWidgets import QListWidget

    widget = QListWidget()
    widget.setToolTip(f"Scenes of {Path(path).name}: double-click one (or press Enter) to add its layers")
    opened = set(shown)
    for index, name in enumerate(names):
        widget.addItem(f"{index}: {scene_label(index, name)}" + (SHOWN if index in opened else ""))

    def activated(item: Any) -> None:
        index = widget.row(item)
        if index in opened:
            return
        add_scene(viewer, path, index, names[index])
        opened.add(index)
        item.setText(item.text() + SHOWN)

    widget.itemActivated.connect(activated)
    return widget


def dock_scene_list(path: str | Path, names: Sequence[str | None]) -> Any:
    """Dock :func:`scene_list` in napari's current viewer, if there is one (scene 0 shown); return the widget."""
    import sys

    if "napari" not in sys.modules:  # no viewer can exist: reading without napari's window (scripts, tests)
        return None
    import napari

    viewer = napari.current_viewer()
    if viewer is None:
        return None
    widget = scene_list(viewer, path, names)
    viewer.window.add_dock_widget(widget, name=f"Scenes of {Path(path).name}", area="right")
    return widget
