"""Small statistics shared by the detectors (applied to aggregates, never to raw decision rows)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

MAD_K = 1.4826  # MAD -> standard deviation under normality
HASH_BUCKETS = 1_000_000


def robust_center_scale(values: np.ndarray, floor: float = 1e-9) -> tuple[float, float]:
    """Median and MAD-based scale (with a floor so constant data does not divide by zero)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, floor
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med))) * MAD_K
    return med, max(mad, floor)


def poisson_z(observed: float, expected: float) -> float:
    """Signed deviance z of a count against a Poisson expectation (Wilson-Hilferty-free, exact-ish)."""
    e = max(expected, 1e-9)
    o = max(observed, 0.0)
    dev = 2.0 * ((o * math.log(o / e) if o > 0 else 0.0) - (o - e))
    return math.copysign(math.sqrt(max(dev, 0.0)), o - e)


def binom_z(k: float, n: float, p: float) -> float:
    """Signed likelihood-ratio z of k successes out of n against rate p."""
    if n <= 0:
        return 0.0
    p = min(max(p, 1e-9), 1 - 1e-9)
    q = k / n

    def term(a: float, b: float) -> float:
        return a * math.log(a / b) if a > 0 else 0.0

    g = 2.0 * n * (term(q, p) + term(1 - q, 1 - p))
    return math.copysign(math.sqrt(max(g, 0.0)), q - p)


def sample_where(total: int, target: int, key: str = "decision_id") -> str:
    """A SQL condition keeping about `target` of `total` rows, chosen by a hash of `key`: the same rows on every
    run and every thread count (a reservoir sample, even with REPEATABLE, depends on the order rows arrive in
    when DuckDB scans with several threads), so the same workspace always gives the same alerts."""
    if total <= target:
        return "true"
    keep = math.ceil(HASH_BUCKETS * target / max(total, 1))
    return f"(hash({key}) % {HASH_BUCKETS}) < {keep}"


def fmt_ts(ts: datetime) -> str:
    """Short UTC time for summaries."""
    return ts.strftime("%Y-%m-%d %H:%M UTC")
