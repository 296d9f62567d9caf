"""Benchmark: the four red-team attacks on each of the sample's registered models, and detection coverage.

Builds the demo workspace from the sample (`workbench.demo.build_demo`) unless --db names one already built,
then for every model in sample_data/models/registry.json runs evasion, extraction, probing and the backdoor
scan with the same budget and seed, and (unless --no-coverage) emits each attack's traffic and runs the
coverage step (a scratch copy of the workspace, every detector). Prints one line per model and attack:
success rate (evasion), fidelity (extraction), flippable features (probing), trigger candidates (backdoor
scan), queries, seconds, and whether the detectors fired on the attack's ATLAS techniques.
Run: python benchmarks/bench_redteam.py [--sample sample_data] [--db /tmp/demo.duckdb] [--budget 3000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from workbench.access import local_admin
from workbench.demo import build_demo
from workbench.redteam import ATTACKS, run_attack
from workbench.redteam.coverage import coverage
from workbench.redteam.report import headline
from workbench.store import open_workspace

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    """Run every attack on every sample model and print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=Path, default=ROOT / "sample_data")
    ap.add_argument("--db", type=Path, default=None, help="A demo workspace (built here if missing).")
    ap.add_argument("--budget", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--models", default="", help="Comma-separated system/version to keep (default: all).")
    ap.add_argument("--no-coverage", action="store_true")
    args = ap.parse_args()
    admin = local_admin()
    work = Path(tempfile.mkdtemp(prefix="bench-redteam-"))
    db = args.db or work / "demo.duckdb"
    fresh = not db.exists()
    ws = open_workspace(db)
    if fresh:
        t = time.perf_counter()
        build_demo(ws, admin, args.sample)
        print(f"demo workspace built in {time.perf_counter() - t:.1f} s: {db}")
    models = json.loads((args.sample / "models" / "registry.json").read_text())
    keep = {m for m in args.models.split(",") if m}
    print(f"{'model':24} {'attack':14} {'figure':58} {'queries':>8} {'seconds':>8}  detected")
    for m in models:
        label = f"{m['system_id']}/{m['version']}"
        if keep and label not in keep:
            continue
        for attack in args.attacks.split(","):
            emit = None if args.no_coverage else work / f"{m['system_id']}-{m['version']}-{attack}"
            try:
                run = run_attack(ws, admin, m["system_id"], attack, version=m["version"], budget=args.budget,
                                 seed=args.seed, emit_dir=emit)
                extra = ""
                if emit is not None:
                    t = time.perf_counter()
                    run["coverage"] = coverage(ws, admin, emit)
                    cov = run["coverage"]
                    fired = [k for k, c in cov["techniques"].items() if c["fired"]]
                    extra = (f" [{len(fired)}/{len(cov['techniques'])} techniques, "
                             f"{cov['decisions_flagged']}/{cov['attack_decisions']} decisions flagged, "
                             f"coverage {time.perf_counter() - t:.1f} s]")
                h = headline(run)
                print(f"{label:24} {attack:14} {h['figure'][:58]:58} {run['queries']:>8} {run['seconds']:>8.1f}  "
                      f"{h['detected']}{extra}", flush=True)
            except Exception as exc:  # noqa: BLE001 - a failing attack is a figure too
                print(f"{label:24} {attack:14} ERROR {type(exc).__name__}: {str(exc)[:100]}", flush=True)
    ws.close()


if __name__ == "__main__":
    main()
