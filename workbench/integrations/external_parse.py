"""Recognise and read findings from other tools: OpenTelemetry guardrail events and spans, OCSF Detection Findings.

OpenTelemetry (OTLP JSON, a whole file or one export request per line): every span event named
`gen_ai.guardrail.security.finding` (or `gen_ai.security.finding`) is a finding, with the span's attributes
under the event's; a `run_guardrail` / `apply_guardrail` span that blocked, denied, modified or warned but
carries no such event is one too. OCSF: Detection Findings (class_uid 2004) as a JSON array, one object, or
JSON lines. Everything read is data: values are kept as strings and numbers, never interpreted, and the
guardrail's captured content (prompts, outputs) is left out.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.cases.atlas import is_technique_id
from workbench.errors import WorkbenchError
from workbench.ingest.files import head_text

FINDING_EVENTS = ("gen_ai.guardrail.security.finding", "gen_ai.security.finding")
GUARDRAIL_SPANS = ("run_guardrail", "apply_guardrail")
MAX_BYTES = 256 << 20
MAX_ATTRS, MAX_VALUE = 60, 1000
SEVERITY_WORDS = {"none": "low", "info": "low", "informational": "low", "low": "low", "medium": "medium",
                  "moderate": "medium", "high": "high", "critical": "critical", "fatal": "critical"}
OCSF_SEVERITY = {0: "medium", 1: "low", 2: "low", 3: "medium", 4: "high", 5: "critical", 6: "critical",
                 99: "medium"}
ACTING = {"deny", "denied", "block", "blocked", "modify", "modified", "redact", "redacted", "warn", "flag",
          "flagged", "failed", "fail"}
_CONTENT = re.compile(r"(\.content\.|input\.value|output\.value|\.messages$|prompt|completion)", re.I)
# Risk categories named by guardrails -> MITRE ATLAS techniques (substring match on the category).
CATEGORY_ATLAS = (("inject", "AML.T0051"), ("jailbreak", "AML.T0054"), ("leak", "AML.T0057"),
                  ("pii", "AML.T0057"), ("sensitive", "AML.T0057"), ("exfil", "AML.T0057"),
                  ("toxic", "AML.T0048"), ("harm", "AML.T0048"))


@dataclass
class Finding:
    """One finding from another tool, normalised."""

    uid: str
    tool: str
    system_id: str
    severity: str
    ts: datetime
    title: str
    principal: str | None = None
    category: str | None = None
    decision: str | None = None
    atlas: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


class BadRecord(ValueError):
    """A record that cannot be read as a finding (quarantined with this one-line reason)."""


def read_text(path: Path) -> str:
    """The file's text (gzip undone), refusing files over MAX_BYTES."""
    if path.stat().st_size > MAX_BYTES:
        raise WorkbenchError(f"{path}: larger than {MAX_BYTES >> 20} MiB; split it")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise WorkbenchError(f"{path}: corrupt gzip data ({exc})") from exc
    return data.decode("utf-8", errors="replace").lstrip("\ufeff")


def _first_record(text: str) -> Any:
    stripped = text.lstrip()
    for candidate in (stripped, stripped.split("\n", 1)[0]):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        return value[0] if isinstance(value, list) and value else value
    return None


def sniff_text(head: str) -> str | None:
    """'otel' or 'ocsf' when the text's first record is guardrail telemetry or an OCSF finding, else None."""
    if not head.lstrip().startswith(("{", "[")):
        return None
    first = _first_record(head)
    if first is None:  # the head cut a large document short: judge by its opening keys only
        m = re.match(r'\s*\[?\s*\{\s*"(resourceSpans|class_uid)"', head)
        return ("otel" if m.group(1) == "resourceSpans" and any(n in head for n in (*FINDING_EVENTS,
                *GUARDRAIL_SPANS)) else "ocsf" if m.group(1) == "class_uid" else None) if m else None
    if not isinstance(first, dict):
        return None
    if "resourceSpans" in first:
        text = json.dumps(first)
        return "otel" if any(n in text for n in (*FINDING_EVENTS, *GUARDRAIL_SPANS)) else None
    if first.get("class_uid") == 2004 and isinstance(first.get("finding_info"), dict):
        return "ocsf"
    return None


def sniff(path: Path) -> str | None:
    """Recognise a findings file by its content (not its name): 'otel', 'ocsf' or None."""

    try:
        return sniff_text(head_text(path, 1 << 20))
    except (OSError, WorkbenchError):
        return None


def records(text: str) -> Iterator[tuple[int, str, Any]]:
    """(record number or line, raw text, parsed value or a BadRecord) for a JSON document or JSON lines."""
    stripped = text.strip()
    try:
        whole = json.loads(stripped) if stripped else []
    except ValueError:
        whole = None
    if whole is not None:
        items = whole if isinstance(whole, list) else [whole]
        for i, item in enumerate(items, start=1):
            yield i, json.dumps(item, ensure_ascii=False)[:65536], item
        return
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield i, line, json.loads(line)
        except ValueError as exc:
            yield i, line, BadRecord(f"not JSON: {str(exc).splitlines()[0]}")


# -- OpenTelemetry -----------------------------------------------------------------------------------------------
def _value(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if k in v:
            return int(v[k]) if k == "intValue" and str(v[k]).lstrip("-").isdigit() else v[k]
    if "arrayValue" in v:
        return [_value(x) for x in (v["arrayValue"] or {}).get("values") or []]
    return json.dumps(v, sort_keys=True)[:MAX_VALUE]


def _attrs(items: Any) -> dict[str, Any]:
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = _value(item.get("value"))
    return out


def _pick(attrs: dict[str, Any], *suffixes: str) -> Any:
    for suffix in suffixes:
        for k, v in attrs.items():
            if (k == suffix or k.endswith("." + suffix)) and v not in (None, ""):
                return v
    return None


def _time(nanos: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(nanos) / 1e9, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise BadRecord(f"no usable time ({str(nanos)[:40]!r})") from exc


def _kept(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in list(attrs.items())[:MAX_ATTRS]:
        if _CONTENT.search(k):
            continue
        out[str(k)[:200]] = v[:MAX_VALUE] if isinstance(v, str) else v
    return out


def _severity(word: Any, decision: str | None) -> str:
    if word is None:
        return "medium" if decision in ("deny", "denied", "block", "blocked", "failed", "fail") else "low"
    sev = SEVERITY_WORDS.get(str(word).strip().lower())
    if sev is None:
        raise BadRecord(f"unknown severity {str(word)[:40]!r}; expected one of {', '.join(SEVERITY_WORDS)}")
    return sev


def category_atlas(category: str | None) -> list[str]:
    """The ATLAS techniques a guardrail's risk category points at."""
    text = (category or "").lower()
    return sorted({t for word, t in CATEGORY_ATLAS if word in text})


def _otel_finding(resource: dict[str, Any], span: dict[str, Any], attrs: dict[str, Any], nanos: Any,
                  key: str) -> Finding:
    decision = _pick(attrs, "decision.type", "decision", "guardrail.status", "action")
    decision = str(decision).strip().lower()[:40] if decision is not None else None
    tool = str(_pick(attrs, "guardian.name", "guardrail.name", "guardian.provider.name", "provider.name")
               or resource.get("service.name") or "guardrail")[:80]
    system = str(resource.get("service.name") or _pick(attrs, "agent.name", "gen_ai.system") or "unknown")[:200]
    category = _pick(attrs, "risk.category", "finding.category", "category", "policy.name")
    principal = _pick(attrs, "enduser.id", "user.id", "user.name")
    atlas = [str(x) for x in (_pick(attrs, "atlas.technique.id", "atlas") or []) if is_technique_id(str(x))] \
        if isinstance(_pick(attrs, "atlas.technique.id", "atlas"), list) else []
    uid = _pick(attrs, "finding.id") or hashlib.sha256(
        f"{span.get('traceId')}|{span.get('spanId')}|{key}".encode()).hexdigest()[:32]
    category = None if category is None else str(category)[:120]
    return Finding(uid=f"otel:{str(uid)[:200]}", tool=tool, system_id=system,
                   severity=_severity(_pick(attrs, "risk.severity", "severity"), decision), ts=_time(nanos),
                   title=f"{tool} {decision or 'flagged'} {category or 'a request'}",
                   principal=None if principal is None else str(principal)[:200], category=category,
                   decision=decision, atlas=sorted(set(atlas) | set(category_atlas(category))),
                   attributes=_kept({**attrs, "trace_id": span.get("traceId"), "span_id": span.get("spanId"),
                                     "span_name": span.get("name")}))


def otel_findings(doc: Any) -> tuple[list[Finding], int]:
    """The findings of one OTLP JSON export request, and how many guardrail spans passed (allowed)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceSpans"), list):
        raise BadRecord("not an OTLP JSON trace export (no resourceSpans list)")
    out: list[Finding] = []
    passed = 0
    for rs in doc["resourceSpans"]:
        if not isinstance(rs, dict):
            raise BadRecord("a resourceSpans entry is not an object")
        resource = _attrs((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            for span in (ss or {}).get("spans") or []:
                if not isinstance(span, dict):
                    raise BadRecord("a span is not an object")
                sattrs = _attrs(span.get("attributes"))
                events = [e for e in span.get("events") or [] if isinstance(e, dict)
                          and e.get("name") in FINDING_EVENTS]
                for i, ev in enumerate(events):
                    out.append(_otel_finding(resource, span, {**sattrs, **_attrs(ev.get("attributes"))},
                                             ev.get("timeUnixNano") or span.get("startTimeUnixNano"), f"e{i}"))
                name = str(span.get("name") or "")
                op = str(sattrs.get("gen_ai.operation.name") or "")
                if not events and (name.startswith(GUARDRAIL_SPANS) or op in GUARDRAIL_SPANS):
                    decision = str(_pick(sattrs, "decision.type", "decision", "guardrail.status") or "").lower()
                    if decision in ACTING:
                        out.append(_otel_finding(resource, span, sattrs, span.get("startTimeUnixNano"), "span"))
                    else:
                        passed += 1
    return out, passed


# -- OCSF ----------------------------------------------------------------------------------------------------------
def ocsf_finding(doc: Any) -> Finding:
    """One OCSF Detection Finding from another tool as a finding."""
    if not isinstance(doc, dict):
        raise BadRecord("not a JSON object")
    if doc.get("class_uid") != 2004:
        raise BadRecord(f"not an OCSF Detection Finding (class_uid {str(doc.get('class_uid'))[:20]}, expected 2004)")
    info = doc.get("finding_info")
    if not isinstance(info, dict) or not info.get("uid") or not info.get("title"):
        raise BadRecord("finding_info with uid and title is required")
    t = doc.get("time")
    if not isinstance(t, int | float) or isinstance(t, bool):
        raise BadRecord("time (milliseconds since the epoch) is required")
    try:
        ts = datetime.fromtimestamp(t / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise BadRecord(f"time {t} is out of range") from exc
    sev = OCSF_SEVERITY.get(doc.get("severity_id"))
    if sev is None:
        raise BadRecord(f"severity_id {str(doc.get('severity_id'))[:20]} is not an OCSF severity")
    product = (doc.get("metadata") or {}).get("product") or {}
    tool = str(product.get("name") or product.get("vendor_name") or "ocsf")[:80]
    resources = [r for r in doc.get("resources") or [] if isinstance(r, dict)]
    system = str((resources[0].get("name") or resources[0].get("uid")) if resources else "unknown")[:200]
    actor = doc.get("actor") or {}
    user = (actor.get("user") or {}) if isinstance(actor, dict) else {}
    principal = user.get("name") or user.get("uid") if isinstance(user, dict) else None
    atlas = set()
    for attack in info.get("attacks") or []:
        for part in ("sub_technique", "technique"):
            uid = str(((attack or {}).get(part) or {}).get("uid") or "")
            if is_technique_id(uid):
                atlas.add(uid)
    types = [str(x) for x in info.get("types") or []]
    category = types[0][:120] if types else None
    return Finding(uid=f"ocsf:{tool}:{str(info['uid'])[:200]}", tool=tool, system_id=system, severity=sev, ts=ts,
                   title=str(info["title"])[:300], principal=None if principal is None else str(principal)[:200],
                   category=category, decision=str(doc.get("disposition") or "")[:40].lower() or None,
                   atlas=sorted(atlas | set(category_atlas(category))),
                   attributes=_kept({"finding_uid": info["uid"], "desc": str(info.get("desc") or "")[:MAX_VALUE],
                                     "types": types[:10], "product": product.get("name"),
                                     "severity_id": doc.get("severity_id")}))
