"""Conversations: list them, read one as a tree of spans with the flagged parts, freeze one as evidence.

Text from traces is attacker-controlled: it is returned as data (never markup). Personal values found in it
(e-mails, phone numbers, card numbers, NRIC/FIN, secrets) are replaced by HMAC tokens for roles without
read:personal, so equal values still match across spans.
"""

from __future__ import annotations

import json
import re
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.access.masking import mask_value, masking_key
from workbench.cases.evidence import add_file_bytes
from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.traces.signals import CARD, EMAIL, NRIC, PHONE, SECRETS

_PERSONAL = [("secret", re.compile(SECRETS)), ("email", re.compile(EMAIL, re.I)), ("card", re.compile(CARD)),
             ("nric", re.compile(NRIC, re.I)), ("phone", re.compile(PHONE.replace(r"\d", "[0-9]")))]
TEXTS = ("system_prompt", "input_text", "output_text", "tool_args", "tool_result")
_COLS = ("span_id, parent_span_id, trace_id, name, kind, operation, ts, end_ts, latency_ms, status, principal, agent, "
         "model, provider, input_tokens, output_tokens, tool_name, system_prompt, input_text, output_text, tool_args, "
         "tool_result, content_policy")


def mask_personal(key: str | None, system_id: str, text: str | None) -> str | None:
    """A text with each personal value or secret replaced by its token (type-prefixed)."""
    if not text:
        return text
    for kind, rx in _PERSONAL:
        text = rx.sub(lambda m, k=kind: f"[{k} {mask_value(key, system_id, 'trace:' + k, m.group(0))}]", text)
    return text


def list_conversations(ws: Workspace, actor: Actor, system: str | None = None, flagged_only: bool = False,
                       limit: int = 500) -> list[dict[str, Any]]:
    """Conversations with their principal, time span, turns, tokens and the LLM alerts that name their spans."""
    require(actor, "read:decisions", ws)
    rows = ws.dicts(f"""
        WITH f AS (SELECT ad.system_id, ad.decision_id AS span_id, list(DISTINCT a.detector) AS detectors
                   FROM alert_decisions ad JOIN alerts a USING (alert_id) WHERE starts_with(a.detector, 'llm_')
                   GROUP BY ALL)
        SELECT s.system_id, s.conversation_id, mode(s.principal) AS principal, min(s.ts) AS started,
               max(coalesce(s.end_ts, s.ts)) AS ended, count(DISTINCT s.trace_id) AS turns, count(*) AS spans,
               sum(coalesce(s.input_tokens, 0) + coalesce(s.output_tokens, 0)) AS tokens,
               list_distinct(flatten(list(f.detectors) FILTER (f.detectors IS NOT NULL))) AS flags
        FROM trace_spans s LEFT JOIN f ON f.system_id = s.system_id AND f.span_id = s.span_id
        WHERE {'s.system_id = ?' if system else 'true'}
        GROUP BY ALL {'HAVING len(flags) > 0' if flagged_only else ''}
        ORDER BY len(flags) DESC, started DESC LIMIT ?""", [*([system] if system else []), int(limit)])
    audit.record(ws, actor, "read.conversations", system, {"rows": len(rows), "flagged_only": flagged_only})
    return rows


def conversation(ws: Workspace, actor: Actor, system_id: str, conversation_id: str) -> dict[str, Any]:
    """One conversation: its spans in tree order (depth, flags per span), texts masked as the role requires."""
    require(actor, "read:decisions", ws)
    spans = ws.dicts(f"SELECT {_COLS} FROM trace_spans WHERE system_id = ? AND conversation_id = ? "
                     "ORDER BY ts, span_id", [system_id, conversation_id])
    if not spans:
        raise WorkbenchError(f"no conversation {conversation_id!r} in {system_id}")
    flags: dict[str, list[dict[str, str]]] = {}
    for span_id, aid, det, sev in ws.rows(
            "SELECT ad.decision_id, a.alert_id, a.detector, a.severity FROM alert_decisions ad JOIN alerts a "
            "USING (alert_id) WHERE ad.system_id = ? AND list_contains(?, ad.decision_id) ORDER BY a.alert_id",
            [system_id, [s["span_id"] for s in spans]]):
        flags.setdefault(span_id, []).append({"alert_id": aid, "detector": det, "severity": sev})
    masked = not actor.can("read:personal")
    key = masking_key(ws) if masked else None
    for s in spans:
        s["flags"] = flags.get(s["span_id"], [])
        if masked:
            for col in TEXTS:
                s[col] = mask_personal(key, system_id, s[col])
    ordered = _tree(spans)
    audit.record(ws, actor, "read.conversation", f"{system_id}/{conversation_id}",
                 {"spans": len(ordered), "masked": masked})
    return {"system_id": system_id, "conversation_id": conversation_id, "masked": masked, "spans": ordered,
            "flagged_spans": sum(bool(s["flags"]) for s in ordered)}


def _tree(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spans in depth-first order under their parents (by start time), each with its depth."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        parent = s["parent_span_id"] if s["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(s)
    out: list[dict[str, Any]] = []
    stack = [(s, 0) for s in reversed(children.get(None, []))]
    seen: set[str] = set()
    while stack:
        s, depth = stack.pop()
        if s["span_id"] in seen:
            continue
        seen.add(s["span_id"])
        out.append({**s, "depth": depth})
        stack += [(c, depth + 1) for c in reversed(children.get(s["span_id"], []))]
    out += [{**s, "depth": 0} for s in spans if s["span_id"] not in seen]  # parent cycles: never lose a span
    return out


def freeze(ws: Workspace, actor: Actor, incident_id: str, system_id: str, conversation_id: str,
           label: str | None = None) -> dict[str, Any]:
    """Freeze a conversation (spans, flags, as this actor may read them) as a file evidence item with its SHA-256."""
    require(actor, "write:incidents", ws)

    conv = conversation(ws, actor, system_id, conversation_id)
    data = json.dumps(conv, default=str, sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", conversation_id)[:60]
    return add_file_bytes(ws, actor, incident_id, f"conversation-{safe}.json", data,
                          label or f"conversation {conversation_id} of {system_id} ({len(conv['spans'])} spans)",
                          max_bytes=64 << 20)
