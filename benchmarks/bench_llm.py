"""LLM detectors measured: the shipped sample, two scenarios they were not tuned on, and a clean run.

Run: python benchmarks/bench_llm.py [--days 30]. Prints detection per incident type, span recall, false alerts
per day, and ingest/detect seconds. Scenario B and C use other seeds, other attack rates and the second phrasing
set (other words and languages); the clean run has no incidents at all.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from workbench.access import local_admin
from workbench.detect import run_all
from workbench.detect.llm_detectors import NAMES
from workbench.detect.llm_eval import score
from workbench.ingest import ingest
from workbench.sample.llm_agent import generate_traces
from workbench.store import open_workspace
from workbench.traces.systems import configure

SCENARIOS = [("sample (seed 7, phrasing a)", {"seed": 7}),
             ("scenario B (seed 11, phrasing b, 0.6x attacks, 60/day)", {"seed": 11, "phrasing": "b",
                                                                          "attack_scale": 0.6,
                                                                          "conversations_per_day": 60}),
             ("scenario C (seed 23, phrasing b, 1.5x attacks, 25/day)", {"seed": 23, "phrasing": "b",
                                                                          "attack_scale": 1.5,
                                                                          "conversations_per_day": 25}),
             ("clean (seed 7, no incidents)", {"seed": 7, "clean": True})]


def run(label: str, opts: dict, days: int, tmp: Path, configured: bool) -> dict:
    """Generate, ingest, detect and score one scenario (in a folder and workspace of its own)."""
    out = Path(tempfile.mkdtemp(dir=tmp))
    generate_traces(out, days=days, **opts)
    truth = json.loads((out / "traces" / "ground_truth.json").read_text())
    ws = open_workspace(out / "ws.duckdb")
    who = local_admin()
    if configured:
        configure(ws, who, truth["system_id"], canary=truth["canary"], org_domains=truth["org_domains"])
    t = time.perf_counter()
    files = ingest(ws, who, [out / "traces" / "spans"])
    t_ingest = time.perf_counter() - t
    t = time.perf_counter()
    alerts = run_all(ws, who, only=list(NAMES))
    t_detect = time.perf_counter() - t
    res = score(alerts, truth)
    res |= {"spans": sum(f.rows_loaded for f in files), "ingest_s": t_ingest, "detect_s": t_detect}
    ws.close()
    return res


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for configured in (True, False):
            print(f"\n== {'with canary and organisation domains set' if configured else 'no per-system settings'}")
            for label, opts in SCENARIOS:
                r = run(label, opts, args.days, Path(d), configured)
                det = ", ".join(f"{p['type'].removeprefix('llm_')}={'yes' if p['detected'] else 'NO'}"
                                f"(recall {p['span_recall']:.2f})" for p in r["incidents"])
                print(f"{label}: {r['spans']} spans, ingest {r['ingest_s']:.1f}s, detect {r['detect_s']:.2f}s; "
                      f"detected {r['detected']}/{r['total']}; alerts {r['alerts']}, false {r['false_alerts']} "
                      f"({r['false_alerts_per_day']:.2f}/day) {r['false_by_detector'] or ''}")
                if det:
                    print("   " + det)


if __name__ == "__main__":
    main()
