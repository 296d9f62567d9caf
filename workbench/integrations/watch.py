"""Watch mode: pick up files dropped into folders, load them, detect on what is new, deliver to every sink.

One cycle: (1) list the folders (hidden files, *.part/*.tmp/*.lock and files with a sibling '<name>.lock' are
skipped); a file is loaded once two polls agree on its size and mtime, so a file still being written is never
half-loaded (and ingest refuses a file that changes while it reads it: it is then retried). Findings from other
tools are recognised by content and taken in as external alerts; everything else goes through the same
`workbench.ingest.ingest_file` as `workbench ingest` (custody, quarantine, audit). (2) Detection runs again for
each system that a source newer than the detection watermark touched, over that system's whole history: a run
scoped in time clips episodes and changes their ids, while a per-system run finds exactly the alerts a full run
finds for that system (tests check this). (3) New or escalated alerts are queued for every sink and (4) due
deliveries are sent (see outbox). Every step is idempotent and its progress is committed with its effect, so a
kill at any point resumes without losing or repeating work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.detect import run_all
from workbench.errors import WorkbenchError
from workbench.ingest import ingest_file
from workbench.integrations import external_alerts, external_parse, outbox
from workbench.store import Workspace

SKIP_SUFFIXES = (".part", ".tmp", ".lock", ".partial", ".crdownload", ".swp")
WATERMARK = "detected_source_id"


def _candidates(dirs: list[str | Path]) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        root = Path(d).absolute()
        if not root.is_dir():
            raise WorkbenchError(f"{root}: not a directory to watch")
        for f in sorted(root.rglob("*")):
            rel = f.relative_to(root)
            if not f.is_file() or any(part.startswith(".") for part in rel.parts):
                continue
            if f.name.lower().endswith(SKIP_SUFFIXES) or f.with_name(f.name + ".lock").exists():
                continue
            out.append(f)
    return out


def poll(ws: Workspace, dirs: list[str | Path]) -> list[Path]:
    """Record every file's size and mtime; return the files ready to load (unchanged since the last poll)."""
    now = datetime.now(UTC)
    known = {r[0]: r[1:] for r in ws.rows("SELECT path, size_bytes, mtime_ns, state FROM watch_files")}
    ready = []
    for f in _candidates(dirs):
        try:
            st = f.stat()
        except OSError:
            continue
        key, seen = str(f), known.get(str(f))
        if seen is None or (seen[0], seen[1]) != (st.st_size, st.st_mtime_ns):
            ws.execute("INSERT OR REPLACE INTO watch_files VALUES (?, ?, ?, 'waiting', NULL, NULL, "
                       "coalesce((SELECT first_seen FROM watch_files WHERE path = ?), ?), ?)",
                       [key, st.st_size, st.st_mtime_ns, key, now, now])
        elif seen[2] == "waiting":
            ready.append(f)
    return ready


def _load(ws: Workspace, actor: Actor, path: Path) -> dict[str, Any]:
    """Load one ready file (findings or data); the result's 'state' is loaded, failed or waiting (changed)."""

    before = path.stat()
    fmt = external_parse.sniff(path)
    if fmt:
        try:
            res = external_alerts.ingest_findings(ws, actor, path, fmt)
            return {"state": "loaded", "source_id": res["source_id"], "kind": "findings",
                    "rows": res["findings"], "quarantined": res["quarantined"], "error": None}
        except WorkbenchError as exc:
            return {"state": "failed", "source_id": None, "kind": "findings", "rows": 0, "quarantined": 0,
                    "error": str(exc)}
    r = ingest_file(ws, actor, path)
    try:
        after = path.stat()
        changed = (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns)
    except OSError:
        changed = True
    state = "waiting" if r.error and changed else "failed" if r.error else "loaded"
    return {"state": state, "source_id": r.source_id, "kind": r.kind, "rows": r.rows_loaded,
            "quarantined": r.rows_quarantined, "error": r.error}


def _watermark(ws: Workspace) -> int:
    value = ws.scalar("SELECT value FROM watch_state WHERE key = ?", [WATERMARK])
    if value is None:  # first run: what was loaded before watch mode started was detected by `workbench detect`
        return int(ws.scalar("SELECT coalesce(max(source_id), 0) FROM sources WHERE kind <> 'findings' "
                             "AND source_id IN (SELECT source_id FROM sources WHERE ingested_at <= "
                             "(SELECT coalesce(max(started_at), '-infinity'::TIMESTAMPTZ) FROM detect_runs))") or 0)
    return int(json.loads(value) if isinstance(value, str) else value)


def detect_new(ws: Workspace, actor: Actor) -> dict[str, Any]:
    """Run detection for every system touched by sources newer than the watermark, then move the watermark."""

    mark = _watermark(ws)
    rows = ws.rows("SELECT max(source_id), list_distinct(flatten(list(coalesce(system_ids, [])))) FROM sources "
                   "WHERE source_id > ? AND kind IN ('decisions', 'metrics')", [mark])
    top, systems = rows[0] if rows else (None, None)
    systems = sorted(systems or [])
    found: list[str] = []
    if top is None:
        return {"systems": [], "alerts": 0, "alert_ids": []}
    with_decisions = {r[0] for r in ws.rows("SELECT DISTINCT system_id FROM decisions WHERE list_contains(?, "
                                            "system_id)", [systems])} if systems else set()
    for system in systems:
        if system in with_decisions:  # a system known only from metrics is covered by the metric detector's run
            found += [a["alert_id"] for a in run_all(ws, actor, system=system)]
    if set(systems) - with_decisions:
        found += [a["alert_id"] for a in run_all(ws, actor, only=["metric_anomaly"])]
    ws.execute("INSERT OR REPLACE INTO watch_state VALUES (?, ?)", [WATERMARK, json.dumps(int(top))])
    return {"systems": systems, "alerts": len(set(found)), "alert_ids": sorted(set(found))}


def cycle(ws: Workspace, actor: Actor, dirs: list[str | Path], *, deliver: bool = True,
          backoff: float = outbox.BACKOFF_SECONDS) -> dict[str, Any]:
    """One watch cycle (poll, load ready files, detect, queue, deliver); returns its figures."""
    require(actor, "write:ingest", ws)
    require(actor, "write:detect", ws)
    require(actor, "export", ws)
    started = datetime.now(UTC)
    figures: dict[str, Any] = {"files_loaded": 0, "files_failed": 0, "files_waiting": 0, "rows_loaded": 0,
                               "rows_quarantined": 0, "errors": []}
    for path in poll(ws, dirs):
        res = _load(ws, actor, path)
        try:
            st = path.stat()
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        ws.execute("UPDATE watch_files SET state = ?, source_id = ?, error = ?, size_bytes = ?, mtime_ns = ?, "
                   "updated_at = ? WHERE path = ?",
                   [res["state"], res["source_id"], res["error"], size, mtime, datetime.now(UTC), str(path)])
        figures["files_" + res["state"]] += 1
        figures["rows_loaded"] += res["rows"] or 0
        figures["rows_quarantined"] += res["quarantined"] or 0
        if res["error"]:
            figures["errors"].append(res["error"])
    det = detect_new(ws, actor)
    figures.update({"systems_detected": det["systems"], "alerts_found": det["alerts"]})
    queued = outbox.enqueue(ws, actor)
    figures.update({"alerts_new": queued["new"], "alerts_escalated": queued["escalated"]})
    sent = outbox.deliver(ws, actor, backoff=backoff) if deliver else {"delivered": 0, "retrying": 0, "failed": 0}
    figures.update(sent)
    figures["pending"] = int(ws.scalar("SELECT count(*) FROM outbox WHERE state = 'pending'") or 0)
    busy = any(figures[k] for k in ("files_loaded", "files_failed", "alerts_new", "alerts_escalated", "delivered",
                                    "failed")) or det["systems"]
    if busy:
        with ws.transaction():
            run_id = int(ws.scalar("SELECT nextval('watch_run_seq')"))
            ws.execute("INSERT INTO watch_runs VALUES (?, ?, ?, ?, ?)",
                       [run_id, started, datetime.now(UTC), actor.user, json.dumps(figures, default=str)])
            audit.record(ws, actor, "watch.cycle", str(run_id), figures)
    return figures


def watch(ws: Workspace, actor: Actor, dirs: list[str | Path], *, every: float = 10.0, once: bool = False,
          settle: float = 1.0, cycles: int | None = None, backoff: float = outbox.BACKOFF_SECONDS,
          on_cycle: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run cycles every `every` seconds (or, with `once`, poll, wait `settle` seconds and run one cycle)."""
    require(actor, "write:ingest", ws)
    for d in dirs:
        if not Path(d).is_dir():
            raise WorkbenchError(f"{Path(d).absolute()}: not a directory to watch")
    if once:
        poll(ws, dirs)
        time.sleep(settle)
        figures = cycle(ws, actor, dirs, backoff=backoff)
        if on_cycle:
            on_cycle(figures)
        return figures
    n, figures = 0, {}
    while cycles is None or n < cycles:
        figures = cycle(ws, actor, dirs, backoff=backoff)
        if on_cycle:
            on_cycle(figures)
        n += 1
        time.sleep(every)
    return figures


def last_run(ws: Workspace) -> dict[str, Any] | None:
    """The newest watch cycle that did something (figures, times) with the queue's state now; None if none."""
    if not ws.table_exists("watch_runs"):
        return None
    rows = ws.dicts("SELECT run_id, started_at, finished_at, actor, figures FROM watch_runs "
                    "ORDER BY run_id DESC LIMIT 1")
    queue = ws.one("SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'failed'), "
                   "count(*) FILTER (WHERE state = 'delivered') FROM outbox")
    files = ws.one("SELECT count(*) FILTER (WHERE state = 'waiting'), count(*) FILTER (WHERE state = 'loaded'), "
                   "count(*) FILTER (WHERE state = 'failed') FROM watch_files")
    if not rows and not files[1] and not files[2]:
        return None
    out: dict[str, Any] = rows[0] if rows else {}
    if out:
        out["figures"] = json.loads(out["figures"]) if isinstance(out["figures"], str) else out["figures"]
    out.update({"pending": queue[0], "failed": queue[1], "delivered": queue[2], "files_waiting": files[0],
                "files_loaded": files[1], "files_failed": files[2]})
    return out
