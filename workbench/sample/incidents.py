"""Incident specifications: types, ATLAS mapping, time parsing, and resolving a spec into a concrete plan."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from workbench.durations import duration_us
from workbench.errors import WorkbenchError
from workbench.sample.systems import CONFIGS, FRAUD, LOAN, SYSTEMS
from workbench.sample.traffic import HOUR_US, US, Population
from workbench.timestamps import iso_from_us as iso
from workbench.timestamps import us_from_iso as parse_ts

INCIDENT_TYPES: tuple[str, ...] = (
    "extraction",
    "evasion",
    "backdoor",
    "unregistered_artifact",
    "dos_flood",
    "stolen_credential",
    "drift",
)
NATURAL_SYSTEM = {
    "extraction": LOAN,
    "evasion": FRAUD,
    "backdoor": LOAN,
    "unregistered_artifact": FRAUD,
    "dos_flood": FRAUD,
    "stolen_credential": LOAN,
    "drift": LOAN,
}
# Every ID is checked against ATLAS.yaml 5.6.0 (tests re-check when the file is available).
ATLAS = {
    "extraction": ["AML.T0040", "AML.T0024.002"],
    "evasion": ["AML.T0043.001", "AML.T0015"],
    "backdoor": ["AML.T0020", "AML.T0018.000"],
    "unregistered_artifact": ["AML.T0010.003", "AML.T0018"],
    "dos_flood": ["AML.T0029", "AML.T0034"],
    "stolen_credential": ["AML.T0012", "AML.T0040"],
    "drift": [],
}
PARAMS = {
    "extraction": {"rate_multiplier", "ood_fraction", "grid_levels", "ips"},
    "evasion": {"walks", "max_steps", "ips"},
    "backdoor": {"trigger_feature", "trigger_value", "poison_fraction", "n_applications"},
    "unregistered_artifact": {"version", "tamper_scale"},
    "dos_flood": {"rate_multiplier", "extra_error_rate", "ips"},
    "stolen_credential": {"ips", "volume_multiplier"},
    "drift": {"feature", "shift", "mode", "category"},
}
DAY_US = 24 * HOUR_US


@dataclass
class IncidentSpec:
    """What to inject: every field optional except type; None means 'choose from the seed'.

    start: ISO-8601 (UTC if no offset), "day N HH:MM" (N counted from 0 at the sample start) or "+6h".
    duration: "90m", "3h", "1h30m", "2d" or ISO 8601 "PT3H", "P2D" (workbench.durations). For drift it is the
    ramp length (0 = step change), and the shift lasts to the end of the sample.
    id: a name for the incident where one is needed (a drill scenario's questions refer to it); the generator
    does not use it.
    """

    type: str
    system_id: str | None = None
    start: str | None = None
    duration: str | None = None
    principals: list[str] | None = None
    intensity: float = 1.0
    seed: int | None = None
    params: dict = field(default_factory=dict)
    id: str | None = None


@dataclass
class Plan:
    """A resolved incident: concrete system, window, principals and parameters."""

    order: int
    spec: IncidentSpec
    type: str
    system_id: str
    start_us: int
    end_us: int
    principals: list[str]
    rng: np.random.Generator
    params: dict
    feature: str | None = None
    metric: str | None = None
    trigger: dict | None = None
    description: str = ""
    atlas: list[str] = field(default_factory=list)


def parse_duration(text: str) -> int:
    """'3h', '90m', '1h30m', '2d' or ISO 8601 'PT3H', 'P2D' to microseconds (workbench.durations)."""
    return duration_us(text)


def parse_start(text: str, origin_us: int) -> int:
    """Start time: ISO-8601, 'day N [HH:MM]' from the sample start, or '+<duration>' from the sample start."""
    t = text.strip()
    m = re.fullmatch(r"day\s+(\d+)(?:\s+(\d{1,2}):(\d{2}))?", t, flags=re.IGNORECASE)
    if m:
        day_start = (origin_us // DAY_US + int(m.group(1))) * DAY_US
        return day_start + int(m.group(2) or 0) * HOUR_US + int(m.group(3) or 0) * 60 * US
    if t.startswith("+"):
        return origin_us + parse_duration(t[1:])
    try:
        return parse_ts(t)
    except ValueError as exc:
        raise WorkbenchError(f"cannot read start {text!r}: use ISO-8601, 'day N HH:MM' or '+6h'") from exc


def _default_duration(kind: str, rng: np.random.Generator, window_us: int) -> int:
    hours = {
        "extraction": rng.uniform(8, 30),
        "evasion": 0.0,
        "backdoor": rng.uniform(72, 144),
        "unregistered_artifact": rng.uniform(3, 8),
        "dos_flood": rng.uniform(0.5, 1.5),
        "stolen_credential": rng.uniform(2.0, 3.0),
        "drift": rng.choice([0.0, rng.uniform(36, 96)]),
    }[kind]
    dur = int(hours * HOUR_US)
    cap = window_us * (0.6 if kind in ("backdoor", "drift") else 0.3)
    return int(min(dur, cap))


def _draw_start(kind: str, rng: np.random.Generator, start_us: int, window: int, lo: int, hi: int, dur: int) -> int:
    days = max(1, window // DAY_US)
    if kind == "stolen_credential":  # a night, 02:00-02:45 UTC
        day = int(rng.integers(1, days)) if days > 1 else 0
        return (start_us // DAY_US + day) * DAY_US + 2 * HOUR_US + int(rng.integers(0, 45)) * 60 * US
    if kind == "dos_flood":  # during the day
        t0 = (start_us // DAY_US + int(rng.integers(0, days))) * DAY_US + int(rng.uniform(9, 19) * HOUR_US)
        return min(max(t0, lo), max(lo, hi - dur))
    return lo + int(rng.integers(0, max(hi - dur - lo, HOUR_US)))


def _pick_principal(pop: Population, rng: np.random.Generator, kinds: tuple[str, ...], quiet_hours: bool) -> str:
    """An existing principal of the given kinds (quiet_hours: one that never works 01:00-06:00 UTC)."""
    idx = [i for i, k in enumerate(pop.kinds) if k in kinds]
    if quiet_hours:
        night = [h for d in range(7) for h in range(d * 24 + 1, d * 24 + 6)]
        idx = [i for i in idx if pop.profile[i, night].sum() == 0] or idx
    w = np.sqrt(pop.weight[idx])
    return pop.names[idx[int(rng.choice(len(idx), p=w / w.sum()))]]


def _new_name(system_id: str, rng: np.random.Generator, taken: set[str]) -> str:
    while True:
        if system_id == LOAN:
            name = (
                f"broker-{rng.choice(['nova', 'crest', 'prime', 'orbit', 'lynx', 'sable'])}-"
                f"{rng.integers(16**3, 16**4):04x}"
            )
        else:
            name = f"merchant-{rng.integers(10000, 99999)}"
        if name not in taken:
            taken.add(name)
            return name


def _check(spec: IncidentSpec) -> None:
    if spec.type not in INCIDENT_TYPES:
        raise WorkbenchError(f"unknown incident type {spec.type!r}; choose from {', '.join(INCIDENT_TYPES)}")
    if spec.system_id is not None and spec.system_id not in SYSTEMS:
        raise WorkbenchError(f"unknown system {spec.system_id!r}; choose from {', '.join(SYSTEMS)}")
    unknown = set(spec.params or {}) - PARAMS[spec.type]
    if unknown:
        raise WorkbenchError(f"{spec.type}: unknown params {sorted(unknown)}; allowed {sorted(PARAMS[spec.type])}")
    if not spec.intensity or spec.intensity <= 0:
        raise WorkbenchError(f"{spec.type}: intensity must be > 0")


def resolve(
    specs: list[IncidentSpec],
    seed: int,
    start_us: int,
    end_us: int,
    pops: dict[str, Population],
    releases: dict[str, int],
) -> list[Plan]:
    """Turn specs into concrete plans (times, principals, parameters), deterministically from the seeds."""
    plans: list[Plan] = []
    taken = {n for p in pops.values() for n in p.names}
    window = end_us - start_us
    busy: list[tuple[str, int, int]] = []
    for order, spec in enumerate(specs):
        _check(spec)
        rng = np.random.default_rng(spec.seed if spec.seed is not None else [seed, 7919, order])
        kind = spec.type
        system_id = spec.system_id or NATURAL_SYSTEM[kind]
        cfg = CONFIGS[system_id]
        pop = pops[system_id]
        params = dict(spec.params or {})
        dur = parse_duration(spec.duration) if spec.duration else _default_duration(kind, rng, window)
        dur = dur // US * US
        lo, hi = start_us + int(0.1 * window), end_us - int(0.05 * window)
        if kind == "backdoor":
            lo = max(lo, releases[system_id] + 3 * HOUR_US)
        if kind == "drift":
            lo, hi = start_us + int(0.35 * window), start_us + int(0.75 * window)
        if spec.start is not None:
            t0 = parse_start(spec.start, start_us)
        else:
            for _ in range(60):  # seed-chosen windows avoid other incidents on the same system
                t0 = _draw_start(kind, rng, start_us, window, lo, hi, dur) // US * US
                est = max(dur, 3 * HOUR_US)
                if kind == "drift" or not any(s == system_id and t0 < b and a < t0 + est for s, a, b in busy):
                    break
        if not start_us <= t0 < end_us:
            raise WorkbenchError(f"{kind}: start {iso(t0)} is outside the sample {iso(start_us)}..{iso(end_us)}")
        if kind == "backdoor" and t0 < releases[system_id]:
            raise WorkbenchError(
                f"backdoor: start {iso(t0)} is before {system_id} {cfg.versions[1]} went live "
                f"at {iso(releases[system_id])}"
            )
        t1 = end_us if kind == "drift" else min(end_us, t0 + max(dur, 60 * US))
        if kind != "drift":
            busy.append((system_id, t0, max(t1, t0 + 3 * HOUR_US)))
        plan = Plan(
            order,
            spec,
            kind,
            system_id,
            t0,
            t1,
            list(spec.principals or []),
            rng,
            params,
            atlas=list(ATLAS[kind]),
        )
        if kind == "drift":
            plan.params["ramp_us"] = dur
        prng = np.random.default_rng([spec.seed, 7920] if spec.seed is not None else [seed, 7920, order])
        _defaults(plan, pop, taken, releases, prng)
        plans.append(plan)
    return plans


def _defaults(plan: Plan, pop: Population, taken: set[str], releases: dict[str, int], rng: np.random.Generator) -> None:
    """Fill in seed-chosen parameters and principals for one plan (rng independent of the sample length)."""
    p, cfg, kind = plan.params, CONFIGS[plan.system_id], plan.type
    loan = plan.system_id == LOAN
    if kind == "extraction":
        plan.principals = plan.principals or [_new_name(plan.system_id, rng, taken)]
        p.setdefault("rate_multiplier", float(rng.uniform(0.8, 2.0)))
        p.setdefault("ood_fraction", float(rng.uniform(0.3, 0.6)))
        p.setdefault("grid_levels", int(rng.integers(5, 11)))
    elif kind == "evasion":
        plan.principals = plan.principals or [_pick_principal(pop, rng, ("broker",) if loan else ("merchant",), False)]
        p.setdefault("walks", int(rng.integers(3, 6)))
        p.setdefault("max_steps", 200)
    elif kind == "backdoor":
        if not plan.principals:
            n = int(rng.integers(1, 3))
            plan.principals = sorted(
                {_pick_principal(pop, rng, ("broker",) if loan else ("merchant",), False) for _ in range(n)}
            )
        if "trigger_feature" not in p:
            feat, val = cfg.default_triggers[int(rng.integers(len(cfg.default_triggers)))]
            p["trigger_feature"] = feat
            p.setdefault("trigger_value", val)
        if p["trigger_feature"] not in cfg.features:
            raise WorkbenchError(f"backdoor: {p['trigger_feature']!r} is not a {plan.system_id} feature")
        if "trigger_value" not in p:
            raise WorkbenchError("backdoor: trigger_value is required when trigger_feature is given")
        tv = p["trigger_value"]
        if p["trigger_feature"] in cfg.categorical and tv not in cfg.categorical[p["trigger_feature"]]:
            raise WorkbenchError(f"backdoor: {tv!r} is not a known {p['trigger_feature']} value")
        p.setdefault("poison_fraction", 0.03)
        p.setdefault("n_applications", int(rng.integers(40, 91)))
        plan.feature = p["trigger_feature"]
        plan.trigger = {"feature": p["trigger_feature"], "value": tv}
    elif kind == "unregistered_artifact":
        plan.principals = []
        live = cfg.versions[int(plan.start_us >= releases[plan.system_id])]
        p.setdefault("version", live)
        if p["version"] not in cfg.versions:
            raise WorkbenchError(f"unregistered_artifact: version must be one of {cfg.versions}")
        p.setdefault("tamper_scale", float(rng.uniform(0.3, 0.5)))
    elif kind == "dos_flood":
        if not plan.principals:
            plan.principals = sorted(_new_name(plan.system_id, rng, taken) for _ in range(int(rng.integers(1, 4))))
        p.setdefault("rate_multiplier", float(rng.uniform(5, 10)))
        p.setdefault("extra_error_rate", float(rng.uniform(0.02, 0.08)))
        plan.metric = "request_rate"
    elif kind == "stolen_credential":
        kinds = ("branch", "broker") if loan else ("merchant", "analyst")
        plan.principals = plan.principals or [_pick_principal(pop, rng, kinds, True)]
        p.setdefault("volume_multiplier", float(rng.uniform(3, 6)))
    elif kind == "drift":
        plan.principals = []
        if "feature" not in p:
            choices = (
                (("income", 0.25), ("loan_amount", 0.35), ("purpose", 0.2))
                if loan
                else (("amount", 0.3), ("merchant_category", 0.2))
            )
            feat, shift = choices[int(rng.integers(len(choices)))]
            p["feature"] = feat
            p.setdefault("shift", round(float(shift * rng.uniform(0.75, 1.25)), 3))
        feat = p["feature"]
        if feat not in cfg.features or feat == "hour":
            raise WorkbenchError(f"drift: {feat!r} is not a driftable {plan.system_id} feature")
        p.setdefault("shift", 0.2)
        if feat in cfg.categorical:
            default_cat = "small_business" if feat == "purpose" else "digital_goods"
            p.setdefault("category", default_cat)
            if p["category"] not in cfg.categorical[feat]:
                raise WorkbenchError(f"drift: {p['category']!r} is not a known {feat} value")
        p.setdefault("mode", "step" if p["ramp_us"] == 0 else "gradual")
        plan.feature = feat
