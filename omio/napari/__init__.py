"""napari integration: datasets as napari layers, the viewer, and the npe2 plugin.

:func:`layer_data` turns a :class:`~omio.MicroscopyDataset` into napari layer data
(lazy, one layer per channel, physical scale, contrast limits from a subsample);
:meth:`MicroscopyDataset.view <omio.MicroscopyDataset.view>` and the plugin's
reader (``napari.yaml`` in this package) both use it. napari itself is an optional
extra (``pip install 'napari[pyqt6]'``) imported only when a viewer is needed.
"""

from __future__ import annotations

from omio.napari._layers import LayerData, layer_data
from omio.napari._viewer import view

__all__ = ["LayerData", "layer_data", "view"]
