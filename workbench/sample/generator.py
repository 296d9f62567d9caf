"""generate(): the deterministic labelled sample - decisions, metrics, models, ground truth, manifest."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from workbench.errors import WorkbenchError
from workbench.sample import attacks
from workbench.sample.decision_files import write_decisions
from workbench.sample.incidents import DAY_US, INCIDENT_TYPES, IncidentSpec, Plan, resolve
from workbench.sample.metric_series import write_metrics
from workbench.sample.models import Serving, build_models, sha256_file, write_registry
from workbench.sample.systems import CONFIGS, FRAUD, LOAN, SYSTEMS, model_frame, true_risk
from workbench.sample.traffic import HOUR_US, US, apply_load, baseline, build_population, concat_batches
from workbench.timestamps import iso_from_us, us_from_iso

DEFAULT_DECISIONS_PER_DAY = 11_000
FORMAT_VERSION = 1
_OWNED = ("decisions", "metrics", "models", "ground_truth.json", "manifest.json")


def default_incidents() -> list[IncidentSpec]:
    """One incident of every type, everything else chosen from the seed."""
    return [IncidentSpec(kind) for kind in INCIDENT_TYPES]


def _releases(start_us: int, days: int) -> dict[str, int]:
    day0 = start_us // DAY_US * DAY_US
    loan = day0 + int(days * 0.3) * DAY_US + int(9.5 * HOUR_US)
    fraud = day0 + int(days * 0.55) * DAY_US + 6 * HOUR_US
    return {LOAN: max(loan, start_us), FRAUD: max(fraud, start_us)}


def _label(
    system_id: str,
    rows: dict,
    scores: np.ndarray,
    prediction: np.ndarray,
    ok: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Realized outcomes for a fraction of rows (funded loans; reviewed or charged-back card payments)."""
    cfg = CONFIGS[system_id]
    outcome = rng.random(len(scores)) < true_risk(system_id, rows["features"])
    if system_id == LOAN:
        observed = (prediction != "deny") & (rng.random(len(scores)) < 0.35)
    else:
        observed = rng.random(len(scores)) < np.where(prediction == "allow", 0.25, 0.7)
    observed &= ok
    out = np.where(outcome, cfg.labels[0], cfg.labels[1]).astype(object)
    out[~observed] = None
    return out


def _prepare_out(out_dir: Path, models_dir: Path | None, tmp: Path) -> Path | None:
    """Clear what a previous run wrote; first copy a models cache away if it lives inside out_dir."""
    if models_dir is not None:
        models_dir = Path(models_dir).resolve()
        if models_dir.is_relative_to(out_dir.resolve()) and models_dir.exists():
            shutil.copytree(models_dir, tmp / "models_cache")
            models_dir = tmp / "models_cache"
    for name in _OWNED:
        target = out_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    return models_dir


def generate(
    out_dir: Path,
    seed: int = 7,
    days: int = 30,
    start: str = "2026-10-01T00:00:00Z",
    decisions_per_day: int | None = None,
    clean: bool = False,
    incidents: list[IncidentSpec] | None = None,
    models_dir: Path | None = None,
) -> dict:
    """Write a deterministic labelled sample (decisions, metrics, models, registry, truth) into out_dir."""
    if days < 1:
        raise WorkbenchError("days must be at least 1")
    if clean and incidents:
        raise WorkbenchError("a clean sample has no incidents: drop clean=True or the incident list")
    per_day = DEFAULT_DECISIONS_PER_DAY if decisions_per_day is None else int(decisions_per_day)
    if per_day < 10:
        raise WorkbenchError("decisions_per_day must be at least 10")
    specs = [] if clean else (default_incidents() if incidents is None else list(incidents))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start_us = us_from_iso(start)
    end_us = start_us + days * DAY_US
    pops = {sid: build_population(sid, np.random.default_rng([seed, 1, i])) for i, sid in enumerate(SYSTEMS)}
    releases = _releases(start_us, days)
    plans = resolve(specs, seed, start_us, end_us, pops, releases)

    poison, tampered = _model_changes(plans)
    with tempfile.TemporaryDirectory() as tmp:
        models_dir = _prepare_out(out_dir, models_dir, Path(tmp))
        served, tampered_models = build_models(out_dir, seed, poison, tampered, models_dir)
    registry = write_registry(out_dir, served)
    serving, override_plan = _serving(plans, served, releases, tampered_models)

    minutes = days * 24 * 60
    mean_rate = {sid: per_day * days * CONFIGS[sid].share / minutes for sid in SYSTEMS}
    batches = _traffic(plans, pops, serving, mean_rate, seed, start_us, end_us, per_day * days)
    counts, members = _write_decision_files(out_dir, batches, serving, override_plan, mean_rate, seed)
    metric_rows = write_metrics(out_dir, start_us, end_us)

    truth = _truth(plans, members, served, releases, seed, clean, start_us, end_us)
    _write_json(out_dir / "ground_truth.json", truth)
    params = {
        "seed": seed,
        "days": days,
        "start": iso_from_us(start_us),
        "decisions_per_day": per_day,
        "clean": clean,
        "incidents": "default" if incidents is None and not clean else [_spec_dict(s) for s in specs],
    }
    rows = {**{f"decisions/{sid}.parquet": counts[sid] for sid in SYSTEMS}, "metrics/metrics.parquet": metric_rows,
            "models/registry.json": len(registry), "ground_truth.json": len(truth["incidents"])}
    manifest = _manifest(out_dir, seed, params, rows, sum(counts.values()))
    _write_json(out_dir / "manifest.json", manifest)
    return manifest


def _model_changes(plans: list[Plan]) -> tuple[dict[str, list[tuple[str, float, float]]], dict[tuple[str, str], float]]:
    """What the models must carry: backdoor triggers per system, tamper scales per (system, version)."""
    poison: dict[str, list[tuple[str, float, float]]] = {}
    tampered: dict[tuple[str, str], float] = {}
    for plan in plans:
        if plan.type == "backdoor":
            entry = (
                plan.params["trigger_feature"],
                plan.params["trigger_value"],
                float(plan.params["poison_fraction"]),
            )
            if entry not in poison.setdefault(plan.system_id, []):
                poison[plan.system_id].append(entry)
        if plan.type == "unregistered_artifact":
            tampered.setdefault((plan.system_id, plan.params["version"]), float(plan.params["tamper_scale"]))
    return poison, tampered


def _serving(plans: list[Plan], served: dict, releases: dict[str, int], tampered_models: dict
             ) -> tuple[Serving, dict[str, list[Plan]]]:
    """Which model serves when: the registered releases, and each unregistered artifact over its window."""
    overrides: dict[str, list] = {}
    override_plan: dict[str, list[Plan]] = {}
    for plan in plans:
        if plan.type == "unregistered_artifact":
            model = tampered_models[(plan.system_id, plan.params["version"])]
            overrides.setdefault(plan.system_id, []).append((plan.start_us, plan.end_us, model))
            override_plan.setdefault(plan.system_id, []).append(plan)
            attacks.unregistered_description(plan, model.sha256)
    return Serving(served, releases, overrides), override_plan


def _traffic(plans: list[Plan], pops: dict, serving: Serving, mean_rate: dict[str, float], seed: int,
             start_us: int, end_us: int, total: int) -> dict[str, list[dict]]:
    """Per system: the baseline traffic (drifted where a drift incident says) and each attack's batch."""
    known_ips = {ip for pop in pops.values() for ip in pop.ips.ravel()}
    ctx = attacks.Context(pops, serving, mean_rate, known_ips)
    batches: dict[str, list[dict]] = {}
    for i, sid in enumerate(SYSTEMS):
        rng = np.random.default_rng([seed, 2, i])
        base = baseline(pops[sid], rng, start_us, end_us, total * CONFIGS[sid].share)
        for plan in plans:
            if plan.type == "drift" and plan.system_id == sid:
                attacks.apply_drift(plan, base["features"], base["ts"], base["incident"] < 0)
        batches[sid] = [base]
    for plan in plans:
        if plan.type in attacks.GENERATORS:
            batches[plan.system_id].append(attacks.GENERATORS[plan.type](plan, ctx))
    return batches


def _write_decision_files(out_dir: Path, batches: dict[str, list[dict]], serving: Serving,
                          override_plan: dict[str, list[Plan]], mean_rate: dict[str, float], seed: int
                          ) -> tuple[dict[str, int], dict[int, list[str]]]:
    """Score, decide and label each system's traffic and write it; rows per system, decision ids per plan."""
    counts: dict[str, int] = {}
    members: dict[int, list[str]] = {}
    for i, sid in enumerate(SYSTEMS):
        cfg = CONFIGS[sid]
        rows = concat_batches(batches[sid], cfg.features)
        rng = np.random.default_rng([seed, 3, i])
        apply_load(rows, sid, rng, mean_rate[sid])
        scores, idx = serving.score(sid, rows["ts"], model_frame(sid, rows["features"]))
        cands = serving.candidates(sid)
        ok = rows["status"] == "ok"
        prediction = np.where(ok, cfg.decide(scores), "error").astype(object)
        override = np.full(len(idx), -1, dtype=np.int64)
        for k, plan in enumerate(override_plan.get(sid, [])):
            override[idx == len(serving.models[sid]) + k] = plan.order
        table = {
            "ts": rows["ts"],
            "system_id": sid,
            "model_version": np.array([m.version for m in cands], dtype=object)[idx],
            "model_sha256": np.array([m.sha256 for m in cands], dtype=object)[idx],
            "principal": rows["principal"],
            "source_ip": rows["source_ip"],
            "prediction": prediction,
            "score": np.where(ok, scores, np.nan),
            "status": rows["status"],
            "latency_ms": rows["latency_ms"],
            "ground_truth": _label(sid, rows, scores, prediction, ok, rng),
            "features": rows["features"],
            "_inc": rows["incident"],
            "_ovr": override,
        }
        counts[sid], ids = write_decisions(
            out_dir / "decisions" / f"{sid}.parquet", table, "LO" if sid == LOAN else "CF"
        )
        for key, values in ids.items():
            members.setdefault(key, []).extend(values)
    return counts, members


def _truth(plans: list[Plan], members: dict[int, list[str]], served: dict, releases: dict[str, int], seed: int,
           clean: bool, start_us: int, end_us: int) -> dict:
    """ground_truth.json: the sample's span, model releases and every incident with its decisions."""
    plans_sorted = sorted(plans, key=lambda p: (p.start_us, INCIDENT_TYPES.index(p.type), p.order))
    incidents_out = [
        {
            "id": f"INC-{n:03d}",
            "type": plan.type,
            "system_id": plan.system_id,
            "atlas": plan.atlas,
            "start": iso_from_us(plan.start_us // US * US),
            "end": iso_from_us(-(-plan.end_us // US) * US),
            "principals": plan.principals,
            "decision_ids": sorted(members.get(plan.order, [])) if plan.type != "drift" else [],
            "feature": plan.feature,
            "metric": plan.metric,
            "trigger": plan.trigger,
            "description": plan.description,
        }
        for n, plan in enumerate(plans_sorted, start=1)
    ]
    return {
        "seed": seed,
        "clean": clean,
        "start": iso_from_us(start_us),
        "end": iso_from_us(end_us),
        "systems": list(SYSTEMS),
        "model_releases": [
            {
                "system_id": sid,
                "version": m.version,
                "sha256": m.sha256,
                "live_from": iso_from_us(start_us if k == 0 else releases[sid]),
                "poisoned": bool(m.poison),
            }
            for sid in SYSTEMS
            for k, m in enumerate(served[sid])
        ],
        "incidents": incidents_out,
    }


def _manifest(out_dir: Path, seed: int, params: dict, rows: dict[str, int], total_decisions: int) -> dict:
    """manifest.json: parameters, and each written file's hash, size and (where counted) rows."""
    files = {}
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file() and p.name != "manifest.json"):
        rel = path.relative_to(out_dir).as_posix()
        if rel.split("/")[0] not in ("decisions", "metrics", "models", "ground_truth.json"):
            continue
        files[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    for rel, n in rows.items():
        files[rel]["rows"] = n
    return {
        "generator": "workbench.sample",
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "parameters": params,
        "row_counts": {k: v["rows"] for k, v in files.items() if "rows" in v},
        "total_decisions": total_decisions,
        "files": files,
    }


def _spec_dict(spec: IncidentSpec) -> dict:
    d = dataclasses.asdict(spec)
    d.pop("id", None)  # a caller's name for the incident, not a generator parameter
    d["params"] = {k: v for k, v in sorted((spec.params or {}).items())}
    return d


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


__all__ = ["generate", "default_incidents", "FRAUD", "LOAN"]
