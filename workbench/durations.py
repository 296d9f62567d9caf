"""The one home for durations: ISO 8601 (read by isodate) and the short forms authors write.

`PT3H`, `P2D`, `PT1H30M`, `P1DT2H` are ISO 8601; `P1M` is a month, which has no fixed length, so it is
refused rather than read as a minute. The short forms `90s`, `15m`, `15min`, `2h`, `1h30m`, `7d` (and
decimals, `1.5h`) keep working. A bare number (not text) is seconds.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import isodate

from workbench.errors import WorkbenchError

_SHORT = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|min|m|s)")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "min": 60, "m": 60, "s": 1}
HINT = "use ISO 8601 (PT3H, P2D, PT1H30M) or forms like '90m', '3h', '1h30m', '2d'"


def parse_duration(value: Any) -> timedelta:
    """A duration from ISO 8601 text, a short form ('90m', '2h', '1h30m', '7d'), a timedelta or seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    text = str(value).strip()
    if text[:1] in ("P", "p"):
        return _iso(text, value)
    low = text.lower()
    parts = _SHORT.findall(low)
    if not parts or _SHORT.sub("", low).strip():
        raise WorkbenchError(f"cannot read duration {value!r}: {HINT}")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[unit] for n, unit in parts))


def _iso(text: str, value: Any) -> timedelta:
    try:
        parsed = isodate.parse_duration(text.upper())
    except (isodate.ISO8601Error, ValueError) as exc:
        raise WorkbenchError(f"cannot read duration {value!r}: {HINT}") from exc
    if isinstance(parsed, isodate.Duration):
        if parsed.years or parsed.months:
            raise WorkbenchError(f"cannot read duration {value!r}: months and years have no fixed length; "
                                 "use days (P30D) or hours")
        parsed = parsed.tdelta
    return parsed


def duration_us(value: Any) -> int:
    """A duration (see parse_duration) in whole microseconds."""
    return parse_duration(value) // timedelta(microseconds=1)


def duration_seconds(value: Any) -> int:
    """A duration (see parse_duration) in whole seconds (fractions dropped)."""
    return int(parse_duration(value).total_seconds())
