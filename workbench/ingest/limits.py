"""What ingest accepts: the plausible time window, line and raw-text caps, usable feature names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from workbench import settings
from workbench.errors import WorkbenchError

MAX_LINE = 8 << 20  # bytes; a longer line is quarantined ("line too long"), the rest of the file loads
RAW_CAP = 65536  # characters of a quarantined line kept in quarantine.raw; raw_bytes/raw_sha256 cover all of it
MAX_HEADER = 64 << 20  # bytes; a CSV header line may be this long (read whole, never cut)
FEATURE_NAME_MAX = 128  # characters

# Control characters (C0, DEL, C1) and invisible formatting characters (zero-width, bidi overrides and isolates,
# line/paragraph separators, BOM) make a name that reads as something else or breaks the line it is shown on.
_BAD_CHARS = "\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
BAD_NAME_RE = re.compile(f"[{_BAD_CHARS}]")
# The same class for DuckDB's RE2 (\x{...} escapes, so the SQL text itself stays printable).
BAD_NAME_SQL_RE = ("[\\x{00}-\\x{1f}\\x{7f}-\\x{9f}\\x{200b}-\\x{200f}\\x{2028}-\\x{202e}\\x{2060}-\\x{2069}"
                   "\\x{feff}]")

# pandas (the detectors' time axis) holds 1677-09-22 .. 2262-04-11: a configured window must stay inside it.
_EARLIEST, _LATEST = datetime(1678, 1, 1, tzinfo=UTC), datetime(2262, 1, 1, tzinfo=UTC)


def feature_name_problem(name: str) -> str | None:
    """Why a feature name cannot be used (empty, too long, control or invisible characters), else None."""
    if name == "":
        return "empty"
    if len(name) > FEATURE_NAME_MAX:
        return f"longer than {FEATURE_NAME_MAX} characters ({len(name):,})"
    if BAD_NAME_RE.search(name):
        return "control or invisible characters"
    return None


def shown_name(name: str, width: int = 60) -> str:
    """A feature name made safe to show on one line: bad characters as '?', cut to `width`."""
    text = BAD_NAME_RE.sub("?", name[:width])
    return '"' + text + ('…' if len(name) > width else '') + '"'


def _parse_bound(env: str, value: str, now: datetime) -> datetime:
    text = value.strip()
    m = re.fullmatch(r"([+-])\s*(\d+)\s*d(ays?)?", text)
    if m:
        days = int(m[2]) * (1 if m[1] == "+" else -1)
        bound = now + timedelta(days=days)
    else:
        try:
            bound = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise WorkbenchError(f"{env}={value!r}: expected a date such as 1970-01-01 or days from now such "
                                 "as +366d") from None
        if bound.tzinfo is None:
            bound = bound.replace(tzinfo=UTC)
    if not _EARLIEST <= bound <= _LATEST:
        raise WorkbenchError(f"{env}={value!r}: must lie between 1678 and 2262")
    return bound.astimezone(UTC)


def ts_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The plausible time window [min, max) from WORKBENCH_TS_MIN / WORKBENCH_TS_MAX (dates, or +N/-N days)."""
    now = now or datetime.now(UTC)
    lo = _parse_bound("WORKBENCH_TS_MIN", settings.get("ts_min"), now)
    hi = _parse_bound("WORKBENCH_TS_MAX", settings.get("ts_max"), now)
    if hi <= lo:
        raise WorkbenchError(f"WORKBENCH_TS_MAX ({hi:%Y-%m-%d %H:%M}) must be after WORKBENCH_TS_MIN "
                             f"({lo:%Y-%m-%d %H:%M})")
    return lo, hi


def ts_window_reason(ts_raw: str, window: tuple[datetime, datetime]) -> str:
    """SQL for the quarantine reason of a timestamp outside the window (the text of `ts_raw` shown)."""
    lo, hi = window
    return (f"'implausible timestamp ' || left({ts_raw}, 40) || ': outside {lo:%Y-%m-%d} .. {hi:%Y-%m-%d} "
            "(WORKBENCH_TS_MIN, WORKBENCH_TS_MAX)'")
