"""The one home for timestamps: reading ISO-8601 text and writing UTC times (every stored time is UTC).

Reading: `parse_iso` (text: `Z` or an offset; none means UTC), `as_datetime` (text, datetime, date or
pandas), `to_datetime` (the same, None for nothing, a one-line error naming what could not be read),
`us_from_iso`/`epoch_us` (epoch microseconds, the sample generator's clock).
Writing: `iso_z` (ISO-8601 UTC, trailing Z, fraction only when non-zero; alert ids hash it), `iso_z_fixed`
(a fixed number of fraction digits), `iso_from_us`, and `human_utc` for summaries.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
EXAMPLE = "2026-10-01T00:00:00Z"


def aware(dt: datetime) -> datetime:
    """The datetime with UTC attached when it has no zone (naive means UTC); aware ones unchanged."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def parse_iso(text: str) -> datetime:
    """ISO-8601 text to an aware datetime (`Z`, `z` or an offset; none means UTC); ValueError if unreadable."""
    return aware(datetime.fromisoformat(str(text).strip().replace("z", "Z").replace("Z", "+00:00")))


def as_datetime(value: Any) -> datetime:
    """An aware datetime from a datetime, a date (midnight UTC), a pandas Timestamp or ISO text (naive means
    UTC); ValueError when there is none or it cannot be read."""
    if value is None or value is pd.NaT:
        raise ValueError("no time given")
    if isinstance(value, pd.Timestamp):
        return aware(value.to_pydatetime())
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return parse_iso(str(value))


def to_datetime(value: Any, what: str = "time") -> datetime | None:
    """Like `as_datetime`, but None for None, '' or NaT, and unreadable text raises a one-line WorkbenchError
    naming `what`."""
    if value is None or value is pd.NaT or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return as_datetime(value)
    except ValueError as exc:
        raise WorkbenchError(f"cannot read {what} {value!r}: use ISO-8601, e.g. {EXAMPLE}") from exc


def epoch_us(dt: datetime) -> int:
    """Microseconds since 1970-01-01 UTC of a datetime (naive means UTC), exactly."""
    return (aware(dt) - EPOCH) // _US


def from_epoch_us(us: int) -> datetime:
    """The UTC datetime of epoch microseconds."""
    return EPOCH + timedelta(microseconds=int(us))


def us_from_iso(text: str) -> int:
    """ISO-8601 text to epoch microseconds (naive means UTC); ValueError if unreadable."""
    return epoch_us(parse_iso(text))


def iso_z(value: datetime | None) -> str | None:
    """ISO-8601 UTC with a trailing Z, microseconds only when non-zero (naive means UTC); None stays None."""
    if value is None:
        return None
    return aware(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_z_fixed(value: datetime, digits: int = 6) -> str:
    """ISO-8601 UTC with exactly `digits` (0..6) fraction digits, truncated, and a trailing Z."""
    dt = aware(value).astimezone(UTC)
    head = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return head + (f".{dt.microsecond:06d}"[: digits + 1] if digits > 0 else "") + "Z"


def iso_from_us(us: int) -> str:
    """Epoch microseconds to ISO-8601 UTC with a trailing Z (fraction only when non-zero)."""
    return iso_z(from_epoch_us(us)) or ""


def human_utc(value: datetime, seconds: bool = False) -> str:
    """'2026-10-01 14:30 UTC' (or with seconds) for summaries and reports (naive means UTC)."""
    return aware(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")
