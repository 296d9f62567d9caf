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

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.access.masking import mask_value, masking_key
from workbench.detect.alerts import Alert
from workbench.detect.common import binom_z, poisson_z
from workbench.detect.context import Ctx, Feature, SystemScope
from workbench.explain.replay import replay
from workbench.timestamps import human_utc

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


@dataclass
class _Change:
    """One version change under judgement and what every candidate of it shares."""

    system: SystemScope
    prev: str
    new: str
    where: str                # the new version's in-scope, registered, unclaimed decisions (SQL)
    params: list[Any]         # ... and its parameters
    classes: tuple[list[str], np.ndarray] | None
    prev_scores: dict[str, float] | None   # replayed scores under the previous version (None: not replayable)
    baseline: dict[str, Any] | None        # flips of a random sample of the new version's decisions


_SAMPLE_SQL = ("SELECT decision_id, prediction, score, principal FROM {table} d WHERE {where} AND score IS NOT NULL "
               "ORDER BY hash(decision_id) LIMIT {n}")


def _change(ctx: Ctx, s: SystemScope, prev: str, new: str) -> list[Alert]:
    """Alerts for one version change: each trigger candidate judged by replay under `prev`, else by frequency."""
    hashes = _registered(ctx, s)
    candidates = _candidates(ctx, s, prev, new, hashes)
    if not candidates:
        return []
    registered = "AND list_contains(?, model_sha256)" if hashes else ""
    where = f"model_version = ? AND in_scope {registered} AND {ctx.unclaimed(s)}"
    params = [new, hashes] if hashes else [new]
    classes = _classes(ctx, s)
    baseline_rows = ctx.ws.rows(_SAMPLE_SQL.format(table=s.table, where=where, n=BASELINE_SAMPLE), params)
    candidate_rows = [ctx.ws.rows(_SAMPLE_SQL.format(table=s.table, where=f"{where} AND {c['feature'].col} = ?",
                                                     n=REPLAY_CAP), [*params, c["value"]]) for c in candidates]
    prev_scores = None
    if classes and baseline_rows:
        ids = list(dict.fromkeys([r[0] for r in baseline_rows] + [r[0] for rows in candidate_rows for r in rows]))
        got = _replay(ctx, s, prev, ids)
        prev_scores = dict(zip(got[0], got[1].tolist(), strict=True)) if got else None
    baseline = _flips(baseline_rows, prev_scores, classes) if prev_scores is not None else None
    change = _Change(s, prev, new, where, params, classes, prev_scores, baseline)
    live_from = ctx.ws.scalar(f"SELECT min(ts) FROM {s.table} WHERE model_version = ?", [new])
    out = []
    for cand, rows in zip(candidates, candidate_rows, strict=True):
        alert = _judge(ctx, change, cand, rows, live_from)
        if alert is not None:
            out.append(alert)
    return out


def _judge(ctx: Ctx, change: _Change, cand: dict[str, Any], rows: list[tuple], live_from: Any) -> Alert | None:
    """The alert for one trigger candidate, or None when its decisions do not behave like a trigger's."""
    s, f = change.system, cand["feature"]
    key = f"{change.new}|{f.name}|{cand['value']}"
    ev = {"previous_version": change.prev, "new_version": change.new, "new_version_live_from": live_from,
          "trigger": {"feature": f.name, "value": cand["value"]},
          "count_new_version": cand["count_new"], "count_previous_version": cand["count_prev"],
          "expected_count": cand["expected"], "enrichment_ratio": cand["ratio"], "poisson_z": cand["z"],
          "principals_sending_it": cand["principals"]}
    if change.baseline is not None:
        verdict = _replay_verdict(change, cand, rows)
        if verdict is None:
            return None
        implicated, more, sev, tail, score = verdict
        ctx.hit(NAME, s, "SELECT ?, unnest(?::VARCHAR[])", [key, implicated])
        n_dec = len(implicated)
    else:
        if cand["count_prev"] > 0 or cand["principals"] > 3:
            return None
        ctx.hit(NAME, s, f"SELECT ?, decision_id FROM {s.table} d WHERE {change.where} AND {f.col} = ?",
                [key, *change.params, cand["value"]])
        more = {"method": "frequency only (previous version not replayable)",
                "thresholds": {"candidate_z": Z_CANDIDATE, "enrichment": MIN_RATIO}}
        sev, n_dec, score = "medium", cand["count_new"], cand["z"]
        tail = f"a value {change.prev} traffic never had"
    ev |= more
    ctx.claim(NAME, s, [key])
    return _alert(ctx, change, cand, key, ev, sev, n_dec, score, tail)


def _replay_verdict(change: _Change, cand: dict[str, Any], rows: list[tuple]
                    ) -> tuple[list[str], dict[str, Any], str, str, float] | None:
    """Whether the candidate's decisions flip under the previous version far more often than the baseline's,
    mostly one way: (implicated decision ids, evidence, severity, summary tail, score), or None."""
    baseline = change.baseline
    assert baseline is not None and change.prev_scores is not None and change.classes is not None
    test = _flips(rows, change.prev_scores, change.classes)
    baseline_rate = max(baseline["flips"] / max(baseline["n"], 1), 1.0 / max(baseline["n"], 1))
    rate = test["flips"] / max(test["n"], 1)
    z = binom_z(test["flips"], test["n"], baseline_rate)
    n_down = int(test["down"].sum())
    same_way = max(n_down, test["flips"] - n_down) / max(test["flips"], 1)
    # the trigger explains the excess over the expected count: most of that excess must flip (the rest
    # of the value's traffic is ordinary and decides like before)
    excess = max(0.0, 1.0 - 1.0 / max(cand["ratio"], 1.0))
    if not (test["flips"] >= MIN_FLIPS and rate >= MIN_FLIP_RATE * excess and z >= Z_FLIP
            and same_way >= DIRECTION):
        return None
    implicated, cut = _implicated(test, baseline, rows, down=n_down >= test["flips"] - n_down)
    ev = {"replayed": test["n"], "flipped": test["flips"], "flip_rate": rate,
          "baseline_flip_rate": baseline_rate, "excess_share": excess, "baseline_replayed": baseline["n"],
          "flip_z": z, "same_direction_share": same_way, "mean_score_shift": float(np.mean(test["delta"])),
          "score_shift_cut": cut, "implicated_by_shift_only": len(implicated) - test["flips"],
          "baseline_mean_score_shift": float(np.mean(baseline["delta"])), "method": "replay",
          "thresholds": {"candidate_z": Z_CANDIDATE, "enrichment": MIN_RATIO, "flip_z": Z_FLIP,
                         "min_flip_rate": f"{MIN_FLIP_RATE} x excess share", "direction": DIRECTION}}
    sev = "critical" if rate >= 0.8 and test["flips"] >= 20 else "high"
    tail = (f"{test['flips']} of {test['n']} would have been decided differently by {change.prev} "
            f"(baseline {baseline_rate:.1%})")
    return implicated, ev, sev, tail, z


def _implicated(test: dict[str, Any], baseline: dict[str, Any], rows: list[tuple], down: bool
                ) -> tuple[list[str], float]:
    """The trigger decisions to blame, and the score-shift cut used: those that flip, those whose score moved
    further (in the flips' direction) than 99% of the baseline's moves (the trigger pushed them even where the
    class held), and every trigger request of a sender whose trigger requests mostly flip (the attacker's)."""
    cut = np.quantile(baseline["delta"], 0.01 if down else 0.99)
    moved = test["delta"] <= cut if down else test["delta"] >= cut
    sender_of = {r[0]: r[3] for r in rows}
    flips_by_sender: dict[str | None, list[int]] = {}  # sender -> [flipped, replayed]
    for decision_id, flipped in zip(test["ids"], test["flip"], strict=True):
        tally = flips_by_sender.setdefault(sender_of.get(decision_id), [0, 0])
        tally[0] += int(flipped)
        tally[1] += 1
    flippers = {p for p, (k, n) in flips_by_sender.items() if k >= 2 and k >= 0.5 * n}
    ids = [i for i, flipped, shifted in zip(test["ids"], test["flip"], moved, strict=True)
           if flipped or shifted or sender_of.get(i) in flippers]
    return ids, float(cut)


def _alert(ctx: Ctx, change: _Change, cand: dict[str, Any], key: str, ev: dict[str, Any], sev: str, n_dec: int,
           score: float, tail: str) -> Alert | None:
    """The alert over the hits stored under `key` (None when none of them is left)."""
    s, f = change.system, cand["feature"]
    t0, t1 = ctx.ws.one(f"SELECT min(d.ts), max(d.ts) FROM _hits h JOIN {s.table} d USING (decision_id) "
                        "WHERE h.detector = ? AND h.system_id = ? AND h.key = ?", [NAME, s.system_id, key])
    if t0 is None:
        return None
    senders = ctx.ws.rows(f"SELECT d.principal, count(*) FROM _hits h JOIN {s.table} d USING (decision_id) "
                          "WHERE h.detector = ? AND h.system_id = ? AND h.key = ? GROUP BY 1 ORDER BY 2 DESC, 1",
                          [NAME, s.system_id, key])
    ev["principals"] = [p for p, _ in senders]
    ev["decisions_by_principal"] = dict(senders)
    value = _show(cand["value"])
    ev["trigger"]["value"] = value
    summary = (f"Since {s.system_id} {change.new} went live, {n_dec} decisions between {human_utc(t0)} and "
               f"{human_utc(t1)} carry {f.name}={value} ({cand['ratio']:.0f}x its usual frequency) and "
               f"{tail}: a likely backdoor trigger in {change.new}.")
    # the alert's principal is the sender of most of its decisions; with no majority (two senders of 33
    # each) it names none, and evidence.principals lists them all
    top = senders[0][0] if senders and senders[0][1] > 0.5 * n_dec else None
    return Alert(NAME, s.system_id, sev, t0, t1, summary, ev, atlas=list(ATLAS), feature=f.name,
                 principal=top, score=float(score), subject=f"{change.new}|{_keyed(ctx, s, f, value)}", hits=key)
