"""workbench.detect.episodes: gap-based episodes in one SQL shape."""

from __future__ import annotations

import duckdb

from workbench.detect.episodes import episodes_sql


def test_gaps_split_episodes_per_subject_and_ties_fall_the_same_way() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("""CREATE TABLE r AS SELECT * FROM (VALUES
        ('a', 'd1', TIMESTAMPTZ '2026-10-01 00:00:00Z'), ('a', 'd2', TIMESTAMPTZ '2026-10-01 00:30:00Z'),
        ('a', 'd3', TIMESTAMPTZ '2026-10-01 02:00:00Z'), ('a', 'd0', TIMESTAMPTZ '2026-10-01 02:00:00Z'),
        ('b', 'd4', TIMESTAMPTZ '2026-10-01 00:10:00Z'), (NULL, 'd5', TIMESTAMPTZ '2026-10-01 00:00:00Z'))
        t(principal, decision_id, ts)""")
    got = dict(con.execute(f"SELECT decision_id, k FROM ({episodes_sql('r', ['principal'], 60, 'decision_id')})"
                           ).fetchall())
    assert got == {"d1": "a|1", "d2": "a|1", "d0": "a|2", "d3": "a|2", "d4": "b|1", "d5": "|1"}


def test_exactly_the_gap_stays_one_episode() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE r AS SELECT 's' AS system_id, 'p' AS principal, i AS span_id, "
                "TIMESTAMPTZ '2026-10-01 00:00:00Z' + to_hours(6 * i) AS ts FROM range(3) t(i)")
    keys = [r[0] for r in con.execute(
        f"SELECT episode FROM ({episodes_sql('r', ['system_id', 'principal'], 360, 'span_id', key='episode')}) "
        "ORDER BY span_id").fetchall()]
    assert keys == ["s|p|1", "s|p|1", "s|p|1"]
