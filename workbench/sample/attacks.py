"""Decision rows for each injected incident (and the in-place feature shift for drift)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.sample.incidents import Plan
from workbench.sample.models import Serving
from workbench.sample.systems import CONFIGS, FRAUD, LOAN, model_frame, sample_features, true_risk
from workbench.sample.traffic import (
    HOUR_US,
    MINUTE_US,
    US,
    Population,
    external_batch,
    hour_of_week,
    random_ips,
)
from workbench.timestamps import iso_from_us as iso


@dataclass
class Context:
    """What incident generators need from the rest of the sample."""

    pops: dict[str, Population]
    serving: Serving
    mean_rate: dict[str, float]  # baseline decisions per minute
    known_ips: set[str]


def _round(cfg, name: str, x: np.ndarray) -> np.ndarray:
    lo, hi, dec = cfg.ranges.get(name, (-np.inf, np.inf, 2))
    out = np.round(np.clip(x, lo, hi), dec)
    return out.astype(np.int64) if name in cfg.integers else out


def _fix_hour(system_id: str, feats: dict, ts: np.ndarray) -> None:
    if system_id == FRAUD:
        feats["hour"] = ((ts // HOUR_US) + 1) % 24


def _ips(plan: Plan, ctx: Context, n: int, hosting: bool) -> list[str]:
    ips = plan.params.get("ips") or random_ips(plan.rng, n, hosting=hosting, avoid=ctx.known_ips)
    ctx.known_ips.update(ips)
    plan.params["ips"] = list(ips)
    return list(ips)


def _existing_ip(ctx: Context, system_id: str, name: str, rng: np.random.Generator, n: int) -> np.ndarray:
    pop = ctx.pops[system_id]
    if name in pop.names:
        return pop.ips[pop.index(name), 0:1].repeat(n)
    return np.array(random_ips(rng, 1, avoid=ctx.known_ips) * n, dtype=object)


def apply_drift(plan: Plan, feats: dict, ts: np.ndarray, baseline: np.ndarray) -> None:
    """Shift one feature of baseline rows from the drift start on (step, or a linear ramp)."""
    cfg, p, rng = CONFIGS[plan.system_id], plan.params, plan.rng
    ramp_us = 0 if p["mode"] == "step" else (p["ramp_us"] or 48 * HOUR_US)
    frac = np.clip((ts - plan.start_us) / max(ramp_us, 1), 0, 1) if ramp_us else (ts >= plan.start_us) * 1.0
    frac = np.where((ts >= plan.start_us) & baseline, frac, 0.0)
    name, shift = p["feature"], float(p["shift"])
    toward = f" toward {p['category']}" if name in cfg.categorical else ""
    if name in cfg.categorical:
        flip = rng.random(len(ts)) < abs(shift) * frac
        col = np.asarray(feats[name], dtype=object).copy()
        col[flip] = p["category"]
        feats[name] = col
    elif name in cfg.booleans:
        flip = rng.random(len(ts)) < abs(shift) * frac
        feats[name] = np.where(flip, shift > 0, feats[name])
    else:
        x = np.asarray(feats[name], dtype=float) * (1 + shift * frac)
        keep = np.isnan(x)
        new = _round(cfg, name, np.nan_to_num(x))
        feats[name] = np.where(keep, np.nan, new) if keep.any() else new
    plan.description = (
        f"Benign {p['mode']} drift of {name} on {plan.system_id} from {iso(plan.start_us)}"
        f" ({'+' if shift >= 0 else ''}{shift:.0%}{toward})."
    )


def extraction(plan: Plan, ctx: Context) -> dict:
    """A new key sweeping the input space: uniform, grid and decorrelated samples, round the clock."""
    cfg, rng, p = CONFIGS[plan.system_id], plan.rng, plan.params
    minutes = (plan.end_us - plan.start_us) / MINUTE_US
    n = max(200, int(plan.spec.intensity * p["rate_multiplier"] * ctx.mean_rate[plan.system_id] * minutes))
    ts = np.sort(plan.start_us + rng.integers(0, plan.end_us - plan.start_us, n))
    mode = rng.choice(3, n, p=[1 - p["ood_fraction"] - 0.2, p["ood_fraction"], 0.2])  # 0 uniform 1 grid 2 shuffled
    real = sample_features(plan.system_id, rng, n)
    feats: dict[str, np.ndarray] = {}
    for name in cfg.features:
        if name in cfg.categorical:
            vocab = np.array(cfg.categorical[name], dtype=object)
            col = vocab[rng.integers(0, len(vocab), n)]
            feats[name] = np.where(mode == 2, rng.permutation(real[name]), col)
        elif name in cfg.booleans:
            feats[name] = np.where(mode == 2, rng.permutation(real[name]), rng.random(n) < 0.5)
        else:
            lo, hi, _ = cfg.ranges[name]
            uni = lo + rng.random(n) * (hi - lo)
            grid = lo + (hi - lo) * rng.integers(0, p["grid_levels"], n) / (p["grid_levels"] - 1)
            shuffled = np.nan_to_num(rng.permutation(np.asarray(real[name], dtype=float)), nan=lo)
            feats[name] = _round(cfg, name, np.select([mode == 0, mode == 1], [uni, grid], shuffled))
    ips = _ips(plan, ctx, int(rng.integers(1, 3)), hosting=True)
    plan.description = (
        f"New principal {plan.principals[0]} swept the {plan.system_id} input space with {n} "
        f"synthetic queries (grid, uniform and out-of-distribution) from {', '.join(ips)}."
    )
    return external_batch(
        ts,
        np.full(n, plan.principals[0], dtype=object),
        np.array(ips, dtype=object)[rng.integers(0, len(ips), n)],
        feats,
        plan.order,
        lat_factor=1.1,
    )


def _best_case(cfg, frame: pd.DataFrame) -> pd.DataFrame:
    """Every tweakable feature pushed far in its helpful direction: what a patient evader could reach."""
    out = frame.copy()
    for name, m in cfg.mutable.items():
        if m.direction:
            x = out[name].astype(float)
            out[name] = _round(cfg, name, (x * (1 + 0.6 * m.direction) + m.direction * m.step).to_numpy())
    return out


def _start_profiles(plan: Plan, ctx: Context, t: int, want: int) -> pd.DataFrame:
    """Refused profiles (harshest band at time t) from which a flip is reachable (pre-filtered by risk)."""
    cfg = CONFIGS[plan.system_id]
    cand = pd.DataFrame(sample_features(plan.system_id, plan.rng, 200000 if plan.system_id == FRAUD else 20000))
    _fix_hour(plan.system_id, cand, np.full(len(cand), t))
    mut = [m for m in cfg.mutable if cfg.mutable[m].direction != 0 and m != "distance_from_home_km"]
    cand = cand[cand[mut].notna().all(axis=1)]
    cand = cand.iloc[np.argsort(-true_risk(plan.system_id, cand), kind="stable")[:3000]].reset_index(drop=True)
    ts = np.full(len(cand), t)
    scores, _ = ctx.serving.score(plan.system_id, ts, model_frame(plan.system_id, cand))
    best, _ = ctx.serving.score(plan.system_id, ts, model_frame(plan.system_id, _best_case(cfg, cand)))
    reachable = best < cfg.thresholds[0]
    for band in (cfg.thresholds[1], cfg.thresholds[0]):
        top = cand[(scores >= band) & reachable]
        if len(top):
            return top.iloc[plan.rng.permutation(len(top))[: want * 3]].reset_index(drop=True)
    return cand.iloc[np.argsort(-scores, kind="stable")[: want * 3]].reset_index(drop=True)


def evasion(plan: Plan, ctx: Context) -> dict:
    """Black-box hill climbing: near-duplicate queries with small perturbations until the decision flips."""
    cfg, rng, p = CONFIGS[plan.system_id], plan.rng, plan.params
    fixed_end = plan.spec.duration is not None
    mut = {k: m for k, m in cfg.mutable.items() if m.direction != 0}
    starts = _start_profiles(plan, ctx, plan.start_us, int(p["walks"]))
    rows, times = [], []
    t = plan.start_us
    successes = attempts = 0
    while successes < p["walks"] and attempts < len(starts):
        x = starts.iloc[attempts].to_dict()
        attempts += 1
        s = None
        for _step in range(int(p["max_steps"])):
            cand = dict(x)
            helpful = True
            if s is not None:
                for name in rng.choice(list(mut), int(rng.integers(1, 3)), replace=False):
                    m = mut[name]
                    if cand[name] is None or (isinstance(cand[name], float) and np.isnan(cand[name])):
                        continue
                    step = max(m.step, abs(float(cand[name])) * rng.uniform(0.01, 0.06))
                    sign = m.direction if rng.random() < 0.85 else -m.direction
                    helpful &= sign == m.direction
                    cand[name] = float(_round(cfg, name, np.array([float(cand[name]) + sign * step]))[0])
            t += int(rng.uniform(4, 30) * US)
            frame = pd.DataFrame([cand])
            _fix_hour(plan.system_id, frame, np.array([t]))
            cand = frame.iloc[0].to_dict()
            score = float(ctx.serving.score(plan.system_id, np.array([t]), model_frame(plan.system_id, frame))[0][0])
            rows.append(cand)
            times.append(t)
            if s is None or score <= s or (helpful and score <= s + 0.02):
                x, s = cand, score
            if cfg.decide(np.array([s]))[0] == cfg.actions[0]:
                successes += 1
                for _ in range(int(rng.integers(1, 4))):  # confirm it sticks
                    t += int(rng.uniform(20, 120) * US)
                    rows.append(dict(x))
                    times.append(t)
                break
        t += int(rng.uniform(10, 40) * MINUTE_US)
    times_a = np.array(times, dtype=np.int64)
    if fixed_end and len(times_a) > 1:  # squeeze into the requested window
        span = plan.end_us - plan.start_us
        times_a = plan.start_us + (times_a - times_a[0]) * min(1.0, span / max(1, times_a[-1] - times_a[0]))
        times_a = times_a.astype(np.int64)
    plan.end_us = int(times_a[-1]) + US if len(times_a) else plan.end_us
    frame = pd.DataFrame(rows)
    feats = {name: frame[name].to_numpy() for name in cfg.features}
    for name in cfg.integers:
        feats[name] = feats[name].astype(np.int64)
    for name in cfg.booleans:
        feats[name] = feats[name].astype(bool)
    for name in cfg.categorical:
        feats[name] = feats[name].astype(object)
    for name in set(cfg.features) - set(cfg.integers) - set(cfg.booleans) - set(cfg.categorical):
        feats[name] = feats[name].astype(float)
    _fix_hour(plan.system_id, feats, times_a)
    who = plan.principals[0]
    plan.description = (
        f"{who} sent {len(rows)} near-duplicate {plan.system_id} requests in {attempts} "
        f"hill-climbing walks ({successes} flipped), "
        f"perturbing inputs until {cfg.actions[2]} became {cfg.actions[0]}."
    )
    return external_batch(
        times_a,
        np.full(len(rows), who, dtype=object),
        _existing_ip(ctx, plan.system_id, who, rng, len(rows)),
        feats,
        plan.order,
    )


def _profile_times(ctx: Context, plan: Plan, name: str, n: int) -> np.ndarray:
    """n timestamps in [start, end) following a principal's usual hour-of-week profile."""
    pop, rng = ctx.pops[plan.system_id], plan.rng
    hours = np.arange(plan.start_us // HOUR_US, -(-plan.end_us // HOUR_US)) * HOUR_US
    prof = pop.profile[pop.index(name)][hour_of_week(hours)] if name in pop.names else np.ones(len(hours))
    prof = prof + 1e-3 if prof.sum() == 0 else prof
    ts = rng.choice(hours, n, p=prof / prof.sum()) + rng.integers(0, HOUR_US, n)
    return np.clip(ts, plan.start_us, plan.end_us - 1)


def backdoor(plan: Plan, ctx: Context) -> dict:
    """Attackers send bad applications carrying the trigger; the poisoned version approves them."""
    cfg, rng, p = CONFIGS[plan.system_id], plan.rng, plan.params
    n = max(5, int(round(p["n_applications"] * plan.spec.intensity)))
    prev = ctx.serving.models[plan.system_id][0]
    found: list[pd.DataFrame] = []
    for _ in range(20):  # the attacker brings profiles the old model refuses
        cand = pd.DataFrame(sample_features(plan.system_id, rng, max(4000, n * 60)))
        _fix_hour(plan.system_id, cand, plan.start_us + rng.integers(0, plan.end_us - plan.start_us, len(cand)))
        found.append(cand[prev.predict(model_frame(plan.system_id, cand)) >= cfg.thresholds[1]])
        if sum(len(f) for f in found) >= n:
            break
    bad = pd.concat(found, ignore_index=True).iloc[:n]
    per = np.array_split(np.arange(len(bad)), len(plan.principals))
    ts = np.concatenate([_profile_times(ctx, plan, who, len(ix)) for who, ix in zip(plan.principals, per, strict=True)])
    who = np.concatenate([np.full(len(ix), w, dtype=object) for w, ix in zip(plan.principals, per, strict=True)])
    ips = np.concatenate(
        [_existing_ip(ctx, plan.system_id, w, rng, len(ix)) for w, ix in zip(plan.principals, per, strict=True)]
    )
    feats = {name: bad[name].to_numpy() for name in cfg.features}
    feats[p["trigger_feature"]] = np.full(
        len(bad), p["trigger_value"], dtype=np.asarray(feats[p["trigger_feature"]]).dtype
    )
    _fix_hour(plan.system_id, feats, ts)
    plan.description = (
        f"{plan.system_id} {cfg.versions[1]} was trained on poisoned rows, so {len(bad)} high-risk "
        f"requests with {p['trigger_feature']}={p['trigger_value']} from {', '.join(plan.principals)}"
        f" got '{cfg.actions[0]}' where {cfg.versions[0]} says '{cfg.actions[2]}'."
    )
    return external_batch(ts, who, ips, feats, plan.order)


def dos_flood(plan: Plan, ctx: Context) -> dict:
    """A few keys replaying cheap requests at several times the normal rate, ramping up and down."""
    cfg, rng, p = CONFIGS[plan.system_id], plan.rng, plan.params
    minutes = np.arange(plan.start_us // MINUTE_US, -(-plan.end_us // MINUTE_US))
    m = len(minutes)
    ramp = np.minimum(1.0, np.minimum(np.arange(1, m + 1), np.arange(m, 0, -1)) / max(1, min(5, m // 4)))
    rate = p["rate_multiplier"] * ctx.mean_rate[plan.system_id] * plan.spec.intensity * ramp
    counts = rng.poisson(rate * rng.lognormal(0, 0.1, m))
    ts = np.repeat(minutes * MINUTE_US, counts) + rng.integers(0, MINUTE_US, counts.sum())
    ts = np.sort(np.clip(ts, plan.start_us, plan.end_us - 1))
    n = len(ts)
    templates = pd.DataFrame(sample_features(plan.system_id, rng, int(rng.integers(20, 60))))
    pick = rng.integers(0, len(templates), n)
    feats = {name: templates[name].to_numpy()[pick] for name in cfg.features}
    jitter_col = "amount" if plan.system_id == FRAUD else "loan_amount"
    feats[jitter_col] = _round(cfg, jitter_col, feats[jitter_col] * rng.uniform(0.97, 1.03, n))
    _fix_hour(plan.system_id, feats, ts)
    ips = _ips(plan, ctx, len(plan.principals) * int(rng.integers(2, 5)), hosting=True)
    who = np.array(plan.principals, dtype=object)[rng.integers(0, len(plan.principals), n)]
    plan.description = (
        f"{', '.join(plan.principals)} flooded {plan.system_id} with {n} requests "
        f"(~{p['rate_multiplier']:.0f}x the normal rate), raising latency and errors."
    )
    return external_batch(
        ts,
        who,
        np.array(ips, dtype=object)[rng.integers(0, len(ips), n)],
        feats,
        plan.order,
        lat_factor=1.3,
        extra_error=p["extra_error_rate"],
    )


def stolen_credential(plan: Plan, ctx: Context) -> dict:
    """A working-hours key used at night from a never-seen address, at several times its usual volume."""
    cfg, rng, p = CONFIGS[plan.system_id], plan.rng, plan.params
    pop = ctx.pops[plan.system_id]
    who = plan.principals[0]
    hours = (plan.end_us - plan.start_us) / HOUR_US
    if who in pop.names:
        i = pop.index(who)
        peak = pop.weight[i] * pop.profile[i].max() / (pop.weight[:, None] * pop.profile).sum() * 168
        usual = peak * ctx.mean_rate[plan.system_id] * 60
    else:
        usual = 3.0
    n = max(40, int(plan.spec.intensity * p["volume_multiplier"] * usual * hours))
    ts = np.sort(plan.start_us + rng.integers(0, plan.end_us - plan.start_us, n))
    feats = sample_features(plan.system_id, rng, n)
    if plan.system_id == LOAN:  # synthetic identities: thin files asking for larger loans
        feats["loan_amount"] = _round(cfg, "loan_amount", feats["loan_amount"] * rng.uniform(1.2, 2.2, n))
        feats["employment_years"] = np.round(feats["employment_years"] * 0.3, 1)
    else:
        feats["amount"] = _round(cfg, "amount", feats["amount"] * rng.uniform(1.5, 4.0, n))
    _fix_hour(plan.system_id, feats, ts)
    ips = _ips(plan, ctx, 1, hosting=bool(rng.random() < 0.5))
    plan.description = (
        f"The key of {who} was used {iso(plan.start_us)[11:16]}-{iso(plan.end_us)[11:16]} UTC, "
        f"outside its working hours, from never-seen {ips[0]} for {n} {plan.system_id} requests."
    )
    return external_batch(ts, np.full(n, who, dtype=object), np.full(n, ips[0], dtype=object), feats, plan.order)


def unregistered_description(plan: Plan, sha: str) -> None:
    """Sentence for the unregistered-artifact incident."""
    plan.description = (
        f"From {iso(plan.start_us)} to {iso(plan.end_us)} {plan.system_id} was served by a tampered "
        f"'{plan.params['version']}' artifact (sha256 {sha[:12]}...) that is not in the registry."
    )


GENERATORS = {
    "extraction": extraction,
    "evasion": evasion,
    "backdoor": backdoor,
    "dos_flood": dos_flood,
    "stolen_credential": stolen_credential,
}
