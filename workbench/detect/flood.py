"""Denial of AI service and cost harvesting: request-rate surges, tied to the principals that caused them.

Requests are counted per bucket (1-15 minutes, sized so an average bucket holds about ten requests). The
expected count of a bucket is the median of the same time-of-day slot over all days (robust to a flood on one
day); the scale is the slot's MAD, floored by the Poisson spread. A bucket is a surge when it is both far
above (robust z) and several times its expectation. Within a surge window each principal's count is
compared with its own count in the same time-of-day span on the other days: those who account for the
excess are named, and their bursts of activity around the window are the implicated decisions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from workbench.detect import metric_story
from workbench.detect.alerts import Alert
from workbench.detect.context import Ctx, SystemScope
from workbench.detect.episodes import episodes_sql
from workbench.detect.robust import MAD_K, mad
from workbench.timestamps import human_utc

NAME = "flood"
ATLAS = ["AML.T0029", "AML.T0034"]
Z_MIN = 6.0
RATIO_MIN = 2.5
TARGET_PER_BUCKET = 10.0
MIN_EXCESS_SHARE = 0.05   # a culprit explains at least this share of the window's excess
BURST_GAP_MINUTES = 10
MIN_BUCKETS = 2           # one surging bucket is noise; a flood lasts
MERGE_MINUTES = 30        # surging buckets closer than this belong to one flood
MAX_BUCKETS = 2_000_000   # the grid's bound: beyond it only the most recent buckets are judged (a stray old ts)


def bucket_minutes(n: int, minutes: float) -> int:
    """Bucket size so that an average bucket holds about TARGET_PER_BUCKET requests (1..15 minutes)."""
    rate = n / max(minutes, 1.0)
    return int(min(15, max(1, math.ceil(TARGET_PER_BUCKET / max(rate, 1e-9)))))


def surge_windows(counts: pd.DataFrame, bucket: int) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """Expected count, scale and z per bucket; and runs of surging buckets as (first, last) row indices."""
    c = counts.copy()
    ts = pd.to_datetime(c["bt"], utc=True)
    c["slot"] = (ts.dt.hour * 60 + ts.dt.minute) // bucket
    days = ts.dt.normalize().nunique()
    key = "slot" if days >= 2 else None
    if key:
        g = c.groupby(key)["n"]
        c["exp"] = g.transform("median")
        c["mad"] = g.transform(mad)
    else:
        c["exp"] = float(c["n"].median())
        c["mad"] = mad(c["n"], c["exp"])
    c["scale"] = np.maximum.reduce([c["mad"] * MAD_K, np.sqrt(c["exp"]), np.ones(len(c))])
    c["z"] = (c["n"] - c["exp"]) / c["scale"]
    flag = ((c["z"] >= Z_MIN) & (c["n"] >= RATIO_MIN * np.maximum(c["exp"], 1.0))).to_numpy()
    runs: list[list[int]] = []  # first, last, flagged buckets
    # a flood whose rate hovers near the bar flags buckets on and off: gaps shorter than MERGE_MINUTES are one
    # flood, not several (each later piece would otherwise be judged without the culprits the first one claimed)
    gap = max(2, MERGE_MINUTES // bucket)
    for i in np.nonzero(flag)[0]:
        if runs and i - runs[-1][1] <= gap:
            runs[-1][1] = int(i)
            runs[-1][2] += 1
        else:
            runs.append([int(i), int(i), 1])
    return c, [(a, b) for a, b, k in runs if k >= MIN_BUCKETS]


def detect(ctx: Ctx) -> list[Alert]:
    """Surge windows per system with the principals who caused them."""
    out: list[Alert] = []
    for s in ctx.systems:
        if s.n_scope >= 50:
            out += _system(ctx, s)
    return out


def _system(ctx: Ctx, s: SystemScope) -> list[Alert]:
    ws = ctx.ws
    t_min, t_max, n = ws.one(f"SELECT min(ts), max(ts), count(*) FROM {s.table} d WHERE {ctx.unclaimed(s)}")
    if t_min is None:
        return []
    bucket = bucket_minutes(n, (t_max - t_min).total_seconds() / 60)
    t_min = max(t_min, t_max - pd.Timedelta(minutes=bucket * MAX_BUCKETS).to_pytimedelta())
    counts = ws.df(f"""
        WITH b AS (SELECT time_bucket(INTERVAL {bucket} MINUTE, ts) AS bt, count(*) AS n
                   FROM {s.table} d WHERE {ctx.unclaimed(s)} GROUP BY 1),
        g AS (SELECT range AS bt FROM range(time_bucket(INTERVAL {bucket} MINUTE, ?::TIMESTAMPTZ), ?::TIMESTAMPTZ,
                                            INTERVAL {bucket} MINUTE))
        SELECT g.bt, coalesce(b.n, 0)::DOUBLE AS n FROM g LEFT JOIN b USING (bt) ORDER BY g.bt
    """, [t_min, t_max])
    if len(counts) < 3:
        return []
    c, runs = surge_windows(counts, bucket)
    out = []
    for k, (i0, i1) in enumerate(runs):
        w0 = pd.Timestamp(c["bt"].iloc[i0]).to_pydatetime()
        w1 = (pd.Timestamp(c["bt"].iloc[i1]) + pd.Timedelta(minutes=bucket)).to_pydatetime()
        if w1 < s.since or w0 > s.until:
            continue
        seg = c.iloc[i0:i1 + 1]
        observed, expected = float(seg["n"].sum()), float(seg["exp"].sum())
        excess = observed - expected
        alert = _window(ctx, s, k, w0, w1, bucket, seg, observed, expected, excess)
        if alert:
            out.append(alert)
    return out


def _window(ctx: Ctx, s: SystemScope, k: int, w0, w1, bucket: int, seg: pd.DataFrame, observed: float,
            expected: float, excess: float) -> Alert | None:
    ws = ctx.ws
    days = max(1, int(ws.scalar(f"SELECT count(DISTINCT ts::DATE) FROM {s.table}") or 1) - 1)
    per = ws.dicts(f"""
        WITH span AS (SELECT ?::TIMESTAMPTZ AS w0, ?::TIMESTAMPTZ AS w1),
        inw AS (SELECT principal, count(*) AS n FROM {s.table} d, span
                WHERE ts >= w0 AND ts < w1 AND {ctx.unclaimed(s)} GROUP BY principal),
        other AS (SELECT principal, count(*) AS n FROM {s.table} d, span
                  WHERE ts::DATE <> w0::DATE AND (ts - date_trunc('day', ts)) >= (w0 - date_trunc('day', w0))
                    AND (ts - date_trunc('day', ts)) < (w1 - date_trunc('day', w0))
                    AND {ctx.unclaimed(s)} GROUP BY principal),
        hist AS (SELECT principal, count(*) AS total FROM {s.table} d, span
                 WHERE (ts < w0 - INTERVAL 1 DAY OR ts > w1 + INTERVAL 1 DAY) GROUP BY principal)
        SELECT inw.principal, inw.n, coalesce(other.n, 0) / {days}::DOUBLE AS expected,
               coalesce(hist.total, 0) AS history
        FROM inw LEFT JOIN other USING (principal) LEFT JOIN hist USING (principal)
        ORDER BY inw.n - coalesce(other.n, 0) / {days}::DOUBLE DESC, inw.principal
    """, [w0, w1])
    culprits = []
    for p in per:
        ex = p["n"] - p["expected"]
        if ex < MIN_EXCESS_SHARE * excess or p["n"] < RATIO_MIN * max(p["expected"], 1.0):
            break
        culprits.append(p | {"excess": ex, "share_of_excess": ex / max(excess, 1.0), "new": p["history"] == 0})
    key = f"{k}|{w0.isoformat()}"
    names = [p["principal"] for p in culprits]
    if names:
        ctx.hit(NAME, s, f"""
            WITH r AS (SELECT decision_id, principal, ts FROM {s.table} d
                       WHERE list_contains(?, principal) AND ts >= ?::TIMESTAMPTZ - INTERVAL 3 HOUR
                         AND ts < ?::TIMESTAMPTZ + INTERVAL 3 HOUR AND {ctx.unclaimed(s)}),
            b AS ({episodes_sql("r", ["principal"], BURST_GAP_MINUTES, "decision_id", key="burst")}),
            keep AS (SELECT principal, burst FROM b GROUP BY principal, burst
                     HAVING max(ts) >= ?::TIMESTAMPTZ AND min(ts) < ?::TIMESTAMPTZ)
            SELECT ?, decision_id FROM b JOIN keep USING (principal, burst)
        """, [names, w0, w1, w0, w1, key])
        ctx.claim(NAME, s, [key])
        t0, t1 = ws.one("SELECT min(d.ts), max(d.ts) FROM _hits h JOIN " + s.table + " d USING (decision_id) "
                        "WHERE h.detector = ? AND h.system_id = ? AND h.key = ?", [NAME, s.system_id, key])
    else:
        t0, t1 = w0, w1
    ratio = observed / max(expected, 1.0)
    peak = seg.loc[seg["z"].idxmax()]
    health = _health(ctx, s, w0, w1)
    exported = metric_story.ingested(ctx, s, w0, w1)  # the customer's own request, latency and error series
    health["source"] = "decision log" + (" and ingested metrics" if exported else "")
    health["ingested"] = exported
    health["degraded"] = bool(health["degraded"] or metric_story.degraded(exported))
    sev = "high" if names else "medium"
    if names and ratio >= 5 and health.get("degraded"):
        sev = "critical"
    elif ratio < 3:
        sev = "medium" if names else "low"
    who = (", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")) if names else \
        "no single principal (broad surge)"
    told = metric_story.headline(exported)
    summary = (f"{s.system_id} received {observed:.0f} requests between {human_utc(w0)} and {human_utc(w1)}, "
               f"{ratio:.1f}x the {expected:.0f} expected for that time of day, driven by {who}"
               + (f"; {told}" if told else "") + ".")
    return Alert(
        NAME, s.system_id, sev, t0, t1, summary,
        {"observed_requests": observed, "expected_requests": expected, "ratio": ratio, "excess": excess,
         "peak_bucket": {"start": pd.Timestamp(peak["bt"]).to_pydatetime(), "observed": peak["n"],
                         "expected": peak["exp"], "z": peak["z"]},
         "bucket_minutes": bucket, "principals": names,
         "culprits": [{k2: p[k2] for k2 in ("principal", "n", "expected", "excess", "share_of_excess", "new")}
                      for p in culprits],
         "metrics": health,
         "thresholds": {"z": Z_MIN, "ratio": RATIO_MIN, "min_excess_share": MIN_EXCESS_SHARE,
                        "baseline": "median and MAD of the same time-of-day slot over all days"}},
        atlas=list(ATLAS), principal=names[0] if names else None, metric="request_rate",
        score=float(peak["z"]), hits=key if names else None)


def _health(ctx: Ctx, s: SystemScope, w0, w1) -> dict:
    """Latency and error figures of the decision log in the window against the same hours on other days (when
    logged); the ingested metric series are added beside them by the caller."""
    row = ctx.ws.one(f"""
        SELECT quantile_cont(latency_ms, 0.95) FILTER (WHERE ts >= ? AND ts < ?) AS p95_in,
               quantile_cont(latency_ms, 0.95) FILTER (WHERE ts::DATE <> ?::DATE) AS p95_other,
               avg((status = 'error')::INT) FILTER (WHERE ts >= ? AND ts < ?) AS err_in,
               avg((status = 'error')::INT) FILTER (WHERE ts::DATE <> ?::DATE) AS err_other
        FROM {s.table} WHERE (ts - date_trunc('day', ts)) >= (?::TIMESTAMPTZ - date_trunc('day', ?::TIMESTAMPTZ))
          AND (ts - date_trunc('day', ts)) < (?::TIMESTAMPTZ - date_trunc('day', ?::TIMESTAMPTZ))
    """, [w0, w1, w0, w0, w1, w0, w0, w0, w1, w0])
    p95_in, p95_other, err_in, err_other = row
    out = {"latency_p95_ms_window": p95_in, "latency_p95_ms_usual": p95_other, "error_rate_window": err_in,
           "error_rate_usual": err_other}
    out["degraded"] = bool((p95_in and p95_other and p95_in > 1.5 * p95_other)
                           or (err_in is not None and err_other is not None and err_in > 2 * err_other + 0.005))
    return out
