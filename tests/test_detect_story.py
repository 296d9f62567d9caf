"""Monitoring metrics in the story of an alert: a flood cites the customer's ingested request-rate, latency and
error series and the metric anomalies inside it (without a second alert for the same event), and metric
baselines leave out windows an alert explains, so the end of an attack is not a new anomaly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.access import local_admin
from workbench.detect import list_alerts
from workbench.detect.metric_anomaly import judge_series
from workbench.store import open_workspace
from workbench.timestamps import as_datetime


def _flood(alerts: list[dict]) -> dict:
    floods = [a for a in alerts if a["detector"] == "flood"]
    assert len(floods) == 1, floods
    return floods[0]


def test_flood_cites_the_ingested_metrics(demo_ws, admin):
    flood = _flood(list_alerts(demo_ws, admin))
    health = flood["evidence"]["metrics"]
    assert health["source"] == "decision log and ingested metrics"
    series = {s["metric"]: s for s in health["ingested"]}
    assert {"request_rate", "latency_p95_ms", "error_rate"} <= set(series)
    assert [series[m]["kind"] for m in ("request_rate", "latency_p95_ms", "error_rate")] == \
        ["request_rate", "latency", "errors"]
    for m in ("request_rate", "latency_p95_ms", "error_rate"):
        assert series[m]["window_peak"] > series[m]["usual"], series[m]
    assert series["request_rate"]["peak_vs_usual"] >= 3
    assert "the exported metrics peaked with request_rate at" in flood["summary"]


def test_flood_cites_the_metric_anomalies_inside_it_without_a_second_alert(demo_ws, admin):
    alerts = list_alerts(demo_ws, admin)
    flood = _flood(alerts)
    cited = {c["metric"]: c for c in flood["evidence"]["metric_anomalies"]}
    assert {"request_rate", "latency_p95_ms", "error_rate"} <= set(cited), cited
    for c in cited.values():
        assert c["explained_by_this_alert"] and c["direction"] == "above"
        assert c["observed"] > c["expected"] and abs(c["peak_z"]) >= 8
    t0, t1 = as_datetime(flood["window_start"]), as_datetime(flood["window_end"])
    pad = timedelta(minutes=15)
    dup = [a for a in alerts if a["detector"] == "metric_anomaly" and a["system_id"] == flood["system_id"]
           and as_datetime(a["window_start"]) <= t1 + pad and as_datetime(a["window_end"]) >= t0 - pad]
    assert dup == [], "the flood's metric anomalies must not be raised again as their own alert"


def _attack_series(days: int = 2) -> tuple[pd.DatetimeIndex, np.ndarray, tuple]:
    """Two days of a flat minute metric with noise and a 2-hour block at 50x: short enough that the baseline is
    a trailing rolling median (no seasonal history), the case where it learned the attack."""
    rng = np.random.default_rng(5)
    ts = pd.date_range("2026-10-01", periods=days * 1440, freq="1min", tz="UTC")
    values = 10 + rng.normal(0, 1, len(ts))
    w0, w1 = ts[1440 + 600], ts[1440 + 720]
    values[(ts >= w0) & (ts < w1)] *= 50
    return ts, values, (w0.to_pydatetime(), w1.to_pydatetime())


def test_baseline_leaves_out_an_explained_window():
    ts, values, (w0, w1) = _attack_series()
    learned = judge_series(ts, values)
    after = [f for f in learned if f.t1 > w1 + timedelta(minutes=30)]
    assert after, "without exclusion the hour after the attack reads as a drop below a baseline that learned it"
    blind = judge_series(ts, values, explained=[(w0, w1)])
    assert blind, "the attack itself is still judged against the clean baseline"
    assert all(f.t1 <= w1 + timedelta(minutes=10) for f in blind), [(f.t0, f.t1, f.event.peak_z) for f in blind]
    assert all(f.event.peak_z > 0 for f in blind)
    top = max(blind, key=lambda f: f.event.peak_z).event
    assert top.observed > 20 * top.expected and 5 < top.expected < 15


@pytest.fixture(scope="module")
def long_flood_ws(small_sample: Path, tmp_path_factory: pytest.TempPathFactory):
    """A workspace whose only incident is a two-hour flood at 65x the normal rate (models reused from the small
    sample)."""
    from workbench.demo import build_demo
    from workbench.sample import IncidentSpec, generate

    out = tmp_path_factory.mktemp("long_flood")
    generate(out, seed=5, days=6, decisions_per_day=4000, models_dir=small_sample,
             incidents=[IncidentSpec("dos_flood", duration="2h", params={"rate_multiplier": 65})])
    ws = open_workspace(out / "ws.duckdb")
    build_demo(ws, local_admin(), out)
    yield ws
    ws.close()


def test_end_of_a_long_flood_is_not_a_new_anomaly(long_flood_ws):
    alerts = list_alerts(long_flood_ws, local_admin())
    flood = _flood(alerts)
    t1 = as_datetime(flood["window_end"])
    cited = flood["evidence"]["metric_anomalies"]
    assert {"request_rate", "latency_p95_ms", "error_rate"} <= {c["metric"] for c in cited}
    late = [c for c in cited if as_datetime(c["end"]) > t1 + timedelta(minutes=10)]
    assert late == [], f"metric events running past the flood's end: {late}"
    after = [a for a in alerts if a["detector"] == "metric_anomaly"
             and t1 - timedelta(minutes=15) <= as_datetime(a["window_start"]) <= t1 + timedelta(hours=3)]
    assert after == [], [a["summary"] for a in after]
