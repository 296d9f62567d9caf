"""`workbench detect --engine duckdb|spark --lake DIR`: the same detectors over an attached lake.

With the Spark engine, the families whose heavy work is ported (SPARK_FAMILIES) compute it on Spark over the
lake's pinned files and are judged by the same code; the other families run on DuckDB over the same lake
(the `all_decisions` view), so the alerts are the same set whichever engine runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.access import Actor, require
from workbench.detect import DETECTORS, run_all
from workbench.errors import WorkbenchError
from workbench.lake import spark
from workbench.lake.attach import attach, resolve
from workbench.lake.spark_flood import SparkFlood
from workbench.store import Workspace

ENGINES = ("duckdb", "spark")
SPARK_FAMILIES = ("flood",)


def ensure_attached(ws: Workspace, actor: Actor, lake: str) -> str:
    """The name of the lake given by name, path or URI, attaching it first if it is new."""
    if ws.scalar("SELECT count(*) FROM lakes WHERE name = ?", [lake]):
        return lake
    root = resolve(lake)
    name = ws.scalar("SELECT name FROM lakes WHERE uri = ?", [str(root)])
    return name or attach(ws, actor, root)["name"]


def spark_frames(ws: Workspace, name: str) -> dict[str, Any]:
    """One Spark DataFrame per system held by this lake alone (systems mixed with other rows stay on DuckDB)."""
    from pyspark.sql import functions as F


    uri, fmt = ws.one("SELECT uri, format FROM lakes WHERE name = ?", [name])
    root = Path(uri)
    base = root / "decisions" if fmt == "parquet" and (root / "decisions").is_dir() else root
    files = [root / r[0] for r in ws.rows("SELECT path FROM lake_files WHERE lake = ? ORDER BY path", [name])]
    only_here = [r[0] for r in ws.rows("SELECT system_id FROM all_decisions GROUP BY 1 "
                                       "HAVING count_if(lake IS DISTINCT FROM ?) = 0 ORDER BY 1", [name])]
    df = spark.decisions(spark.session(), base, files)
    return {sid: df.where(F.col("system_id") == sid) for sid in only_here}


def detect(ws: Workspace, actor: Actor, lake: str, *, engine: str = "duckdb", system: str | None = None,
           since: str | None = None, until: str | None = None,
           only: list[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the detectors over an attached lake on an engine; (alerts, which family ran where)."""

    require(actor, "write:detect", ws)
    if engine not in ENGINES:
        raise WorkbenchError(f"unknown engine {engine!r}; use {' or '.join(ENGINES)}")
    name = ensure_attached(ws, actor, lake)
    names = [n for n, _ in DETECTORS if not only or n in only]
    if engine == "duckdb":
        return run_all(ws, actor, system=system, since=since, until=until, only=only), \
            {"engine": "duckdb", "lake": name, "duckdb": names, "spark": []}

    flood = SparkFlood(spark_frames(ws, name))
    alerts = run_all(ws, actor, system=system, since=since, until=until, only=only,
                     overrides={"flood": flood})
    return alerts, {"engine": "spark", "lake": name, "spark": [n for n in names if n in SPARK_FAMILIES],
                    "duckdb": [n for n in names if n not in SPARK_FAMILIES], "flood_systems": flood.ran_on}
