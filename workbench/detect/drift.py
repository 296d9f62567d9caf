"""Drift: each input feature, the prediction and the score, window by window, against the reference.

Windows are chosen from the system's volume (drift_windows: a day, week or month that holds enough decisions,
else runs of decisions) and the reference is made of whole windows (extended when a low-volume system's
reference holds too few). Each target is judged by tests suited to its type (drift_tests: KS, Wasserstein and
PSI for numbers, chi-square and Jensen-Shannon for categories), each against a threshold from the reference's
own sampling noise and window-to-window variation, never fitted to the data judged. A window is over the bar
when any test is; drift lasts: a window over the bar with another within two windows of it, or a strong (1.5x)
latest window. Decisions claimed by attack detectors are left out. Every statistic, threshold and verdict is
kept in `drift_windows` so the Drift page shows what the detector used. Usually low severity: drift is often
no attack (medium for an input with PSI >= 0.5 over two windows or more).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from workbench.access import Actor, require
from workbench.detect import context as _context
from workbench.detect import drift_tests as dt
from workbench.detect import drift_windows as dw
from workbench.detect.alerts import Alert
from workbench.detect.context import Ctx, SystemScope
from workbench.store import Workspace

NAME = "drift"
PSI_MEDIUM = 0.5
STRONG = 1.5
CONFIRM = 1            # the next window over the bar too confirms drift (two in a row)
MIN_REF_WINDOWS = 4    # complete reference windows needed to learn their window-to-window variation
MAX_EVIDENCE_WINDOWS = 60
SAME_VERSION = 0.5     # outputs are judged in windows where most decisions come from a version the reference holds
COLUMNS = ["system_id", "target", "kind", "type", "test", "w", "window_start", "window_end", "n", "role",
           "statistic", "threshold", "over", "verdict", "alert_id", "window_rule", "run_id", "computed_at"]


@dataclass
class Verdict:
    """One target's judgement: per monitored window, each test's statistic and threshold, and the verdicts."""

    target: dw.Target
    binned: dw.Binned
    stats: dict[str, np.ndarray]         # test -> statistic per window (plan.windows order; NaN when not judged)
    thr: dict[str, np.ndarray]
    psi: np.ndarray                      # PSI per window, for severity and evidence (also for categories)
    over: np.ndarray                     # per window: some test over its threshold (monitored windows only)
    drift: np.ndarray                    # per window: part of lasting drift
    factor: dict[str, float | None]
    confirmed_at: Any = None
    alert_id: str | None = None
    judged: np.ndarray | None = None     # per window: judged (outputs of a model version the reference lacks are not)


@dataclass
class Judgement:
    """A system's drift judgement: its windows plan and one verdict per target."""

    system: SystemScope
    plan: dw.Plan
    verdicts: list[Verdict] = field(default_factory=list)


def detect(ctx: Ctx) -> list[Alert]:
    """Per-feature, prediction and score drift after the reference; the per-window table is kept."""
    out: list[Alert] = []
    rule = dw.setting_rule()
    for s in ctx.systems:
        j = judge(ctx, s, rule)
        if j is None:
            continue
        out += [_alert(ctx, j, v) for v in j.verdicts if v.drift.any()]
        _store(ctx.ws, ctx.run_id, j)
        ctx.notes.append(f"drift {s.system_id}: windows of {j.plan.rule.label} ({j.plan.rule.reason}); reference "
                         f"{j.plan.n_ref:,} decisions in {len(j.plan.ref)} windows"
                         + (f" ({j.plan.extended})" if j.plan.extended else ""))
    return out


def targets(s: SystemScope) -> list[dw.Target]:
    """The system's input features, then the prediction and the score."""
    out = [dw.Target(f.name, "feature", "number" if f.numeric else "category", f.col) for f in s.features]
    return out + [dw.Target("prediction", "prediction", "category", "prediction"),
                  dw.Target("score", "score", "number", "score")]


def judge(ctx: Ctx, s: SystemScope, rule: dw.Rule | None = None) -> Judgement | None:
    """Windows, reference and every target's tests, thresholds and verdicts for one system."""
    p = dw.plan(ctx, s, rule)
    if p is None:
        return None
    j = Judgement(s, p)
    for b in dw.binned(ctx, p, targets(s)):
        v = _verdict(s, p, b)
        if v is not None:
            j.verdicts.append(v)
    return j


def _verdict(s: SystemScope, p: dw.Plan, b: dw.Binned) -> Verdict | None:
    role = p.windows["role"].to_numpy()
    sizes = p.windows["n"].to_numpy().astype(int)
    counts = b.counts
    ref_idx = np.flatnonzero(role == "reference")
    mon_idx = np.flatnonzero(role == "monitored")
    judged = np.ones(len(role), dtype=bool)
    if b.target.kind != "feature":
        # a model's outputs are judged only against the same model: after a release the reference says nothing
        judged = p.windows["same_version"].to_numpy() >= SAME_VERSION
    pooled = counts[ref_idx].sum(0)
    n_ref = int(pooled.sum())
    if n_ref < dw.MIN_TEST or (b.target.type == "number" and pooled[1:].sum() < dw.MIN_TEST):
        return None
    seed = [dw.SEED, zlib.crc32(f"{s.system_id}|{b.target.kind}|{b.target.name}".encode())]
    model = dt.NullModel(b.target.type, pooled / n_ref, b.centers, b.scale, np.random.default_rng(seed))
    complete_ref = ref_idx[p.windows["complete"].to_numpy()[ref_idx] & (sizes[ref_idx] >= dw.MIN_TEST)]
    # the reference windows, each against the rest of the reference
    rest = pooled[None, :] - counts[complete_ref]
    stats: dict[str, np.ndarray] = {}
    thr: dict[str, np.ndarray] = {}
    factor: dict[str, float | None] = {}
    nw = len(p.windows)
    for test in dt.tests_for(b.target.type):
        st = np.full(nw, np.nan)
        th = np.full(nw, np.nan)
        ref_stat = dt.statistic(test, counts[complete_ref], rest, b.centers, b.scale) if len(complete_ref) \
            else np.zeros(0)
        ref_med = np.array([model.noise(int(sizes[i]), n_ref - int(sizes[i]))[test][0] for i in complete_ref])
        f = dt.temporal_factor(ref_stat, ref_med, MIN_REF_WINDOWS)
        factor[test] = f
        st[complete_ref] = ref_stat
        for i in complete_ref:
            th[i] = dt.thresholds(test, model, sizes[i:i + 1], n_ref - int(sizes[i]), f)[0]
        if len(mon_idx):
            st[mon_idx] = dt.statistic(test, counts[mon_idx], pooled[None, :], b.centers, b.scale)
            th[mon_idx] = dt.thresholds(test, model, sizes[mon_idx], n_ref, f)
        stats[test], thr[test] = st, th
    psi = np.full(nw, np.nan)
    psi[mon_idx] = dt.psi(counts[mon_idx], pooled[None, :]) if len(mon_idx) else []
    over = np.zeros(nw, dtype=bool)
    ratio = np.zeros(nw)
    for test in stats:
        with np.errstate(invalid="ignore"):
            o = stats[test] > thr[test]
            r = np.where(thr[test] > 0, stats[test] / thr[test], 0.0)
        over[mon_idx] |= np.nan_to_num(o[mon_idx], nan=False).astype(bool) & judged[mon_idx]
        ratio[mon_idx] = np.maximum(ratio[mon_idx], np.nan_to_num(r[mon_idx]))
    last = len(mon_idx) and judged[mon_idx[-1]]  # a strong window with nothing after it yet may stand alone
    drift, confirmed_at = _lasting(p, mon_idx[judged[mon_idx]], over, ratio, bool(last))
    return Verdict(b.target, b, stats, thr, psi, over, drift, factor, confirmed_at, judged=judged)


def _lasting(p: dw.Plan, mon_idx: np.ndarray, over: np.ndarray, ratio: np.ndarray,
             latest: bool = True) -> tuple[np.ndarray, Any]:
    """Windows in lasting drift: over the bar with another over it within CONFIRM windows, or a strong latest."""
    drift = np.zeros(len(over), dtype=bool)
    o = over[mon_idx]
    m = len(o)
    confirmed_at = None
    for k in np.flatnonzero(o):
        later = [j for j in range(k + 1, min(m, k + CONFIRM + 1)) if o[j]]
        earlier = any(o[j] for j in range(max(0, k - CONFIRM), k))
        if later or earlier:
            drift[mon_idx[k]] = True
            if confirmed_at is None and later:
                # when a run would first have raised it: at the window's end if it was strong (then the latest
                # window), else at the end of the window that confirmed it
                at = k if ratio[mon_idx[k]] >= STRONG else later[0]
                confirmed_at = p.windows["t1"].iloc[mon_idx[at]]
    if latest and m and o[-1] and ratio[mon_idx[-1]] >= STRONG and not drift[mon_idx[-1]]:
        drift[mon_idx[-1]] = True
        confirmed_at = confirmed_at if confirmed_at is not None else p.windows["t1"].iloc[mon_idx[-1]]
    return drift, confirmed_at


def _ts(value: Any) -> datetime:
    return pd.Timestamp(value).to_pydatetime()


def _alert(ctx: Ctx, j: Judgement, v: Verdict) -> Alert:
    s, p, t = j.system, j.plan, v.target
    win = p.windows
    idx = np.flatnonzero(v.drift)
    mon = np.flatnonzero(win["role"].to_numpy() == "monitored")
    t0, t1 = _ts(win["t0"].iloc[idx[0]]), _ts(win["t1"].iloc[mon[-1]])
    first = idx[0]
    peak = idx[int(np.nanargmax(v.psi[idx]))] if np.isfinite(v.psi[idx]).any() else first
    fired = [x for x in v.stats if v.stats[x][first] > v.thr[x][first]]
    lead = max(v.stats, key=lambda x: v.stats[x][first] / v.thr[x][first] if v.thr[x][first] > 0 else 0)
    psi_peak = float(v.psi[peak])
    per_window = [{"start": win["t0"].iloc[i], "n": int(win["n"].iloc[i]), "verdict": _word(v, i),
                   **{x: [round(float(v.stats[x][i]), 4), round(float(v.thr[x][i]), 4)] for x in v.stats}}
                  for i in mon[-MAX_EVIDENCE_WINDOWS:]]
    ev: dict[str, Any] = {
        "target": t.name, "kind": t.kind, "type": t.type, "tests": list(v.stats),
        "window": p.rule.label, "window_rule": p.rule.reason,
        "reference": {"since": p.ref_t0, "until": p.ref_t1, "decisions": p.n_ref, "windows": len(p.ref),
                      "configured": p.configured, "extended": p.extended},
        "first_drift_window": {"start": win["t0"].iloc[first], "end": win["t1"].iloc[first],
                               "n": int(win["n"].iloc[first]),
                               **{x: {"statistic": float(v.stats[x][first]), "threshold": float(v.thr[x][first])}
                                  for x in v.stats}},
        "tests_over_first": fired, "detected_at": v.confirmed_at, "psi_peak": psi_peak,
        "windows_compared": len(mon), "windows_over": int(v.over.sum()), "windows_in_drift": len(idx),
        "reference_variation_factor": v.factor,
        "thresholds": "max(floor, 1 - 0.01/tests quantile of the statistic between multinomial samples of the "
                      "reference at the window's size, (mean + 3 sd) of the reference windows' own statistics "
                      "over their noise median x the window's noise median)",
        "floors": {x: dt.FLOORS[x] for x in v.stats}, "per_window": per_window,
    }
    ev |= _describe(ctx, p, v, idx)
    versions = ctx.ws.rows(f"SELECT model_version, min(ts) FROM {s.table} GROUP BY 1 HAVING min(ts) > ? "
                           f"AND min(ts) <= ?", [p.ref_t1, t1])
    if versions:
        ev["version_changes_in_window"] = {ver: ts for ver, ts in versions}
    stat = f"{dt.TEST_NAMES[lead]} {v.stats[lead][first]:.3g} > {v.thr[lead][first]:.3g}"
    how = f"{p.rule.label} windows, first at {win['t0'].iloc[first]:%Y-%m-%d}: {stat}; PSI peak {psi_peak:.2f}"
    if t.kind == "feature":
        sev = "medium" if psi_peak >= PSI_MEDIUM and len(idx) >= 2 else "low"
        summary = f"The input feature {t.name} of {s.system_id} has drifted ({how}; {ev.get('change', '')})."
        a = Alert(NAME, s.system_id, sev, t0, t1, summary, ev, atlas=[], feature=t.name, score=psi_peak)
    else:
        what = "outcome mix" if t.kind == "prediction" else "score distribution"
        summary = (f"The {what} of {s.system_id} has shifted ({how}; {ev.get('change', '')})"
                   + (", after a model version change." if versions else "."))
        a = Alert(NAME, s.system_id, "low", t0, t1, summary, ev, atlas=[], metric=t.kind, score=psi_peak)
    v.alert_id = a.alert_id
    return a


def _describe(ctx: Ctx, p: dw.Plan, v: Verdict, idx: np.ndarray) -> dict[str, Any]:
    """What changed: medians for numbers, the category that grew most otherwise."""
    ref = v.binned.counts[p.windows["role"].to_numpy() == "reference"].sum(0)
    obs = v.binned.counts[idx].sum(0)
    if v.target.type == "number":
        col = f"{v.target.col}::DOUBLE"
        med = ctx.ws.scalar(f"SELECT median({col}) FROM {p.src} WHERE ts >= ? AND ts < ? AND isfinite({col})",
                            [_ts(p.windows["t0"].iloc[idx[0]]), _ts(p.windows["t1"].iloc[idx[-1]])])
        r, o = v.binned.ref_median, (float(med) if med is not None else None)
        out = {"reference_median": r, "observed_median": o,
               "missing_share": {"reference": float(ref[0] / max(ref.sum(), 1)),
                                 "observed": float(obs[0] / max(obs.sum(), 1))}}
        if r is not None and o is not None:
            out["change"] = f"median {r:.4g} -> {o:.4g}"
        return out
    pr, po = ref / max(ref.sum(), 1), obs / max(obs.sum(), 1)
    order = np.argsort(-(po - pr))
    grew = v.binned.labels[int(order[0])]
    shares = {v.binned.labels[i]: {"reference": round(float(pr[i]), 4), "observed": round(float(po[i]), 4)}
              for i in order[:12]}
    return {"grew_most": grew, "shares": shares, "total_variation": float(0.5 * np.abs(po - pr).sum()),
            "change": f"'{grew}' {pr[order[0]]:.1%} -> {po[order[0]]:.1%}"}


def _word(v: Verdict, i: int) -> str:
    if v.judged is not None and not v.judged[i]:
        return "new version"
    return "drift" if v.drift[i] else ("over" if v.over[i] else "pass")


def rows(j: Judgement, run_id: str | None = None) -> pd.DataFrame:
    """The long table: per target, test and window (reference and judged), statistic, threshold, verdict."""
    win = j.plan.windows
    keep = np.flatnonzero(win["role"].isin(["reference", "monitored"]).to_numpy())
    now = datetime.now(UTC)
    parts = []
    for v in j.verdicts:
        for test in v.stats:
            sel = keep[np.isfinite(v.stats[test][keep])]
            if not len(sel):
                continue
            ref = win["role"].to_numpy()[sel] == "reference"
            parts.append(pd.DataFrame({
                "system_id": j.system.system_id, "target": v.target.name, "kind": v.target.kind,
                "type": v.target.type, "test": test, "w": win["w"].to_numpy()[sel],
                "window_start": win["t0"].to_numpy()[sel], "window_end": win["t1"].to_numpy()[sel],
                "n": win["n"].to_numpy()[sel], "role": win["role"].to_numpy()[sel],
                "statistic": v.stats[test][sel], "threshold": v.thr[test][sel],
                "over": (v.stats[test][sel] > v.thr[test][sel]) & ~ref & v.judged[sel],
                "verdict": np.where(ref, "reference", [_word(v, i) for i in sel]),
                "alert_id": np.where(v.drift[sel], v.alert_id, None) if v.alert_id else None,
                "window_rule": j.plan.rule.label, "run_id": run_id, "computed_at": now}))
    return pd.concat(parts, ignore_index=True)[COLUMNS] if parts else pd.DataFrame(columns=COLUMNS)


def _store(ws: Workspace, run_id: str, j: Judgement) -> None:
    df = rows(j, run_id)
    ws.execute("DELETE FROM drift_windows WHERE system_id = ?", [j.system.system_id])
    if df.empty:
        return
    ws.con.register("_drift_rows", df)
    try:
        ws.execute(f"INSERT INTO drift_windows SELECT {', '.join(COLUMNS)} FROM _drift_rows")
    finally:
        ws.con.unregister("_drift_rows")


def windows(ws: Workspace, actor: Actor, system_id: str, window: str | None = None) -> pd.DataFrame:
    """Per target, test and window: the statistic, threshold and verdict of the drift detector.

    Without `window`, the table the last detector run kept (what its alerts were raised on); with one ('auto',
    'day', 'week', 'month' or a number of decisions), computed now by the same code, without attack claims."""
    require(actor, "read:aggregates", ws)
    if not window and ws.table_exists("drift_windows"):
        df = ws.df("SELECT * FROM drift_windows WHERE system_id = ? ORDER BY kind, target, test, window_start",
                   [system_id])
        if not df.empty:
            df.attrs["source"] = f"detector run {df['run_id'].iloc[0]}"
            return df
    rule = dw.parse_rule(window) if window else dw.setting_rule()
    ctx = _context.build(ws, actor, "LIVE", system_id, None, None)
    try:
        j = judge(ctx, ctx.systems[0], rule) if ctx.systems else None
        df = rows(j) if j is not None else pd.DataFrame(columns=COLUMNS)
    finally:
        _context.drop(ctx)
    df.attrs["source"] = "computed now"
    return df


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Pass/fail per target from a windows table: windows judged, over the bar, in drift, the first drift window,
    the latest verdict and the largest statistic/threshold ratio (with its test)."""
    cols = ["target", "kind", "type", "result", "windows_judged", "windows_over", "windows_drift", "first_drift",
            "latest", "peak_ratio", "peak_test", "alert_id"]
    if table is None or table.empty:
        return pd.DataFrame(columns=cols)
    mon = table[table["role"] == "monitored"].copy()
    mon["ratio"] = np.where(mon["threshold"] > 0, mon["statistic"] / mon["threshold"], np.nan)
    out = []
    for (target, kind), g in mon.groupby(["target", "kind"], sort=False):
        per = g.groupby("window_start").agg(verdict=("verdict", "first"), ratio=("ratio", "max"))
        peak = g.loc[g["ratio"].idxmax()] if g["ratio"].notna().any() else None
        drift = per[per["verdict"] == "drift"]
        n_over = int(per["verdict"].isin(["over", "drift"]).sum())
        out.append({"target": target, "kind": kind, "type": g["type"].iloc[0],
                    "result": "drift" if len(drift) else ("watch" if n_over else "pass"),
                    "windows_judged": int((per["verdict"] != "new version").sum()), "windows_over": n_over,
                    "windows_drift": len(drift), "first_drift": drift.index.min() if len(drift) else None,
                    "latest": per["verdict"].iloc[-1],
                    "peak_ratio": round(float(peak["ratio"]), 2) if peak is not None else None,
                    "peak_test": peak["test"] if peak is not None else None,
                    "alert_id": next((a for a in g["alert_id"] if isinstance(a, str) and a), None)})
    rank = {"drift": 0, "watch": 1, "pass": 2}
    return pd.DataFrame(out, columns=cols).sort_values(
        ["result", "peak_ratio"], key=lambda s: s.map(rank) if s.name == "result" else -s.fillna(0)
    ).reset_index(drop=True)
