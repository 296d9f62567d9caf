"""Generated scenarios for judging drift on systems unlike the shipped sample: low volume, long spans, seasons.

Each scenario is one system of 100-200 decisions a day over months, with its own features (numbers with a
weekly or daily cycle, categories, a flag), a weekly rhythm of volume, a simple scoring model, and known
shifts: a slow ramp, a sudden step, or none at all. Everything is drawn from numpy generators seeded by the
scenario's seed, so the same seed gives byte-identical files. `write()` produces what `generate()` does for
decisions (decisions/<system>.parquet in the canonical layout, ground_truth.json with drift incidents plus the
names of the features that must stay quiet), ready for `workbench ingest`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workbench.errors import WorkbenchError
from workbench.sample.incidents import DAY_US
from workbench.sample.traffic import HOUR_US, random_ips
from workbench.timestamps import iso_from_us as iso
from workbench.timestamps import us_from_iso as parse_ts

WEEKDAY_VOLUME = (1.15, 1.1, 1.1, 1.1, 1.15, 0.8, 0.6)   # Monday first; mean 1.0
WEEKLY_PROFILE = (1.2, 0.6, 0.2, 0.0, -0.2, -0.8, -1.0)  # a queue that is long on Mondays and short on Sundays


@dataclass(frozen=True)
class Feature:
    """One logged input: kind number (normal/lognormal, optionally cycling with the week or the hour),
    category or flag."""

    name: str
    kind: str                       # normal | lognormal | weekly | hour | category | flag
    a: float = 0.0                  # normal/weekly: mean; lognormal: mu; flag: probability
    b: float = 1.0                  # normal/weekly: sd (weekly: of the noise around the weekday mean); lognormal: sigma
    decimals: int = 2
    values: tuple[str, ...] = ()
    probs: tuple[float, ...] = ()
    weight: float = 0.0             # weight in the scoring model (numbers: per standard deviation)


@dataclass(frozen=True)
class Shift:
    """A known change: numbers move their mean by `sd` standard deviations, a category gains `share` of the
    traffic; over `ramp_days` (0 = a sudden step) from `start_day` on."""

    feature: str
    start_day: float
    ramp_days: float = 0.0
    sd: float = 0.0
    category: str | None = None
    share: float = 0.0


@dataclass(frozen=True)
class Scenario:
    """A system, its traffic and its known shifts."""

    name: str
    system_id: str
    days: int
    per_day: float
    features: tuple[Feature, ...]
    shifts: tuple[Shift, ...] = ()
    hours: tuple[float, float] = (13.0, 3.0)   # time of day of decisions: mean and sd (hours, UTC)
    start: str = "2025-01-06T00:00:00Z"        # a Monday
    labels: tuple[str, str] = ("approve", "refer")
    description: str = ""
    principals: int = 12
    extra: dict = field(default_factory=dict)


_CHANNEL = ("branch", "online", "phone", "broker")
SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario(
        "slow-drift", "branch-credit", 365, 140,
        (Feature("loan_amount", "lognormal", 9.3, 0.5, 0, weight=0.6),
         Feature("debt_ratio", "normal", 0.32, 0.08, 3, weight=0.9),
         Feature("applicant_age", "normal", 44, 12, 0),
         Feature("queue_minutes", "weekly", 25, 6, 1),
         Feature("channel", "category", values=_CHANNEL, probs=(0.45, 0.3, 0.15, 0.1)),
         Feature("has_guarantor", "flag", 0.2, weight=-0.4)),
        (Shift("debt_ratio", 150, ramp_days=90, sd=1.0),),
        description="A branch credit desk, ~140 decisions a working day over a year; the applicants' debt ratio "
                    "creeps up by one standard deviation over three months from day 150; the queue follows the "
                    "week."),
    Scenario(
        "sudden-drift", "claims-triage", 600, 165,
        (Feature("claim_amount", "lognormal", 7.6, 0.7, 2, weight=0.8),
         Feature("policy_years", "normal", 6, 3, 0, weight=-0.3),
         Feature("claimant_age", "normal", 51, 14, 0),
         Feature("queue_minutes", "weekly", 40, 8, 1),
         Feature("report_hour", "hour", decimals=0),
         Feature("region", "category", values=("north", "south", "east", "west", "capital", "islands"),
                 probs=(0.2, 0.2, 0.15, 0.15, 0.25, 0.05)),
         Feature("prior_claims", "flag", 0.15, weight=0.5)),
        (Shift("claim_amount", 300, sd=1.0),),
        labels=("fast_track", "investigate"),
        description="A claims model, ~165 decisions a day over 20 months; from day 300 the mean claim amount "
                    "is one standard deviation higher (a tariff change)."),
    Scenario(
        "seasonal-stable", "clinic-triage", 365, 110,
        (Feature("wait_minutes", "weekly", 55, 12, 0),
         Feature("arrival_hour", "hour", decimals=0),
         Feature("heart_rate", "normal", 82, 14, 0, weight=0.7),
         Feature("temperature", "normal", 37.1, 0.6, 1, weight=0.5),
         Feature("patient_age", "normal", 48, 20, 0, weight=0.3),
         Feature("ward", "category", values=("general", "cardio", "ortho", "paeds"), probs=(0.5, 0.2, 0.2, 0.1)),
         Feature("referred", "flag", 0.3)),
        hours=(12.0, 5.0), labels=("routine", "urgent"),
        description="A clinical triage model, ~110 decisions a day over a year, nothing changes; waiting time "
                    "follows the week and arrivals the clock."),
)}


def get(name: str | Scenario) -> Scenario:
    """A scenario by name (or the scenario itself)."""
    if isinstance(name, Scenario):
        return name
    if name not in SCENARIOS:
        raise WorkbenchError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def _timestamps(sc: Scenario, rng: np.random.Generator) -> np.ndarray:
    start = parse_ts(sc.start)
    day0 = start // DAY_US
    counts = rng.poisson(sc.per_day * np.array([WEEKDAY_VOLUME[int((day0 + d + 3) % 7)] for d in range(sc.days)]))
    day = np.repeat(np.arange(sc.days), counts)
    hour = np.clip(rng.normal(sc.hours[0], sc.hours[1], day.size), 0, 24 - 1e-6)
    return np.sort(start + day * DAY_US + (hour * HOUR_US).astype(np.int64))


def _column(f: Feature, ts: np.ndarray, start: int, rng: np.random.Generator) -> np.ndarray:
    n = ts.size
    if f.kind == "normal":
        return rng.normal(f.a, f.b, n)
    if f.kind == "lognormal":
        return np.exp(rng.normal(f.a, f.b, n))
    if f.kind == "weekly":
        dow = ((ts // DAY_US) + 3) % 7
        return f.a + np.array(WEEKLY_PROFILE)[dow] * f.b + rng.normal(0, f.b * 0.5, n)
    if f.kind == "hour":
        return ((ts % DAY_US) // HOUR_US).astype(float)
    if f.kind == "category":
        return np.array(f.values, dtype=object)[rng.choice(len(f.values), n, p=np.array(f.probs) / sum(f.probs))]
    if f.kind == "flag":
        return rng.random(n) < f.a
    raise WorkbenchError(f"unknown feature kind {f.kind!r}")


def _shift(sh: Shift, f: Feature, x: np.ndarray, ts: np.ndarray, start: int, rng: np.random.Generator) -> np.ndarray:
    t0 = start + int(sh.start_day * DAY_US)
    frac = np.clip((ts - t0) / max(sh.ramp_days * DAY_US, 1), 0, 1) if sh.ramp_days else (ts >= t0) * 1.0
    frac = np.where(ts >= t0, frac, 0.0)
    if f.kind in ("category", "flag"):
        flip = rng.random(x.size) < sh.share * frac
        out = x.copy()
        out[flip] = sh.category if f.kind == "category" else bool(sh.share > 0)
        return out
    before = x[ts < t0]
    return x + sh.sd * frac * float(np.std(before if before.size > 30 else x))


def build(name: str | Scenario, seed: int = 0) -> tuple[dict[str, np.ndarray], dict]:
    """The scenario's decision columns (canonical names, features as 'features.<name>') and its ground truth."""
    sc = get(name)
    rng = np.random.default_rng([seed, 97, len(sc.name), sum(map(ord, sc.name))])
    start = parse_ts(sc.start)
    ts = _timestamps(sc, rng)
    n = ts.size
    feats: dict[str, np.ndarray] = {}
    for f in sc.features:
        feats[f.name] = _column(f, ts, start, rng)
    by_name = {f.name: f for f in sc.features}
    for sh in sc.shifts:
        if sh.feature not in by_name:
            raise WorkbenchError(f"scenario {sc.name}: no feature {sh.feature!r} to shift")
        feats[sh.feature] = _shift(sh, by_name[sh.feature], feats[sh.feature], ts, start, rng)
    logit = np.full(n, -1.0)
    for f in sc.features:
        if f.weight and f.kind == "flag":
            logit += f.weight * feats[f.name]
        elif f.weight:
            x = np.log(feats[f.name]) if f.kind == "lognormal" else feats[f.name]
            mu, sd = (f.a, f.b) if f.kind in ("normal", "lognormal") else (x.mean(), x.std() or 1.0)
            logit += f.weight * (x - mu) / sd
    score = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.3, n))))
    for f in sc.features:
        if f.kind in ("normal", "lognormal", "weekly"):
            feats[f.name] = np.round(feats[f.name], f.decimals)
    staff = [f"{sc.system_id.split('-')[0]}-desk-{i:02d}" for i in range(sc.principals)]
    ips = random_ips(rng, sc.principals)
    who = rng.integers(0, sc.principals, n)
    cols: dict[str, np.ndarray] = {
        "decision_id": np.array([f"{sc.system_id[:2].upper()}-{i:07d}" for i in range(n)], dtype=object),
        "ts": ts, "system_id": np.full(n, sc.system_id, dtype=object), "model_version": np.full(n, "1.0", dtype=object),
        "principal": np.array(staff, dtype=object)[who], "source_ip": np.array(ips, dtype=object)[who],
        "prediction": np.where(score >= 0.5, sc.labels[1], sc.labels[0]).astype(object),
        "score": np.round(score, 4), "latency_ms": np.round(rng.gamma(4, 10, n), 1),
        "status": np.full(n, "ok", dtype=object),
    }
    for name, x in feats.items():
        cols[f"features.{name}"] = x
    return cols, truth(sc, int(ts[0]), int(ts[-1]))


def truth(sc: Scenario, first_us: int, last_us: int) -> dict:
    """Ground truth in the sample's format: one drift incident per shift, plus the features that must not move."""
    start = parse_ts(sc.start)
    moved = {sh.feature for sh in sc.shifts}
    inputs = {f.name for f in sc.features if f.weight}
    return {
        "scenario": sc.name, "description": sc.description, "systems": [sc.system_id], "clean": not sc.shifts,
        "span": {"start": iso(first_us), "end": iso(last_us)},
        "incidents": [{"id": f"SCN-{i + 1:03d}", "type": "drift", "system_id": sc.system_id, "atlas": [],
                       "start": iso(start + int(sh.start_day * DAY_US)), "end": iso(last_us),
                       "ramp_days": sh.ramp_days, "principals": [], "feature": sh.feature, "metric": None,
                       "decision_ids": [], "trigger": None,
                       "description": (f"{'Slow' if sh.ramp_days else 'Sudden'} drift of {sh.feature}: "
                                       + (f"{sh.sd:+.2g} sd" if sh.category is None else
                                          f"'{sh.category}' +{sh.share:.0%}")
                                       + (f" over {sh.ramp_days:g} days" if sh.ramp_days else ""))}
                      for i, sh in enumerate(sc.shifts)],
        "stable_features": sorted(f.name for f in sc.features if f.name not in moved),
        "seasonal_features": sorted(f.name for f in sc.features if f.kind in ("weekly", "hour")),
        "outputs_move": bool(moved & inputs),
    }


def _arrow(cols: dict[str, np.ndarray]) -> pa.Table:
    arrays = {}
    for k, v in cols.items():
        if k == "ts":
            arrays[k] = pa.array(v, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        elif v.dtype == object:
            arrays[k] = pa.array(list(v), type=pa.string())
        else:
            arrays[k] = pa.array(v)
    return pa.table(arrays)


def write(out_dir: str | Path, name: str | Scenario, seed: int = 0) -> dict:
    """Write decisions/<system>.parquet and ground_truth.json for a scenario; returns the ground truth."""
    sc = get(name)
    out = Path(out_dir)
    (out / "decisions").mkdir(parents=True, exist_ok=True)
    cols, gt = build(sc, seed)
    pq.write_table(_arrow(cols), out / "decisions" / f"{sc.system_id}.parquet", compression="zstd")
    gt["seed"] = seed
    (out / "ground_truth.json").write_text(json.dumps(gt, indent=2), encoding="utf-8")
    return gt


def variant(name: str, **changes: object) -> Scenario:
    """A scenario with some fields changed (another rate, span or shift), e.g. variant('sudden-drift', per_day=40)."""
    return replace(get(name), **changes)
