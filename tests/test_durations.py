"""workbench.durations: ISO 8601 through isodate, and the short forms scenario authors write."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workbench.drills.model import parse_duration as drill_duration
from workbench.durations import duration_seconds, duration_us, parse_duration
from workbench.errors import WorkbenchError
from workbench.sample.incidents import parse_duration as sample_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("15m", 900), ("15min", 900), ("2h", 7200), ("1h30m", 5400), ("7d", 604800), ("1.5h", 5400),
    ("PT3H", 10800), ("pt1h30m", 5400), ("P2D", 172800), ("P1DT2H", 93600), ("PT0.5S", 0.5), (120, 120),
])
def test_short_forms_and_iso_8601(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_sample_and_drills_read_durations_the_same_way() -> None:
    for text in ("90m", "PT1H30M", "1h30m"):
        assert sample_duration(text) == duration_us(text) == 5400 * 10**6
        assert drill_duration(text) == duration_seconds(text) == 5400


@pytest.mark.parametrize("text", ["P1M", "P1Y", "p1m"])
def test_a_month_is_not_a_minute(text: str) -> None:
    """P1M is one month in ISO 8601 (no fixed length): refused, never read as one minute."""
    with pytest.raises(WorkbenchError, match="months and years"):
        sample_duration(text)
    with pytest.raises(WorkbenchError, match="months and years"):
        drill_duration(text)


@pytest.mark.parametrize("text", ["", "soon", "3", "P3H", "3 hours ago"])
def test_unreadable_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(WorkbenchError, match="PT3H"):
        parse_duration(text)
