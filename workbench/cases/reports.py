"""Incident reports (``md``, ``html``, ``pdf``) with a manifest of content hashes.

A report has seven sections: summary, timeline, evidence (with hashes), explanations (with plots),
playbook progress, audit excerpt, manifest. The manifest holds the SHA-256 of each section's canonical
JSON data and each evidence item's recorded SHA-256, plus ``as_of_seq``: the audit sequence number the
report was cut at. ``verify_manifest`` rebuilds the sections from the workspace at that cut and says which
still match, so a filed report can be checked against the workspace later.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from workbench import audit
from workbench.access import Actor, require
from workbench.cases import evidence as ev
from workbench.cases import playbooks as pbs
from workbench.cases.evidence_size import size_text
from workbench.cases.incidents import get_incident
from workbench.cases.timeline import build_timeline, describe_action
from workbench.errors import WorkbenchError
from workbench.store import Workspace

FORMATS = ("md", "html", "pdf")
SECTIONS = ("summary", "timeline", "evidence", "explanations", "playbooks", "audit")
_NUMERIC_KEYS = ("shap", "mean_abs_shap", "mean_abs", "share", "delta", "attribution", "importance", "value")


def iso(value: Any) -> Any:
    """Timestamps as ISO-8601 UTC with microseconds and Z; anything else unchanged."""
    if isinstance(value, pd.Timestamp):
        value = None if pd.isna(value) else value.to_pydatetime()
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def plain(obj: Any) -> Any:
    """A JSON-ready deep copy with timestamps as ISO strings and NA as None."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, datetime | pd.Timestamp):
        return iso(obj)
    if obj is pd.NA or (isinstance(obj, float) and obj != obj):
        return None
    if hasattr(obj, "item") and not isinstance(obj, str):
        return obj.item()
    return obj


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _common_value(values: list[Any]) -> Any:
    """The one value every decision has for a feature, or a note that they differ."""
    distinct = {json.dumps(v, sort_keys=True, default=str) for v in values}
    return values[0] if len(distinct) == 1 else f"{len(distinct)} different values"


def attribution_rows(content: dict[str, Any], top: int = 15) -> tuple[str, list[dict[str, Any]]]:
    """(measure, rows of feature, feature_value, attribution) from an explanation payload, largest first.

    A single decision gives signed SHAP values with the decision's feature values; several decisions give
    mean |SHAP| with the value they share (e.g. a backdoor trigger) or how many values they differ in.
    Payloads of other shapes give what they hold (feature_value None when they carry no feature values)."""
    decisions = content.get("decisions")
    if (
        isinstance(decisions, list)
        and decisions
        and all(isinstance(d, dict) and isinstance(d.get("attributions"), list) for d in decisions)
    ):
        if len(decisions) == 1:
            return attribution_rows({**decisions[0], "decisions": None}, top)
        totals: dict[str, float] = {}
        values: dict[str, list[Any]] = {}
        for d in decisions:
            for a in d.get("attributions") or []:
                totals[a["feature"]] = totals.get(a["feature"], 0.0) + abs(float(a.get("shap") or 0.0))
                values.setdefault(a["feature"], []).append(a.get("value"))
        rows = [
            {"feature": f, "feature_value": _common_value(values[f]), "attribution": v / len(decisions)}
            for f, v in totals.items()
        ]
        return f"mean |SHAP| over {len(decisions)} decisions", sorted(rows, key=lambda r: -r["attribution"])[:top]
    candidates = [content.get("attributions")] + [v for k, v in content.items() if k != "attributions"]
    for value in candidates:
        if isinstance(value, dict) and value and all(_numeric(v) for v in value.values()):
            rows = [{"feature": str(k), "feature_value": None, "attribution": float(v)} for k, v in value.items()]
            return "attribution", sorted(rows, key=lambda r: -abs(r["attribution"]))[:top]
        if isinstance(value, list) and value and isinstance(value[0], dict) and "feature" in value[0]:
            key = next((k for k in _NUMERIC_KEYS if _numeric(value[0].get(k))), None)
            if key:
                rows = [
                    {
                        "feature": str(r["feature"]),
                        "feature_value": r.get("value") if key != "value" else None,
                        "attribution": float(r.get(key) or 0.0),
                    }
                    for r in value
                ]
                measure = "SHAP" if key == "shap" else key
                return measure, sorted(rows, key=lambda r: -abs(r["attribution"]))[:top]
    return "attribution", []


def attributions(content: dict[str, Any], top: int = 15) -> list[tuple[str, float]]:
    """(feature, attribution) pairs to plot from an explanation payload, largest magnitude first."""
    return [(r["feature"], r["attribution"]) for r in attribution_rows(content, top)[1]]


def _decision_summary(ws: Workspace, evidence_id: int) -> dict[str, Any]:
    row = ws.one(
        "SELECT count(*), count(DISTINCT principal), min(ts), max(ts) FROM evidence_decisions "
        "WHERE evidence_id = ?",
        [evidence_id],
    )
    preds = ws.rows(
        "SELECT prediction, count(*) FROM evidence_decisions WHERE evidence_id = ? GROUP BY 1 "
        "ORDER BY 2 DESC, 1 LIMIT 5",
        [evidence_id],
    )
    who = ws.rows(
        "SELECT principal, count(*) FROM evidence_decisions WHERE evidence_id = ? GROUP BY 1 "
        "ORDER BY 2 DESC, 1 LIMIT 5",
        [evidence_id],
    )
    versions = ws.rows(
        "SELECT model_version, count(*) FROM evidence_decisions WHERE evidence_id = ? GROUP BY 1 "
        "ORDER BY 2 DESC, 1 LIMIT 5",
        [evidence_id],
    )
    return {
        "rows": row[0],
        "principals": row[1],
        "first": iso(row[2]),
        "last": iso(row[3]),
        "predictions": dict(preds),
        "top_principals": dict(who),
        "model_versions": dict(versions),
    }


def report_data(
    ws: Workspace, actor: Actor, incident_id: str, as_of_seq: int | None = None
) -> dict[str, Any]:
    """Every section's data for the report (deterministic for a given workspace state and as_of_seq)."""
    require(actor, "read:incidents")
    inc = get_incident(ws, actor, incident_id)
    iid = inc["incident_id"]
    if as_of_seq is None:
        as_of_seq = int(ws.scalar("SELECT coalesce(max(seq), 0) FROM audit_log"))
    items = ev.list_evidence(ws, actor, iid, with_content=True)
    summary = {
        k: inc[k]
        for k in (
            "incident_id",
            "title",
            "severity",
            "status",
            "owner",
            "systems",
            "atlas",
            "description",
            "created_at",
            "created_by",
            "closed_at",
        )
    }
    summary["history"] = inc["history"]
    from workbench.cases import atlas as atlas_mod

    summary["atlas_names"] = {t: atlas_mod.shipped().get(t) for t in inc["atlas"]}
    tl = build_timeline(ws, actor, iid, as_of_seq=as_of_seq)
    evidence_rows = []
    for item in items:
        row = {
            k: item[k]
            for k in (
                "evidence_id",
                "kind",
                "label",
                "ref",
                "added_at",
                "added_by",
                "event_start",
                "event_end",
                "item_count",
                "sha256",
            )
        }
        row["size"] = size_text(item)
        if item["kind"] == "decision_set":
            row["snapshot"] = _decision_summary(ws, item["evidence_id"])
        elif item["kind"] in ("alert", "note", "file", "metric_window"):
            row["content"] = (
                item["content"]
                if item["kind"] != "alert"
                else {
                    k: item["content"].get(k)
                    for k in (
                        "alert_id",
                        "detector",
                        "system_id",
                        "severity",
                        "principal",
                        "feature",
                        "metric",
                        "atlas",
                        "summary",
                        "evidence",
                    )
                }
            )
        evidence_rows.append(row)
    explanations = []
    for i in items:
        if i["kind"] != "explanation":
            continue
        measure, rows = attribution_rows(i["content"])
        explanations.append(
            {
                "evidence_id": i["evidence_id"],
                "label": i["label"],
                "sha256": i["sha256"],
                "method": i["content"].get("method"),
                "system_id": i["content"].get("system_id"),
                "decision_id": i["content"].get("decision_id"),
                "measure": measure,
                "attributions": rows,
            }
        )
    try:
        progress = pbs.progress(ws, actor, iid)
    except WorkbenchError:
        progress = []
    audit_rows = ws.dicts(
        "SELECT seq, ts, actor, role, action, details, hash FROM audit_log WHERE object = ? "
        "AND seq <= ? ORDER BY seq",
        [iid, as_of_seq],
    )
    for r in audit_rows:
        r["details"] = json.loads(r["details"]) if isinstance(r["details"], str) else r["details"]
        r["what"] = describe_action(r["action"], r["details"] or {})
    sections = {
        "summary": summary,
        "timeline": tl.to_dict("records"),
        "evidence": evidence_rows,
        "explanations": explanations,
        "playbooks": progress,
        "audit": audit_rows,
    }
    return {"incident_id": iid, "as_of_seq": as_of_seq, "sections": plain(sections)}


def manifest(data: dict[str, Any]) -> dict[str, Any]:
    """The content-hash manifest of a report's data."""
    return {
        "format": "workbench-report-manifest-v1",
        "incident_id": data["incident_id"],
        "as_of_seq": data["as_of_seq"],
        "recipe": "sha256 of workbench.audit.canonical(section data); evidence: the item's recorded sha256",
        "sections": {name: ev.content_hash(data["sections"][name]) for name in SECTIONS},
        "evidence": {str(e["evidence_id"]): e["sha256"] for e in data["sections"]["evidence"]},
    }


def verify_manifest(ws: Workspace, actor: Actor, man: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the report's sections at its as_of_seq and re-hash its evidence; say what still matches."""
    data = report_data(ws, actor, man["incident_id"], as_of_seq=int(man["as_of_seq"]))
    now = manifest(data)
    sections = {k: now["sections"].get(k) == v for k, v in man["sections"].items()}
    checks = {str(r["evidence_id"]): r for r in ev.verify_evidence(ws, actor, man["incident_id"])}
    evid = {
        k: bool(checks.get(k) and checks[k]["ok"] and checks[k]["sha256"] == v)
        for k, v in man["evidence"].items()
    }
    return {"ok": all(sections.values()) and all(evid.values()), "sections": sections, "evidence": evid}


def _render(ws: Workspace, actor: Actor, incident_id: str, fmt: str) -> tuple[bytes, dict[str, Any]]:
    require(actor, "export")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise WorkbenchError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")
    data = report_data(ws, actor, incident_id)
    man = manifest(data)
    meta = {
        "generated_at": iso(datetime.now(UTC)),
        "generated_by": f"{actor.user} ({actor.role})",
        "workspace": str(ws.path),
    }
    from workbench.cases import report_pdf
    from workbench.cases import report_render as rr

    if fmt == "md":
        return rr.to_markdown(data, man, meta).encode("utf-8"), man
    if fmt == "html":
        return rr.to_html(data, man, meta).encode("utf-8"), man
    return report_pdf.to_pdf(data, man, meta), man


def render_report(ws: Workspace, actor: Actor, incident_id: str, fmt: str = "md") -> bytes:
    """The report as bytes in md, html or pdf (needs read:incidents and export; audited as report.export)."""
    content, man = _render(ws, actor, incident_id, fmt)
    audit.record(
        ws,
        actor,
        "report.export",
        man["incident_id"],
        {
            "format": fmt,
            "sha256": ev.sha256_bytes(content),
            "manifest_sha256": ev.content_hash(man),
            "as_of_seq": man["as_of_seq"],
        },
    )
    return content


def write_report(ws: Workspace, actor: Actor, incident_id: str, fmt: str, out: str | Path) -> dict[str, Any]:
    """Write the report and its manifest (``<out>.manifest.json``); return paths and hashes."""
    content, man = _render(ws, actor, incident_id, fmt)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    man_path = path.with_name(path.name + ".manifest.json")
    man_path.write_text(json.dumps(man, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    sha = ev.sha256_bytes(content)
    audit.record(
        ws,
        actor,
        "report.export",
        man["incident_id"],
        {
            "format": fmt,
            "path": str(path),
            "sha256": sha,
            "manifest_sha256": ev.content_hash(man),
            "as_of_seq": man["as_of_seq"],
        },
    )
    return {
        "incident_id": man["incident_id"],
        "format": fmt,
        "path": str(path),
        "bytes": len(content),
        "sha256": sha,
        "manifest": str(man_path),
    }
