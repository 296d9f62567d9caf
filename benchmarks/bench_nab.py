"""Benchmark: the workbench metric detector vs a plain rolling z-score on NAB's real series.

    python benchmarks/bench_nab.py [--nab ../shared/datasets/nab] [--json]

For every series in data/realAWSCloudwatch and data/realKnownCause with labelled windows
(labels/combined_windows.json), both detectors produce alarm events (the first point of each run of
flagged points; runs closer than a refractory gap merge). Reported per detector:
- window recall: labelled windows containing at least one alarm / all labelled windows;
- false alarms per 1,000 points: alarms outside every labelled window, per 1,000 points.
The baseline is a rolling z-score: mean and standard deviation of the previous `window` points (one day of
points, at least 100), |z| > 3. Both see the same series in the same run. Target: the workbench detector is
better on both figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.detect.metric_anomaly import detect_series

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "datasets" / "nab"


def rolling_z(values: np.ndarray, window: int, threshold: float = 3.0) -> np.ndarray:
    """Indices of alarm events of the plain rolling z-score baseline."""
    s = pd.Series(values, dtype=float)
    mean = s.rolling(window, min_periods=max(10, window // 4)).mean().shift(1)
    std = s.rolling(window, min_periods=max(10, window // 4)).std().shift(1)
    z = ((s - mean) / std.replace(0, np.nan)).abs().fillna(0).to_numpy()
    return _events(np.nonzero(z > threshold)[0], gap=1)


def _events(idx: np.ndarray, gap: int) -> np.ndarray:
    if idx.size == 0:
        return idx
    starts = [idx[0]]
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        if b - a > gap:
            starts.append(b)
    return np.asarray(starts)


def score(ts: pd.Series, alarms: np.ndarray, windows: list[tuple[pd.Timestamp, pd.Timestamp]]) -> tuple[int, int]:
    """(windows hit, alarms outside every window)."""
    at = ts.iloc[alarms] if len(alarms) else pd.Series([], dtype="datetime64[ns]")
    hit = sum(1 for w0, w1 in windows if ((at >= w0) & (at <= w1)).any())
    inside = np.zeros(len(at), dtype=bool)
    for w0, w1 in windows:
        inside |= ((at >= w0) & (at <= w1)).to_numpy()
    return hit, int((~inside).sum())


def main() -> None:
    """Run both detectors over every NAB series and print the table and totals."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nab", type=Path, default=DEFAULT)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    labels = json.loads((args.nab / "labels" / "combined_windows.json").read_text())
    rows = []
    for csv in sorted((args.nab / "data").glob("*/*.csv")):
        key = f"{csv.parent.name}/{csv.name}"
        if key not in labels:
            continue
        df = pd.read_csv(csv)
        ts = pd.to_datetime(df["timestamp"])
        values = df["value"].to_numpy(dtype=float)
        step = ts.diff().median()
        per_day = int(round(pd.Timedelta(days=1) / step)) if step <= pd.Timedelta(hours=2) else None
        windows = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in labels[key]]
        ours = np.asarray([e.start for e in detect_series(values, per_day)], dtype=int)
        base = rolling_z(values, max(100, per_day or 100))
        h1, f1 = score(ts, ours, windows)
        h0, f0 = score(ts, base, windows)
        rows.append({"series": key, "points": len(values), "windows": len(windows), "workbench_hits": h1,
                     "workbench_false": f1, "zscore_hits": h0, "zscore_false": f0})
    t = pd.DataFrame(rows)
    points, wins = int(t["points"].sum()), int(t["windows"].sum())
    total = {
        "series": len(t), "points": points, "windows": wins,
        "workbench": {"window_recall": t["workbench_hits"].sum() / wins,
                      "false_alarms_per_1000": 1000 * t["workbench_false"].sum() / points},
        "rolling_zscore": {"window_recall": t["zscore_hits"].sum() / wins,
                           "false_alarms_per_1000": 1000 * t["zscore_false"].sum() / points},
    }
    total["better_on_both"] = bool(total["workbench"]["window_recall"] >= total["rolling_zscore"]["window_recall"]
                                   and total["workbench"]["false_alarms_per_1000"]
                                   < total["rolling_zscore"]["false_alarms_per_1000"])
    if args.json:
        print(json.dumps({"total": total, "series": rows}, default=float))
        return
    with pd.option_context("display.width", 200, "display.max_rows", 100):
        print(t.to_string(index=False))
    for name in ("workbench", "rolling_zscore"):
        r = total[name]
        print(f"{name:<15} window recall {r['window_recall']:.3f}   false alarms per 1,000 points "
              f"{r['false_alarms_per_1000']:.3f}")
    print(f"{total['series']} series, {points:,} points, {wins} labelled windows; "
          f"workbench better on both: {total['better_on_both']}")


if __name__ == "__main__":
    main()
