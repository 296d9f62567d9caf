"""Detection: find attacks on and failures of AI systems in decision logs and metrics, and say why.

`run_all(ws, actor)` runs every detector family over the workspace (or one system / time range), stores the
alerts idempotently and returns them as contract dictionaries (see docs/alerts.md).
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.detect import (
    artifact,
    backdoor,
    credential,
    drift,
    extraction,
    flood,
    metric_anomaly,
    probing,
)
from workbench.detect import context as _context
from workbench.detect.alerts import SEVERITIES, Alert, fetch, get_alert, list_alerts, set_status, store
from workbench.detect.baseline import clear_baseline, list_baselines, parse_time, set_baseline
from workbench.store import Workspace

# Order matters: each attack detector claims the decisions it explains, so the ones after it (and drift)
# judge the rest of the traffic without the attack rows already explained.
DETECTORS = (
    ("artifact", artifact.detect),
    ("evasion", probing.detect),
    ("extraction", extraction.detect),
    ("credential", credential.detect),
    ("flood", flood.detect),
    ("backdoor", backdoor.detect),
    ("drift", drift.detect),
    ("metric_anomaly", metric_anomaly.detect),
)
from workbench.detect.llm_detectors import DETECTORS as _LLM  # noqa: E402 - the LLM/agent trace detectors (issue 18)

DETECTORS += _LLM
DETECTOR_NAMES: tuple[str, ...] = tuple(name for name, _ in DETECTORS)  # public: what `only` and playbooks name

LAST_RUN: dict[str, Any] = {}
log = logging.getLogger("workbench.detect")


def run_all(ws: Workspace, actor: Actor, system: str | None = None, since: str | datetime | None = None,
            until: str | datetime | None = None, only: list[str] | None = None,
            overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run every detector, store the alerts (no duplicates on re-runs) and return them as contract dicts.

    `overrides` maps a detector name to another implementation of it (the Spark engine, workbench.lake)."""
    require(actor, "write:detect", ws)
    s, u = parse_time(since), parse_time(until)
    run_id = "RUN-" + uuid.uuid4().hex[:12]
    started = datetime.now(UTC)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ctx = _context.build(ws, actor, run_id, system, s, u)
    ctx.trace_scope = (system, s, u)  # the LLM detectors read trace_spans, not the decision tables
    timings["prepare"] = time.perf_counter() - t0
    alerts: list[Alert] = []
    errors: dict[str, str] = {}
    for name, fn in DETECTORS:
        if only and name not in only:
            continue
        t = time.perf_counter()
        fn = (overrides or {}).get(name, fn)
        try:
            found = fn(ctx)
            alerts += found
            ctx.alerts += found
        except Exception as exc:  # noqa: BLE001 - one broken detector must not hide the others' alerts
            errors[name] = error_line(exc)
            log.exception("detector %s failed in %s", name, run_id)  # the traceback goes to the log
        timings[name] = time.perf_counter() - t
    t = time.perf_counter()
    with ws.transaction():
        ids = store(ws, alerts, run_id)
        ws.execute("INSERT INTO detect_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [run_id, started, datetime.now(UTC), actor.user, system, s, u, len(ids),
                    _json({"seconds": timings, "errors": errors, "notes": ctx.notes})])
        audit.record(ws, actor, "detect.run", run_id,
                     {"system": system, "since": s, "until": u, "alerts": len(ids), "errors": errors,
                      "by_detector": _count(alerts)})
    _context.drop(ctx)
    timings["store"] = time.perf_counter() - t
    LAST_RUN.clear()
    LAST_RUN.update({"run_id": run_id, "timings": timings, "errors": errors, "notes": ctx.notes,
                     "systems": [x.system_id for x in ctx.systems]})
    return fetch(ws, with_decisions=True, ids=ids, actor=actor) if ids else []


def error_line(exc: BaseException) -> str:
    """A detector's failure as the one line that run_all records (LAST_RUN, detect_runs, the audit log)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _count(alerts: list[Alert]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in alerts:
        out[a.detector] = out.get(a.detector, 0) + 1
    return out


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, default=str, sort_keys=True)


__all__ = ["run_all", "list_alerts", "get_alert", "set_status", "set_baseline", "clear_baseline",
           "list_baselines", "SEVERITIES", "LAST_RUN", "DETECTORS"]
