"""The brain refuses settings it cannot use before it starts anything."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trollama.brain.settings import BrainSettings


@pytest.mark.parametrize("value", ["25-7", "night", "7-7", "23:00-07:00"])
def test_malformed_quiet_hours_are_refused_naming_the_value(value: str) -> None:
    with pytest.raises(ValidationError, match=f"quiet hours '{value}'"):
        BrainSettings(_env_file=None, dev_mode=True, quiet_hours_utc=value)


@pytest.mark.parametrize("value", ["", "23-7", "0-6"])
def test_well_formed_quiet_hours_are_accepted(value: str) -> None:
    assert (
        BrainSettings(_env_file=None, dev_mode=True, quiet_hours_utc=value).quiet_hours_utc == value
    )
