"""Small statistics shared by the detectors (applied to aggregates, never to raw decision rows); the robust
ones (median, MAD) live in workbench.detect.robust."""

from __future__ import annotations

import math

from workbench.timestamps import human_utc

HASH_BUCKETS = 1_000_000


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


fmt_ts = human_utc  # kept for lake/spark_flood.py; detectors use workbench.timestamps.human_utc
