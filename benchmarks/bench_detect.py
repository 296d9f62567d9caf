"""Benchmark: the full detector suite over N decisions (default 10,000,000) generated in DuckDB SQL.

    python benchmarks/bench_detect.py [--rows 10000000] [--db /tmp/bench_detect.duckdb] [--keep]

Decisions are written straight into a workspace with SQL (not the sample generator): two systems, 500
principals with working hours and addresses, 8 features (numbers, a category, a boolean), 30 days, plus a few
injected patterns (a sweeping principal, a near-duplicate walk, a flood, a night-time key, an unregistered
hash) so every detector has work to do. Prints the time per detector, the total, and the peak RSS of this
process (DuckDB runs in-process). Targets: <= 120 s and < 4 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import psutil

from workbench.access import local_admin
from workbench.store import open_workspace

FEATURES = {"amount": "number", "tenure_days": "number", "score_bureau": "number", "ratio": "number",
            "count_30d": "number", "channel": "string", "is_new": "bool", "age": "number"}


def _peak_rss() -> tuple[threading.Event, list[int]]:
    stop, peak = threading.Event(), [0]
    proc = psutil.Process(os.getpid())

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    return stop, peak


def generate(ws, rows: int) -> None:
    """Fill decisions, feature_catalog, metrics and a registry row with SQL only."""
    ws.execute("INSERT INTO sources (path, sha256, size_bytes, kind, format, ingested_at, actor, role, rows_read, "
               "rows_loaded, duplicates, rows_quarantined) VALUES ('bench', '0', 0, 'decisions', 'sql', now(), "
               "'bench', 'admin', 0, 0, 0, 0)")
    src = ws.scalar("SELECT max(source_id) FROM sources")
    ws.execute(f"""
        INSERT INTO decisions (system_id, decision_id, ts, model_version, principal, prediction, score, features,
                               model_sha256, source_ip, latency_ms, status, ground_truth, session_id, extra,
                               source_id, source_line)
        WITH base AS (
            SELECT i, CASE WHEN i % 10 < 7 THEN 'sys-a' ELSE 'sys-b' END AS system_id,
                   (hash(i * 7) % 500)::INT AS p,
                   TIMESTAMPTZ '2026-01-01 00:00:00+00'
                     + to_seconds(least(2591999, greatest(0, (i * 2592000.0 / {rows})::BIGINT
                                                        + (hash(i * 13) % 1200)::BIGINT - 600)))
                     AS t0,
                   hash(i) AS h1, hash(i + 1000000007) AS h2
            FROM range({rows}) r(i)),
        shaped AS (
            SELECT *, 'p-' || p AS principal,
                   -- working hours: principals p%3=0 only 07-18 UTC, with a smooth daily rise and fall (mean of
                   -- three uniforms: no hard step at 07:00 and 18:00, which a real office's traffic does not have)
                   CASE WHEN p % 3 = 0 THEN date_trunc('day', t0) + INTERVAL 7 HOUR
                        + to_seconds(((hash(i * 31) % 1000 + hash(i * 37) % 1000 + hash(i * 41) % 1000) / 3000.0
                                      * 39600)::BIGINT) ELSE t0 END AS ts
            FROM base)
        SELECT system_id, system_id || '-' || i, ts,
               CASE WHEN ts > TIMESTAMPTZ '2026-01-20 00:00:00+00' THEN '2.0' ELSE '1.0' END,
               principal,
               CASE WHEN (h1 % 1000) / 1000.0 < 0.6 THEN 'approve' WHEN (h1 % 1000) / 1000.0 < 0.85 THEN 'refer'
                    ELSE 'deny' END,
               (h1 % 1000) / 1000.0,
               json_object('amount', round(exp(4 + ((h2 % 1000) / 1000.0) * 2 + (p % 7) * 0.1), 2),
                           'tenure_days', (h2 % 3650)::INT, 'score_bureau', 300 + (h1 % 551)::INT,
                           'ratio', round(((h2 >> 10) % 1000) / 1000.0, 3), 'count_30d', ((h2 >> 20) % 12)::INT,
                           'channel', ['web', 'app', 'branch', 'partner'][(1 + (h2 >> 30) % 4)::BIGINT],
                           'is_new', (h2 >> 33) % 10 = 0, 'age', 18 + ((h2 >> 36) % 60)::INT),
               CASE WHEN ts BETWEEN TIMESTAMPTZ '2026-01-12 10:00:00+00' AND TIMESTAMPTZ '2026-01-12 14:00:00+00'
                         AND system_id = 'sys-a' THEN 'bad' ELSE 'sha-' || system_id END,
               '10.' || (p % 250) || '.' || (p % 7) || '.1',
               20 + (h1 % 40), CASE WHEN h1 % 997 = 0 THEN 'error' ELSE 'ok' END, NULL, NULL, NULL, {src}, i
        FROM shaped
    """)
    # attacks: an extraction sweep, a near-duplicate walk, a flood, a night-time stolen key
    ws.execute(f"""
        INSERT INTO decisions (system_id, decision_id, ts, model_version, principal, prediction, score, features,
                               model_sha256, source_ip, latency_ms, status, ground_truth, session_id, extra,
                               source_id, source_line)
        SELECT 'sys-a', 'atk-x-' || i, TIMESTAMPTZ '2026-01-25 00:00:00+00' + to_seconds(i * 4), '2.0', 'sweeper',
               'approve', 0.5,
               json_object('amount', (i % 11) * 1000.0, 'tenure_days', (i * 37) % 20000, 'score_bureau', 100 + i % 900,
                           'ratio', (i % 13) / 2.0, 'count_30d', i % 90, 'channel', 'web', 'is_new', i % 2 = 0,
                           'age', 10 + i % 90),
               'sha-sys-a', '203.0.113.9', 25, 'ok', NULL, NULL, NULL, {src}, i FROM range(20000) r(i)
        UNION ALL
        SELECT 'sys-a', 'atk-w-' || i, TIMESTAMPTZ '2026-01-27 03:00:00+00' + to_seconds(i * 9), '2.0', 'p-3',
               CASE WHEN i < 280 THEN 'deny' ELSE 'approve' END, 0.9 - i / 400.0,
               json_object('amount', 500.0 - i, 'tenure_days', 400, 'score_bureau', 610, 'ratio', 0.42,
                           'count_30d', 3, 'channel', 'app', 'is_new', false, 'age', 44),
               'sha-sys-a', '10.3.3.1', 25, 'ok', NULL, NULL, NULL, {src}, i FROM range(300) r(i)
        UNION ALL
        SELECT 'sys-b', 'atk-f-' || i, TIMESTAMPTZ '2026-01-15 12:00:00+00' + to_seconds(i // 40), '2.0', 'flooder',
               'approve', 0.2,
               json_object('amount', 50.0 + i % 7, 'tenure_days', 100, 'score_bureau', 700, 'ratio', 0.1,
                           'count_30d', 1, 'channel', 'web', 'is_new', false, 'age', 30),
               'sha-sys-b', '198.51.100.' || (i % 4), 900, CASE WHEN i % 20 = 0 THEN 'error' ELSE 'ok' END,
               NULL, NULL, NULL, {src}, i FROM range(100000) r(i)
        UNION ALL
        SELECT 'sys-a', 'atk-c-' || i, TIMESTAMPTZ '2026-01-18 02:00:00+00' + to_seconds(i * 20), '2.0', 'p-0',
               'approve', 0.1,
               json_object('amount', round(exp(5 + (hash(i) % 1000) / 500.0), 2), 'tenure_days', hash(i + 1) % 3650,
                           'score_bureau', 300 + hash(i + 2) % 551, 'ratio', (hash(i + 3) % 1000) / 1000.0,
                           'count_30d', hash(i + 4) % 12, 'channel', 'web', 'is_new', hash(i) % 2 = 0,
                           'age', 18 + hash(i + 5) % 60),
               'sha-sys-a', '192.0.2.77', 25, 'ok', NULL, NULL, NULL, {src}, i FROM range(400) r(i)
    """)
    for sid in ("sys-a", "sys-b"):
        for name, typ in FEATURES.items():
            ws.execute("INSERT INTO feature_catalog VALUES (?, ?, ?, ?)", [sid, name, typ, src])
    ws.execute(f"""
        INSERT INTO metrics (ts, system_id, metric, value, labels, source_id, source_line)
        SELECT date_trunc('minute', ts), system_id, 'request_rate', count(*)::DOUBLE, NULL, {src}, 0
        FROM decisions GROUP BY 1, 2
    """)
    if ws.table_exists("models"):
        for sid in ("sys-a", "sys-b"):
            for ver in ("1.0", "2.0"):
                ws.execute("INSERT INTO models (system_id, version, sha256, added_by, added_role, added_at, source) "
                           "VALUES (?, ?, ?, 'bench', 'admin', now(), 'bom')", [sid, ver, f"sha-{sid}"])


def main() -> None:
    """Generate, detect, print time per detector and peak RSS."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--db", type=Path, default=Path("/tmp/bench_detect.duckdb"))
    ap.add_argument("--keep", action="store_true", help="reuse the database if it exists")
    ap.add_argument("--memory-limit", default="2500MB", help="DuckDB memory_limit for the run ('' = default)")
    args = ap.parse_args()
    if not args.keep:
        for p in args.db.parent.glob(args.db.name + "*"):
            p.unlink()
    ws = open_workspace(args.db)
    actor = local_admin()
    if not ws.scalar("SELECT count(*) FROM decisions"):
        t = time.perf_counter()
        generate(ws, args.rows)
        ws.execute("CHECKPOINT")
        print(f"generated {ws.scalar('SELECT count(*) FROM decisions'):,} decisions in "
              f"{time.perf_counter() - t:.1f} s")
    ws.close()
    ws = open_workspace(args.db)
    if args.memory_limit:
        ws.execute(f"SET memory_limit = '{args.memory_limit}'")
    stop, peak = _peak_rss()
    from workbench.detect import LAST_RUN, run_all

    proc = psutil.Process(os.getpid())
    cpu0 = sum(proc.cpu_times()[:2])
    t = time.perf_counter()
    alerts = run_all(ws, actor)
    total = time.perf_counter() - t
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    stop.set()
    print(f"cores: {os.cpu_count()}  decisions: {ws.scalar('SELECT count(*) FROM decisions'):,}")
    for name, secs in LAST_RUN["timings"].items():
        print(f"  {name:<16} {secs:7.1f} s")
    print(f"total {total:.1f} s wall (target <= 120 s), {cpu:.1f} s CPU, load average {os.getloadavg()[0]:.1f}; "
          f"peak RSS {peak[0] / 2**30:.2f} GB (target < 4 GB)")
    by: dict[str, int] = {}
    for a in alerts:
        by[a["detector"]] = by.get(a["detector"], 0) + 1
    print("alerts:", by, "errors:", LAST_RUN["errors"] or "none")
    ws.close()


if __name__ == "__main__":
    main()
