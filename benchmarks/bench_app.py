"""Render time of every app page on a large workspace (default 10,000,000 decisions), cold and warm cache.

    python benchmarks/bench_app.py [--decisions 10000000] [--db /tmp/wb_bench_app.duckdb] [--reuse]

The workspace is the demo built from a small generated sample, then grown in SQL to N decisions by
replicating its decisions with new ids and jittered times (same systems, features, principals and alerts),
so every page has realistic data. Each page is rendered through Streamlit's AppTest from the entry point:
"cold" is the first render in a fresh process cache (DuckDB does the aggregation), "warm" a second render
(st.cache_data hits). Target: every page under 2 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(db: Path, n: int) -> None:
    """The demo workspace grown to n decisions in SQL (no Python loop per row)."""
    from workbench.access import local_admin
    from workbench.demo import build_demo
    from workbench.sample import generate
    from workbench.store import open_workspace

    sample = Path(tempfile.mkdtemp(prefix="wb_bench_sample_"))
    generate(sample, seed=5, days=14, decisions_per_day=20_000)
    ws = open_workspace(db)
    build_demo(ws, local_admin(), sample)
    base = ws.scalar("SELECT count(*) FROM decisions")
    copies = max(0, -(-(n - base) // base))
    print(f"demo: {base:,} decisions; adding {copies} jittered copies in SQL …", flush=True)
    started = time.perf_counter()
    step = 20
    for first in range(1, copies + 1, step):
        last = min(copies, first + step - 1)
        ws.execute("""INSERT INTO decisions SELECT system_id, decision_id || '~' || k::VARCHAR,
                          ts + to_microseconds(((hash(decision_id, k) % 600000000)::BIGINT - 300000000)),
                          model_version, principal, prediction, score, features, model_sha256, source_ip,
                          latency_ms, status, ground_truth, session_id, extra, source_id, source_line
                      FROM decisions, range(?, ?) r(k) WHERE NOT contains(decision_id, '~')""",
                   [first, last + 1])
        print(f"  copies {first}-{last}: {ws.scalar('SELECT count(*) FROM decisions'):,}", flush=True)
    ws.execute("CHECKPOINT")
    print(f"grown to {ws.scalar('SELECT count(*) FROM decisions'):,} decisions in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    ws.close()


def measure(db: Path) -> list[tuple[str, float, float, int]]:
    """(page, cold seconds, warm seconds, errors) for every registered page."""
    os.environ["WORKBENCH_DB"] = str(db)
    os.environ["WORKBENCH_NO_AUTODEMO"] = "1"
    # Server start-up cost (imports), paid once per process, not per page render.
    import plotly.express  # noqa: F401
    from streamlit.testing.v1 import AppTest

    import workbench.cases.reports  # noqa: F401
    import workbench.charts  # noqa: F401
    import workbench.detect  # noqa: F401
    import workbench.explain  # noqa: F401
    import workbench.explore  # noqa: F401
    from workbench.app_pages import PAGES

    out = []
    at = AppTest.from_file(str(ROOT / "workbench" / "streamlit_app.py"), default_timeout=600)
    t = time.perf_counter()
    at.run()  # sign-in gate, navigation and the default page (Overview), cold
    first = time.perf_counter() - t
    for spec in PAGES:
        times = [first] if spec.default else []
        while len(times) < 2:
            at.switch_page(f"app_pages/{spec.file}")
            t = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - t)
        problems = len(at.exception) + len(at.error)
        for e in [*at.exception, *at.error]:
            print(f"  {spec.file}: {str(e.value)[:200]}", flush=True)
        out.append((spec.title, times[0], times[1], problems))
    return out


def main() -> None:
    """Build (or reuse) the big workspace and print each page's render time."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=10_000_000)
    ap.add_argument("--db", type=Path, default=Path(tempfile.gettempdir()) / "wb_bench_app.duckdb")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing workspace at --db")
    args = ap.parse_args()
    if not (args.reuse and args.db.exists()):
        for p in (args.db, args.db.with_name(args.db.name + ".wal")):
            p.unlink(missing_ok=True)
        build(args.db, args.decisions)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{'page':<12} {'cold s':>8} {'warm s':>8}  errors")
    for title, cold, warm, problems in measure(args.db):
        flag = "" if cold < 2 else "  (over 2 s)"
        print(f"{title:<12} {cold:8.2f} {warm:8.2f}  {problems}{flag}", flush=True)


if __name__ == "__main__":
    main()
