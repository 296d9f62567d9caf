"""The report's conversation excerpts: each conversation frozen as evidence (traces.conversations.freeze), cut to
its flagged spans and what led to them.

The excerpt is read from the frozen file in the evidence store, only when the file still has its recorded SHA-256
(else the excerpt says so and shows nothing of it), so it is part of the case as recorded: the same for every
reader and hashed into the manifest like every other section. What a reader sees is then masked as their role
requires: personal values in the texts (e-mails, phone numbers, card numbers, NRIC/FIN, secrets) become HMAC tokens
for roles without read:personal (a conversation frozen by such a role was already masked when it was frozen). The
texts are attacker text: they reach the report only as escaped values (report_render, report_templates).
"""

from __future__ import annotations

import json
from typing import Any

from workbench.access import Actor
from workbench.access.masking import masking_key
from workbench.cases.evidence_hashing import evidence_store, sha256_bytes
from workbench.store import Workspace
from workbench.traces.conversations import mask_personal

MAX_SPANS = 16  # spans shown per conversation: the flagged ones, their ancestors, and the first turn
TEXT_CHARS = 500
MAX_FILE = 64 << 20
TEXTS = (("user", "input_text"), ("answer", "output_text"), ("tool arguments", "tool_args"),
         ("tool result", "tool_result"))


def _is_conversation(item: dict[str, Any]) -> bool:
    name = str(item.get("ref") or "")
    return item.get("kind") == "file" and name.startswith("conversation-") and name.endswith(".json")


def _cut(text: Any) -> str:
    s = str(text)
    return s if len(s) <= TEXT_CHARS else s[:TEXT_CHARS] + f"… (+{len(s) - TEXT_CHARS} chars)"


def _when(ts: Any) -> str | None:
    """A frozen span's start time (written with str()) as ISO seconds in UTC."""
    s = None if ts is None else str(ts)
    return s if s is None or len(s) < 19 else s[:10] + "T" + s[11:19] + "Z"


def _pick(spans: list[dict[str, Any]]) -> list[int]:
    """Indexes of the spans to show: flagged ones with their ancestors, else the first ones; at most MAX_SPANS."""
    index = {s.get("span_id"): i for i, s in enumerate(spans)}
    keep: set[int] = {0} if spans else set()
    for i, s in enumerate(spans):
        if s.get("flags"):
            keep.add(i)
            parent, hops = s.get("parent_span_id"), 0
            while parent in index and hops < 50:
                keep.add(index[parent])
                parent, hops = spans[index[parent]].get("parent_span_id"), hops + 1
    if len(keep) < 3:
        keep |= set(range(min(3, len(spans))))
    return sorted(keep)[:MAX_SPANS]


def excerpt(data: dict[str, Any]) -> dict[str, Any]:
    """The excerpt of one frozen conversation document (as conversations.conversation returned it)."""
    spans = [s for s in data.get("spans") or [] if isinstance(s, dict)]
    rows = []
    for i in _pick(spans):
        s = spans[i]
        rows.append({
            "depth": int(s.get("depth") or 0), "kind": s.get("kind"),
            "what": s.get("tool_name") or s.get("model") or s.get("name") or s.get("kind"),
            "span_id": s.get("span_id"), "ts": _when(s.get("ts")), "principal": s.get("principal"),
            "flags": [f"{f.get('detector')} ({f.get('severity')}, {f.get('alert_id')})" for f in s.get("flags") or []
                      if isinstance(f, dict)],
            "texts": [{"label": label, "text": _cut(s[key])} for label, key in TEXTS if s.get(key)],
        })
    return {"system_id": data.get("system_id"), "conversation_id": data.get("conversation_id"),
            "spans_total": len(spans), "flagged_total": sum(bool(s.get("flags")) for s in spans),
            "masked_when_frozen": bool(data.get("masked")), "spans": rows}


def conversation_excerpts(ws: Workspace, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One excerpt per frozen conversation among the evidence items, as recorded (for hashing and display)."""
    out = []
    for item in items:
        if not _is_conversation(item):
            continue
        head = {"evidence_id": item["evidence_id"], "label": item.get("label"), "sha256": item.get("sha256")}
        path = evidence_store(ws) / str(item.get("store_path") or "")
        try:
            raw = path.read_bytes() if path.is_file() and path.stat().st_size <= MAX_FILE else None
        except OSError:
            raw = None
        if raw is None or sha256_bytes(raw) != item.get("sha256"):
            out.append({**head, "problem": "the frozen file is missing or no longer has its recorded SHA-256; "
                                           "nothing of it is shown"})
            continue
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("spans"), list):
            continue  # a file that merely has the name: not a frozen conversation
        out.append({**head, **excerpt(data)})
    return out


def shown(ws: Workspace, actor: Actor, excerpts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The excerpts as this reader may see them: personal values in texts as HMAC tokens without read:personal."""
    if actor.can("read:personal"):
        return excerpts

    key = masking_key(ws)
    out = []
    for c in excerpts:
        spans = [{**s, "texts": [{**t, "text": mask_personal(key, str(c.get("system_id")), t["text"])}
                                 for t in s["texts"]]} for s in c.get("spans") or []]
        out.append({**c, "spans": spans, "masked": True})
    return out


def lines(c: dict[str, Any]) -> list[str]:
    """An excerpt as plain indented lines (for Markdown and PDF; HTML uses the same words through its template)."""
    if c.get("problem"):
        return [f"Evidence #{c['evidence_id']}: {c['problem']}."]
    out = [f"Evidence #{c['evidence_id']}: conversation {c['conversation_id']} of {c['system_id']}, "
           f"{len(c['spans'])} of {c['spans_total']} spans shown ({c['flagged_total']} flagged), sha256 "
           f"{c['sha256']}." + (" Personal values are masked for this reader's role." if c.get("masked") else "")]
    for s in c["spans"]:
        pad = "· " * (s["depth"] + 1)  # every line starts with our marker, never with trace text
        mark = "FLAGGED " if s["flags"] else ""
        out.append(f"{pad}{mark}{s['kind']}: {s['what']} (span {s['span_id']}, {s['ts']}, {s['principal']})")
        out += [f"{pad}· flagged by {f}" for f in s["flags"]]
        out += [f"{pad}· {t['label']}: {t['text']}" for t in s["texts"]]
    return out

