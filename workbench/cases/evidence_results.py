"""Evidence frozen from where the analyst stands: an attribution-drift result, drift tests, and the CLI's own
JSON / JSON Lines output (`explain --json`, `attribution-drift --json`, `alerts --json`) labelled by what it is.
"""

from __future__ import annotations

import json
from typing import Any

from workbench import audit
from workbench.access import Actor
from workbench.cases.evidence import (
    _insert,
    _start,
    add_alert,
    add_explanation,
    add_file_bytes,
    get_evidence,
    max_upload_bytes,
)
from workbench.cases.evidence_hashing import content_hash
from workbench.errors import WorkbenchError
from workbench.store import Workspace


def _records(rows: Any) -> list[dict[str, Any]]:
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict("records")
    return json.loads(audit.canonical(list(rows)))


def add_attribution_drift(
    ws: Workspace, actor: Actor, incident_id: str, system_id: str, rows: Any, *,
    meta: dict[str, Any] | None = None, label: str | None = None,
) -> dict[str, Any]:
    """Freeze an attribution-drift result (its rows: feature, shares, share_rise, ...) as an explanation."""
    records = _records(rows)
    if not records or not all(isinstance(r, dict) and "feature" in r and "share_rise" in r for r in records):
        raise WorkbenchError("an attribution-drift result needs rows with feature and share_rise")
    extra = json.loads(audit.canonical({k: v for k, v in (meta or {}).items() if k != "system_id"}))
    payload = {"method": "attribution_drift", "system_id": system_id, **extra, "rows": records,
               "attributions": {r["feature"]: r["share_rise"] for r in records}}
    n = extra.get("alert_n")
    label = label or (f"attribution drift of {system_id}" + (f" ({n} decisions vs reference)" if n else ""))
    return add_explanation(ws, actor, incident_id, payload, label)


def add_drift(
    ws: Workspace, actor: Actor, incident_id: str, system_id: str, rows: Any, *,
    target: str | None = None, label: str | None = None,
) -> dict[str, Any]:
    """Freeze drift-test results (per window: target, test, statistic, threshold, verdict) as a 'drift' item."""
    incident_id = _start(ws, actor, incident_id)
    records = _records(rows)
    if not records:
        raise WorkbenchError("no drift results to freeze")
    starts = [r.get("window_start") for r in records if r.get("window_start")]
    ends = [r.get("window_end") for r in records if r.get("window_end")]
    content = {"system_id": system_id, "target": target, "rows": records}
    with ws.transaction():
        eid = _insert(
            ws, actor, incident_id, "drift", label or f"drift tests of {target or 'all inputs'} on {system_id}",
            system_id, content_hash(content), content=content, start=min(starts, default=None),
            end=max(ends, default=None), count=len(records),
        )
    return get_evidence(ws, actor, eid)


def _parse_output(text: str) -> list[Any]:
    """JSON (an object or a list) or JSON Lines, as a list of values; one-line error otherwise."""
    text = text.strip()
    if not text:
        raise WorkbenchError("the output is empty")
    try:
        value = json.loads(text)
        return value if isinstance(value, list) else [value]
    except ValueError:
        pass
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError as exc:
                raise WorkbenchError(f"line {n} is not JSON: {str(exc).splitlines()[0]}") from exc
    return out


def recognise_output(rows: list[Any]) -> str:
    """What a CLI --json output is: explain, attribution_drift, alerts, or other."""
    if rows and all(isinstance(r, dict) for r in rows):
        if all("decision_id" in r and isinstance(r.get("attributions"), list) for r in rows):
            return "explain"
        if all("feature" in r and "share_rise" in r for r in rows):
            return "attribution_drift"
        if all("alert_id" in r and "detector" in r for r in rows):
            return "alerts"
    return "other"


def add_cli_output(
    ws: Workspace, actor: Actor, incident_id: str, text: str, *, name: str = "output.jsonl",
    system_id: str | None = None, label: str | None = None,
) -> list[dict[str, Any]]:
    """File the workbench's own JSON / JSON Lines output as evidence, labelled by what it is: `explain --json`
    (an explanation), `attribution-drift --json` (an explanation of kind attribution drift), `alerts --json`
    (each alert frozen from the store), anything else a hashed file."""
    _start(ws, actor, incident_id)
    rows = _parse_output(text)
    what = recognise_output(rows)
    if what == "explain":
        systems = {r.get("system_id") for r in rows if r.get("system_id")}
        system = system_id or (systems.pop() if len(systems) == 1 else None)
        versions = sorted({str(r.get("model_version")) for r in rows if r.get("model_version")})
        payload: dict[str, Any] = (
            {**rows[0], "system_id": system} if len(rows) == 1
            else {"method": ",".join(sorted({str(r.get("method")) for r in rows})), "system_id": system,
                  "decisions": rows, "decision_ids": [r["decision_id"] for r in rows]}
        )
        payload["source"] = "workbench explain --json"
        lab = label or (f"SHAP explanation of {rows[0]['decision_id']}" if len(rows) == 1
                        else f"SHAP explanations of {len(rows)} decisions") + \
            (f" ({system}{' ' + ', '.join(versions) if versions else ''})" if system else "")
        return [add_explanation(ws, actor, incident_id, payload, lab)]
    if what == "attribution_drift":
        if not system_id:
            raise WorkbenchError("attribution-drift output does not name its system: give --system")
        return [add_attribution_drift(ws, actor, incident_id, system_id, rows,
                                      meta={"source": "workbench attribution-drift --json"}, label=label)]
    if what == "alerts":
        return [add_alert(ws, actor, incident_id, str(r["alert_id"])) for r in rows]
    keys = sorted({k for r in rows if isinstance(r, dict) for k in r})[:6]
    return [add_file_bytes(ws, actor, incident_id, name, text.encode("utf-8"),
                           label or f"JSON output: {len(rows)} record(s)" + (f" ({', '.join(keys)})" if keys else ""),
                           max_bytes=max(max_upload_bytes(), len(text.encode('utf-8'))))]
