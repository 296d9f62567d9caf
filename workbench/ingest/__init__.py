"""Ingest: files -> canonical decisions and metrics, with custody hashes, quarantine and audit."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from workbench import audit, traces
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.ingest import decisions, metrics, notdata
from workbench.ingest import settle as settling
from workbench.ingest.files import detect_format, expand, head_text, sha256_file, sniff_kind
from workbench.ingest.importers import IMPORTERS, load_all
from workbench.ingest.lines import blank_lines, line_numbers
from workbench.ingest.reading import Reader
from workbench.store import Workspace
from workbench.store.workspace import undo_interrupted_loads

KINDS = ("decisions", "metrics", "traces")
# Decision files from this size up load in a bulk and a settling transaction (see _load_decisions); below it the
# WAL copy that a single transaction costs is smaller than a second commit.
SINGLE_PASS_BYTES = 8 << 20


@dataclass
class FileResult:
    """What happened to one file: the ingest summary row."""

    path: str
    sha256: str | None = None
    kind: str | None = None
    format: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    duplicates: int = 0
    rows_quarantined: int = 0
    skipped: bool = False
    source_id: int | None = None
    system_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    note: str | None = None  # why a file was skipped other than as already ingested (workbench/ingest/notdata.py)

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary for --json output."""
        return asdict(self)


def ingest(
    ws: Workspace,
    actor: Actor,
    paths: list[str | Path],
    *,
    kind: str | None = None,
    fmt: str | None = None,
    system: str | None = None,
    mapping: dict[str, Any] | None = None,
    reingest: bool = False,
    on_file: Callable[[FileResult, int], None] | None = None,
) -> list[FileResult]:
    """Ingest files, globs and directories; one transaction per file; returns one result per file."""
    require(actor, "write:ingest", ws)
    if kind is not None and kind not in KINDS:
        raise WorkbenchError(f"unknown kind {kind!r}; use decisions, metrics or traces")
    load_all()
    if fmt is not None and fmt not in ("jsonl", "csv", "parquet", "prometheus", *IMPORTERS, *traces.FORMATS):
        raise WorkbenchError(f"unknown format {fmt!r}; known: jsonl, csv, parquet, prometheus, "
                             + ", ".join(sorted([*IMPORTERS, *traces.FORMATS])))
    results = []
    for path in expand(paths):
        result = ingest_file(ws, actor, path, kind=kind, fmt=fmt, system=system, mapping=mapping, reingest=reingest)
        results.append(result)
        if on_file:
            on_file(result, path.stat().st_size if path.exists() else 0)
    return results


def ingest_file(ws: Workspace, actor: Actor, path: Path, *, kind: str | None = None, fmt: str | None = None,
                system: str | None = None, mapping: dict[str, Any] | None = None,
                reingest: bool = False) -> FileResult:
    """Ingest one file; errors are returned in the result as one line, never raised past here.

    A file whose SHA-256 was ingested before is skipped, unless `reingest` (for a second try with other
    options): then it is read again as a new source, and what it already loaded counts as duplicates.
    """
    require(actor, "write:ingest", ws)
    load_all()  # the CLI calls ingest_file directly: make sure the platform importers are registered
    started = time.perf_counter()
    path = Path(path).absolute()
    result = FileResult(path=str(path))
    digest: Callable[[], str] | None = None
    blanks: Callable[[], list[int]] | None = None  # the numbers of the file's blank lines (see Reader.blank_lines)
    try:
        # The CLI calls this directly: an unknown --kind/--from must not record the file as ingested.
        if kind is not None and kind not in KINDS:
            raise WorkbenchError(f"unknown kind {kind!r}; use decisions, metrics or traces")
        if fmt is not None and fmt not in ("jsonl", "csv", "parquet", "prometheus", *IMPORTERS, *traces.FORMATS):
            raise WorkbenchError(f"unknown format {fmt!r}; known: jsonl, csv, parquet, prometheus, "
                                 + ", ".join(sorted([*IMPORTERS, *traces.FORMATS])))
        if not path.is_file():
            raise WorkbenchError(f"{path}: not found")
        if skip := notdata.note(path, kind, fmt, IMPORTERS):  # e.g. ground_truth.json beside the spans
            result.skipped, result.note = True, skip
            return result
        before = _identity(path)  # before the first read: every read below must see these bytes
        size = before[2]
        if reingest or ws.scalar("SELECT count(*) FROM sources WHERE size_bytes = ?", [size]):
            result.sha256 = sha256_file(path)
            prior = ws.one("SELECT source_id, kind, format FROM sources WHERE sha256 = ? ORDER BY source_id "
                           "LIMIT 1", [result.sha256])
            if prior and not reingest:
                result.skipped, result.source_id, result.kind, result.format = True, prior[0], prior[1], prior[2]
                return result
            digest = _known(result.sha256)
        else:
            # No file of this size was ingested, so this one is new: hash it while it loads (and note where its
            # blank lines are: a CSV reader skips them without counting them).
            digest, blanks = _hash_in_background(path)
        digest = _guarded(path, before, digest)
        if trace_fmt := traces.recognise(path, kind, fmt):  # LLM and agent traces (workbench.traces)
            traces.load(ws, actor, path, result, trace_fmt, system, digest, size)
            return result
        result.format, importer = _resolve_format(path, fmt)
        result.kind = importer.kind if importer else (kind or sniff_kind(path, result.format))
        if importer and kind and importer.kind != kind:
            raise WorkbenchError(f"{path}: format {importer.name} holds {importer.kind}, not {kind}")
        if importer and importer.needs_mapping and not mapping:
            raise WorkbenchError(f"{path}: the {importer.name} importer needs --mapping FILE; {importer.help}")
        _load(ws, actor, path, result, importer, system, mapping, digest, size, blanks)
    except WorkbenchError as exc:
        result.error = str(exc)
    except duckdb.Error as exc:
        result.error = f"{path}: {_one_line(exc)}"
    except (OSError, UnicodeError, ValueError) as exc:
        result.error = f"{path}: {exc}"
    finally:
        if result.sha256 is None and digest is not None:
            try:  # a file that failed to load still reports the hash of what was tried
                result.sha256 = digest()
            except WorkbenchError as exc:  # a corrupt file (truncated gzip) explains the load's failure best
                result.error = str(exc)
            except OSError as exc:
                result.error = result.error or f"{path}: {exc}"
        result.seconds = round(time.perf_counter() - started, 3)
    return result


def _identity(path: Path) -> tuple[int, int, int, int, int]:
    """What changes whenever a file's bytes change: device, inode, size, modification and change time (ns)."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _guarded(path: Path, before: tuple, digest: Callable[[], str]) -> Callable[[], str]:
    """The file's digest, given only if the file is still the one first read (called after the last read).

    The kernel moves a file's change time on every write (and the inode differs when it is replaced), so an
    unchanged identity means the hash and every read of the load saw the same bytes. A file under
    SINGLE_PASS_BYTES is also hashed again, which costs little. Otherwise the load is refused (and undone).
    """
    def check() -> str:
        value = digest()
        same = _identity(path) == before if path.exists() else False
        if same and before[2] < SINGLE_PASS_BYTES:
            same = sha256_file(path) == value
        if not same:
            raise WorkbenchError(f"{path}: the file changed while it was being ingested; nothing was loaded "
                                 "(ingest it again once it is complete)")
        return value

    return check


def _known(value: str) -> Callable[[], str]:
    return lambda: value


def _hash_in_background(path: Path) -> tuple[Callable[[], str], Callable[[], list[int]]]:
    """Start hashing a file on a thread (hashlib releases the GIL); the returned calls wait for the digest, and
    for the numbers of the file's blank lines (found in the same pass)."""
    box: dict[str, Any] = {}
    offsets: list[int] = []

    def work() -> None:
        try:
            box["sha"] = sha256_file(path, offsets)
        except BaseException as exc:  # handed to the waiting caller
            box["error"] = exc

    thread = threading.Thread(target=work, name="sha256", daemon=True)
    thread.start()

    def wait() -> str:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["sha"]

    def blanks() -> list[int]:
        thread.join()
        return line_numbers(path, offsets) if "sha" in box else blank_lines(path)

    return wait, blanks


def _resolve_format(path: Path, fmt: str | None):
    if fmt in IMPORTERS:
        return fmt, IMPORTERS[fmt]
    if fmt:
        return fmt, None
    head = head_text(path)
    for imp in IMPORTERS.values():
        if imp.sniff and imp.sniff(path, head):
            return imp.name, imp
    return detect_format(path), None


def _load(ws: Workspace, actor: Actor, path: Path, result: FileResult, importer, system, mapping,
          sha256: Callable[[], str], size: int, blanks: Callable[[], list[int]] | None = None) -> None:
    if result.kind == "decisions":
        _load_decisions(ws, actor, path, result, importer, system, mapping, sha256, size, blanks)
        return
    with ws.transaction() as con:
        source_id = con.execute("SELECT nextval('source_id_seq')").fetchone()[0]
        reader = _staged(con, path, result, importer, system, mapping, blanks)
        metrics.check(reader)
        counts = metrics.load(reader, source_id, path)
        _record(ws, actor, path, result, size, source_id, counts, metrics.span(con, source_id), system, sha256())


def _load_decisions(ws: Workspace, actor: Actor, path: Path, result: FileResult, importer, system, mapping,
                    sha256: Callable[[], str], size: int, blanks: Callable[[], list[int]] | None) -> None:
    # Large files take two passes (see migration 010): the bulk append alone in its transaction keeps DuckDB on its
    # direct-to-disk path; the settling pass then fixes up what it appended. A failure or kill between is undone.
    # Small files do both in one transaction, the cheapest for them.
    two_pass = size >= SINGLE_PASS_BYTES

    def settle(con, source_id: int) -> None:
        counts = settling.settle(reader, source_id, path)
        _record(ws, actor, path, result, size, source_id, counts, settling.span(con, source_id), system, sha256())

    with ws.transaction() as con:
        source_id = con.execute("SELECT nextval('source_id_seq')").fetchone()[0]
        if two_pass:
            con.execute("INSERT INTO ingest_pending VALUES (?, ?, ?, ?, now())",
                        [source_id, str(path.resolve()), actor.user, actor.role])
        reader = _staged(con, path, result, importer, system, mapping, blanks)
        decisions.check(reader)
        decisions.insert(reader, source_id)
        if not two_pass:
            settle(con, source_id)
    if not two_pass:
        return
    try:
        with ws.transaction() as con:
            settle(con, source_id)
            con.execute("DELETE FROM ingest_pending WHERE source_id = ?", [source_id])
    except BaseException:
        undo_interrupted_loads(ws, [source_id])
        raise


def _staged(con, path: Path, result: FileResult, importer, system, mapping,
            blanks: Callable[[], list[int]] | None = None) -> Reader:
    reader = Reader.for_file(con, path, result.format)
    reader.blank_lines = blanks or (lambda: blank_lines(path))
    module = decisions if result.kind == "decisions" else metrics
    if importer:
        importer.stage(reader, path, system, mapping)
        if system:
            table = "_stage" if result.kind == "decisions" else "_mstage"
            con.execute(f"UPDATE {table} SET system_id = coalesce(system_id, ?)", [system])
    else:
        module.stage(reader, path, result.format, system)
    return reader


def _record(ws: Workspace, actor: Actor, path: Path, result: FileResult, size: int, source_id: int,
            counts: dict[str, int], span: tuple, system: str | None, sha256: str) -> None:
    """The custody record of a loaded file and its audit row, in the caller's transaction."""
    systems, ts_min, ts_max = span
    result.sha256 = sha256
    ws.execute(
        "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [source_id, str(path.resolve()), sha256, size, result.kind, result.format, datetime.now(UTC),
         actor.user, actor.role, counts["rows_read"], counts["rows_loaded"], counts["duplicates"],
         counts["rows_quarantined"], systems or [], ts_min, ts_max],
    )
    result.source_id, result.system_ids = source_id, systems or []
    for key, value in counts.items():
        setattr(result, key, value)
    audit.record(ws, actor, "ingest.file", str(path.resolve()),
                 {"source_id": source_id, "sha256": sha256, "kind": result.kind,
                  "format": result.format, "system": system, **counts})


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def sources(ws: Workspace, actor: Actor) -> list[dict[str, Any]]:
    """Every ingested source file with its custody record."""
    require(actor, "read:aggregates", ws)
    return ws.dicts("SELECT * FROM sources ORDER BY source_id")


def rejects(ws: Workspace, actor: Actor, source_id: int | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Quarantined rows with file, line, raw text and reason (raw text is decision-level data)."""
    require(actor, "read:decisions", ws)
    where = "WHERE source_id = ?" if source_id is not None else ""
    params = [source_id] if source_id is not None else []
    rows = ws.dicts(f"SELECT * FROM quarantine {where} ORDER BY source_id, line LIMIT ?", [*params, limit])
    audit.record(ws, actor, "read.quarantine", None, {"source_id": source_id, "rows": len(rows)})
    return rows


def verify_sources(ws: Workspace, actor: Actor) -> list[dict[str, Any]]:
    """Re-hash every source file still on disk: ok, changed or missing."""
    require(actor, "read:aggregates", ws)
    out = []
    for source_id, path, sha in ws.rows("SELECT source_id, path, sha256 FROM sources ORDER BY source_id"):
        p = Path(path)
        if not p.exists():
            status, now = "missing", None
        else:
            try:
                now = sha256_file(p)
                status = "ok" if now == sha else "changed"
            except WorkbenchError:
                now, status = None, "changed"
        out.append({"source_id": source_id, "path": path, "sha256": sha, "sha256_now": now, "status": status})
    audit.record(ws, actor, "custody.verify", None,
                 {"files": len(out), "bad": sum(r["status"] != "ok" for r in out)})
    return out
