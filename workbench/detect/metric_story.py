"""Monitoring metrics in the story of an alert: the ingested series around an alert's window, which alert
windows explain the metrics (so baselines leave them out), and metric anomalies cited in an alert's evidence.

A customer exports request rate, latency and error metrics beside the decision log; an alert about a flood
(or any alert whose window holds metric anomalies) cites those series by name with observed and expected
values, rather than only figures recomputed from the decisions.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from workbench.detect.alerts import Alert
from workbench.detect.context import Ctx, SystemScope

EXPLAIN_SHARE = 0.25   # an alert explains its window's metrics when its decisions are this share of the traffic
MAX_CITED = 20         # metric anomalies cited per alert (the strongest)
KINDS = (              # how a metric's name says what it measures (first match wins)
    ("errors", re.compile(r"err|fail|5xx|4xx|exception|timeout", re.I)),
    ("latency", re.compile(r"latency|duration|response_time|p50|p90|p95|p99|elapsed", re.I)),
    ("request_rate", re.compile(r"request|rps|rpm|qps|throughput|calls|invocations|traffic|rate", re.I)),
)


def kind_of(metric: str) -> str:
    """request_rate, latency, errors or other, from the metric's name."""
    return next((k for k, rx in KINDS if rx.search(metric)), "other")


def explaining_windows(ctx: Ctx, s: SystemScope) -> list[tuple[datetime, datetime, Alert]]:
    """Windows of this run's alerts on the system whose implicated decisions are at least EXPLAIN_SHARE of the
    system's traffic in the window (a flood, a sweep, a night of stolen-key traffic): what the metrics do there
    is already explained, so metric baselines do not learn from it and no second alert is raised for it."""
    out = []
    for a in ctx.alerts:
        if a.system_id != s.system_id or not a.hits:
            continue
        mine = ctx.ws.scalar("SELECT count(DISTINCT decision_id) FROM _hits WHERE detector = ? AND system_id = ? "
                             "AND key = ?", [a.detector, s.system_id, a.hits]) or 0
        total = ctx.ws.scalar(f"SELECT count(*) FROM {s.table} WHERE ts >= ? AND ts <= ?",
                              [a.window_start, a.window_end]) or 0
        if mine and mine >= EXPLAIN_SHARE * total:
            out.append((a.window_start, a.window_end, a))
    return out


def cite(alert: Alert, metric: str, labels: str | None, t0: datetime, t1: datetime, event: Any,
         explained: bool) -> None:
    """Add one metric anomaly to an alert's evidence (metric name, window, observed vs expected, z)."""
    cited = alert.evidence.setdefault("metric_anomalies", [])
    cited.append({"metric": metric, "labels": labels or None, "kind": kind_of(metric), "start": t0, "end": t1,
                  "change": event.kind, "direction": "above" if event.peak_z > 0 else "below",
                  "observed": event.observed, "expected": event.expected, "peak_z": event.peak_z,
                  "z_threshold": event.threshold, "explained_by_this_alert": explained})
    cited.sort(key=lambda c: -abs(c["peak_z"]))
    del cited[MAX_CITED:]


def ingested(ctx: Ctx, s: SystemScope, w0: datetime, w1: datetime) -> list[dict[str, Any]]:
    """Every ingested metric series of the system in [w0, w1): its mean and peak there against its usual level,
    the median of the same time-of-day span on the other days (empty when no metrics were ingested)."""
    if not ctx.ws.scalar("SELECT count(*) FROM metrics WHERE system_id = ? AND ts >= ? AND ts < ?",
                         [s.system_id, w0, w1]):
        return []
    span = max((w1 - w0).total_seconds(), 60.0)
    rows = ctx.ws.dicts("""
        WITH m AS (SELECT metric, coalesce(labels::VARCHAR, '') AS labels, ts, value FROM metrics
                   WHERE system_id = ? AND isfinite(value)),
        tod AS (SELECT *, ((epoch(ts) - epoch(?::TIMESTAMPTZ)) % 86400 + 86400) % 86400 AS off FROM m)
        SELECT metric, labels,
               avg(value) FILTER (WHERE ts >= ? AND ts < ?) AS window_mean,
               max(value) FILTER (WHERE ts >= ? AND ts < ?) AS window_peak,
               min(value) FILTER (WHERE ts >= ? AND ts < ?) AS window_low,
               count(*) FILTER (WHERE ts >= ? AND ts < ?) AS window_points,
               median(value) FILTER (WHERE off < ? AND NOT (ts >= ? AND ts < ?)) AS usual,
               quantile_cont(value, 0.99) FILTER (WHERE off < ? AND NOT (ts >= ? AND ts < ?))
                 AS usual_p99
        FROM tod GROUP BY ALL HAVING count(*) FILTER (WHERE ts >= ? AND ts < ?) > 0
        ORDER BY metric, labels
    """, [s.system_id, w0, w0, w1, w0, w1, w0, w1, w0, w1, span, w0, w1, span, w0, w1, w0, w1])
    out = []
    for r in rows:
        usual = r["usual"]
        ratio = r["window_peak"] / usual if usual else None
        out.append({"metric": r["metric"], "labels": r["labels"] or None, "kind": kind_of(r["metric"]),
                    "window_mean": r["window_mean"], "window_peak": r["window_peak"], "window_low": r["window_low"],
                    "points": r["window_points"], "usual": usual, "usual_p99": r["usual_p99"],
                    "peak_vs_usual": ratio})
    order = {"request_rate": 0, "latency": 1, "errors": 2, "other": 3}
    out.sort(key=lambda r: (order[r["kind"]], -(r["peak_vs_usual"] or 0.0), r["metric"]))
    return out


def degraded(series: list[dict[str, Any]]) -> bool:
    """Whether the ingested latency or error series show the service degraded (latency peak 1.5x its usual,
    errors above twice their usual plus half a point)."""
    for r in series:
        peak, usual = r["window_peak"], r["usual"]
        if peak is None or usual is None:
            continue
        if r["kind"] == "latency" and usual > 0 and peak > 1.5 * usual:
            return True
        if r["kind"] == "errors" and peak > 2 * usual + 0.005:
            return True
    return False


def headline(series: list[dict[str, Any]]) -> str:
    """'the exported request_rate peaked at 63 (usually 8), latency_p95_ms at 4,250 (usually 22)': the strongest
    series of each kind (empty text when there are none)."""
    parts, seen = [], set()
    for r in series:
        if r["kind"] in seen or r["kind"] == "other" or r["window_peak"] is None or r["usual"] is None:
            continue
        seen.add(r["kind"])
        parts.append(f"{r['metric']} at {_num(r['window_peak'])} (usually {_num(r['usual'])})")
    return ("the exported metrics peaked with " + ", ".join(parts)) if parts else ""


def _num(v: float) -> str:
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"
