"""Metric anomalies on any series: a seasonal baseline plus change-point detection (numpy on aggregates).

For each series (system, metric, labels) the expected value is either the median of the same time on up to
seven previous days (seasonal) or a trailing rolling median (local), whichever leaves the smaller residuals
on this series. Residuals are scaled by a trailing rolling MAD (the current point never widens its own
scale). The spike threshold is learned per series: at least Z_SPIKE, and MARGIN times the 99.9% |z| of the
series' reference part, so a naturally spiky series is judged by its own standard. Level shifts come from a
two-sided CUSUM of clipped z. Events within a refractory period merge. `detect_series` is the pure function.

In the workspace (`judge_series`, the one path both `detect` and benchmarks/bench_nab.py run), minute metrics
are judged on 5-minute medians with 3-point smoothing and margin 1.2, and only events with |z| >= ALERT_Z count
(queue policy). Windows an alert explains (a flood, a sweep: metric_story.explaining_windows) are left out of
the baselines, so the end of an attack is not a new anomaly; an event in such a window is cited in that alert's
evidence instead of raised again, and any alert whose window holds an event cites it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from workbench.detect import metric_story
from workbench.detect.alerts import SEVERITIES, Alert
from workbench.detect.baseline import default_window
from workbench.detect.context import Ctx
from workbench.detect.robust import mad, trailing_mad_scale
from workbench.timestamps import human_utc

NAME = "metric_anomaly"
Z_SPIKE = 5.0
SMOOTH = 1               # points in the median of z (the workspace already judges 5-minute medians)
MARGIN = 0.8             # threshold vs the reference part's 99.9% |z| (a spiky series is judged by its own standard)
REFERENCE = 0.15         # share of a series treated as its reference (NAB's probationary period)
RESAMPLE = "5min"        # minute metrics are judged on 5-minute medians
CUSUM_K = 1.0
CUSUM_H = 15.0
CLIP = 6.0
MEDIUM_Z = 15.0
WS_SMOOTH = 3            # in the workspace queue: median of 3 points' z (one odd 5-minute point is not enough)
WS_MARGIN = 1.2          # and a threshold above the reference's 99.9% |z|
ALERT_Z = 8.0            # queue policy: metric-only events weaker than this are not alerted
MEDIUM_MINUTES = 15
MAX_POINTS = 500_000     # a series' grid is bounded: beyond it only the most recent points are judged (a stray old ts)
BEHIND_EXCESS = 0.25     # a principal is named when its share of the window beats its usual share by this much


@dataclass
class Event:
    """One anomaly in a series: index range, peak z, direction and kind (spike | level_shift)."""

    start: int
    end: int
    peak_z: float
    kind: str
    expected: float
    observed: float
    threshold: float = Z_SPIKE
    hot: int = 0  # points above the spike threshold


def _rolling_median(x: pd.Series, window: int) -> pd.Series:
    return x.rolling(window, min_periods=max(3, window // 4)).median().shift(1)


def baseline(values: np.ndarray, period: int | None) -> tuple[np.ndarray, str]:
    """Expected values: seasonal (same time on previous days) or trailing rolling median, the better fit."""
    x = pd.Series(values, dtype=float)
    local_w = max(12, min(288, (period or 288) // 12))
    local = _rolling_median(x, local_w).to_numpy()
    if not period or len(x) < 3 * period:
        return local, "rolling_median"
    lags = np.column_stack([x.shift(k * period).to_numpy() for k in range(1, 8)])
    with np.errstate(all="ignore"):
        seasonal = np.nanmedian(np.where(np.isnan(lags).all(axis=1, keepdims=True), 0.0, lags), axis=1)
    seasonal[np.isnan(lags).all(axis=1)] = np.nan
    ok = ~np.isnan(seasonal) & ~np.isnan(local) & ~np.isnan(values)
    if ok.sum() < period:
        return local, "rolling_median"
    e_s = mad(values[ok], seasonal[ok])
    e_l = mad(values[ok], local[ok])
    if e_s < 0.9 * e_l:
        return np.where(np.isnan(seasonal), local, seasonal), "seasonal_median"
    return local, "rolling_median"


def scores(values: np.ndarray, period: int | None = None, scale_window: int | None = None,
           smooth: int = 1, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Robust z of each point against its expectation, smoothed over `smooth` points (one outlier is not enough).

    Points in `exclude` (windows an alert already explains) are judged but never learned from: the expected
    value and the scale are computed as if they were missing, and carried over them from the last point
    before, so the end of an attack is not "a spike below the expected level" of a baseline that learned it."""
    v = np.asarray(values, dtype=float)
    learn = v if exclude is None else np.where(exclude, np.nan, v)
    exp, _ = baseline(learn, period)
    if exclude is not None and exclude.any():
        exp = pd.Series(exp).ffill().to_numpy()
    resid = v - exp
    sw = scale_window or max(60, min(2 * (period or 288), len(v) // 4))
    seen = np.abs(learn - exp)
    scale = trailing_mad_scale(seen, sw)
    pos = seen[np.isfinite(seen) & (seen != 0)]
    floor = max(float(np.percentile(pos, 10)) if pos.size else 1e-9, 1e-6 * (np.nanmedian(np.abs(v)) or 1.0), 1e-9)
    z = resid / np.maximum(scale, floor)
    z = np.where(np.isfinite(z), z, 0.0)
    zs = pd.Series(z).rolling(smooth, min_periods=1).median().to_numpy() if smooth > 1 else z
    return np.where(np.isfinite(v), zs, 0.0), exp  # a gap (no data) is never an anomaly


def detect_series(values: np.ndarray, period: int | None = None, scale_window: int | None = None,
                  reference: float = REFERENCE, smooth: int = SMOOTH, margin: float = MARGIN,
                  exclude: np.ndarray | None = None) -> list[Event]:
    """Spikes and level shifts in one regularly sampled series (period = points per day, if known).

    The threshold is learned: never below Z_SPIKE, and above the largest smoothed |z| the reference part
    (the first `reference` share of the series) reaches, so a naturally spiky series is judged by its own
    standard. Points in `exclude` (already explained) are judged but not learned from (see `scores`).
    """
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n < 30:
        return []
    zs, exp = scores(v, period, scale_window, smooth, exclude)
    head = max(10, int(reference * n))
    ref = np.abs(zs[:head] if exclude is None else zs[:head][~exclude[:head]])
    thr = max(Z_SPIKE, margin * float(np.quantile(ref, 0.999)) if ref.size else Z_SPIKE)
    spike = np.abs(zs) >= thr
    zc = np.clip(zs / thr * Z_SPIKE, -CLIP, CLIP)
    shift = np.zeros(n, dtype=bool)
    sp = sn = 0.0
    for i in range(n):  # CUSUM over one series of aggregates (minutes or 5-minute points), not over decisions
        sp = max(0.0, sp + zc[i] - CUSUM_K)
        sn = max(0.0, sn - zc[i] - CUSUM_K)
        if sp > CUSUM_H or sn > CUSUM_H:
            shift[i] = True
            sp = sn = 0.0
    refractory = max(5, (period or 288) // 24)
    events: list[Event] = []
    for i in np.nonzero(spike | shift)[0]:
        kind = "spike" if spike[i] else "level_shift"
        if events and i - events[-1].end <= refractory:
            e = events[-1]
            e.end = int(i)
            e.hot += int(spike[i])
            if abs(zs[i]) > abs(e.peak_z):
                e.peak_z, e.expected, e.observed = float(zs[i]), float(exp[i]), float(v[i])
            continue
        events.append(Event(int(i), int(i), float(zs[i]), kind, float(exp[i]), float(v[i]), thr, int(spike[i])))
    return events


@dataclass
class Found:
    """An event of the workspace's metric path with its time window (grid start of its first point to the end
    of its last one)."""

    t0: datetime
    t1: datetime
    event: Event


def judge_series(ts: pd.Series | pd.DatetimeIndex, values: np.ndarray, ref_since: datetime | None = None,
                 ref_until: datetime | None = None,
                 explained: list[tuple[datetime, datetime]] | tuple = ()) -> list[Found]:
    """The workspace's metric path for one series, the one `detect` uses and benchmarks/bench_nab.py measures.

    Minute series are judged on the median of the points logged in each 5 minutes (gaps stay empty: no data is
    no evidence, so one odd point beside a gap is not stretched over it); expected values come from
    `detect_series` with the workspace's smoothing (WS_SMOOTH) and margin (WS_MARGIN); the reference share is
    the system's reference window [ref_since, ref_until) within the series (default: the workspace's default
    window, the first 30% of the span, at most 7 days); points inside `explained` windows are judged but not
    learned from. Only events with |z| >= ALERT_Z are returned (the queue policy)."""
    raw = pd.Series(np.asarray(values, dtype=float), index=pd.to_datetime(ts, utc=True))
    raw = raw[raw.index.notna()].sort_index()
    raw = raw.groupby(level=0).mean()
    if len(raw) < 30:
        return []
    step = raw.index.to_series().diff().median()
    if pd.isna(step) or step <= pd.Timedelta(0):
        return []
    raw = raw[raw.index >= raw.index[-1] - max(step, pd.Timedelta(RESAMPLE)) * MAX_POINTS]
    if step < pd.Timedelta(RESAMPLE):
        raw = raw.resample(RESAMPLE).median()
        step = pd.Timedelta(RESAMPLE)
    grid = pd.date_range(raw.index[0], raw.index[-1], freq=step)
    vals = raw.reindex(grid, method="nearest", tolerance=step / 2).to_numpy()
    if ref_since is None or ref_until is None:
        ref_since, ref_until = default_window(grid[0].to_pydatetime(), grid[-1].to_pydatetime())
    span = max(grid[-1] - grid[0], pd.Timedelta(1))
    ref_share = max(0.05, min(0.5, (pd.Timestamp(ref_until) - pd.Timestamp(ref_since)) / span))
    period = int(round(pd.Timedelta(days=1) / step)) if step <= pd.Timedelta(hours=2) else None
    exclude = None
    if explained:
        exclude = np.zeros(len(grid), dtype=bool)
        ends = grid + step
        for w0, w1 in explained:
            exclude |= np.asarray((ends > pd.Timestamp(w0)) & (grid <= pd.Timestamp(w1)))
    out = []
    for e in detect_series(vals, period, reference=ref_share, smooth=WS_SMOOTH, margin=WS_MARGIN,
                           exclude=exclude):
        if abs(e.peak_z) >= ALERT_Z:
            out.append(Found(grid[e.start].to_pydatetime(), (grid[e.end] + step).to_pydatetime(), e))
    return out


def detect(ctx: Ctx) -> list[Alert]:
    """Anomalies in every metric series of the systems in scope. An anomaly inside the window of an alert that
    explains it (see metric_story.explaining_windows: a flood, a sweep) is cited in that alert's evidence rather
    than raised again; any alert whose window holds an anomaly cites it; baselines leave explained windows out."""
    if not ctx.systems:
        return []
    out: list[Alert] = []
    for s in ctx.systems:
        series = ctx.ws.rows("SELECT metric, coalesce(labels::VARCHAR, '') FROM metrics WHERE system_id = ? "
                             "AND ts >= ? AND ts <= ? GROUP BY ALL ORDER BY ALL", [s.system_id, s.ref_since,
                                                                                     s.until])
        if not series:
            continue
        explained = metric_story.explaining_windows(ctx, s)
        mine = [a for a in ctx.alerts if a.system_id == s.system_id]
        found: list[Alert] = []
        for metric, labels in series:
            df = ctx.ws.df("SELECT ts, avg(value) AS v FROM metrics WHERE system_id = ? AND metric = ? "
                           "AND coalesce(labels::VARCHAR, '') = ? AND ts <= ? GROUP BY ts ORDER BY ts",
                           [s.system_id, metric, labels, s.until])
            for f in judge_series(df["ts"], df["v"].to_numpy(), s.ref_since, s.ref_until,
                                  [(w0, w1) for w0, w1, _ in explained]):
                if f.t1 < s.since or f.t0 > s.until:
                    continue
                slack = timedelta(minutes=5)
                owners = [a for w0, w1, a in explained if f.t0 <= w1 + slack and f.t1 >= w0 - slack]
                holders = [a for a in mine if f.t0 <= a.window_end + slack and f.t1 >= a.window_start - slack]
                for a in owners or holders:  # an explained event is cited by the alerts that explain it
                    metric_story.cite(a, metric, labels, f.t0, f.t1, f.event, explained=a in owners)
                if not owners:
                    found.append(_alert(ctx, s, metric, labels, f, holders))
        out += _merge(found)
    return out


def _merge(alerts: list[Alert]) -> list[Alert]:
    """One alert per overlapping episode of a system (p50 and p95 latency move together): the strongest
    series leads, the others are listed in its evidence."""

    out: list[Alert] = []
    group: list[Alert] = []
    for a in sorted(alerts, key=lambda x: (x.window_start, x.metric or "")) + [None]:
        if a is not None and group and a.window_start <= max(g.window_end for g in group):
            group.append(a)
            continue
        if group:
            lead = max(group, key=lambda g: g.score)
            others = [g for g in group if g is not lead]
            if others:
                lead.window_start = min(g.window_start for g in group)
                lead.window_end = max(g.window_end for g in group)
                lead.severity = max((g.severity for g in group), key=SEVERITIES.index)
                lead.evidence["also"] = [{"metric": g.metric, "peak_z": g.evidence.get("peak_z"),
                                          "observed": g.evidence.get("observed"),
                                          "expected": g.evidence.get("expected")} for g in others]
                lead.summary = lead.summary[:-1] + f", together with {', '.join(sorted({g.metric for g in others}))}."
            out.append(lead)
        group = [a] if a is not None else []
    return out


def _alert(ctx: Ctx, s, metric: str, labels: str, f: Found, during: list[Alert]) -> Alert:
    """A metric-only alert for one event no other alert explains."""
    e, t0, t1 = f.event, f.t0, f.t1
    minutes = (t1 - t0).total_seconds() / 60
    sev = "medium" if abs(e.peak_z) >= MEDIUM_Z and minutes >= MEDIUM_MINUTES and e.hot >= 3 else "low"
    direction = "above" if e.peak_z > 0 else "below"
    what = "a sustained shift" if e.kind == "level_shift" else "a spike"
    who = principals_in_window(ctx, s, t0, t1, errors="error" in metric.lower())
    behind = [w["principal"] for w in who if w["excess_share"] >= BEHIND_EXCESS]
    summary = (f"{s.system_id} {metric} showed {what} {direction} its expected level between {human_utc(t0)} and "
               f"{human_utc(t1)} (peak {e.observed:.4g} vs {e.expected:.4g} expected, z={e.peak_z:.1f})"
               + (f"; {_share_text(who[0])} came from {behind[0]}" if behind else "") + ".")
    return Alert(
        NAME, s.system_id, sev, t0, t1, summary,
        {"metric": metric, "labels": labels or None, "kind": e.kind, "peak_z": e.peak_z, "z_threshold": e.threshold,
         "principals": behind, "principals_in_window": who,
         "points_over_threshold": e.hot,
         "observed": e.observed, "expected": e.expected, "points": e.end - e.start + 1,
         "during_alerts": [{"detector": a.detector, "alert_id": a.alert_id} for a in during],
         "thresholds": {"z_min": Z_SPIKE, "margin_over_reference": MARGIN, "smooth_points": SMOOTH,
                        "cusum_k": CUSUM_K, "cusum_h": CUSUM_H, "alert_z": ALERT_Z,
                        "smooth_points_in_workspace": WS_SMOOTH, "margin_in_workspace": WS_MARGIN,
                        "medium_if": f"|z|>={MEDIUM_Z} for >={MEDIUM_MINUTES} min on >=3 points",
                        "principal_named_if": f"its share of the window is >= {BEHIND_EXCESS:.0%} points "
                                              "above its share of the reference",
                        "baseline_leaves_out": "windows of alerts whose decisions are >= "
                                               f"{metric_story.EXPLAIN_SHARE:.0%} of the traffic there"}},
        atlas=[], metric=metric, score=abs(e.peak_z), subject=labels or None)


def principals_in_window(ctx: Ctx, s, t0, t1, *, errors: bool = False, top: int = 5) -> list[dict]:
    """The principals most over-represented in a window against their share of the reference window.

    Shares are of the window's decisions, or of its failed decisions (status 'error') for an error metric when
    there are any, so a client whose calls fail is found even when its traffic is ordinary.
    """
    unit = "count_if(status = 'error')" if errors else "count(*)"
    rows = ctx.ws.dicts(f"""
        WITH win AS (
            SELECT principal, count(*) AS decisions, count_if(status = 'error') AS errors,
                   median(latency_ms) AS median_latency_ms, {unit} AS k
            FROM {s.table} WHERE ts >= ? AND ts < ? GROUP BY principal),
        ref AS (SELECT principal, {unit} AS k FROM {s.table} WHERE in_ref GROUP BY principal),
        tot AS (SELECT (SELECT sum(k) FROM win) AS wk, (SELECT sum(k) FROM ref) AS rk)
        SELECT w.principal, w.decisions, w.errors, w.median_latency_ms,
               w.k / tot.wk AS share, coalesce(r.k, 0) / nullif(tot.rk, 0) AS usual_share
        FROM win w LEFT JOIN ref r USING (principal), tot
        WHERE tot.wk > 0
        ORDER BY w.k / tot.wk - coalesce(coalesce(r.k, 0) / nullif(tot.rk, 0), 0) DESC, w.principal
        LIMIT {int(top)}""", [t0, t1])
    if errors and not rows:  # no failed decisions logged in the window: fall back to traffic
        return principals_in_window(ctx, s, t0, t1, errors=False, top=top)
    for r in rows:
        r["basis"] = "errors" if errors else "decisions"
        r["excess_share"] = r["share"] - (r["usual_share"] or 0.0)
    return rows


def _share_text(w: dict) -> str:
    what = "failed decisions" if w["basis"] == "errors" else "decisions"
    return f"{w['share']:.0%} of the window's {what} (usually {(w['usual_share'] or 0):.0%})"
