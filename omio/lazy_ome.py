"""A dataset's OME model, built the first time something asks for it.

Opening a file and reading its pixels need only the values that label the array:
the record (:class:`omio.record.ImageRecord`: image name, physical pixel sizes, time
increment, channel names, origin and plane table). The full ``ome_types.OME`` model is a tree of pydantic
objects whose classes take about 20 MB of memory and half a second to import, so a
reader may hand over that record with a recipe for the model instead of the model
itself (:class:`LazyOME`). The model is built, once, when the dataset's ``.ome``,
annotations, writers or metadata edits need it; code that only reads pixels never
imports ome-types.

The record is the dataset's one source of truth: a reader that states it ahead of the
model reads it from the same source the model is built from (the tests check that
:meth:`ImageRecord.of` the model agrees), and every operation computes the new record
first and derives the model's Pixels and Planes from it (:mod:`omio.ome_update`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from omio.record import ImageRecord, PlaneInfo
from omio.units import Measure

if TYPE_CHECKING:
    import pint
    from ome_types import OME

__all__ = ["ImageRecord", "Labels", "LazyOME", "deferred_make_ome"]


Labels = ImageRecord
"""The former name of :class:`omio.record.ImageRecord`."""


class LazyOME:
    """An OME model with its :class:`~omio.record.ImageRecord` known now and the model built on first use.

    Parameters
    ----------
    record
        The record of the model ``build`` returns (what the dataset's coordinates show).
    build
        Returns the model; called at most once, from any thread. Its errors reach
        the caller of :meth:`model` (readers raise :class:`omio.errors.MetadataError`
        naming the file) and are raised again on the next call.
    """

    __slots__ = ("_build", "_lock", "_model", "record")

    def __init__(self, record: ImageRecord, build: Callable[[], OME]) -> None:
        self.record = record
        self._build: Callable[[], OME] | None = build
        self._model: OME | None = None
        self._lock = threading.Lock()

    @property
    def labels(self) -> ImageRecord:
        """The former name of :attr:`record`."""
        return self.record

    @classmethod
    def ready(cls, ome: OME, record: ImageRecord | None = None) -> LazyOME:
        """Wrap a model that already exists (its record read from it unless given)."""
        lazy = cls(ImageRecord.of(ome) if record is None else record, _unused)
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

        return LazyOME(self.record, functools.partial(guarded_call, location, "read its metadata", self.model))

    def then(self, step: Callable[[OME], OME], record: ImageRecord | None = None) -> LazyOME:
        """The model ``step`` makes from this one: now if this one is built, else on first use.

        ``record`` is that of the result (by default this model's record).
        """
        result = self.record if record is None else record
        if self.is_built:
            return LazyOME.ready(step(self.model()), result)
        return LazyOME(result, lambda: step(self.model()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (LazyOME.ready, (self.model(), self.record))

    def __repr__(self) -> str:
        return f"<LazyOME {'built' if self.is_built else 'not built'}: {self.record}>"


def deferred_make_ome(
    shape: Sequence[int],
    dtype: Any,
    *,
    name: str | None = None,
    physical_sizes: Mapping[str, pint.Quantity | Measure | None] | None = None,
    time_increment: pint.Quantity | Measure | None = None,
    channel_names: Sequence[str | None] | None = None,
    planes: Sequence[PlaneInfo] = (),
    origin: Mapping[str, Measure | None] | None = None,
    later: Callable[[], Mapping[str, Any]] | None = None,
) -> LazyOME:
    """:func:`omio.metadata.make_ome` on first use, with its record known now.

    ``planes`` (the plane table, :class:`omio.record.PlaneInfo` rows) and ``origin``
    (where the file states one without planes, e.g. a scene's start) are part of the
    record, so the coordinates show them at once; the model's ``Plane`` elements are
    made from the record. ``later`` returns ``make_ome``'s other keyword arguments
    (colours, acquisition date, instruments...) when the model is built, so that a
    reader builds its ome-types objects only then; ``Plane`` elements given there
    (``planes=``) take the place of those of the record and must agree with it.
    """
    record = ImageRecord.stated(
        int(shape[2]),
        name=name,
        physical_sizes=physical_sizes,
        time_increment=time_increment,
        channel_names=channel_names,
        planes=planes,
        origin=origin,
    )

    def build() -> OME:
        from omio.metadata import make_ome
        from omio.ome_update import ome_planes

        fields = dict(later()) if later is not None else {}
        fields.setdefault("planes", ome_planes(record, shape))
        return make_ome(
            shape,
            dtype,
            name=name,
            physical_sizes=physical_sizes,
            time_increment=time_increment,
            channel_names=channel_names,
            **fields,
        )

    return LazyOME(record, build)


def _unused() -> OME:  # pragma: no cover - a ready model never calls its recipe
    raise AssertionError("a ready LazyOME has no recipe")
