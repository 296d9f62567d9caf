"""Drift: per-feature population drift (PSI, with KS and Wasserstein on samples) and prediction drift.

The reference window is binned per feature (see extraction.bin_sql); every day after it is compared with
it by PSI. The threshold per feature is learned: the largest PSI of single reference days against the whole
reference (the feature's own day-to-day wobble, doubled), never below the sampling noise expected for the
window sizes (three times the PSI of two samples of one distribution) nor below PSI_MIN (an immaterial change,
however significant). Every window is compared like for like in time of day (see _psi_table), so partial
days and a changed traffic rhythm do not read as drift of features that follow the clock. Drift lasts: two
windows over the bar, or a strong latest one. Decisions claimed by attack detectors are left out, so an
extraction sweep does not read as a population change. Usually low severity: drift is often no attack.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from workbench.detect.alerts import Alert
from workbench.detect.common import fmt_ts
from workbench.detect.context import Ctx, Feature, SystemScope, ensure_bins

NAME = "drift"
PSI_MIN = 0.02   # immaterial below: PSI ~ d^2 for a shift of d standard deviations, so about 0.15 sd
PSI_MEDIUM = 0.5
MIN_WINDOW = 200
EPS = 1e-4
SAMPLE = 20_000
MIN_HOURS = 18   # partial days are not compared (hour-of-day mixes differ)


def detect(ctx: Ctx) -> list[Alert]:
    """Per-feature and prediction drift of the days after the reference window."""
    out: list[Alert] = []
    for s in ctx.systems:
        if s.n_ref >= MIN_WINDOW:
            out += _system(ctx, s)
    return out


def _prepare(ctx: Ctx, s: SystemScope, start: datetime, cols: list[str]) -> None:
    """One pass: unclaimed reference and later decisions with their day window, hour of day and every bin."""
    ctx.ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _dr AS
        SELECT ts, CASE WHEN in_ref THEN 'r' || day::VARCHAR
                        ELSE 'w' || floor(epoch(ts - ?::TIMESTAMPTZ) / 86400)::BIGINT::VARCHAR END AS win,
               in_ref, hour(ts)::TINYINT AS hr{"".join(f", {c} AS b{i}" for i, c in enumerate(cols))}
        FROM {s.table} WHERE (in_ref OR (in_scope AND ts >= ?)) AND {ctx.unclaimed(s)}
    """, [start, start])
    ctx.ws.execute("""
        CREATE OR REPLACE TEMP TABLE _drw AS
        SELECT win, count(*) AS n, min(ts) AS t0, max(ts) AS t1 FROM _dr GROUP BY win
    """)
    ctx.ws.execute("""
        CREATE OR REPLACE TEMP TABLE _drh AS
        SELECT win, hr, count(*)::DOUBLE / any_value(_drw.n) AS share FROM _dr JOIN _drw USING (win) GROUP BY ALL
    """)


def _psi_table(ctx: Ctx, i: int) -> pd.DataFrame:
    """PSI of each reference day and each later day for one binned feature, like for like in time of day.

    Each window is compared with the reference reweighted to the window's own hour-of-day mix (the bin shares
    of each reference hour, shrunk towards the whole reference by one pseudo-count, weighted by the
    window's share of that hour), so a window that covers other hours than the reference (a partial day, a
    changed traffic rhythm) does not read as drift of features that follow the time of day.
    """
    return ctx.ws.df(f"""
        WITH rh AS (SELECT hr, b{i} AS bin, count(*)::DOUBLE AS c FROM _dr WHERE in_ref GROUP BY ALL),
        ref AS (SELECT bin, sum(c) / sum(sum(c)) OVER () AS q FROM rh GROUP BY 1),
        w AS (SELECT win, b{i} AS bin, count(*)::DOUBLE AS c FROM _dr GROUP BY ALL),
        bins AS (SELECT bin FROM ref UNION SELECT DISTINCT bin FROM w),
        rht AS (SELECT hr, sum(c) AS n FROM rh GROUP BY 1),
        cond AS (SELECT rht.hr, bins.bin, (coalesce(rh.c, 0) + coalesce(ref.q, 0)) / (rht.n + 1) AS q
                 FROM rht CROSS JOIN bins LEFT JOIN rh ON rh.hr = rht.hr AND rh.bin = bins.bin
                 LEFT JOIN ref ON ref.bin = bins.bin),
        expq AS (SELECT _drh.win, bins.bin,
                        sum(_drh.share * coalesce(cond.q, ref.q, 0)) AS q
                 FROM _drh CROSS JOIN bins LEFT JOIN cond ON cond.hr = _drh.hr AND cond.bin = bins.bin
                 LEFT JOIN ref ON ref.bin = bins.bin GROUP BY ALL)
        SELECT expq.win, any_value(_drw.n) AS n, any_value(_drw.t0) AS t0, any_value(_drw.t1) AS t1,
               sum((coalesce(w.c, 0) / _drw.n + {EPS} - (expq.q + {EPS}))
                   * ln((coalesce(w.c, 0) / _drw.n + {EPS}) / (expq.q + {EPS}))) AS psi,
               count(*) AS bins
        FROM expq JOIN _drw USING (win) LEFT JOIN w ON w.win = expq.win AND w.bin = expq.bin
        GROUP BY expq.win ORDER BY t0
    """)


def _system(ctx: Ctx, s: SystemScope) -> list[Alert]:
    start = max(s.ref_until, s.since)
    if start >= s.until:
        return []
    out = []
    bins = ensure_bins(ctx, s)
    targets: list[tuple[Feature | None, str]] = [(f, bins[f.name][0]) for f in s.features if f.name in bins]
    targets.append((None, "prediction"))
    _prepare(ctx, s, start, [c for _, c in targets])
    n_ref = s.n_ref
    for i, (f, _expr) in enumerate(targets):
        t = _psi_table(ctx, i)
        if t.empty:
            continue
        full = (pd.to_datetime(t["t1"]) - pd.to_datetime(t["t0"])) >= pd.Timedelta(hours=MIN_HOURS)
        ref_days = t[t["win"].str.startswith("r") & (t["n"] >= MIN_WINDOW) & full]
        wins = t[t["win"].str.startswith("w") & (t["n"] >= MIN_WINDOW) & full]
        if wins.empty:
            continue
        floor = float(ref_days["psi"].max()) if len(ref_days) >= 2 else 0.0
        bins = int(t["bins"].max())
        noise = 3.0 * (bins - 1) * (1.0 / wins["n"] + 1.0 / max(n_ref, 1))
        thr = np.maximum.reduce([np.full(len(wins), PSI_MIN), np.full(len(wins), 2 * floor), noise.to_numpy()])
        over = wins["psi"].to_numpy() > thr
        flagged = wins[over]
        if flagged.empty:
            continue
        # drift lasts: two windows over the bar, or a strong latest window (nothing after it to confirm yet);
        # one odd day with normal days after it (a flood's errors, a busy campaign) is an episode, not drift
        strong_last = bool(over[-1]) and float(wins["psi"].iloc[-1]) > 1.5 * float(thr[-1])
        if len(flagged) < 2 and not strong_last:
            continue
        out.append(_alert(ctx, s, f, flagged, wins, floor, float(thr.max())))
    return [a for a in out if a is not None]


def _alert(ctx: Ctx, s: SystemScope, f: Feature | None, flagged: pd.DataFrame, wins: pd.DataFrame, floor: float,
           thr: float) -> Alert:
    t0 = pd.Timestamp(flagged["t0"].min()).to_pydatetime()
    t1 = pd.Timestamp(wins["t1"].max()).to_pydatetime()
    peak = flagged.loc[flagged["psi"].idxmax()]
    last = wins.iloc[-1]
    ev: dict = {"psi_peak": float(peak["psi"]), "psi_last_day": float(last["psi"]), "days_flagged": len(flagged),
                "days_compared": len(wins), "psi_threshold": thr, "reference_day_to_day_psi_max": floor,
                "reference": {"since": s.ref_since, "until": s.ref_until, "source": s.ref_source},
                "daily_psi": {str(pd.Timestamp(r["t0"]).date()): round(float(r["psi"]), 4)
                              for _, r in wins.iterrows()},
                "thresholds": {"psi_min": PSI_MIN, "floor": "2x largest reference-day PSI",
                               "noise": "3*(bins-1)*(1/n_window+1/n_reference)"}}
    col = f.col if f else "prediction"
    numeric = bool(f and f.numeric)
    ev |= _compare(ctx, s, col, numeric, t0)
    psi = float(peak["psi"])
    sev = "medium" if psi >= PSI_MEDIUM else "low"
    versions = ctx.ws.rows(f"SELECT model_version, min(ts) FROM {s.table} GROUP BY 1 HAVING min(ts) > ? "
                           f"AND min(ts) <= ?", [s.ref_until, t1])
    if versions:
        ev["version_changes_in_window"] = {v: t for v, t in versions}
    if f is None:
        summary = (f"The outcome mix of {s.system_id} has shifted since {fmt_ts(t0)} (PSI {psi:.2f} against the "
                   f"reference, threshold {thr:.2f})" + (", after a model version change." if versions else "."))
        return Alert(NAME, s.system_id, "low", t0, t1, summary, ev, atlas=[], metric="prediction", score=psi)
    what = (f"median {ev.get('reference_median'):.4g} -> {ev.get('observed_median'):.4g}" if numeric
            and ev.get("reference_median") is not None else f"'{ev.get('grew_most')}' grew most")
    summary = (f"The input feature {f.name} of {s.system_id} has drifted since {fmt_ts(t0)} (PSI {psi:.2f} against "
               f"the reference, threshold {thr:.2f}; {what}).")
    return Alert(NAME, s.system_id, sev, t0, t1, summary, ev, atlas=[], feature=f.name, score=psi)


def _compare(ctx: Ctx, s: SystemScope, col: str, numeric: bool, t0: datetime) -> dict:
    """KS and Wasserstein on samples for numbers; the category that grew most otherwise."""
    un = ctx.unclaimed(s)
    if numeric:
        ref = ctx.ws.df(f"SELECT {col}::DOUBLE AS v FROM {s.table} d WHERE in_ref AND {un} AND {col} IS NOT NULL "
                        f"USING SAMPLE {SAMPLE} ROWS")["v"].to_numpy()
        obs = ctx.ws.df(f"SELECT {col}::DOUBLE AS v FROM {s.table} d WHERE in_scope AND ts >= ? AND {un} "
                        f"AND {col} IS NOT NULL USING SAMPLE {SAMPLE} ROWS", [t0])["v"].to_numpy()
        if len(ref) < 20 or len(obs) < 20:
            return {}
        from scipy import stats

        ks = stats.ks_2samp(ref, obs)
        iqr = float(np.subtract(*np.percentile(ref, [75, 25]))) or float(np.std(ref)) or 1.0
        return {"ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
                "wasserstein": float(stats.wasserstein_distance(ref, obs)),
                "wasserstein_over_reference_iqr": float(stats.wasserstein_distance(ref, obs)) / iqr,
                "reference_median": float(np.median(ref)), "observed_median": float(np.median(obs)),
                "sample_sizes": [len(ref), len(obs)]}
    rows = ctx.ws.rows(f"""
        WITH r AS (SELECT {col}::VARCHAR AS v, count(*)::DOUBLE / sum(count(*)) OVER () AS p FROM {s.table} d
                   WHERE in_ref AND {un} GROUP BY 1),
             o AS (SELECT {col}::VARCHAR AS v, count(*)::DOUBLE / sum(count(*)) OVER () AS p FROM {s.table} d
                   WHERE in_scope AND ts >= ? AND {un} GROUP BY 1)
        SELECT coalesce(o.v, r.v), coalesce(r.p, 0), coalesce(o.p, 0) FROM o FULL JOIN r ON o.v = r.v
        ORDER BY coalesce(o.p, 0) - coalesce(r.p, 0) DESC""", [t0])
    if not rows:
        return {}
    shares = {str(v): {"reference": rp, "observed": op} for v, rp, op in rows[:12]}
    return {"grew_most": rows[0][0], "shares": shares,
            "total_variation": 0.5 * sum(abs(op - rp) for _, rp, op in rows)}

