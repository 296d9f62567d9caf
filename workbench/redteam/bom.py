"""The AI-BOM export: a CycloneDX 1.6 JSON BOM of a system's registered models, each with its model card's
quantitative analysis (red-team figures and detection coverage), considerations (what the attacks and the
detectors' misses mean) and the latest supply-chain assessment of its artifact. `import-bom` reads it back."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.redteam.report import headline
from workbench.redteam.runs import list_runs
from workbench.store import Workspace


def _metrics(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        r, cov = run.get("result") or {}, run.get("coverage") or {}
        slice_ = f"redteam {run['attack']} {run['run_id']} ({run['queries']} queries, seed {run['seed']})"
        if run["attack"] == "evasion":
            out.append({"type": "evasion success rate", "value": f"{r.get('success_rate', 0):.4f}", "slice": slice_})
        elif run["attack"] == "extraction":
            out.append({"type": "extraction fidelity", "value": f"{r.get('fidelity', 0):.4f}", "slice": slice_})
        elif run["attack"] == "probing":
            out.append({"type": "features that alone flip the outcome",
                        "value": str(len(r.get("flippable_features") or [])), "slice": slice_})
        else:
            out.append({"type": "backdoor trigger candidates", "value": str(len(r.get("flagged") or [])),
                        "slice": slice_})
        if cov:
            fired = sum(1 for c in cov.get("techniques", {}).values() if c["fired"])
            out.append({"type": "detection coverage (ATLAS techniques fired)",
                        "value": f"{fired}/{len(cov.get('techniques', {}))}", "slice": slice_})
    return out


def _considerations(runs: list[dict[str, Any]]) -> dict[str, Any]:
    limits, ethical = [], []
    for h in map(headline, runs):
        limits.append(f"{h['attack']} ({h['run_id']}): {h['figure']}; detected: {h['detected']}")
        if h["missed"]:
            ethical.append({"name": f"{h['attack']} traffic not detected for {h['missed']}",
                            "mitigationStrategy": "add or tune a detector before go-live; re-run "
                                                  "`workbench redteam --emit` and `redteam coverage`"})
    return {"technicalLimitations": limits[:50], "ethicalConsiderations": ethical[:50]}


def export_bom(ws: Workspace, actor: Actor, system_id: str | None = None) -> dict[str, Any]:
    """A CycloneDX AI-BOM of the registered models with red-team results and assessments in each model card."""
    require(actor, "export", ws)
    where, params = ("WHERE system_id = ?", [system_id]) if system_id else ("", [])
    models = ws.dicts(f"SELECT system_id, version, sha256, format, feature_names, approved FROM models {where} "
                      "ORDER BY system_id, version", params)
    comps = []
    for m in models:
        runs = list_runs(ws, actor, m["system_id"], m["version"])
        latest = ws.dicts("SELECT decision, assessed_at, result FROM model_assessments WHERE sha256 = ? "
                          "ORDER BY assessed_at DESC LIMIT 1", [m["sha256"]])
        props = [{"name": "workbench:system_id", "value": m["system_id"]},
                 {"name": "workbench:format", "value": str(m["format"])},
                 {"name": "workbench:approved", "value": str(bool(m["approved"])).lower()}]
        if latest:
            a = json.loads(latest[0]["result"]) if isinstance(latest[0]["result"], str) else latest[0]["result"]
            props += [{"name": "workbench:assessment:decision", "value": latest[0]["decision"]},
                      {"name": "workbench:assessment:at", "value": latest[0]["assessed_at"].isoformat()},
                      {"name": "workbench:assessment:can_run_code", "value": str(a.get("can_run_code")).lower()},
                      {"name": "workbench:assessment:reasons", "value": "; ".join(a.get("reasons") or [])[:1000]}]
        comp: dict[str, Any] = {
            "type": "machine-learning-model", "bom-ref": f"{m['system_id']}@{m['version']}",
            "name": m["system_id"], "version": m["version"],
            "hashes": [{"alg": "SHA-256", "content": m["sha256"]}], "properties": props,
            "modelCard": {"modelParameters": {"inputs": [{"format": f} for f in (m["feature_names"] or [])][:200]}}}
        if runs:
            comp["modelCard"]["quantitativeAnalysis"] = {"performanceMetrics": _metrics(runs)}
            comp["modelCard"]["considerations"] = _considerations(runs)
        comps.append(comp)
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6", "serialNumber": f"urn:uuid:{uuid.uuid4()}",
           "version": 1, "metadata": {"timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                                      "tools": {"components": [{"type": "application", "name": "workbench"}]}},
           "components": comps}
    audit.record(ws, actor, "model.export_bom", system_id, {"components": len(comps)})
    return doc
