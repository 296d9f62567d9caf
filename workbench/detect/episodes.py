"""Episodes: rows of one subject (a principal, a model artifact) split where the time between two rows exceeds
a gap. One SQL shape for every detector that groups flagged rows into episodes.

`episodes_sql` wraps a query or table of rows with a `ts` column: it adds `brk` (1 where a row starts a new
episode: the subject's first row, or one more than `gap_minutes` after the previous) and a key column
`subject|...|n`, the subject's n-th episode. Rows are ordered by `ts` and then `tiebreak`, in both windows, so
ties always fall the same way.
"""

from __future__ import annotations

from collections.abc import Sequence


def episodes_sql(source: str, by: Sequence[str], gap_minutes: float, tiebreak: str, key: str = "k") -> str:
    """SQL: every row of `source` (a table name or a parenthesised query) with `brk` and an episode key."""
    part = ", ".join(by)
    order = f"ts, {tiebreak}"
    subject = " || '|' || ".join(f"coalesce(CAST({c} AS VARCHAR), '')" for c in by)
    gap = f"INTERVAL {gap_minutes:g} MINUTE"
    return (
        f"SELECT *, {subject} || '|' || sum(brk) OVER (PARTITION BY {part} ORDER BY {order} "
        f"ROWS UNBOUNDED PRECEDING) AS {key} "
        f"FROM (SELECT *, CASE WHEN lag(ts) OVER w IS NULL OR ts - lag(ts) OVER w > {gap} THEN 1 ELSE 0 END AS brk "
        f"FROM {source} WINDOW w AS (PARTITION BY {part} ORDER BY {order}))"
    )
