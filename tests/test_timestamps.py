"""workbench.timestamps: the one reader and writer of ISO-8601 times."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.timestamps import (
    as_datetime,
    epoch_us,
    from_epoch_us,
    human_utc,
    iso_from_us,
    iso_z,
    iso_z_fixed,
    parse_iso,
    to_datetime,
    us_from_iso,
)


def test_parse_iso_reads_z_offsets_and_naive_as_utc() -> None:
    want = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    assert parse_iso("2026-10-01T12:00:00Z") == want
    assert parse_iso("2026-10-01t12:00:00z") == want
    assert parse_iso(" 2026-10-01T14:00:00+02:00 ") == want
    assert parse_iso("2026-10-01T12:00:00").tzinfo is UTC
    with pytest.raises(ValueError):
        parse_iso("yesterday")


def test_to_datetime_accepts_every_shape_and_names_what_it_could_not_read() -> None:
    want = datetime(2026, 10, 1, tzinfo=UTC)
    assert to_datetime(None) is None and to_datetime("") is None and to_datetime(pd.NaT) is None
    assert to_datetime(want.replace(tzinfo=None)) == want
    assert to_datetime(pd.Timestamp("2026-10-01", tz="UTC")) == want
    assert to_datetime(date(2026, 10, 1)) == want
    with pytest.raises(WorkbenchError, match="cannot read due time 'soon'"):
        to_datetime("soon", "due time")
    with pytest.raises(ValueError):
        as_datetime(None)


def test_epoch_microseconds_round_trip_exactly() -> None:
    dt = datetime(2026, 10, 1, 2, 3, 4, 567891, tzinfo=UTC)
    assert from_epoch_us(epoch_us(dt)) == dt
    assert us_from_iso("2026-10-01T02:03:04.567891Z") == epoch_us(dt)
    assert iso_from_us(epoch_us(dt)) == "2026-10-01T02:03:04.567891Z"
    assert iso_from_us(epoch_us(dt.replace(microsecond=0))) == "2026-10-01T02:03:04Z"


def test_writers_are_utc_with_z() -> None:
    dt = datetime(2026, 10, 1, 14, 30, 5, 120000, tzinfo=timezone(timedelta(hours=2)))
    assert iso_z(dt) == "2026-10-01T12:30:05.120000Z"
    assert iso_z(None) is None
    assert iso_z_fixed(dt) == "2026-10-01T12:30:05.120000Z"
    assert iso_z_fixed(dt, 3) == "2026-10-01T12:30:05.120Z"
    assert iso_z_fixed(dt, 0) == "2026-10-01T12:30:05Z"
    assert human_utc(dt) == "2026-10-01 12:30 UTC"
    assert human_utc(dt, seconds=True) == "2026-10-01 12:30:05 UTC"
