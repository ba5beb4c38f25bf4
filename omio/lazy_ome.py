"""A dataset's OME model, built the first time something asks for it.

Opening a file and reading its pixels need only the few values that label the
array: the image name, the physical pixel sizes, the time increment and the channel
names (:class:`Labels`). The full ``ome_types.OME`` model is a tree of pydantic
objects whose classes take about 20 MB of memory and half a second to import, so a
reader may hand over those labels with a recipe for the model instead of the model
itself (:class:`LazyOME`). The model is built, once, when the dataset's ``.ome``,
annotations, writers or metadata edits need it; code that only reads pixels never
imports ome-types.

The labels are always those the model gives (:meth:`Labels.of`): a reader that
states them ahead of the model reads them from the same source the model is built
from, and the tests check that the two agree.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omio.units import Measure, measure

if TYPE_CHECKING:
    import pint
    from ome_types import OME

__all__ = ["Labels", "LazyOME", "deferred_make_ome"]


@dataclass(frozen=True)
class Labels:
    """What a dataset's coordinates and summary show: name, pixel sizes, time step, channel names."""

    name: str | None
    physical_sizes: Mapping[str, Measure | None]
    """``{"X": m, "Y": m, "Z": m}``; ``None`` where unknown."""
    time_increment: Measure | None
    channel_names: tuple[str | None, ...]

    @classmethod
    def stated(
        cls,
        n_channels: int,
        *,
        name: str | None = None,
        physical_sizes: Mapping[str, pint.Quantity | Measure | None] | None = None,
        time_increment: pint.Quantity | Measure | None = None,
        channel_names: Sequence[str | None] | None = None,
    ) -> Labels:
        """The labels of :func:`omio.metadata.make_ome` called with these values (``None`` where not positive)."""
        sizes = physical_sizes or {}
        names = tuple(n or None for n in channel_names) if channel_names is not None else (None,) * n_channels
        return cls(name or None, {axis: _positive(sizes.get(axis)) for axis in "XYZ"}, _positive(time_increment), names)

    @classmethod
    def of(cls, ome: OME) -> Labels:
        """The labels of the first image of an OME model."""
        from omio import metadata

        image = ome.images[0]
        return cls(
            name=image.name or None,
            physical_sizes={axis: measure(q) for axis, q in metadata.physical_pixel_sizes(image).items()},
            time_increment=measure(metadata.time_increment(image)),
            channel_names=tuple(metadata.channel_names(image)),
        )


class LazyOME:
    """An OME model with its :class:`Labels` known now and the model built on first use.

    Parameters
    ----------
    labels
        The labels of the model ``build`` returns.
    build
        Returns the model; called at most once, from any thread. Its errors reach
        the caller of :meth:`model` (readers raise :class:`omio.errors.MetadataError`
        naming the file) and are raised again on the next call.
    """

    __slots__ = ("_build", "_lock", "_model", "labels")

    def __init__(self, labels: Labels, build: Callable[[], OME]) -> None:
        self.labels = labels
        self._build: Callable[[], OME] | None = build
        self._model: OME | None = None
        self._lock = threading.Lock()

    @classmethod
    def ready(cls, ome: OME) -> LazyOME:
        """Wrap a model that already exists."""
        lazy = cls(Labels.of(ome), _unused)
        lazy._model, lazy._build = ome, None
        return lazy

    @property
    def is_built(self) -> bool:
        """True once the model exists."""
        return self._model is not None

    def model(self) -> OME:
        """The model (built now if it is not yet)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    assert self._build is not None
                    self._model = self._build()
                    self._build = None  # drop what the recipe held on to
        return self._model

    def guarded(self, location: str) -> LazyOME:
        """This model, whose building turns foreign exceptions into omio errors naming ``location``.

        See :mod:`omio.readers._guard`; a built model is returned as it is.
        """
        if self.is_built:
            return self
        from omio.readers._guard import guarded_call

        return LazyOME(self.labels, functools.partial(guarded_call, location, "read its metadata", self.model))

    def then(self, step: Callable[[OME], OME], labels: Labels | None = None) -> LazyOME:
        """The model ``step`` makes from this one: now if this one is built, else on first use.

        ``labels`` are those of the result (by default this model's); once a model
        is built, the labels are read from it.
        """
        if self.is_built:
            return LazyOME.ready(step(self.model()))
        return LazyOME(self.labels if labels is None else labels, lambda: step(self.model()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (LazyOME.ready, (self.model(),))

    def __repr__(self) -> str:
        return f"<LazyOME {'built' if self.is_built else 'not built'}: {self.labels}>"


def deferred_make_ome(
    shape: Sequence[int],
    dtype: Any,
    *,
    name: str | None = None,
    physical_sizes: Mapping[str, pint.Quantity | Measure | None] | None = None,
    time_increment: pint.Quantity | Measure | None = None,
    channel_names: Sequence[str | None] | None = None,
    later: Callable[[], Mapping[str, Any]] | None = None,
) -> LazyOME:
    """:func:`omio.metadata.make_ome` on first use, with its labels known now.

    ``later`` returns ``make_ome``'s other keyword arguments (colours, acquisition
    date, instruments...) when the model is built, so that a reader builds its
    ome-types objects only then.
    """
    labels = Labels.stated(
        int(shape[2]),
        name=name,
        physical_sizes=physical_sizes,
        time_increment=time_increment,
        channel_names=channel_names,
    )

    def build() -> OME:
        from omio.metadata import make_ome

        fields = dict(later()) if later is not None else {}
        return make_ome(
            shape,
            dtype,
            name=name,
            physical_sizes=physical_sizes,
            time_increment=time_increment,
            channel_names=channel_names,
            **fields,
        )

    return LazyOME(labels, build)


def _positive(q: pint.Quantity | Measure | None) -> Measure | None:
    m = measure(q)
    return m if m is not None and m.magnitude > 0 else None


def _unused() -> OME:  # pragma: no cover - a ready model never calls its recipe
    raise AssertionError("a ready LazyOME has no recipe")
