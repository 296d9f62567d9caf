"""Export a playbook as OASIS CACAO Security Playbooks 2.0 JSON, and validate such a document.

The export is deterministic: the playbook id is ``playbook--<uuid5>`` of the playbook's id and version
in the workbench namespace, step ids are uuid5 of (playbook, version, step id), and ``created``/``modified``
come from the front matter dates (else the file's modification time). Each playbook step becomes an
``action`` step with one ``manual`` command, chained by ``on_completion`` from ``start`` to ``end`` in phase
order; the steps' phase and any workbench action are kept in the step description and the command text.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from workbench.cases.playbook_format import PHASES, Playbook
from workbench.errors import WorkbenchError
from workbench.timestamps import iso_z_fixed, to_datetime

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:workbench:cacao")
REQUIRED = (
    "type",
    "spec_version",
    "id",
    "name",
    "created_by",
    "created",
    "modified",
    "workflow_start",
    "workflow",
)
_SEVERITY = {"low": 20, "medium": 50, "high": 75, "critical": 95}
_PHASE_TITLES = dict(PHASES)
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def _sid(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, '/'.join(parts))}"


def _stamp(value: Any, fallback: datetime) -> str:
    try:
        dt = to_datetime(value) or fallback
    except WorkbenchError:
        dt = fallback
    return iso_z_fixed(dt, 3)


def playbook_uuid(pb: Playbook) -> str:
    """The deterministic CACAO id of a playbook version."""
    return _sid("playbook", pb.id, pb.version)


def to_cacao(playbook: Playbook) -> dict[str, Any]:
    """The playbook as a CACAO 2.0 ``playbook`` object (plain JSON-ready dict)."""
    pb = playbook
    mtime = (
        datetime.fromtimestamp(pb.path.stat().st_mtime, UTC)
        if pb.path.exists()
        else datetime(2025, 1, 1, tzinfo=UTC)
    )
    created = _stamp(pb.front.get("created"), mtime)
    modified = _stamp(pb.front.get("modified"), mtime)
    modified = max(created, modified)
    start_id = _sid("start", pb.id, pb.version, "start")
    end_id = _sid("end", pb.id, pb.version, "end")
    agents = {_sid("group", "role", r): {"type": "group", "name": f"workbench role: {r}"} for r in pb.roles}
    agent = next(iter(agents), None)
    ids = [_sid("action", pb.id, pb.version, s.id) for s in pb.steps]
    workflow: dict[str, Any] = {
        start_id: {"type": "start", "name": "Start", "on_completion": ids[0] if ids else end_id}
    }
    for n, (step, sid) in enumerate(zip(pb.steps, ids, strict=True)):
        phase = _PHASE_TITLES.get(step.phase, step.phase)
        command = step.text
        if step.action:
            command += f" [workbench action: {step.action['text']}]"
        entry: dict[str, Any] = {
            "type": "action",
            "name": f"{phase}: {_short(step.text)}",
            "description": f"Phase: {phase}. Step {step.id} of workbench playbook {pb.id} v{pb.version}.",
            "commands": [{"type": "manual", "command": command}],
            "on_completion": ids[n + 1] if n + 1 < len(ids) else end_id,
        }
        if agent:
            entry["agent"] = agent
        workflow[sid] = entry
    workflow[end_id] = {"type": "end", "name": "End"}
    doc: dict[str, Any] = {
        "type": "playbook",
        "spec_version": "cacao-2.0",
        "id": playbook_uuid(pb),
        "name": pb.title,
        "description": str(pb.front.get("summary") or pb.title),
        "playbook_types": ["investigation", "mitigation", "remediation"],
        "created_by": f"identity--{uuid.uuid5(NAMESPACE, 'identity/workbench')}",
        "created": created,
        "modified": modified,
        "revoked": False,
        "labels": [*pb.applies_to, f"workbench:{pb.id}", f"version:{pb.version}"],
        "workflow_start": start_id,
        "workflow": workflow,
    }
    severities = [_SEVERITY[s] for s in pb.severity if s in _SEVERITY]
    if severities:
        doc["severity"] = max(severities)
    if agents:
        doc["agent_definitions"] = agents
    refs = [{"name": r["title"], **({"url": r["url"]} if r["url"] else {})} for r in pb.references]
    refs += [
        {
            "name": f"MITRE ATLAS {t}",
            "source": "MITRE ATLAS",
            "external_id": t,
            "url": f"https://atlas.mitre.org/techniques/{t}",
        }
        for t in pb.atlas
    ]
    if refs:
        doc["external_references"] = refs
    return doc


def _short(text: str, limit: int = 80) -> str:
    plain = re.sub(r"`action:[^`]*`", "", text).strip()
    return plain if len(plain) <= limit else plain[: limit - 1].rstrip() + "…"


def validate(doc: dict[str, Any]) -> list[str]:
    """Problems with a CACAO 2.0 playbook document (required fields, ids, timestamps, workflow links)."""
    problems = [f"missing required property '{k}'" for k in REQUIRED if doc.get(k) in (None, "", {})]
    if doc.get("type") != "playbook":
        problems.append("type must be 'playbook'")
    if doc.get("spec_version") != "cacao-2.0":
        problems.append("spec_version must be 'cacao-2.0'")
    if not re.fullmatch(f"playbook--{_UUID}", str(doc.get("id", ""))):
        problems.append("id must be 'playbook--' followed by a UUID")
    if not re.fullmatch(f"identity--{_UUID}", str(doc.get("created_by", ""))):
        problems.append("created_by must be 'identity--' followed by a UUID")
    for key in ("created", "modified"):
        if not _TS.match(str(doc.get(key, ""))):
            problems.append(f"{key} must be an RFC 3339 UTC timestamp ending in Z")
    if (
        _TS.match(str(doc.get("created", "")))
        and _TS.match(str(doc.get("modified", "")))
        and doc["modified"] < doc["created"]
    ):
        problems.append("modified is earlier than created")
    wf = doc.get("workflow") or {}
    if not isinstance(wf, dict):
        return [*problems, "workflow must be an object keyed by step id"]
    start = doc.get("workflow_start")
    if start not in wf:
        problems.append("workflow_start does not name a step in workflow")
    elif wf[start].get("type") != "start":
        problems.append("workflow_start must name a 'start' step")
    if not any(s.get("type") == "end" for s in wf.values()):
        problems.append("workflow has no 'end' step")
    for sid, step in wf.items():
        kind = step.get("type")
        if not kind:
            problems.append(f"{sid}: step has no type")
            continue
        if not str(sid).startswith(f"{kind}--"):
            problems.append(f"{sid}: step id must start with '{kind}--'")
        for link in ("on_completion", "on_success", "on_failure"):
            if step.get(link) and step[link] not in wf:
                problems.append(f"{sid}: {link} points at a step that is not in workflow")
        if kind == "action":
            cmds = step.get("commands") or []
            if not cmds:
                problems.append(f"{sid}: action step has no commands")
            for c in cmds:
                if not c.get("type"):
                    problems.append(f"{sid}: a command has no type")
                elif c["type"] == "manual" and not c.get("command"):
                    problems.append(f"{sid}: a manual command has no command text")
    reached, todo = set(), [start] if start in wf else []
    while todo:
        sid = todo.pop()
        if sid in reached or sid not in wf:
            continue
        reached.add(sid)
        todo += [wf[sid][k] for k in ("on_completion", "on_success", "on_failure") if wf[sid].get(k)]
    unreached = [s for s in wf if s not in reached]
    if start in wf and unreached:
        problems.append(f"{len(unreached)} step(s) cannot be reached from workflow_start")
    return problems
