"""Incident reports (``md``, ``html``, ``pdf``) with a manifest of content hashes.

A report has: executive summary, incident summary, impact, the attack's and the response's timelines (two time
axes), root cause, actions taken, evidence (with hashes), explanations, playbook progress, lessons, audit excerpt
and manifest, under the incident's TLP/PAP banner (data sections: ``SECTIONS``; the analyst's write-up, impact,
findings and actions come from ``report_writeup``). It shows the case as it stood at ``as_of_seq``, the audit chain
head when it was made (``report_asof``). The manifest holds the SHA-256 of each section's canonical JSON data,
each evidence item's recorded SHA-256, the cut and the hash of the audit row there; the manifest file written
beside a report also names the report file's SHA-256. ``verify_manifest`` rebuilds the sections at that cut,
re-hashes the evidence and (given the file) checks the report against the export recorded in the audit chain,
so later work on the case passes and any change to what the report showed does not.
Rendering treats every value as data (``report_safe``, ``report_templates``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from workbench import audit
from workbench.access import Actor, require
from workbench.cases import atlas as atlas_mod
from workbench.cases import evidence as ev
from workbench.cases import report_asof as asof
from workbench.cases import report_conversations as conv
from workbench.cases import report_pdf
from workbench.cases import report_render as rr
from workbench.cases import report_writeup as writeup
from workbench.cases.evidence_reading import incident_masker
from workbench.cases.evidence_size import size_text
from workbench.cases.incidents import require_incident
from workbench.cases.report_attributions import attribution_rows as attribution_rows
from workbench.cases.report_attributions import attributions as attributions
from workbench.cases.timeline import build_timeline, describe_action
from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.timestamps import iso_z_fixed

FORMATS = ("md", "html", "pdf")
SECTIONS = ("summary", "timeline", "evidence", "explanations", "playbooks", "audit", "marking", "writeup", "impact",
            "findings", "actions", "conversations")
MANIFEST_FORMAT = "workbench-report-manifest-v2"
_SUMMARY = ("incident_id", "title", "severity", "status", "owner", "systems", "atlas", "description", "created_at",
            "created_by", "closed_at")
_EVIDENCE_COLS = ("evidence_id", "kind", "label", "ref", "added_at", "added_by", "event_start", "event_end",
                  "item_count", "sha256")
_ALERT_KEYS = ("alert_id", "detector", "system_id", "severity", "principal", "feature", "metric", "atlas", "summary",
               "evidence")


def iso(value: Any) -> Any:
    """Timestamps as ISO-8601 UTC with microseconds and Z; anything else unchanged."""
    if isinstance(value, pd.Timestamp):
        value = None if pd.isna(value) else value.to_pydatetime()
    return iso_z_fixed(value) if isinstance(value, datetime) else value


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


def _decision_summary(ws: Workspace, evidence_id: int) -> dict[str, Any]:
    row = ws.one(
        "SELECT count(*), count(DISTINCT principal), min(ts), max(ts) FROM evidence_decisions WHERE evidence_id = ?",
        [evidence_id],
    )
    top = {
        col: dict(ws.rows(f"SELECT {col}, count(*) FROM evidence_decisions WHERE evidence_id = ? GROUP BY 1 "
                          "ORDER BY 2 DESC, 1 LIMIT 5", [evidence_id]))
        for col in ("prediction", "principal", "model_version")  # fixed column names, never data
    }
    return {
        "rows": row[0],
        "principals": row[1],
        "first": iso(row[2]),
        "last": iso(row[3]),
        "predictions": top["prediction"],
        "top_principals": top["principal"],
        "model_versions": top["model_version"],
    }


def _sections(
    ws: Workspace,
    state: dict[str, Any],
    rows: list[dict[str, Any]],
    seq: int,
    items: list[dict[str, Any]],
    timeline: pd.DataFrame,
    playbooks: list[dict[str, Any]],
) -> dict[str, Any]:
    """The six data sections from the incident's state, evidence items and timeline as of the cut."""

    summary = {k: state[k] for k in _SUMMARY}
    summary["history"] = state["history"]
    summary["atlas_names"] = {t: atlas_mod.shipped().get(t) for t in state["atlas"] or []}
    evidence_rows, explanations = [], []
    for item in items:
        row = {k: item[k] for k in _EVIDENCE_COLS}
        row["size"] = size_text(item)
        content = item.get("content")
        if item["kind"] == "decision_set":
            row["snapshot"] = _decision_summary(ws, item["evidence_id"])
        elif item["kind"] in ("alert", "note", "file", "metric_window"):
            c = content if isinstance(content, dict) else {}
            row["content"] = c if item["kind"] != "alert" else {k: c.get(k) for k in _ALERT_KEYS}
        evidence_rows.append(row)
        if item["kind"] == "explanation":
            c = content if isinstance(content, dict) else {}
            measure, attrs = attribution_rows(c)
            explanations.append({
                "evidence_id": item["evidence_id"], "label": item["label"], "sha256": item["sha256"],
                "method": c.get("method"), "system_id": c.get("system_id"), "decision_id": c.get("decision_id"),
                "measure": measure, "attributions": attrs,
            })
    audit_rows = [
        {**{k: r[k] for k in ("seq", "ts", "actor", "role", "action", "details", "hash")},
         "what": describe_action(r["action"], r["details"] or {})}
        for r in rows
        if r["seq"] <= seq
    ]
    return {
        "summary": summary,
        "timeline": timeline.to_dict("records"),
        "evidence": evidence_rows,
        "explanations": explanations,
        "playbooks": playbooks,
        "audit": audit_rows,
        "conversations": conv.conversation_excerpts(ws, items),  # frozen LLM conversations (report_conversations)
    }


def report_data(
    ws: Workspace,
    actor: Actor,
    incident_id: str,
    as_of_seq: int | None = None,
    *,
    playbooks_dir: str | Path | None = None,
    view: bool = True,
    amount_feature: str | None = None,
) -> dict[str, Any]:
    """The report's data as the case stood at audit seq as_of_seq (default: the chain head now).

    ``hashes`` are of the case as recorded (the same for every reader, unchanged by later work: see
    report_asof); ``sections`` are what this actor may see (personal values masked through the masked reads).
    With view (the default) also ``sections`` and the playbook steps' texts from the library (an unreadable
    library is an error, never an empty section); without it, only what a manifest check needs."""
    require(actor, "read:incidents", ws)
    inc = require_incident(ws, incident_id)
    iid = inc["incident_id"]
    seq, head = asof.chain_head(ws, as_of_seq)
    rows = asof.incident_rows(ws, iid)
    state = asof.incident_at(ws, inc, rows, seq)
    ids = asof.evidence_ids_at(rows, seq)
    playbooks = asof.playbooks_at(ws, iid, rows, seq)
    items_at = asof.evidence_at(ws, iid, ids)
    added = writeup.sections(ws, state, rows, seq, items_at, playbooks, amount_feature)
    recorded = plain({**_sections(ws, state, rows, seq, items_at, asof.timeline_at(ws, iid, rows, seq, ids),
                                  playbooks), **added})
    out: dict[str, Any] = {
        "incident_id": iid,
        "as_of_seq": seq,
        "as_of_hash": head,
        "hashes": {name: ev.content_hash(recorded[name]) for name in SECTIONS},
        "evidence_sha256": {str(e["evidence_id"]): e["sha256"] for e in recorded["evidence"]},
        "options": {"amount_feature": amount_feature} if amount_feature else {},
    }
    if not view:
        return out
    mask = incident_masker(ws, actor, iid)  # personal values quoted in titles, notes and audit lines
    items = [i for i in ev.list_evidence(ws, actor, iid, with_content=True) if i["evidence_id"] in ids]
    tl = build_timeline(ws, actor, iid, as_of_seq=seq)
    tl = tl[(tl["source"] != "evidence") | tl["evidence_id"].isin(sorted(ids))]
    shown = {**_sections(ws, state, rows, seq, items, tl, playbooks), **added}
    for name in ("summary", "playbooks", "audit", "writeup", "impact", "findings", "actions"):
        shown[name] = mask.text(shown[name])
    shown["conversations"] = mask.text(conv.shown(ws, actor, shown["conversations"]))
    pb_view = asof.playbook_view(playbooks, playbooks_dir)
    return {**out, "masked": bool(mask.active), "sections": plain(shown), "playbook_view": plain(mask.text(pb_view))}


def manifest(data: dict[str, Any]) -> dict[str, Any]:
    """The content-hash manifest of a report's data (the report file's own hash goes beside it)."""
    return {
        "format": MANIFEST_FORMAT,
        "incident_id": data["incident_id"],
        "as_of_seq": data["as_of_seq"],
        "as_of_hash": data["as_of_hash"],
        "recipe": "sha256 of workbench.audit.canonical(section data) as of audit seq as_of_seq (the chain row "
        "whose hash is as_of_hash); evidence: the item's recorded sha256",
        "sections": dict(data["hashes"]),
        "evidence": dict(data["evidence_sha256"]),
        **({"options": dict(data["options"])} if data.get("options") else {}),
    }


def _check_shape(man: Any) -> dict[str, Any]:
    if isinstance(man, dict) and man.get("format") == "workbench-report-manifest-v1":
        raise WorkbenchError("a v1 report manifest was hashed from the case as it was when checked, not as of its "
                             "cut, so it cannot be re-checked; export the report again for a v2 manifest")
    ok = (
        isinstance(man, dict)
        and man.get("format") == MANIFEST_FORMAT
        and isinstance(man.get("incident_id"), str)
        and isinstance(man.get("as_of_seq"), int)
        and not isinstance(man.get("as_of_seq"), bool)
        and isinstance(man.get("sections"), dict)
        and isinstance(man.get("evidence"), dict)
    )
    if not ok:
        raise WorkbenchError(
            "not a workbench report manifest (needs format, incident_id, as_of_seq, sections and evidence)"
        )
    return man


def check_report_file(ws: Workspace, man: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Whether a report file is the one the workbench wrote for this manifest (hash in the audit chain)."""
    path = Path(path)
    if not path.is_file():
        return {"ok": False, "path": str(path), "sha256": None, "reason": "report file not found"}
    sha = ev.sha256_bytes(path.read_bytes())
    core = {k: v for k, v in man.items() if k != "report"}
    exported = ws.scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'report.export' AND object = ? "
        "AND details->>'sha256' = ? AND details->>'manifest_sha256' = ?",
        [man["incident_id"], sha, ev.content_hash(core)],
    )
    named = (man.get("report") or {}).get("sha256") if isinstance(man.get("report"), dict) else None
    if not exported:
        reason = "the file's sha256 is not that of a report exported with this manifest (altered or not ours)"
    elif named not in (None, sha):
        reason = "the manifest names another sha256 for its report file"
    else:
        reason = None
    return {"ok": reason is None, "path": str(path), "sha256": sha, "reason": reason}


def verify_manifest(
    ws: Workspace, actor: Actor, man: dict[str, Any], report_file: str | Path | None = None
) -> dict[str, Any]:
    """Rebuild the report's sections at its cut, re-hash its evidence (and the report file, when given)."""
    man = _check_shape(man)
    seq = int(man["as_of_seq"])
    _, head = asof.chain_head(ws, seq)
    chain = head is not None and man.get("as_of_hash", head) == head
    opts = man.get("options") if isinstance(man.get("options"), dict) else {}
    now = report_data(ws, actor, man["incident_id"], as_of_seq=seq, view=False,
                      amount_feature=opts.get("amount_feature"))
    sections = {k: now["hashes"].get(k) == v for k, v in man["sections"].items()}
    checks = {str(r["evidence_id"]): r for r in ev.verify_evidence(ws, actor, man["incident_id"])}
    evid = {
        k: bool(checks.get(k) and checks[k]["ok"] and checks[k]["sha256"] == v)
        for k, v in man["evidence"].items()
    }
    file = check_report_file(ws, man, report_file) if report_file is not None else None
    ok = chain and all(sections.values()) and all(evid.values()) and (file is None or file["ok"])
    return {"ok": ok, "chain": chain, "sections": sections, "evidence": evid, "file": file}


def _render(
    ws: Workspace, actor: Actor, incident_id: str, fmt: str, playbooks_dir: str | Path | None = None,
    amount_feature: str | None = None,
) -> tuple[bytes, dict[str, Any]]:
    require(actor, "export", ws)
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise WorkbenchError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")
    data = report_data(ws, actor, incident_id, playbooks_dir=playbooks_dir, amount_feature=amount_feature)
    man = manifest(data)
    meta = {
        "generated_at": iso(datetime.now(UTC)),
        "generated_by": f"{actor.user} ({actor.role})",
        "workspace": str(ws.path),
    }

    if fmt == "md":
        return rr.to_markdown(data, man, meta).encode("utf-8"), man
    if fmt == "html":
        return rr.to_html(data, man, meta).encode("utf-8"), man
    return report_pdf.to_pdf(data, man, meta), man


def render_report(
    ws: Workspace, actor: Actor, incident_id: str, fmt: str = "md", playbooks_dir: str | Path | None = None,
    amount_feature: str | None = None,
) -> bytes:
    """The report as bytes in md, html or pdf (needs read:incidents and export; audited as report.export)."""
    content, man = _render(ws, actor, incident_id, fmt, playbooks_dir, amount_feature)
    audit.record(ws, actor, "report.export", man["incident_id"], {
        "format": str(fmt).lower(), "sha256": ev.sha256_bytes(content), "manifest_sha256": ev.content_hash(man),
        "as_of_seq": man["as_of_seq"],
    })
    return content


def write_report(
    ws: Workspace,
    actor: Actor,
    incident_id: str,
    fmt: str,
    out: str | Path,
    playbooks_dir: str | Path | None = None,
    amount_feature: str | None = None,
) -> dict[str, Any]:
    """Write the report and its manifest (``<out>.manifest.json``, naming the report's sha256); return facts."""
    content, man = _render(ws, actor, incident_id, fmt, playbooks_dir, amount_feature)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    sha = ev.sha256_bytes(content)
    man_path = path.with_name(path.name + ".manifest.json")
    filed = {**man, "report": {"file": path.name, "format": str(fmt).lower(), "sha256": sha}}
    man_path.write_text(json.dumps(filed, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    audit.record(ws, actor, "report.export", man["incident_id"], {
        "format": str(fmt).lower(), "path": str(path), "sha256": sha, "manifest_sha256": ev.content_hash(man),
        "as_of_seq": man["as_of_seq"],
    })
    return {
        "incident_id": man["incident_id"],
        "format": str(fmt).lower(),
        "path": str(path),
        "bytes": len(content),
        "sha256": sha,
        "manifest": str(man_path),
        "as_of_seq": man["as_of_seq"],
    }
