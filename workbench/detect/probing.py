"""Evasion by black-box probing: chains of near-duplicate inputs from one principal, walking the score.

A decision is a near-duplicate of an earlier one from the same principal (within the last LAGS decisions and
MAX_GAP) when the features they share carry more than half of the input's information. Information is
learned from the reference window: a feature's weight is -log2 of the chance that two random decisions
share its value (sum of squared value frequencies), so agreeing on a rare amount counts for much more
than agreeing on a boolean. Near-duplicates are grouped into episodes per principal; an episode is an alert
when it is long enough and near-duplicates dominate the principal's traffic in that span.
"""

from __future__ import annotations

import math

from workbench.detect.alerts import Alert
from workbench.detect.common import sample_where
from workbench.detect.context import Ctx, SystemScope
from workbench.detect.episodes import episodes_sql
from workbench.timestamps import human_utc

NAME = "evasion"
ATLAS = ["AML.T0043.001", "AML.T0015", "AML.T0042"]
LAGS = 3
MAX_GAP_MINUTES = 30        # two queries further apart are not one probing step
EPISODE_GAP_MINUTES = 60    # near-duplicates further apart start a new episode
MIN_STEPS = 10              # fewer near-duplicates than this are not a walk
MIN_SHARE = 0.5             # near-duplicates must be at least half of the principal's traffic in the episode
MIN_DISTINCT = 0.5          # at least half of the steps are inputs not sent before in the episode (or, for a
                            # walk whose outcome crossed, at least 2 x MIN_STEPS distinct inputs)
MATCH_FRACTION = 0.5        # share of the input's information two queries must agree on
SAMPLE = 100_000


def weights(ctx: Ctx, s: SystemScope) -> dict[str, float]:
    """Bits of information in agreeing on each feature, from the reference window (collision probability)."""
    out = {}
    cols = ", ".join(f.col for f in s.features)
    scope, n = ("in_ref", s.n_ref) if s.n_ref >= 50 else ("true", s.n)
    ctx.ws.execute(f"CREATE OR REPLACE TEMP TABLE _wsample AS SELECT {cols} FROM {s.table} "
                   f"WHERE {scope} AND {sample_where(n, SAMPLE)}")
    for f in s.features:
        p = ctx.ws.scalar(f"SELECT sum(c * (c - 1)) / greatest(sum(c) * (sum(c) - 1), 1) FROM "
                          f"(SELECT count(*)::DOUBLE AS c FROM _wsample GROUP BY {f.col})")
        out[f.name] = min(20.0, -math.log2(max(float(p or 0.0), 2.0 ** -20)))
    return out


def detect(ctx: Ctx) -> list[Alert]:
    """Near-duplicate probing episodes per principal."""
    out: list[Alert] = []
    for s in ctx.systems:
        if s.n_scope < MIN_STEPS or len(s.features) < 2:
            continue
        out += _system(ctx, s)
    return out


def _system(ctx: Ctx, s: SystemScope) -> list[Alert]:
    bits = weights(ctx, s)
    total = sum(bits.values())
    threshold = MATCH_FRACTION * total
    _near_duplicates(ctx, s, bits, threshold)
    ref_rate = (ctx.ws.scalar(f"SELECT count(*) FROM _ndf WHERE in_ref AND best >= {threshold:.6f}") or 0) / max(
        ctx.ws.scalar(f"SELECT count(*) FROM {s.table} WHERE in_ref AND in_scope AND {ctx.unclaimed(s)}") or 0, 1)
    # probing perturbs: mostly new inputs each step; a replay of a few inputs is a flood, not a walk. A long walk
    # that often re-sends an input (a perturbation rounded away) still probes when it tried many inputs and moved
    # the outcome; a replay never crosses it
    keep = [e for e in _episodes(ctx, s) if e["steps"] / max(e["principal_total"], 1) >= MIN_SHARE
            and (e["inputs"] / e["steps"] >= MIN_DISTINCT
                 or (e["inputs"] >= 2 * MIN_STEPS and e["first_prediction"] != e["last_prediction"]))]
    if not keep:
        return []
    ctx.hit(NAME, s, "SELECT k, decision_id FROM _ndf WHERE list_contains(?, k)", [[e["k"] for e in keep]])
    ctx.claim(NAME, s, [e["k"] for e in keep])
    measures = {"reference_near_duplicate_rate": ref_rate, "total_bits": total, "match_threshold_bits": threshold,
                "feature_bits": bits}
    return [_alert(s, e, measures) for e in keep]


def _near_duplicates(ctx: Ctx, s: SystemScope, bits: dict[str, float], threshold: float) -> None:
    """Temp table _ndf: the in-scope decisions that share at least `threshold` bits with one of the principal's
    LAGS previous or next queries (within MAX_GAP), each with its episode key `k` and its best backward match."""
    # each feature becomes a 16-bit hash; four share one UBIGINT (`hashes_j`), so a lag compares a few integers
    groups = [s.features[j:j + 4] for j in range(0, len(s.features), 4)]
    packed = ", ".join(
        " | ".join(f"((hash({f.col}) & 65535::UBIGINT) << {16 * i})" for i, f in enumerate(group)) + f" AS hashes_{j}"
        for j, group in enumerate(groups))
    steps = range(1, LAGS + 1)
    neighbours = [f"lag(hashes_{j}, {k}) OVER w AS prev{k}_hashes_{j}, "
                  f"lead(hashes_{j}, {k}) OVER w AS next{k}_hashes_{j}"
                  for k in steps for j in range(len(groups))]
    neighbours += [f"ts - lag(ts, {k}) OVER w AS prev{k}_gap, lead(ts, {k}) OVER w - ts AS next{k}_gap" for k in steps]

    def shared_bits(k: int, side: str) -> str:
        """Bits shared with the k-th previous ('prev') or next ('next') query of the principal, within MAX_GAP."""
        terms = " + ".join(f"CASE WHEN (xor(hashes_{j}, {side}{k}_hashes_{j}) >> {16 * i}) & 65535::UBIGINT = 0 "
                           f"THEN {bits[f.name]:.6f} ELSE 0 END"
                           for j, group in enumerate(groups) for i, f in enumerate(group))
        return f"CASE WHEN {side}{k}_gap <= INTERVAL {MAX_GAP_MINUTES} MINUTE THEN {terms} ELSE 0 END"

    back = [f"{shared_bits(k, 'prev')} AS prev{k}_bits" for k in steps]
    fwd = [f"{shared_bits(k, 'next')} AS next{k}_bits" for k in steps]
    # one sorted pass per principal: a query is a near-duplicate when it matches one of its LAGS predecessors
    # or one of its LAGS successors matches it; only those rows are kept
    ctx.ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _ndf AS
        WITH f AS (
            SELECT decision_id, principal, ts, score, prediction, in_ref, h, {", ".join(back + fwd)}
            FROM (SELECT *, {", ".join(neighbours)}
                  FROM (SELECT decision_id, principal, ts, score, prediction, in_ref, {packed},
                               hash({", ".join(f.col for f in s.features)}) AS h
                        FROM {s.table} WHERE in_scope AND {ctx.unclaimed(s)})
                  WINDOW w AS (PARTITION BY principal ORDER BY ts, decision_id))),
        d AS (SELECT * EXCLUDE ({", ".join(f"next{k}_bits" for k in steps)}),
                     greatest({", ".join(f"prev{k}_bits" for k in steps)}) AS best
              FROM f WHERE greatest({", ".join(f"prev{k}_bits, next{k}_bits" for k in steps)}) >= {threshold:.6f})
        {episodes_sql("d", ["principal"], EPISODE_GAP_MINUTES, "decision_id")}
    """)


def _episodes(ctx: Ctx, s: SystemScope) -> list[dict]:
    """Per episode of _ndf with at least MIN_STEPS steps: its span, scores, outcomes, inputs and the principal's
    total traffic in that span."""
    return ctx.ws.dicts(f"""
        WITH e AS (
            SELECT k, any_value(principal) AS principal, count(*) AS steps, min(ts) AS t0, max(ts) AS t1,
                   avg(best) AS mean_match_bits, arg_min(score, ts) AS first_score, arg_max(score, ts) AS last_score,
                   min(score) AS min_score, max(score) AS max_score, corr(epoch(ts), score) AS trend,
                   arg_min(prediction, ts) AS first_prediction, arg_max(prediction, ts) AS last_prediction,
                   count(DISTINCT prediction) AS predictions, count(DISTINCT h) AS inputs
            FROM _ndf GROUP BY k HAVING count(*) >= {MIN_STEPS})
        SELECT e.*, (SELECT count(*) FROM {s.table} t WHERE t.principal = e.principal AND t.ts >= e.t0
                     AND t.ts <= e.t1) AS principal_total
        FROM e ORDER BY t0
    """)


def _alert(s: SystemScope, e: dict, measures: dict) -> Alert:
    """The alert for one probing episode."""
    crossed = e["first_prediction"] != e["last_prediction"]
    trend = e["trend"] if e["trend"] is not None and math.isfinite(e["trend"]) else 0.0
    sev = "high" if crossed or e["steps"] >= 5 * MIN_STEPS else "medium"
    if crossed and e["steps"] >= 20 * MIN_STEPS:
        sev = "critical"
    mins = (e["t1"] - e["t0"]).total_seconds() / 60
    walk = (f"moving the score from {e['first_score']:.3f} to {e['last_score']:.3f} and the outcome from "
            f"'{e['first_prediction']}' to '{e['last_prediction']}'" if crossed and e["first_score"] is not None
            else "without changing the outcome")
    summary = (f"{e['principal']} sent {e['steps']} near-duplicate queries to {s.system_id} in {mins:.0f} "
               f"minutes from {human_utc(e['t0'])}, {walk}, a pattern of black-box probing.")
    return Alert(
        NAME, s.system_id, sev, e["t0"], e["t1"], summary,
        {"steps": e["steps"], "principal_decisions_in_window": e["principal_total"],
         "near_duplicate_share": e["steps"] / max(e["principal_total"], 1),
         "reference_near_duplicate_rate": measures["reference_near_duplicate_rate"],
         "mean_shared_bits": e["mean_match_bits"], "total_bits": measures["total_bits"],
         "match_threshold_bits": measures["match_threshold_bits"], "feature_bits": measures["feature_bits"],
         "first_score": e["first_score"], "last_score": e["last_score"], "min_score": e["min_score"],
         "max_score": e["max_score"], "score_time_correlation": trend,
         "first_prediction": e["first_prediction"], "last_prediction": e["last_prediction"],
         "distinct_inputs": e["inputs"],
         "outcome_crossed": crossed, "thresholds": {"min_steps": MIN_STEPS, "min_share": MIN_SHARE,
                                                     "min_distinct_inputs": MIN_DISTINCT,
                                                     "match_fraction": MATCH_FRACTION, "lags": LAGS,
                                                     "max_gap_minutes": MAX_GAP_MINUTES}},
        atlas=list(ATLAS), principal=e["principal"], score=float(e["steps"]), hits=e["k"])
