"""Decisions for a chart: an even sample across the whole window, with how many matched; audited like search."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.access import Actor
from workbench.errors import PermissionDenied
from workbench.explore.sample import describe, sample_decisions


def _system(ws) -> tuple[str, int]:
    return ws.one("SELECT system_id, count(*) FROM decisions GROUP BY 1 ORDER BY 2 DESC LIMIT 1")


def test_even_sample_spans_the_window_and_says_how_many_matched(demo_ws, admin) -> None:
    system, total = _system(demo_ws)
    first, last = demo_ws.one("SELECT min(ts), max(ts) FROM decisions WHERE system_id = ?", [system])
    res = sample_decisions(demo_ws, admin, system_id=system, limit=100)
    df = res["decisions"]
    assert (res["total"], res["shown"], res["mode"]) == (total, 100, "even") and len(df) == 100
    assert df["decision_id"].is_unique and df["ts"].is_monotonic_increasing
    span = pd.Timestamp(last) - pd.Timestamp(first)
    assert pd.Timestamp(df["ts"].max()) == pd.Timestamp(last)  # reaches the end of the window
    assert pd.Timestamp(df["ts"].min()) - pd.Timestamp(first) < span / 50  # and starts near its beginning
    # evenly: no stretch of the window is skipped (the largest gap is a small share of the span)
    assert df["ts"].diff().max() < span / 10
    assert describe(res) == f"100 of {total:,} decisions, sampled evenly across the window"
    assert any(c.startswith("f.") for c in df.columns)


def test_newest_oldest_and_all(demo_ws, admin) -> None:
    system, total = _system(demo_ws)
    newest = sample_decisions(demo_ws, admin, system_id=system, limit=50, mode="newest")["decisions"]
    oldest = sample_decisions(demo_ws, admin, system_id=system, limit=50, mode="oldest")["decisions"]
    last10 = demo_ws.rows("SELECT decision_id FROM decisions WHERE system_id = ? ORDER BY ts DESC, decision_id "
                          "DESC LIMIT 10", [system])
    assert {r[0] for r in last10} <= set(newest["decision_id"])
    assert oldest["ts"].max() <= newest["ts"].min()
    everything = sample_decisions(demo_ws, admin, system_id=system, limit=total + 10)
    assert everything["mode"] == "all" and everything["shown"] == total
    assert describe(everything) == f"{total:,} decisions"
    none = sample_decisions(demo_ws, admin, system_id=system, principal="no such principal")
    assert (none["total"], none["shown"], none["mode"]) == (0, 0, "all")


def test_permission_and_audit(demo_ws, admin) -> None:
    system, total = _system(demo_ws)
    with pytest.raises(PermissionDenied):
        sample_decisions(demo_ws, Actor("v", "viewer"), system_id=system)
    sample_decisions(demo_ws, admin, system_id=system, limit=10)
    details = json.loads(demo_ws.scalar(
        "SELECT details FROM audit_log WHERE action = 'read.decisions' ORDER BY seq DESC LIMIT 1"))
    assert details["rows"] == 10 and len(details["decision_ids"]) == 10
    assert details["sample"]["matched"] == total and details["sample"]["mode"] == "even"
    with pytest.raises(ValueError):
        sample_decisions(demo_ws, admin, system_id=system, mode="random")
