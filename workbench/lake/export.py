"""`workbench lake export`: a workspace's decisions and metrics as hive-partitioned Parquet with a manifest.

Layout (readable by DuckDB, Spark, Delta/Databricks tooling and pyarrow datasets):
  decisions/system_id=<s>/date=<yyyy-mm-dd>/data_0.parquet   (the partition columns live in the path)
  metrics/system_id=<s>/date=<yyyy-mm-dd>/data_0.parquet     (self-contained: ingestible file by file)
  _manifest.json   path, size and SHA-256 of every file, the feature catalog, and the workspace it came from
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.lake import manifest
from workbench.store import Workspace

# The canonical decision columns written to a lake (custody columns are the exporting workspace's own).
LAKE_COLUMNS = ("decision_id", "ts", "model_version", "principal", "prediction", "score", "features",
                "model_sha256", "source_ip", "latency_ms", "status", "ground_truth", "session_id", "extra")
ROW_GROUP = 122_880


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def export_lake(ws: Workspace, actor: Actor, out: Path, *, system: str | None = None,
                overwrite: bool = False) -> dict[str, Any]:
    """Write decisions (and metrics) partitioned by system and date under `out`, hash every file, audit it."""
    require(actor, "read:decisions", ws)
    out = Path(out).absolute()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise WorkbenchError(f"{out} is not empty (use --overwrite to replace it)")
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("decisions", "metrics"):
        if (out / sub).exists():
            import shutil

            shutil.rmtree(out / sub)
    where, params = ("WHERE system_id = ?", [system]) if system else ("", [])
    n_dec = int(ws.scalar(f"SELECT count(*) FROM decisions {where}", params) or 0)
    if n_dec == 0:
        raise WorkbenchError("no decisions to export" + (f" for system {system!r}" if system else ""))
    cols = ", ".join("features::VARCHAR AS features" if c == "features" else
                     "extra::VARCHAR AS extra" if c == "extra" else c for c in LAKE_COLUMNS)
    # ordered by time inside each file: row-group min/max on ts let readers skip most of a file
    ws.execute(f"""COPY (SELECT system_id, ts::DATE AS date, {cols} FROM decisions {where}
                        ORDER BY system_id, date, ts, decision_id)
                   TO {_lit(str(out / 'decisions'))}
                   (FORMAT parquet, PARTITION_BY (system_id, date), COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP})""",
               params)
    n_met = int(ws.scalar(f"SELECT count(*) FROM metrics {where}", params) or 0)
    if n_met:
        ws.execute(f"""COPY (SELECT ts, system_id, metric, value, labels::VARCHAR AS labels, ts::DATE AS date
                            FROM metrics {where} ORDER BY system_id, date, metric, ts)
                       TO {_lit(str(out / 'metrics'))}
                       (FORMAT parquet, PARTITION_BY (system_id, date), WRITE_PARTITION_COLUMNS true,
                        COMPRESSION zstd)""", params)
    files = sorted(p for p in out.rglob("*.parquet") if p.is_file())
    entries = manifest.describe(out, files)
    catalog: dict[str, dict[str, str]] = {}
    for sid, feat, typ in ws.rows("SELECT system_id, feature, type FROM feature_catalog "
                                  + ("WHERE system_id = ? " if system else "") + "ORDER BY 1, 2", params):
        catalog.setdefault(sid, {})[feat] = typ
    wsid = ws.scalar("SELECT value FROM workspace_meta WHERE key = 'workspace_id'")
    doc = manifest.write(out, entries, {
        "exported_at": datetime.now(UTC).isoformat(), "exported_by": actor.user,
        "workspace_id": json.loads(wsid) if isinstance(wsid, str) else wsid, "system": system,
        "decisions": n_dec, "metrics": n_met, "feature_catalog": catalog,
        "partitioning": ["system_id", "date"]})
    summary = {"out": str(out), "decisions": n_dec, "metrics": n_met, "files": len(entries),
               "size_bytes": sum(e["size_bytes"] for e in entries), "manifest_sha256": doc["manifest_sha256"],
               "system": system}
    audit.record(ws, actor, "lake.export", str(out), summary)
    return summary
