"""Findings from other tools in: guardrail telemetry and OCSF findings become alerts beside the workbench's own.

Each finding is kept once (external_findings, keyed by the tool's id) with custody (a sources row of kind
'findings', its SHA-256) and audit; bad records go to the quarantine with a one-line reason. Findings are
summarised as alerts with detector 'external:<tool>', one per tool, system, principal, category and hour
(the same hourly identity as the workbench's own alerts), so a guardrail that blocks a thousand prompts an
hour gives one alert with the count, and shows up in triage and every sink.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.detect.alerts import SEVERITIES, Alert, alert_id, store
from workbench.errors import WorkbenchError
from workbench.ingest.files import sha256_file
from workbench.integrations import external_parse as xp
from workbench.store import Workspace

_TOOL = re.compile(r"[^a-z0-9._-]+")


def detector_name(tool: str) -> str:
    """The alerts' detector for a tool: 'external:' + its name, lower case, safe characters only."""
    return "external:" + (_TOOL.sub("-", tool.lower()).strip("-") or "tool")[:60]


def _alert_id(f: xp.Finding) -> str:
    return alert_id(detector_name(f.tool), f.system_id, f.principal, None, None, f.ts, f.category or "")


def ingest_findings(ws: Workspace, actor: Actor, path: str | Path, fmt: str | None = None) -> dict[str, Any]:
    """Read one findings file (OpenTelemetry guardrail telemetry or OCSF findings) into external alerts."""
    require(actor, "write:ingest", ws)
    require(actor, "write:detect", ws)
    p = Path(path).absolute()
    if not p.is_file():
        raise WorkbenchError(f"{p}: not found")
    fmt = fmt or xp.sniff(p)
    if fmt not in ("otel", "ocsf"):
        raise WorkbenchError(f"{p}: neither guardrail telemetry (OpenTelemetry) nor OCSF Detection Findings")
    sha = sha256_file(p)
    prior = ws.one("SELECT source_id FROM sources WHERE sha256 = ? AND kind = 'findings'", [sha])
    if prior:
        return {"path": str(p), "format": fmt, "skipped": True, "source_id": prior[0], "findings": 0,
                "quarantined": 0, "alerts": []}
    size = p.stat().st_size
    text = xp.read_text(p)
    found: list[xp.Finding] = []
    bad: list[tuple[int, str, str]] = []
    passed = own = 0
    for line, raw, rec in xp.records(text):
        try:
            if isinstance(rec, xp.BadRecord):
                raise rec
            if fmt == "otel":
                items, ok = xp.otel_findings(rec)
                passed += ok
            else:
                item = xp.ocsf_finding(rec)
                if item.tool.lower() == "workbench":  # our own export coming back: already an alert here
                    own += 1
                    continue
                items = [item]
        except xp.BadRecord as exc:
            bad.append((line, raw, str(exc)))
            continue
        for item in items:
            item.line = line
            found.append(item)
    now = datetime.now(UTC)
    with ws.transaction() as con:
        source_id = int(con.execute("SELECT nextval('source_id_seq')").fetchone()[0])
        before = int(ws.scalar("SELECT count(*) FROM external_findings"))
        if found:
            con.executemany(
                "INSERT OR IGNORE INTO external_findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[f.uid, source_id, f.line, fmt, f.tool, f.system_id, f.principal, f.category, f.decision,
                  f.severity, f.ts, f.atlas, f.title, json.dumps(f.attributes, default=str, sort_keys=True),
                  _alert_id(f)] for f in found])
        loaded = int(ws.scalar("SELECT count(*) FROM external_findings")) - before
        if bad:
            con.executemany(
                "INSERT INTO quarantine (source_id, path, line, raw, reason, quarantined_at, raw_bytes, raw_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, strlen(?), sha256(?))",
                [[source_id, str(p), line, raw[:65536], reason, now, raw, raw] for line, raw, reason in bad])
        ids = sorted({_alert_id(f) for f in found})
        alerts = _summarise(ws, ids)
        stored = store(ws, alerts, f"EXT-{uuid.uuid4().hex[:12]}") if alerts else []
        systems = sorted({f.system_id for f in found})
        times = [f.ts for f in found]
        ws.execute("INSERT INTO sources VALUES (?, ?, ?, ?, 'findings', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [source_id, str(p), sha, size, fmt, now, actor.user, actor.role, len(found) + len(bad) + own,
                    loaded, len(found) - loaded, len(bad), systems, min(times, default=None),
                    max(times, default=None)])
        audit.record(ws, actor, "ingest.findings", str(p),
                     {"source_id": source_id, "sha256": sha, "format": fmt, "findings": loaded,
                      "duplicates": len(found) - loaded, "quarantined": len(bad), "own_findings_skipped": own,
                      "guardrail_passes": passed, "alerts": stored})
    return {"path": str(p), "format": fmt, "skipped": False, "source_id": source_id, "findings": loaded,
            "duplicates": len(found) - loaded, "quarantined": len(bad), "own_skipped": own, "passed": passed,
            "alerts": stored}


def _summarise(ws: Workspace, ids: list[str]) -> list[Alert]:
    """The alerts for these ids, from every finding stored under them (so a later file adds to the count)."""
    if not ids:
        return []
    rows = ws.dicts(f"""
        SELECT alert_id, any_value(tool) AS tool, any_value(system_id) AS system_id, any_value(principal) AS principal,
               any_value(category) AS category, min(ts) AS first, max(ts) AS last, count(*) AS n,
               max(list_position({list(SEVERITIES)!r}, severity)) AS sev,
               list_distinct(flatten(list(atlas))) AS atlas, histogram(coalesce(decision, 'flagged')) AS decisions,
               list(finding_uid ORDER BY ts, finding_uid)[1:20] AS sample, any_value(format) AS format,
               any_value(title) AS title
        FROM external_findings WHERE list_contains(?, alert_id) GROUP BY alert_id""", [ids])
    out = []
    for r in rows:
        decisions = {str(k): int(v) for k, v in dict(r["decisions"] or {}).items()}
        verbs = ", ".join(f"{v} {k}" for k, v in sorted(decisions.items()))
        who = f" by {r['principal']}" if r["principal"] else ""
        what = f" ({r['category']})" if r["category"] else ""
        summary = (f"{r['tool']} reported {r['n']} finding{'s' if r['n'] != 1 else ''}{who} on {r['system_id']}"
                   f"{what} between {r['first']:%Y-%m-%d %H:%M} and {r['last']:%H:%M} UTC: {verbs}.")
        out.append(Alert(detector=detector_name(r["tool"]), system_id=r["system_id"], severity=SEVERITIES[r["sev"] - 1],
                         window_start=r["first"], window_end=r["last"], summary=summary,
                         evidence={"source": "external", "tool": r["tool"], "format": r["format"],
                                   "findings": int(r["n"]), "decisions": decisions, "category": r["category"],
                                   "finding_ids": list(r["sample"]), "example_title": r["title"]},
                         atlas=sorted(r["atlas"] or []), principal=r["principal"], score=float(r["n"]),
                         subject=r["category"] or ""))
    return [a for a in out if a.alert_id in ids]


def list_findings(ws: Workspace, actor: Actor, alert_id_: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The stored findings from other tools (of one external alert, or all), newest first."""
    require(actor, "read:decisions", ws)
    return ws.dicts("SELECT finding_uid, alert_id, tool, system_id, principal, category, decision, severity, ts, "
                    "atlas, title, attributes, source_id, line FROM external_findings "
                    "WHERE (? IS NULL OR alert_id = ?) ORDER BY ts DESC, finding_uid LIMIT ?",
                    [alert_id_, alert_id_, int(limit)])
