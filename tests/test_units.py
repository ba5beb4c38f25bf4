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
