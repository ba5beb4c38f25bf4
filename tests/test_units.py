"""Unit conversions between pint and OME."""

from __future__ import annotations

import pytest
from ome_types.model import UnitsLength, UnitsTime

from omio import units
from omio.errors import MetadataError


@pytest.mark.parametrize("member", list(UnitsLength))
def test_every_ome_length_unit_round_trips(member: UnitsLength) -> None:
    assert units.ome_length_unit(units.length_unit_from_ome(member)) is member


@pytest.mark.parametrize("member", list(UnitsTime))
def test_every_ome_time_unit_round_trips(member: UnitsTime) -> None:
    assert units.ome_time_unit(units.time_unit_from_ome(member)) is member


def test_common_units_by_name() -> None:
    assert units.ome_length_unit("micrometer") is UnitsLength.MICROMETER
    assert units.ome_length_unit("nm") is UnitsLength.NANOMETER
    assert units.ome_time_unit("ms") is UnitsTime.MILLISECOND


def test_a_non_length_unit_is_refused() -> None:
    with pytest.raises(MetadataError, match="not an OME length unit"):
        units.ome_length_unit("second")
    with pytest.raises(MetadataError, match="not an OME time unit"):
        units.ome_time_unit("meter")


def test_names_given_without_pint_are_pints_own() -> None:
    """unit_name answers the usual spellings from a table; every answer must be the registry's canonical name."""
    for spelling, name in units._ALIASES.items():
        assert units.unit_name(spelling) == name == str(units.registry().Unit(name)), spelling
    for name in units._CANONICAL:
        assert str(units.registry().Unit(name)) == name


def test_free_text_is_case_blind_and_ome_symbols_are_not() -> None:
    assert units.unit_name("Micron") == "micrometer" and units.unit_name("SEC") == "second"
    assert units.unit_name("UM") == "micrometer"  # as ImageJ files may write it
    assert units.length_name_from_ome("Mm") == "megameter"  # OME's symbol, not "mm"
    assert units.time_name_from_ome("Ms") == "megasecond"  # not "ms"


def test_every_ome_unit_is_named_as_pint_names_it() -> None:
    reg = units.registry()
    for member in UnitsLength:
        assert units.length_name_from_ome(member) == str(reg.Unit(member.value.replace(" ", "_"))), member
    for member in UnitsTime:
        assert units.time_name_from_ome(member) == str(reg.Unit(member.value)), member
    assert units.length_name_from_ome(None) == "micrometer" and units.time_name_from_ome(None) == "second"


def test_measure_round_trips_through_pint() -> None:
    m = units.Measure(0.5, "nanometer")
    assert m.quantity() == units.ureg.Quantity(0.5, "nm")
    assert units.measure(m.quantity()) == m and units.measure(m) is m and units.measure(None) is None
    assert m.scaled(4) == units.Measure(2.0, "nanometer")


def test_registry_is_made_once_when_threads_ask_together(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    made: list[object] = []

    def slow_build() -> object:
        time.sleep(0.05)  # long enough for every thread to ask before the first is done
        made.append(object())
        return made[-1]

    monkeypatch.setattr(units, "_REGISTRY", None)
    monkeypatch.setattr(units, "_build_registry", slow_build)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(units.registry())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len(got) == 8 and all(g is made[0] for g in got)
