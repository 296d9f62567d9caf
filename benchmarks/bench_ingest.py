"""Ingest throughput and peak memory against DuckDB's own bare CREATE TABLE AS SELECT on the same file.

Usage: python benchmarks/bench_ingest.py [--rows 5000000] [--formats csv,jsonl] [--workdir DIR] [--shape export|compact]
                                        [--bad-rows N] [--repeat K]
Each measurement runs in a fresh subprocess so that its peak RSS (VmHWM) belongs to that step alone; bare and
workbench run back to back, and each reports its CPU time (user + system, all threads) beside the wall time, so a
run on a shared machine can still be judged. `--bad-rows N` sprinkles N bad rows through the file (a bad timestamp,
a feature that is not a number, a broken line, in turn): the bare load skips them (ignore_errors), the workbench
quarantines each with its line and raw text.
Targets (issue 15): CSV >= 0.7x bare DuckDB in both shapes, with bad rows; JSONL >= 0.5x read_json;
peak RSS < 2 GB.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

# The outcome and the 8 features (numbers, a category, a boolean), the same in both shapes.
_OUTCOME_AND_FEATURES = """       CASE WHEN hash(i * 7) % 10 < 6 THEN 'approve' ELSE 'deny' END AS prediction,
       (hash(i * 3) % 10000) / 10000.0 AS score,
       20000 + hash(i * 11) % 180000 AS "features.income",
       1000 + hash(i * 13) % 49000 AS "features.loan_amount",
       300 + hash(i * 17) % 550 AS "features.credit_score",
       (hash(i * 19) % 1000) / 1000.0 AS "features.debt_to_income",
       hash(i * 23) % 40 AS "features.employment_years",
       CASE hash(i * 29) % 3 WHEN 0 THEN 'rent' WHEN 1 THEN 'own' ELSE 'mortgage' END AS "features.home_ownership",
       hash(i * 31) % 12 AS "features.num_open_accounts",
       hash(i * 37) % 3 = 0 AS "features.has_cosigner",
"""

# 18 columns shaped like a real decision-log export (the reference file: 5M rows, 18 columns, ~1.5 GB):
# UUID decision ids, ISO timestamps, service and API-key principals, 8 features, the serving artifact's SHA-256,
# caller address and latency.
GEN_SQL = """
SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a' || substr(h, 18, 3) || '-'
           || substr(h, 21, 12) AS decision_id,
       strftime(TIMESTAMP '2026-10-01' + to_milliseconds(i * 500), '%Y-%m-%dT%H:%M:%S.%gZ') AS ts,
       CASE WHEN i % 2 = 0 THEN 'loan-origination' ELSE 'card-fraud' END AS system_id,
       CASE WHEN i < {n} / 2 THEN '2.3.0' ELSE '2.4.1' END AS model_version,
       CASE WHEN hash(i) % 5 = 0 THEN 'svc-batch-' || (hash(i) % 12)
            ELSE 'apikey-' || left(md5((hash(i) % 400)::VARCHAR), 10) END AS principal,
""" + _OUTCOME_AND_FEATURES + """       sha256(system_id || model_version) AS model_sha256,
       '10.' || (hash(i) % 250) || '.' || (hash(i * 41) % 250) || '.' || (hash(i * 43) % 250) AS source_ip,
       round(8 + (hash(i * 47) % 4000) / 100.0, 2) AS latency_ms
FROM (SELECT i, md5(i::VARCHAR) AS h FROM range({n}) t(i))
"""

# The first benchmark's shape, kept for comparison: 17 short columns, ~130 bytes a row (a 7-character model hash).
COMPACT_SQL = """
SELECT 'd' || i AS decision_id,
       strftime(TIMESTAMP '2026-10-01' + to_milliseconds(i * 500), '%Y-%m-%dT%H:%M:%S.%gZ') AS ts,
       CASE WHEN i % 2 = 0 THEN 'loan-origination' ELSE 'card-fraud' END AS system_id,
       '2.0' AS model_version,
       'key-' || (hash(i) % 400) AS principal,
""" + _OUTCOME_AND_FEATURES + """       'sha-abc' AS model_sha256,
       '10.0.' || (hash(i) % 250) || '.' || (hash(i * 41) % 250) AS source_ip
FROM range({n}) t(i)
"""
SHAPES = {"export": GEN_SQL, "compact": COMPACT_SQL}


def make_files(workdir: Path, n: int, formats: list[str], shape: str = "export", bad: int = 0) -> dict[str, Path]:
    """Write n canonical decisions as CSV and/or JSONL (features nested as an object in JSONL), `bad` of them bad."""
    out = {fmt: workdir / f"decisions_{shape}_{n}.{fmt}" for fmt in ("csv", "jsonl") if fmt in formats}
    if bad:
        clean = make_files(workdir, n, formats, shape)
        out = {fmt: workdir / f"decisions_{shape}_{n}_bad{bad}.{fmt}" for fmt in clean}
        for fmt, path in out.items():
            if not path.exists():
                _sprinkle(clean[fmt], path, n, bad)
        return out
    if all(p.exists() for p in out.values()):
        return out
    con = duckdb.connect()
    con.execute(f"CREATE TABLE gen AS {SHAPES[shape].format(n=n)}")
    if "csv" in formats:
        if not out["csv"].exists():
            con.execute(f"COPY gen TO '{out['csv']}' (HEADER, DELIMITER ',')")
    if "jsonl" in formats:
        if not out["jsonl"].exists():
            feats = [r[0] for r in con.execute("DESCRIBE gen").fetchall() if r[0].startswith("features.")]
            struct = ", ".join(f"\"{f[9:]}\" := \"{f}\"" for f in feats)
            plain = [r[0] for r in con.execute("DESCRIBE gen").fetchall() if not r[0].startswith("features.")]
            con.execute(f"COPY (SELECT {', '.join(plain)}, struct_pack({struct}) AS features FROM gen) "
                        f"TO '{out['jsonl']}' (FORMAT json)")
    con.close()
    return out


def _sprinkle(src: Path, dst: Path, n: int, bad: int) -> None:
    """Copy src to dst with `bad` data lines spread evenly made bad: a bad timestamp, a feature that is not a
    number, or a broken line, in turn."""
    step = max(1, n // bad)
    first = 2 if src.suffix == ".csv" else 1
    targets = {first + step // 2 + k * step: k % 3 for k in range(bad)}
    csv = src.suffix == ".csv"
    with src.open("rb") as fin, dst.open("wb") as fout:
        for no, line in enumerate(fin, start=1):
            kind = targets.get(no)
            if kind is None:
                fout.write(line)
            elif kind == 0:  # a timestamp without a date
                fout.write(re.sub(rb"\d{4}-\d\d-\d\dT", b"someday T", line, count=1))
            elif kind == 1:  # CSV: income is not a number; JSONL: a feature holds an object
                fout.write(_csv_field(line, 6, b"lots") if csv else
                           line.replace(b'"income":', b'"income":{"x":1},"was_income":', 1))
            else:  # cut off half-way: a broken record
                fout.write(line[: len(line) // 2] + b"\n")


def _csv_field(line: bytes, index: int, value: bytes) -> bytes:
    parts = line.split(b",")
    parts[index] = value
    return b",".join(parts)


def _child(mode: str, path: str, db: str) -> None:
    """One measurement: the timer covers reading, loading and the final checkpoint, not interpreter start-up."""
    cpu0 = _cpu()
    if mode == "bare":
        started = time.perf_counter()
        con = duckdb.connect(db)
        reader = "read_csv" if path.endswith(".csv") else "read_json"
        opts = ", ignore_errors=true" if "_bad" in path else ""
        rows = con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{path}'{opts})").fetchone()[0]
        con.close()
    else:
        from workbench.access import local_admin
        from workbench.ingest import ingest_file
        from workbench.store import open_workspace

        ws = open_workspace(db)  # an analyst's workspace already exists: creating its schema is not ingest
        started = time.perf_counter()
        res = ingest_file(ws, local_admin(), Path(path))
        if res.error:
            raise SystemExit(res.error)
        rows = res.rows_loaded
        ws.close()
    seconds = time.perf_counter() - started
    peak = _peak_rss()
    print(json.dumps({"rows": rows, "seconds": seconds, "cpu": _cpu() - cpu0, "peak_rss": peak}))


def _cpu() -> float:
    """CPU seconds (user + system, every thread) this process used so far."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _peak_rss() -> int:
    """Peak RSS of this process since it started (VmHWM).

    Not ru_maxrss: Linux carries that across fork and exec, so a child would report its parent's peak (here the
    parent that generated the files).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(mode: str, path: Path, workdir: Path) -> dict:
    """Run one measurement in a fresh interpreter and return rows, seconds and peak RSS."""
    db = workdir / f"{mode}_{path.suffix[1:]}.duckdb"
    for f in (db, Path(str(db) + ".wal")):
        f.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path), str(db)], capture_output=True,
                         text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    db.unlink(missing_ok=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # the whole child, interpreter start-up included (getrusage of children), beside the timed section's own
    got["cpu_child"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return got


def main() -> None:
    """Parse arguments, build the files, and print the comparison table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--formats", default="csv,jsonl")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="export",
                    help="export: 18 columns like a real export (default); compact: the first benchmark's 17")
    ap.add_argument("--bad-rows", type=int, default=0, help="sprinkle N bad rows through the file")
    ap.add_argument("--repeat", type=int, default=1, help="run bare and workbench back to back K times")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="wb-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    files = make_files(workdir, args.rows, args.formats.split(","), args.shape, args.bad_rows)
    print(f"{args.rows:,} decisions ({args.shape} shape, {args.bad_rows} bad rows), machine: {_machine()}")
    print(f"{'format':7} {'size MB':>8} {'bare s':>7} {'cpu':>6} {'wb s':>7} {'cpu':>6} {'wb rows/s':>10} "
          f"{'ratio':>6} {'cpu ratio':>9} {'wb peak RSS MB':>15}")
    for fmt, path in files.items():
        for _ in range(args.repeat):
            bare = measure("bare", path, workdir)
            wb = measure("workbench", path, workdir)
            ratio, cpu_ratio = bare["seconds"] / wb["seconds"], bare["cpu"] / wb["cpu"]
            print(f"{fmt:7} {path.stat().st_size / 1e6:8.0f} {bare['seconds']:7.1f} {bare['cpu']:6.1f} "
                  f"{wb['seconds']:7.1f} {wb['cpu']:6.1f} {wb['rows'] / wb['seconds']:10,.0f} {ratio:6.0%} "
                  f"{cpu_ratio:9.0%} {wb['peak_rss'] / 1e6:15,.0f}", flush=True)


def _machine() -> str:
    import os
    import platform

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB, duckdb {duckdb.__version__}"


if __name__ == "__main__":
    main()
