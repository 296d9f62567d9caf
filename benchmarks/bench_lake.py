"""Benchmark: detection over a Parquet lake on DuckDB and on local Spark, time and peak memory per stage.

    python benchmarks/bench_lake.py [--rows 10000000] [--dir /tmp/bench_lake] [--engines duckdb,spark]

N decisions are generated with bench_detect's SQL generator (two systems, 500 principals, 30 days, injected
patterns including a flood), exported with `workbench lake export` (hive-partitioned by system and date, hashed),
then attached read-only to fresh workspaces and detected on each engine: DuckDB with a memory limit and a
spill directory; Spark in local mode (local[2], 1g driver) for the ported families (lake.engine.SPARK_FAMILIES),
the rest on DuckDB over the same lake. Prints the seconds of each stage, peak RSS (this process and, for Spark,
its JVM), rows per core-second of the Spark stages, and whether both engines gave the same alerts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detect import _peak_rss, generate  # noqa: E402

from workbench.access import local_admin  # noqa: E402
from workbench.store import open_workspace  # noqa: E402


def _tree_rss() -> int:
    """RSS of this process and its children (Spark's JVM)."""
    proc = psutil.Process(os.getpid())
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


def _watch_tree() -> tuple[object, list[int]]:
    import threading

    stop, peak = threading.Event(), [0]

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss())
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    return stop, peak


def signature(alerts: list[dict]) -> list[tuple]:
    """Detector, system, principal, window and decision ids of each alert."""
    return sorted((a["detector"], a["system_id"], a.get("principal") or "", str(a["window_start"]),
                   str(a["window_end"]), tuple(sorted(a["decision_ids"]))) for a in alerts)


def build_lake(root: Path, rows: int, keep: bool) -> Path:
    """Generate the decisions in a scratch workspace and export them as a lake; returns the lake directory."""
    lake = root / "lake"
    if keep and (lake / "_manifest.json").exists():
        return lake
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    from workbench.lake import export_lake

    ws = open_workspace(root / "gen.duckdb")
    t = time.perf_counter()
    with ws.transaction():
        generate(ws, rows)
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    res = export_lake(ws, local_admin(), lake)
    print(f"generate {t_gen:.1f} s; export {time.perf_counter() - t:.1f} s: {res['decisions']:,} decisions, "
          f"{res['files']} files, {res['size_bytes'] / 2**20:.0f} MiB")
    ws.close()
    (root / "gen.duckdb").unlink()
    return lake


def run(root: Path, lake: Path, engine: str, memory_limit: str) -> list[dict]:
    """Attach the lake to a fresh workspace and detect on one engine; print the stages."""
    from workbench.detect import LAST_RUN
    from workbench.lake import attach
    from workbench.lake.engine import detect

    db = root / f"{engine}.duckdb"
    db.unlink(missing_ok=True)
    ws = open_workspace(db)
    actor = local_admin()
    if memory_limit:
        ws.execute(f"SET memory_limit = '{memory_limit}'")
    ws.execute(f"SET temp_directory = '{root / 'spill'}'")
    stop, peak = (_watch_tree() if engine == "spark" else _peak_rss())
    t = time.perf_counter()
    info = attach(ws, actor, lake, name="bench")
    t_attach = time.perf_counter() - t
    if engine == "spark":
        from workbench.lake import spark

        t = time.perf_counter()
        spark.session()
        print(f"[spark] session start {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    alerts, where = detect(ws, actor, "bench", engine=engine)
    total = time.perf_counter() - t
    stop.set()
    print(f"[{engine}] attach (pin and hash {info['files']} files) {t_attach:.1f} s; detect {total:.1f} s; "
          f"peak RSS {peak[0] / 2**30:.2f} GB (memory_limit {memory_limit or 'default'})")
    if LAST_RUN.get("errors"):
        print(f"  errors: {LAST_RUN['errors']}")
    for name, secs in LAST_RUN["timings"].items():
        if name.startswith("llm_") and secs < 0.05:
            continue
        on = "spark" if name in where["spark"] else "duckdb"
        print(f"  {name:<16} {secs:7.1f} s  {on}")
    if engine == "spark":
        secs = sum(LAST_RUN["timings"].get(n, 0.0) for n in where["spark"])
        n = info["decisions"]
        print(f"  spark stages: {secs:.1f} s for {n:,} rows = {n / max(secs, 1e-9) / (os.cpu_count() or 1):,.0f} "
              f"rows per core-second")
    ws.close()
    return alerts


def main() -> None:
    """Parse arguments, build the lake, run the engines, compare their alerts."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench_lake"))
    ap.add_argument("--engines", default="duckdb,spark")
    ap.add_argument("--memory-limit", default="2500MB", help="DuckDB memory_limit ('' = default); spills beyond")
    ap.add_argument("--keep", action="store_true", help="reuse the lake if it exists")
    args = ap.parse_args()
    lake = build_lake(args.dir, args.rows, args.keep)
    got = {}
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        got[engine] = signature(run(args.dir, lake, engine, args.memory_limit))
    if len(got) == 2:
        print("same alerts on both engines:", got["duckdb"] == got["spark"], f"({len(got['duckdb'])} alerts)")
    if "spark" in got:
        from workbench.lake import spark

        spark.stop()


if __name__ == "__main__":
    main()
