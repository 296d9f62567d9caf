"""`workbench lake attach|list|verify|detach`: an existing Parquet or Delta lake as a read-only source.

Attaching pins the files (for Delta: the files of the current table version, read through the `deltalake`
package from the transaction log, never a raw glob), hashes each one into a custody manifest (lake_files), adds
a `sources` row of kind 'lake' that stands for the whole lake (so frozen evidence names its source), and
rebuilds the `all_decisions` view: the workspace's decisions UNION ALL each lake's canonical relation. Search,
explain, evidence and detection read `all_decisions`, so attached decisions behave like ingested ones.
Nothing is copied; the lake's metrics (small series) are ingested file by file with the usual custody.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.ingest import ingest
from workbench.lake import manifest
from workbench.store import Workspace

# decisions' columns in table order (the view unions positionally); custody columns are filled per lake
CANONICAL = (("system_id", "VARCHAR"), ("decision_id", "VARCHAR"), ("ts", "TIMESTAMPTZ"),
             ("model_version", "VARCHAR"), ("principal", "VARCHAR"), ("prediction", "VARCHAR"),
             ("score", "DOUBLE"), ("features", "JSON"), ("model_sha256", "VARCHAR"), ("source_ip", "VARCHAR"),
             ("latency_ms", "DOUBLE"), ("status", "VARCHAR"), ("ground_truth", "VARCHAR"),
             ("session_id", "VARCHAR"), ("extra", "JSON"))
REQUIRED = ("system_id", "decision_id", "ts")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_JSON_TYPE = {"BIGINT": "number", "UBIGINT": "number", "DOUBLE": "number", "BOOLEAN": "bool"}


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def resolve(uri: str | Path) -> Path:
    """A local directory from a path or a file:// URI (object stores need credentials: not offline)."""
    text = str(uri)
    parsed = urlparse(text)
    if parsed.scheme and len(parsed.scheme) > 1:
        if parsed.scheme != "file":
            raise WorkbenchError(f"{parsed.scheme}:// lakes are not supported yet: mount or sync it locally")
        text = unquote(parsed.path)
    root = Path(text).expanduser().absolute()
    if not root.is_dir():
        raise WorkbenchError(f"{root}: not a directory")
    return root


def pinned_files(root: Path) -> tuple[str, int | None, Path, list[Path]]:
    """(format, delta version, decisions root, files): the files a reader of this lake would read now."""
    if (root / "_delta_log").is_dir():
        from deltalake import DeltaTable

        dt = DeltaTable(str(root))
        unsupported = set(dt.protocol().reader_features or []) & {"deletionVectors", "columnMapping"}
        if unsupported:
            raise WorkbenchError(f"{root}: Delta reader features {sorted(unsupported)} are not supported")
        files = [Path(unquote(urlparse(u).path) if "://" in u else u) for u in dt.file_uris()]
        for col in dt.metadata().partition_columns:
            if any(f"{col}=" not in f.as_posix() for f in files):
                raise WorkbenchError(f"{root}: partition column {col} is not in the file paths")
        return "delta", dt.version(), root, sorted(files)
    base = root / "decisions" if (root / "decisions").is_dir() else root
    files = sorted(p for p in base.rglob("*.parquet") if p.is_file() and not p.name.startswith((".", "_")))
    return "parquet", None, base, files


def _reader(files: list[Path]) -> str:
    listed = ", ".join(_lit(str(f)) for f in files)
    return (f"read_parquet([{listed}], hive_partitioning = true, hive_types_autocast = false, "
            "file_row_number = true, union_by_name = true)")


def relation(ws: Workspace, files: list[Path], source_id: int, name: str) -> str:
    """The SELECT that reads the pinned files as rows of the decisions table (missing columns NULL)."""
    reader = _reader(files)
    have = {r[0]: r[1] for r in ws.rows(f"DESCRIBE SELECT * FROM {reader}")}
    missing = [c for c in REQUIRED if c not in have]
    if missing:
        raise WorkbenchError(f"lake {name}: no {', '.join(missing)} column; decisions need "
                             + ", ".join(REQUIRED))
    items = []
    for col, typ in CANONICAL:
        if col not in have:
            items.append(("'{}'::JSON" if col == "features" else f"NULL::{typ}") + f" AS {col}")
        elif typ == "JSON" and have[col].startswith(("STRUCT", "MAP")):
            items.append(f"to_json({col}) AS {col}")
        else:
            items.append(f"{col}::{typ} AS {col}")
    items += [f"{int(source_id)}::INTEGER AS source_id", "file_row_number AS source_line",
              "NULL::VARCHAR AS ingest_error", "NULL::VARCHAR AS ingest_raw", f"{_lit(name)} AS lake"]
    return f"SELECT {', '.join(items)} FROM {reader}"


def rebuild_view(ws: Workspace) -> None:
    """all_decisions = the workspace's decisions, then every attached lake's relation."""
    parts = ["SELECT *, NULL::VARCHAR AS lake FROM decisions"]
    parts += [r[0] for r in ws.rows("SELECT relation FROM lakes ORDER BY name")]
    ws.execute("CREATE OR REPLACE VIEW all_decisions AS " + " UNION ALL ".join(f"({p})" for p in parts))


def attach(ws: Workspace, actor: Actor, uri: str | Path, *, name: str | None = None) -> dict[str, Any]:
    """Register a Parquet or Delta lake read-only: pin and hash its files, expose its decisions, audit it."""
    require(actor, "write:ingest", ws)
    root = resolve(uri)
    name = name or root.name
    if not _NAME.match(name):
        raise WorkbenchError(f"lake name {name!r}: use a letter then letters, digits, _ or - (at most 63)")
    if ws.scalar("SELECT count(*) FROM lakes WHERE name = ?", [name]):
        raise WorkbenchError(f"a lake named {name!r} is already attached")
    fmt, version, base, files = pinned_files(root)
    if not files:
        raise WorkbenchError(f"{root}: no Parquet files")
    exported = manifest.read(root)
    entries = manifest.describe(root, files)
    if exported:  # a lake written by `workbench lake export`: its files must be the ones it lists
        listed = {e["path"]: e for e in exported.get("files", [])}
        changed = [e["path"] for e in entries if e["path"].startswith("decisions/")
                   and listed.get(e["path"], {}).get("sha256") != e["sha256"]]
        if changed:
            raise WorkbenchError(f"lake {name}: {len(changed)} file(s) differ from its _manifest.json "
                                 f"(first: {changed[0]})")
    digest = manifest.manifest_hash(entries)
    size = sum(e["size_bytes"] for e in entries)
    with ws.transaction():
        sid = int(ws.scalar("SELECT nextval('source_id_seq')"))
        rel = relation(ws, files, sid, name)
        n, systems, t0, t1 = ws.one(f"SELECT count(*), list(DISTINCT system_id ORDER BY system_id), min(ts), "
                                    f"max(ts) FROM ({rel})")
        overlap = ws.scalar(f"SELECT count(*) FROM ({rel}) l JOIN decisions d USING (system_id, decision_id)")
        if overlap:
            raise WorkbenchError(f"lake {name}: {overlap} of its decisions are already in this workspace")
        ws.execute("INSERT INTO sources VALUES (?, ?, ?, ?, 'lake', ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
                   [sid, str(root), digest, size, fmt, datetime.now(UTC), actor.user, actor.role, n, n,
                    systems or [], t0, t1])
        ws.execute("INSERT INTO lakes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [name, str(root), fmt, version, sid, datetime.now(UTC), actor.user, len(entries), size,
                    digest, rel])
        ws.execute("INSERT INTO lake_files SELECT ?, unnest(?::VARCHAR[]), unnest(?::BIGINT[]), "
                   "unnest(?::VARCHAR[]), NULL",
                   [name, [e["path"] for e in entries], [e["size_bytes"] for e in entries],
                    [e["sha256"] for e in entries]])
        _catalog(ws, rel, sid, (exported or {}).get("feature_catalog") or {})
        rebuild_view(ws)
        summary = {"name": name, "uri": str(root), "format": fmt, "version": version, "files": len(entries),
                   "size_bytes": size, "decisions": int(n), "systems": systems or [], "manifest_sha256": digest,
                   "source_id": sid}
        audit.record(ws, actor, "lake.attach", name, summary)
    metrics_dir = root / "metrics"
    if fmt == "parquet" and metrics_dir.is_dir():

        results = ingest(ws, actor, [metrics_dir], kind="metrics", fmt="parquet")
        summary["metrics_files"] = len(results)
        summary["metrics_rows"] = sum(getattr(r, "rows_loaded", 0) or 0 for r in results)
    return summary


def _catalog(ws: Workspace, rel: str, sid: int, known: dict[str, dict[str, str]]) -> None:
    """Feature catalog rows for the lake's systems: from its manifest, else the JSON type seen first."""
    rows = [(s, f, t) for s, feats in known.items() for f, t in feats.items()]
    if not rows:
        rows = [(s, f, _JSON_TYPE.get(t or "", "string")) for s, f, t in ws.rows(
            f"""SELECT system_id, k, arg_min(json_type(features, '$."' || k || '"'), ts)
                FROM (SELECT system_id, ts, features, unnest(json_keys(features)) AS k FROM ({rel})
                      USING SAMPLE 20000 ROWS)
                GROUP BY ALL ORDER BY ALL""")]
    for s, f, t in rows:
        ws.execute("INSERT INTO feature_catalog VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", [s, f, t, sid])


def list_lakes(ws: Workspace, actor: Actor) -> list[dict[str, Any]]:
    """The attached lakes with their custody figures."""
    require(actor, "read:aggregates", ws)
    return ws.dicts("SELECT name, uri, format, version, source_id, attached_at, attached_by, files, size_bytes, "
                    "manifest_sha256 FROM lakes ORDER BY name")


def verify(ws: Workspace, actor: Actor, name: str | None = None) -> list[dict[str, Any]]:
    """Re-hash every pinned file of each lake (or one) against its custody manifest; audited."""
    require(actor, "read:aggregates", ws)
    lakes = ws.dicts("SELECT name, uri, manifest_sha256 FROM lakes" + (" WHERE name = ?" if name else "")
                     + " ORDER BY name", [name] if name else None)
    if name and not lakes:
        raise WorkbenchError(f"no lake named {name!r}")
    out = []
    for lake in lakes:
        entries = ws.dicts("SELECT path, size_bytes, sha256 FROM lake_files WHERE lake = ? ORDER BY path",
                           [lake["name"]])
        bad = manifest.check(Path(lake["uri"]), entries)
        ok = not bad and manifest.manifest_hash(entries) == lake["manifest_sha256"]
        row = {"name": lake["name"], "files": len(entries), "ok": ok, "problems": bad[:20],
               "manifest_sha256": lake["manifest_sha256"]}
        audit.record(ws, actor, "lake.verify", lake["name"], {k: v for k, v in row.items() if k != "problems"}
                     | {"problems": len(bad)})
        out.append(row)
    return out


def detach(ws: Workspace, actor: Actor, name: str) -> dict[str, Any]:
    """Forget a lake (its files are untouched; evidence frozen from it keeps its copies and hashes)."""
    require(actor, "write:ingest", ws)
    row = ws.one("SELECT source_id, files FROM lakes WHERE name = ?", [name])
    if not row:
        raise WorkbenchError(f"no lake named {name!r}")
    with ws.transaction():
        ws.execute("DELETE FROM lakes WHERE name = ?", [name])
        ws.execute("DELETE FROM lake_files WHERE lake = ?", [name])
        ws.execute("DELETE FROM feature_catalog WHERE first_source = ? AND NOT EXISTS (SELECT 1 FROM decisions d "
                   "WHERE d.system_id = feature_catalog.system_id)", [row[0]])
        rebuild_view(ws)
        audit.record(ws, actor, "lake.detach", name, {"source_id": row[0], "files": row[1]})
    return {"name": name, "source_id": row[0]}
