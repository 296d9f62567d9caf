"""Backdoor / poisoned model version: after a version change, decisions the previous registered version would
have made differently, concentrated on an input value that normal traffic rarely has (the trigger).

1. SQL: for every feature, exact values that are far more frequent among the new version's decisions than
   among the previous version's (Poisson deviance z and an enrichment ratio) are trigger candidates.
2. Replay: the candidate's decisions (and a random sample of the new version's decisions as the baseline) are
   re-scored with the previous registered version (workbench.explain.replay); a candidate whose decisions
   flip far more often than the baseline, mostly in one direction, is a backdoor trigger. The implicated
   decisions are the trigger decisions that flipped.
Without a loadable previous version (no registry, no artifact) the SQL part still reports values that the
previous version never saw and the new one gets many times, at lower severity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.detect.alerts import Alert
from workbench.detect.common import binom_z, fmt_ts, poisson_z
from workbench.detect.context import Ctx, Feature, SystemScope

NAME = "backdoor"
ATLAS = ["AML.T0018.000", "AML.T0020"]
MIN_COUNT = 8            # a trigger candidate appears at least this often under the new version
MIN_RATIO = 1.5          # ... this many times more often than under the previous one (a trigger may also be a
                         # value normal traffic has: replay then decides, on the excess over the expected count)
Z_CANDIDATE = 5.0
MAX_CANDIDATES = 40
PER_FEATURE = 3
REPLAY_CAP = 3000
BASELINE_SAMPLE = 3000
Z_FLIP = 5.0
MIN_FLIP_RATE = 0.5
MIN_FLIPS = 5
DIRECTION = 0.8          # share of flips that go the same way


def detect(ctx: Ctx) -> list[Alert]:
    """Trigger values with concentrated flips against the previous version, per version change."""
    out: list[Alert] = []
    for s in ctx.systems:
        versions = [r[0] for r in ctx.ws.rows(f"SELECT model_version FROM {s.table} GROUP BY 1 ORDER BY min(ts)")]
        for prev, new in zip(versions, versions[1:], strict=False):
            out += _change(ctx, s, prev, new)
    return out


def _registered(ctx: Ctx, s: SystemScope) -> list[str]:
    if not ctx.ws.table_exists("models"):
        return []
    return [r[0] for r in ctx.ws.rows("SELECT sha256 FROM models WHERE system_id = ?", [s.system_id])]


def _candidates(ctx: Ctx, s: SystemScope, prev: str, new: str, hashes: list[str]) -> list[dict[str, Any]]:
    reg = "AND list_contains(?, model_sha256)" if hashes else ""
    params = [hashes] if hashes else []
    n_new = ctx.ws.scalar(f"SELECT count(*) FROM {s.table} d WHERE model_version = ? AND in_scope {reg} "
                          f"AND {ctx.unclaimed(s)}", [new, *params])
    n_prev = ctx.ws.scalar(f"SELECT count(*) FROM {s.table} WHERE model_version = ?", [prev])
    if not n_new or not n_prev or n_new < MIN_COUNT:
        return []
    found = []
    for f in s.features:
        mine: list[dict[str, Any]] = []
        nb = _neighbourhood(ctx, s, f, prev)
        ctx.ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE _bdv AS
            SELECT {f.col} AS val,
                   count(*) FILTER (WHERE model_version = ? AND in_scope {reg} AND NOT claimed) AS c_new,
                   count(*) FILTER (WHERE model_version = ?) AS c_prev,
                   count(DISTINCT principal) FILTER (WHERE model_version = ? AND in_scope {reg} AND NOT claimed)
                     AS principals
            FROM {s.table} WHERE {f.col} IS NOT NULL AND model_version IN (?, ?) GROUP BY 1
        """, [new, *params, prev, new, *params, new, prev])
        rows = ctx.ws.rows(f"""
            WITH b AS (SELECT {nb.replace(f.col, 'val')} AS b, sum(c_new) AS bn, sum(c_prev) AS bp
                       FROM _bdv GROUP BY 1)
            SELECT val, c_new, c_prev, principals, bn, bp FROM _bdv JOIN b ON b.b = {nb.replace(f.col, 'val')}
            WHERE c_new >= {MIN_COUNT} ORDER BY c_new DESC, val::VARCHAR
        """)
        for val, c_new, c_prev, principals, b_new, b_prev in rows:
            # expected from the previous version's frequency, scaled by how the value's neighbourhood
            # (its quantile bin) grew or shrank: a drifting feature does not make every value a candidate
            scale = (b_new + 1.0) / (b_prev + 1.0) if f.numeric else n_new / n_prev
            expected = (c_prev + 0.5) * scale
            ratio = c_new / expected
            z = poisson_z(c_new, expected)
            if ratio >= MIN_RATIO and z >= Z_CANDIDATE:
                mine.append({"feature": f, "value": val, "count_new": c_new, "count_prev": c_prev,
                              "expected": expected, "ratio": ratio, "z": z, "principals": principals,
                              "n_new": n_new, "n_prev": n_prev})
        # a drifting or re-rounded feature makes many values 'new'; a trigger is one value that stands out,
        # so each feature offers only its strongest few candidates
        found += sorted(mine, key=lambda c: -c["z"])[:PER_FEATURE]
    found.sort(key=lambda c: -c["z"])
    return found[:MAX_CANDIDATES]


def _keyed(ctx: Ctx, s: SystemScope, f: Feature, value: Any) -> str:
    """The trigger value as it enters the alert id: its HMAC token under the workspace masking key, the token an
    analyst without read:personal sees in place of the value, so the id reveals nothing the evidence hides
    (an unkeyed hash of a small number could be reversed by trying every value)."""
    from workbench.cases.masking import mask_value, masking_key

    return str(mask_value(masking_key(ctx.ws), s.system_id, f.name, value))


def _show(value: Any) -> Any:
    """1337.0 -> 1337 for display and evidence."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _neighbourhood(ctx: Ctx, s: SystemScope, f: Feature, prev: str) -> str:
    """SQL bin of a value among the previous version's 20-quantiles (a constant for categories)."""
    if not f.numeric:
        return "0"
    edges = ctx.ws.scalar(f"SELECT quantile_disc({f.col}, {[i / 20 for i in range(1, 20)]}) FROM {s.table} "
                          f"WHERE model_version = ? AND {f.col} IS NOT NULL", [prev])
    if not edges:
        return "0"
    edges = sorted(set(float(e) for e in edges))
    return "(" + " + ".join(f"({f.col} >= {e!r})::INT" for e in edges) + ")"


def _classes(ctx: Ctx, s: SystemScope) -> tuple[list[str], np.ndarray] | None:
    """Prediction classes ordered by score, and the score cut-offs between them, learned from the log."""
    rows = ctx.ws.rows(f"SELECT prediction, median(score), min(score), max(score) FROM {s.table} "
                       f"WHERE score IS NOT NULL AND (status IS NULL OR status <> 'error') GROUP BY 1 "
                       f"HAVING count(*) >= 20 ORDER BY 2")
    if len(rows) < 2:
        return None
    cuts = []
    for lo, hi in zip(rows, rows[1:], strict=False):
        cuts.append((lo[3] + hi[2]) / 2 if lo[3] <= hi[2] else (lo[1] + hi[1]) / 2)
    return [r[0] for r in rows], np.asarray(cuts)


def _replay(ctx: Ctx, s: SystemScope, version: str, ids: list[str]) -> tuple[list[str], np.ndarray] | None:
    """Scores of the given decisions under a registered version (None when it cannot be replayed)."""
    try:
        from workbench.explain.replay import replay
    except ImportError:
        return None
    try:
        frame = replay(ctx.ws, ctx.actor, s.system_id, ids, version)
    except Exception as exc:  # noqa: BLE001 - a model that cannot be replayed degrades to the SQL check
        ctx.notes.append(f"{s.system_id}: replay of {version} unavailable ({str(exc).splitlines()[0][:120]})")
        return None
    return list(frame["decision_id"]), frame["replay_score"].to_numpy(dtype=float)


def _flips(rows: list[tuple], scores: dict[str, float], classes: tuple[list[str], np.ndarray]
           ) -> dict[str, Any]:
    """Which of (decision_id, prediction, score) rows the previous version's scores put in another class."""
    rows = [r for r in rows if r[0] in scores]
    names, cuts = classes
    rank = {c: i for i, c in enumerate(names)}
    prev_scores = np.array([scores[r[0]] for r in rows], dtype=float)
    prev_cls = np.searchsorted(cuts, prev_scores, side="right")
    now_cls = np.array([rank.get(r[1], -1) for r in rows], dtype=int)
    valid = now_cls >= 0
    flip = valid & (now_cls != prev_cls)
    down = flip & (now_cls < prev_cls)
    return {"ids": [r[0] for r in rows], "flip": flip, "down": down, "n": int(valid.sum()),
            "flips": int(flip.sum()), "delta": np.array([r[2] for r in rows], dtype=float) - prev_scores}


def _change(ctx: Ctx, s: SystemScope, prev: str, new: str) -> list[Alert]:
    hashes = _registered(ctx, s)
    cands = _candidates(ctx, s, prev, new, hashes)
    if not cands:
        return []
    reg = "AND list_contains(?, model_sha256)" if hashes else ""
    rp = [hashes] if hashes else []
    base_where = f"model_version = ? AND in_scope {reg} AND {ctx.unclaimed(s)}"
    classes = _classes(ctx, s)
    sel = "SELECT decision_id, prediction, score, principal FROM {t} d WHERE {w} AND score IS NOT NULL " \
          "ORDER BY hash(decision_id) LIMIT {n}"
    base_rows = ctx.ws.rows(sel.format(t=s.table, w=base_where, n=BASELINE_SAMPLE), [new, *rp])
    cand_rows = [ctx.ws.rows(sel.format(t=s.table, w=f"{base_where} AND {c['feature'].col} = ?", n=REPLAY_CAP),
                             [new, *rp, c["value"]]) for c in cands]
    scores = None
    if classes and base_rows:
        ids = list(dict.fromkeys([r[0] for r in base_rows] + [r[0] for rows in cand_rows for r in rows]))
        got = _replay(ctx, s, prev, ids)
        scores = dict(zip(got[0], got[1].tolist(), strict=True)) if got else None
    base = _flips(base_rows, scores, classes) if scores is not None else None
    t_new = ctx.ws.scalar(f"SELECT min(ts) FROM {s.table} WHERE model_version = ?", [new])
    out = []
    for c, rows in zip(cands, cand_rows, strict=True):
        f: Feature = c["feature"]
        where = f"{base_where} AND {f.col} = ?"
        params = [new, *rp, c["value"]]
        test = _flips(rows, scores, classes) if base else None
        key = f"{new}|{f.name}|{c['value']}"
        ev = {"previous_version": prev, "new_version": new, "new_version_live_from": t_new,
              "trigger": {"feature": f.name, "value": c["value"]},
              "count_new_version": c["count_new"], "count_previous_version": c["count_prev"],
              "expected_count": c["expected"], "enrichment_ratio": c["ratio"], "poisson_z": c["z"],
              "principals_sending_it": c["principals"]}
        if test is not None:
            p0 = max(base["flips"] / max(base["n"], 1), 1.0 / max(base["n"], 1))
            rate = test["flips"] / max(test["n"], 1)
            z = binom_z(test["flips"], test["n"], p0)
            same_way = max(int(test["down"].sum()), test["flips"] - int(test["down"].sum())) / max(test["flips"], 1)
            # the trigger explains the excess over the expected count: most of that excess must flip (the rest
            # of the value's traffic is ordinary and decides like before)
            excess = max(0.0, 1.0 - 1.0 / max(c["ratio"], 1.0))
            if not (test["flips"] >= MIN_FLIPS and rate >= MIN_FLIP_RATE * excess and z >= Z_FLIP
                    and same_way >= DIRECTION):
                continue
            # implicated: decisions that flip, and those whose score moved further (in the flips' direction)
            # than 99% of the baseline's moves: the trigger pushed them even where the class held
            down = int(test["down"].sum()) >= test["flips"] - int(test["down"].sum())
            cut = np.quantile(base["delta"], 0.01 if down else 0.99)
            moved = test["delta"] <= cut if down else test["delta"] >= cut
            # and every trigger request of a sender whose trigger requests mostly flip (the attacker's others)
            who = {r[0]: r[3] for r in rows}
            per: dict[str, list[int]] = {}
            for i, fl in zip(test["ids"], test["flip"], strict=True):
                per.setdefault(who.get(i), [0, 0])
                per[who.get(i)][0] += int(fl)
                per[who.get(i)][1] += 1
            senders = {p for p, (k, n) in per.items() if k >= 2 and k >= 0.5 * n}
            flipped = [i for i, fl, mv in zip(test["ids"], test["flip"], moved, strict=True)
                       if fl or mv or who.get(i) in senders]
            ctx.hit(NAME, s, "SELECT ?, unnest(?::VARCHAR[])", [key, flipped])
            ev |= {"replayed": test["n"], "flipped": test["flips"], "flip_rate": rate,
                   "baseline_flip_rate": p0, "excess_share": excess, "baseline_replayed": base["n"], "flip_z": z,
                   "same_direction_share": same_way, "mean_score_shift": float(np.mean(test["delta"])),
                   "score_shift_cut": float(cut), "implicated_by_shift_only": len(flipped) - test["flips"],
                   "baseline_mean_score_shift": float(np.mean(base["delta"])), "method": "replay",
                   "thresholds": {"candidate_z": Z_CANDIDATE, "enrichment": MIN_RATIO, "flip_z": Z_FLIP,
                                  "min_flip_rate": f"{MIN_FLIP_RATE} x excess share",
                                  "direction": DIRECTION}}
            sev = "critical" if rate >= 0.8 and test["flips"] >= 20 else "high"
            n_dec = len(flipped)
            tail = (f"{test['flips']} of {test['n']} would have been decided differently by {prev} "
                    f"(baseline {p0:.1%})")
            score = z
        else:
            if c["count_prev"] > 0 or c["principals"] > 3:
                continue
            ctx.hit(NAME, s, f"SELECT ?, decision_id FROM {s.table} d WHERE {where}", [key, *params])
            ev |= {"method": "frequency only (previous version not replayable)",
                   "thresholds": {"candidate_z": Z_CANDIDATE, "enrichment": MIN_RATIO}}
            sev, n_dec, score = "medium", c["count_new"], c["z"]
            tail = f"a value {prev} traffic never had"
        ctx.claim(NAME, s, [key])
        t0, t1 = ctx.ws.one(f"SELECT min(d.ts), max(d.ts) FROM _hits h JOIN {s.table} d USING (decision_id) "
                            "WHERE h.detector = ? AND h.system_id = ? AND h.key = ?", [NAME, s.system_id, key])
        if t0 is None:
            continue
        senders = ctx.ws.rows(f"SELECT d.principal, count(*) FROM _hits h JOIN {s.table} d USING (decision_id) "
                              "WHERE h.detector = ? AND h.system_id = ? AND h.key = ? GROUP BY 1 ORDER BY 2 DESC, 1",
                              [NAME, s.system_id, key])
        ev["principals"] = [p for p, _ in senders]
        ev["decisions_by_principal"] = dict(senders)
        value = _show(c["value"])
        ev["trigger"]["value"] = value
        summary = (f"Since {s.system_id} {new} went live, {n_dec} decisions between {fmt_ts(t0)} and "
                   f"{fmt_ts(t1)} carry {f.name}={value} ({c['ratio']:.0f}x its usual frequency) and "
                   f"{tail}: a likely backdoor trigger in {new}.")
        # the alert's principal is the sender of most of its decisions; with no majority (two senders of 33
        # each) it names none, and evidence.principals lists them all
        top = senders[0][0] if senders and senders[0][1] > 0.5 * n_dec else None
        out.append(Alert(NAME, s.system_id, sev, t0, t1, summary, ev, atlas=list(ATLAS), feature=f.name,
                         principal=top, score=float(score), subject=f"{new}|{_keyed(ctx, s, f, value)}", hits=key))
    return out
