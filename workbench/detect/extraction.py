"""Model extraction / inference-API abuse: principals whose queries cover the input space unlike real traffic.

Each feature is binned on the reference window (numbers: deciles plus the outer 0.5% tails and a null bin;
categories: the values the reference has, 'other' and null). For every principal-day the divergence
KL(principal-day || reference) is computed per feature (minus its small-sample bias). Real clients differ
from the population on a few features (a merchant's category and amounts); a sweep differs on nearly all,
so the score is the *median* over features. A principal-day is flagged when that median is far above the
peers' (robust z on the log scale over all principal-days) and above an absolute floor, or when the share of
its numeric values beyond the reference's outer 0.5% tails (about 1% for real traffic) is far above the
peers' and at least 30% (out-of-distribution combinations). Days of mostly repeated inputs (a flood) are not
a sweep. Flagged days of a principal form an episode; volume against its own and its peers' history is added
as evidence.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from workbench.detect.alerts import Alert
from workbench.detect.common import sample_where
from workbench.detect.context import Ctx, Feature, SystemScope, ensure_bins
from workbench.detect.robust import robust_center_scale
from workbench.store.sqltext import quote_literal
from workbench.timestamps import human_utc

NAME = "extraction"
ATLAS = ["AML.T0024.002", "AML.T0040"]
MIN_N = 30              # a principal-day needs this many queries to be judged
Z_MIN = 6.0             # robust z of log(median KL) against all principal-days
KL_FLOOR = 0.25         # and at least this divergence (nats) on the median feature
TAIL_MIN = 0.3          # or: this share of numeric values beyond the typical client's 0.5% tails (real: ~2-5%)
TAIL = 0.005
CAT_MIN_SHARE = 0.002
SAMPLE = 200_000
MIN_DISTINCT = 0.5      # share of a flagged day's queries that are distinct inputs


def bin_sql(ctx: Ctx, s: SystemScope, f: Feature) -> tuple[str, int] | None:
    """A SQL expression giving the reference bin of each row for one feature, and the number of bins."""
    # the sample is chosen by a hash of the decision id, not USING SAMPLE: the same rows on every run
    scope, n = ("in_ref", s.n_ref) if s.n_ref >= 50 else ("true", s.n)
    sample = sample_where(n, SAMPLE)
    src = f"(SELECT {f.col} AS v FROM {s.table} WHERE {scope} AND {sample})"
    if f.numeric:
        qs = [TAIL] + [i / 10 for i in range(1, 10)] + [1 - TAIL]
        # edges = the median over principals of each principal's own quantiles: what a typical client sends,
        # so one heavy principal inside the reference window (a sweep, a flood) cannot move "normal"
        per = ctx.ws.rows(f"SELECT quantile_disc(v, {qs}) FROM (SELECT {f.col} AS v, principal FROM {s.table} "
                          f"WHERE {scope} AND {sample} AND {f.col} IS NOT NULL AND isfinite({f.col})) "
                          f"GROUP BY principal HAVING count(*) >= {MIN_N} ORDER BY principal")
        if not per:
            per = ctx.ws.rows(f"SELECT quantile_disc(v, {qs}) FROM {src} WHERE v IS NOT NULL AND isfinite(v)")
        if not per or not per[0][0]:
            return None
        edges = sorted(set(float(e) for e in np.median(np.array([r[0] for r in per], dtype=float), axis=0)))
        cases = " ".join(f"WHEN {f.col} < {e!r} THEN {i}" for i, e in enumerate(edges))
        return f"CASE WHEN {f.col} IS NULL OR NOT isfinite({f.col}) THEN -1 {cases} ELSE {len(edges)} END", \
            len(edges) + 2
    counts = ctx.ws.rows(f"SELECT v::VARCHAR, count(*) FROM {src} WHERE v IS NOT NULL GROUP BY v "
                         f"ORDER BY count(*) DESC LIMIT 1000")
    total = sum(c for _, c in counts)
    cats = [v for v, c in counts if c >= CAT_MIN_SHARE * total][:200]
    if not cats:
        return None
    lit = "[" + ", ".join(quote_literal(c) for c in cats) + "]"
    return (f"CASE WHEN {f.col} IS NULL THEN -1 ELSE coalesce(list_position({lit}, {f.col}::VARCHAR), 0) END",
            len(cats) + 2)


def divergences(ctx: Ctx, s: SystemScope) -> pd.DataFrame:
    """Bias-corrected KL per (principal, day, feature) for principal-days with enough queries."""
    parts = []
    for name, (col, nbins) in ensure_bins(ctx, s).items():
        parts.append(ctx.ws.df(f"""
            WITH rp AS (SELECT principal, {col} AS bin, count(*)::DOUBLE AS c FROM {s.table}
                        WHERE in_ref AND {ctx.unclaimed(s)} GROUP BY ALL),
            rn AS (SELECT principal, sum(c) AS n FROM rp GROUP BY 1 HAVING sum(c) >= {MIN_N}),
            ref AS (SELECT bin, sum(c / n) / (SELECT count(*) FROM rn) AS q FROM rp JOIN rn USING (principal)
                    GROUP BY 1),
            pd AS (SELECT principal, day, {col} AS bin, count(*)::DOUBLE AS c FROM {s.table}
                   WHERE {ctx.unclaimed(s)} GROUP BY ALL),
            tot AS (SELECT principal, day, sum(c) AS n FROM pd GROUP BY ALL HAVING sum(c) >= {MIN_N})
            SELECT pd.principal, pd.day, ? AS feature, any_value(tot.n) AS n,
                   sum(pd.c / tot.n * ln((pd.c / tot.n) / coalesce(ref.q, 0.5 / {SAMPLE})))
                     - ({nbins} - 1) / (2 * any_value(tot.n)) AS kl
            FROM pd JOIN tot USING (principal, day) LEFT JOIN ref USING (bin)
            GROUP BY pd.principal, pd.day
        """, [name]))
    if not parts:
        return pd.DataFrame(columns=["principal", "day", "feature", "n", "kl"])
    return pd.concat(parts, ignore_index=True)


def tails(ctx: Ctx, s: SystemScope) -> pd.DataFrame:
    """Per principal-day: share of numeric feature values beyond the reference's outer 0.5% tails."""
    bins = ensure_bins(ctx, s)
    numeric = [(bins[f.name][0], bins[f.name][1] - 2) for f in s.features if f.numeric and f.name in bins]
    if not numeric:
        return pd.DataFrame(columns=["principal", "day", "tail_share"])
    hits = " + ".join(f"({c} = 0 OR {c} = {last})::INT" for c, last in numeric)
    return ctx.ws.df(f"SELECT principal, day, sum({hits})::DOUBLE / ({len(numeric)} * count(*)) AS tail_share "
                     f"FROM {s.table} WHERE {ctx.unclaimed(s)} GROUP BY ALL HAVING count(*) >= {MIN_N}")


def detect(ctx: Ctx) -> list[Alert]:
    """Principal-days whose queries diverge from real traffic on most features."""
    out: list[Alert] = []
    for s in ctx.systems:
        if s.n_ref >= 200 and len(s.features) >= 2:
            out += _system(ctx, s)
    return out


def _system(ctx: Ctx, s: SystemScope) -> list[Alert]:
    kl = divergences(ctx, s)
    if kl.empty:
        return []
    pdays = kl.groupby(["principal", "day"]).agg(n=("n", "first"), kl_med=("kl", "median")).reset_index()
    pdays["log"] = np.log(np.maximum(pdays["kl_med"], 1e-4))
    center, scale = robust_center_scale(pdays["log"].to_numpy(), floor=0.05)
    pdays["z"] = (pdays["log"] - center) / scale
    pdays = pdays.merge(tails(ctx, s), on=["principal", "day"], how="left")
    pdays["tail_share"] = pdays["tail_share"].fillna(0.0)
    t_center, t_scale = robust_center_scale(pdays["tail_share"].to_numpy(), floor=0.01)
    pdays["tail_z"] = (pdays["tail_share"] - t_center) / t_scale
    by_kl = (pdays["z"] >= Z_MIN) & (pdays["kl_med"] >= KL_FLOOR)
    by_tail = (pdays["tail_z"] >= Z_MIN) & (pdays["tail_share"] >= TAIL_MIN)
    flagged = pdays[by_kl | by_tail]
    if not flagged.empty:
        # a sweep sends new inputs; replaying a few requests (a flood) diverges too but covers nothing
        cols = ", ".join(f.col for f in s.features)
        distinct = ctx.ws.df(f"SELECT principal, ts::DATE AS day, count(DISTINCT hash(struct_pack({cols})))::DOUBLE "
                             f"/ count(*) AS distinct_share FROM {s.table} WHERE {ctx.unclaimed(s)} AND "
                             f"list_contains(?, principal) GROUP BY ALL", [sorted(set(flagged["principal"]))])
        flagged = flagged.merge(distinct, on=["principal", "day"], how="left")
        flagged = flagged[flagged["distinct_share"].fillna(0) >= MIN_DISTINCT]
    out = []
    for principal, grp in flagged.groupby("principal"):
        days = sorted(grp["day"])
        key = f"{principal}|{days[0]}"
        ctx.hit(NAME, s, f"SELECT ?, decision_id FROM {s.table} d WHERE principal = ? AND in_scope "
                         f"AND list_contains(?, ts::DATE) AND {ctx.unclaimed(s)}", [key, principal, days])
        t0, t1, n = ctx.ws.one(f"SELECT min(d.ts), max(d.ts), count(*) FROM _hits h JOIN {s.table} d "
                               "USING (decision_id) WHERE h.detector = ? AND h.system_id = ? AND h.key = ?",
                               [NAME, s.system_id, key])
        if not n:
            continue
        ctx.claim(NAME, s, [key])
        per_feat = kl[(kl["principal"] == principal) & kl["day"].isin(days)].groupby("feature")["kl"].mean()
        vol = _volume(ctx, s, principal, days, n)
        kl_med = float(grp["kl_med"].max())
        z = float(max(grp["z"].max(), grp["tail_z"].max()))
        tail = float(grp["tail_share"].max())
        sev = "high"
        if (kl_med >= 4 * KL_FLOOR or tail >= 2 * TAIL_MIN) and (vol["new_principal"]
                                                                  or vol["ratio_to_peer_p99"] >= 1):
            sev = "critical"
        elif z < 1.5 * Z_MIN:
            sev = "medium"
        top = per_feat.sort_values(ascending=False)
        summary = (f"{principal} sent {n} queries to {s.system_id} between {human_utc(t0)} and {human_utc(t1)} that "
                   f"cover the input space unlike real traffic ({tail:.0%} of values beyond the normal range, "
                   f"median per-feature divergence {kl_med:.2f} vs {math.exp(center):.3f} typical), a pattern of "
                   f"model extraction.")
        out.append(Alert(
            NAME, s.system_id, sev, t0, t1, summary,
            {"decisions": n, "days": [str(d) for d in days], "median_feature_kl": kl_med,
             "min_distinct_input_share": MIN_DISTINCT,
             "typical_median_feature_kl": math.exp(center), "robust_z": z,
             "tail_share": tail, "typical_tail_share": t_center, "tail_robust_z": float(grp["tail_z"].max()),
             "features_diverging": int((per_feat >= KL_FLOOR).sum()), "features": int(len(per_feat)),
             "top_features_kl": {k: float(v) for k, v in top.head(6).items()},
             "volume": vol, "distinct_input_share": float(grp["distinct_share"].min()),
             "thresholds": {"robust_z": Z_MIN, "median_kl_floor": KL_FLOOR, "min_queries_per_day": MIN_N,
                            "tail_share_min": TAIL_MIN, "rule": "(z and median KL) or (tail z and tail share)",
                            "bins": "reference deciles + 0.5% tails + null (numbers); reference values (categories)"}},
            atlas=list(ATLAS), principal=principal, score=z, hits=key))
    return out


def _volume(ctx: Ctx, s: SystemScope, principal: str, days: list, n: int) -> dict:
    """Daily volume of the principal against its own other days and the peers' busiest days."""
    row = ctx.ws.one(f"""
        WITH pd AS (SELECT principal, ts::DATE AS day, count(*) AS c FROM {s.table} GROUP BY ALL)
        SELECT (SELECT median(c) FROM pd WHERE principal = ? AND NOT list_contains(?, day)) AS own_median,
               (SELECT quantile_cont(c, 0.99) FROM pd WHERE principal <> ?) AS peer_p99,
               (SELECT max(c) FROM pd WHERE principal = ? AND list_contains(?, day)) AS observed
    """, [principal, days, principal, principal, days])
    own, peer, obs = row
    return {"observed_max_per_day": obs, "own_median_per_day": own, "peer_p99_per_day": peer,
            "new_principal": own is None, "ratio_to_own": (obs / own) if own else None,
            "ratio_to_peer_p99": (obs / peer) if peer else 0.0}
