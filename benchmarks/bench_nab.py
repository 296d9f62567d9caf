"""Benchmark: the workspace's metric-detector path on NAB's real series, scored with NAB's standard profile.

    python benchmarks/bench_nab.py [--nab ../shared/datasets/nab] [--json]

Every series in data/realAWSCloudwatch and data/realKnownCause with labelled windows
(labels/combined_windows.json) goes through `workbench.detect.metric_anomaly.judge_series`, the function the
workspace's `detect` runs on each ingested metric, with the workspace's configuration: 5-minute medians of finer
series, 3-point smoothing of z, margin 1.2 over the reference's 99.9% |z|, the default reference window (first
30% of the span, at most 7 days) and only events with |z| >= 8 (the alert queue's policy). Each event is one
alarm at the end of its first 5-minute bin (when the detector could have raised it). For comparison, the same
series through `detect_series` at its defaults (no smoothing, margin 0.8, no |z| floor) and a rolling z-score
(mean and standard deviation of the previous day of points, at least 100, |z| > 3, first point of each run).

Reported per detector:
- NAB score, standard profile (A_TP = 1, A_FP = -0.11, A_FN = -1), implemented here from the published
  definition (Lavin & Ahmad 2015; NAB's sweeper): a detection inside a labelled window scores
  sigma(y) = 2 / (1 + e^(5y)) - 1 at its relative position y in the window (-1 at the left edge, 0 at the
  right), scaled so the left edge scores A_TP; only a window's earliest detection counts; a missed window
  scores A_FN; a detection outside every window scores -A_FP * sigma(y) (between 0 and -0.11), y being its
  distance past the previous window's right edge in window widths (-0.11 before any window or from 3 widths
  past one on); detections in the probationary period (first 15% of a series, at most 750 rows) are ignored. The corpus
  total is normalised: 100 * (S - S_null) / (S_perfect - S_null), null = no detections, perfect = every window
  hit at its left edge.
- window recall: labelled windows with at least one detection / all labelled windows;
- false alarms per 1,000 points: detections outside every window, per 1,000 points.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.detect.metric_anomaly import detect_series, judge_series

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "datasets" / "nab"
A_TP, A_FP, A_FN = 1.0, -0.11, -1.0  # NAB standard profile
PROBATION = 0.15


def scaled_sigmoid(y: float) -> float:
    """NAB's scaled sigmoid: 2 / (1 + e^(5y)) - 1, and -1 from three window widths past a window on."""
    return -1.0 if y >= 3.0 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def nab_raw(n: int, detections: np.ndarray, windows: list[tuple[int, int]]) -> tuple[float, int]:
    """Raw NAB score of one series (standard profile) and how many windows it has: detections are row
    indices, windows (left, right) row indices, inclusive, sorted."""
    max_tp = scaled_sigmoid(-1.0)
    probation = min(math.floor(PROBATION * n), PROBATION * 5000)
    best = {w: None for w in windows}
    fp = 0.0
    for i in sorted(set(int(d) for d in detections)):
        if i < probation:
            continue
        inside = next((w for w in windows if w[0] <= i <= w[1]), None)
        if inside is not None:
            width = inside[1] - inside[0] + 1
            score = scaled_sigmoid(-(inside[1] - i + 1) / width) * A_TP / max_tp
            best[inside] = score if best[inside] is None else max(best[inside], score)
            continue
        before = [w for w in windows if w[1] < i]
        if before:
            left, right = before[-1]
            y = abs(right - i) / max(right - left, 1)  # NAB: distance past the window over (width - 1)
        else:
            y = 3.0
        fp += scaled_sigmoid(y) * -A_FP
    counted = [w for w in windows if w[1] >= probation]
    return sum(A_FN if best[w] is None else best[w] for w in counted) + fp, len(counted)


def rolling_z(values: np.ndarray, window: int, threshold: float = 3.0) -> np.ndarray:
    """Row indices of alarms of the plain rolling z-score baseline (first point of each run)."""
    s = pd.Series(values, dtype=float)
    mean = s.rolling(window, min_periods=max(10, window // 4)).mean().shift(1)
    std = s.rolling(window, min_periods=max(10, window // 4)).std().shift(1)
    z = ((s - mean) / std.replace(0, np.nan)).abs().fillna(0).to_numpy()
    idx = np.nonzero(z > threshold)[0]
    if idx.size == 0:
        return idx
    return idx[np.r_[True, np.diff(idx) > 1]]


def workspace_path(ts: pd.Series, values: np.ndarray) -> np.ndarray:
    """Row indices of the alarms of the workspace's metric path (judge_series): the last row of each event's
    first 5-minute bin, the earliest moment the detector could raise it."""
    found = judge_series(ts, values)
    stamps = ts.to_numpy(dtype="datetime64[ns]")
    out = []
    for f in found:
        ready = np.datetime64(pd.Timestamp(f.t0).tz_convert(None) + _step(ts), "ns")
        out.append(max(0, int(np.searchsorted(stamps, ready, side="left")) - 1))
    return np.asarray(out, dtype=int)


def _step(ts: pd.Series) -> pd.Timedelta:
    """The bin the workspace path judges: 5 minutes for finer series, else the series' own step."""
    return max(ts.diff().median(), pd.Timedelta("5min"))


def defaults_path(ts: pd.Series, values: np.ndarray) -> np.ndarray:
    """Row indices of `detect_series` at its defaults on the raw points (first point of each event)."""
    step = ts.diff().median()
    per_day = int(round(pd.Timedelta(days=1) / step)) if step <= pd.Timedelta(hours=2) else None
    return np.asarray([e.start for e in detect_series(values, per_day)], dtype=int)


def score_series(ts: pd.Series, alarms: np.ndarray, windows: list[tuple[pd.Timestamp, pd.Timestamp]]) -> dict:
    """Windows hit, false alarms, the raw NAB score and the windows it counts, for one detector on one series."""
    stamps = ts.to_numpy(dtype="datetime64[ns]")
    idx = [(int(np.searchsorted(stamps, np.datetime64(a, "ns"), side="left")),
            int(np.searchsorted(stamps, np.datetime64(b, "ns"), side="right")) - 1) for a, b in windows]
    inside = np.zeros(len(alarms), dtype=bool)
    hit = 0
    for left, right in idx:
        here = (alarms >= left) & (alarms <= right)
        hit += int(here.any())
        inside |= here
    raw, counted = nab_raw(len(ts), alarms, sorted(idx))
    return {"hits": hit, "false": int((~inside).sum()), "nab_raw": raw, "nab_windows": counted}


DETECTORS = {"workspace": workspace_path, "detect_series_defaults": defaults_path,
             "rolling_zscore": lambda ts, v: rolling_z(v, max(100, _per_day(ts) or 100))}


def _per_day(ts: pd.Series) -> int | None:
    step = ts.diff().median()
    return int(round(pd.Timedelta(days=1) / step)) if step <= pd.Timedelta(hours=2) else None


def run(nab: Path) -> dict:
    """Every detector over every labelled series: per-series rows and corpus totals."""
    labels = json.loads((nab / "labels" / "combined_windows.json").read_text())
    rows = []
    for csv in sorted((nab / "data").glob("*/*.csv")):
        key = f"{csv.parent.name}/{csv.name}"
        if key not in labels:
            continue
        df = pd.read_csv(csv)
        ts = pd.to_datetime(df["timestamp"])
        values = df["value"].to_numpy(dtype=float)
        windows = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in labels[key]]
        row = {"series": key, "points": len(values), "windows": len(windows)}
        for name, fn in DETECTORS.items():
            r = score_series(ts, np.asarray(fn(ts, values), dtype=int), windows)
            row |= {f"{name}_{k}": v for k, v in r.items()}
        rows.append(row)
    t = pd.DataFrame(rows)
    points, wins = int(t["points"].sum()), int(t["windows"].sum())
    total: dict = {"series": len(t), "points": points, "windows": wins}
    for name in DETECTORS:
        counted = int(t[f"{name}_nab_windows"].sum())
        raw = float(t[f"{name}_nab_raw"].sum())
        null, perfect = A_FN * counted, A_TP * counted
        total[name] = {"nab_standard": 100 * (raw - null) / (perfect - null) if counted else None,
                       "window_recall": t[f"{name}_hits"].sum() / wins,
                       "false_alarms_per_1000": 1000 * t[f"{name}_false"].sum() / points,
                       "false_alarms": int(t[f"{name}_false"].sum())}
    return {"total": total, "series": rows}


def main() -> None:
    """Run the detectors over every NAB series and print the table and totals."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nab", type=Path, default=DEFAULT)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = run(args.nab)
    if args.json:
        print(json.dumps(res, default=float))
        return
    cols = ["series", "points", "windows"] + [f"{n}_{k}" for n in DETECTORS for k in ("hits", "false")]
    with pd.option_context("display.width", 250, "display.max_rows", 100):
        print(pd.DataFrame(res["series"])[cols].to_string(index=False))
    total = res["total"]
    for name in DETECTORS:
        r = total[name]
        print(f"{name:<23} NAB standard {r['nab_standard']:6.1f}   window recall {r['window_recall']:.3f}   "
              f"false alarms per 1,000 points {r['false_alarms_per_1000']:.3f}")
    print(f"{total['series']} series, {total['points']:,} points, {total['windows']} labelled windows "
          "(NAB scoreboard, full 58-series corpus, standard profile: perfect 100, null 0)")


if __name__ == "__main__":
    main()
