"""Drift tests on binned counts (small numpy arrays) and thresholds from their null distributions.

Every statistic here compares the bin counts of a window with those of the reference; bin 0 holds missing
values. Numbers are judged by KS, Wasserstein (in reference standard deviations) and PSI, categories by
chi-square and Jensen-Shannon divergence. A test's threshold for a window of n decisions is the largest of:
- a floor below which a change is immaterial however significant (FLOORS),
- the high quantile (1 - ALPHA / tests) of the statistic between two multinomial samples of the reference's own
  bin shares, one of the window's size and one of the reference's (the sampling noise of that window size;
  seeded draws; the quantile is read from a gamma distribution with the draws' mean and variance, which
  matches these right-skewed statistics' far tail better than the few draws out there),
- the reference's own window-to-window variation: its windows, each compared with the rest of the reference,
  give statistics that, divided by the median sampling-noise statistic of their size, have mean m and standard
  deviation sd; the threshold is (m + 3 sd) times the median noise statistic of the window's size. Features
  that move with the week, the day or the month inside the reference thus get a bar that allows for it.
No threshold is fitted to the data being judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

NUMERIC_TESTS = ("ks", "wasserstein", "psi")
CATEGORY_TESTS = ("chi2", "js")
TEST_NAMES = {"ks": "Kolmogorov-Smirnov D", "wasserstein": "Wasserstein (reference SDs)", "psi": "PSI",
              "chi2": "chi-square", "js": "Jensen-Shannon divergence"}
ALPHA = 0.004           # false-alarm rate per window and target, split over its tests (Bonferroni)
DRAWS = 2000            # multinomial draws per window size
SMOOTH = 0.5            # pseudo-count per bin for PSI (Jeffreys), so empty bins do not explode it
SIZE_STEP = 0.05        # window sizes within 5% share one simulated null
TEMPORAL_Z = 3.0        # mean + 3 sd of the reference windows' own statistics (as NannyML's default)
# Immaterial below (whatever the volume): PSI ~ d^2 and KS ~ 0.4 d for a shift of d standard deviations, so
# these floors sit at about 0.12-0.15 sd; chi-square's floor is per effective decision (n_w n_r / (n_w + n_r)).
FLOORS = {"ks": 0.05, "wasserstein": 0.1, "psi": 0.02, "js": 0.0025, "chi2": 0.02}


def tests_for(kind: str) -> tuple[str, ...]:
    """The tests for a target type: 'number' or 'category'."""
    return NUMERIC_TESTS if kind == "number" else CATEGORY_TESTS


def _props(c: np.ndarray, smooth: float = 0.0) -> np.ndarray:
    n = c.sum(-1, keepdims=True)
    return (c + smooth) / np.maximum(n + smooth * c.shape[-1], 1e-12)


def psi(c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Population stability index of window counts c against reference counts r (last axis = bins)."""
    p, q = _props(c, SMOOTH), _props(r, SMOOTH)
    return ((p - q) * np.log(p / q)).sum(-1)


def js(c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (nats, at most ln 2) of the two bin distributions."""
    p, q = _props(c), _props(r)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(p > 0, p * np.log(p / m), 0.0)
        b = np.where(q > 0, q * np.log(q / m), 0.0)
    return 0.5 * (a + b).sum(-1)


def chi2(c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Pearson chi-square of the 2 x bins table (window, reference); empty bins are left out."""
    c, r = np.asarray(c, float), np.asarray(r, float)
    nc, nr = c.sum(-1, keepdims=True), r.sum(-1, keepdims=True)
    tot = c + r
    big = np.maximum(nc + nr, 1e-12)
    ec, er = tot * nc / big, tot * nr / big
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(tot > 0, (c - ec) ** 2 / np.where(ec > 0, ec, 1) + (r - er) ** 2 / np.where(er > 0, er, 1),
                         0.0)
    return terms.sum(-1)


def _cdfs(c: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(c, float)[..., 1:], np.asarray(r, float)[..., 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.cumsum(a, -1) / a.sum(-1, keepdims=True), np.cumsum(b, -1) / b.sum(-1, keepdims=True)


def ks(c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Kolmogorov-Smirnov D between the binned distributions of the values present (bin 0, missing, left out)."""
    p, q = _cdfs(c, r)
    return np.abs(p - q).max(-1)


def wasserstein(c: np.ndarray, r: np.ndarray, centers: np.ndarray, scale: float) -> np.ndarray:
    """Earth mover's distance between the binned distributions (mass at each bin's reference mean), in units
    of the reference standard deviation: about d for a shift of d standard deviations."""
    p, q = _cdfs(c, r)
    gaps = np.diff(centers)
    return (np.abs(p[..., :-1] - q[..., :-1]) * gaps).sum(-1) / max(scale, 1e-12)


def statistic(test: str, c: np.ndarray, r: np.ndarray, centers: np.ndarray | None = None,
              scale: float = 1.0) -> np.ndarray:
    """One named statistic of window counts against reference counts."""
    if test == "wasserstein":
        return wasserstein(c, r, centers if centers is not None else np.arange(c.shape[-1] - 1.0), scale)
    return {"ks": ks, "psi": psi, "chi2": chi2, "js": js}[test](c, r)


def size_key(n: int) -> int:
    """Window sizes rounded to steps of 5% (exactly below 20), so similar windows share one simulated null."""
    n = max(int(n), 1)
    return n if n < 20 else int(round(math.exp(round(math.log(n) / SIZE_STEP) * SIZE_STEP)))


@dataclass
class NullModel:
    """Sampling-noise quantiles of each test for a target, simulated once per (window size, reference size)."""

    kind: str
    shares: np.ndarray                  # reference bin shares
    centers: np.ndarray | None
    scale: float
    rng: np.random.Generator
    cache: dict = field(default_factory=dict)
    refs: dict = field(default_factory=dict)

    @property
    def level(self) -> float:
        """The quantile used as the sampling-noise bar (1 - ALPHA / number of tests)."""
        return 1.0 - ALPHA / len(tests_for(self.kind))

    def noise(self, n_w: int, n_r: int) -> dict[str, tuple[float, float]]:
        """Per test: (median, high quantile) of the statistic between samples of n_w and n_r decisions."""
        key = (size_key(n_w), size_key(n_r))
        if key not in self.cache:
            a = self.rng.multinomial(key[0], self.shares, size=DRAWS)
            if key[1] not in self.refs:  # one reference-side sample per reference size
                self.refs[key[1]] = self.rng.multinomial(key[1], self.shares, size=DRAWS)
            b = self.refs[key[1]]
            out = {}
            for t in tests_for(self.kind):
                s = statistic(t, a, b, self.centers, self.scale)
                s = s[np.isfinite(s)]
                out[t] = (float(np.median(s)), _tail(s, self.level)) if s.size else (0.0, 0.0)
            self.cache[key] = out
        return self.cache[key]


def _tail(s: np.ndarray, level: float) -> float:
    """The level quantile of a gamma distribution with the sample's mean and variance."""
    from scipy import stats

    m, v = float(s.mean()), float(s.var())
    if m <= 0 or v <= 0:
        return float(np.quantile(s, level))
    return float(stats.gamma.ppf(level, m * m / v, scale=v / m))


def floor(test: str, n_w: int, n_r: int) -> float:
    """The smallest statistic that counts as a material change (chi-square's grows with the sizes)."""
    if test == "chi2":
        return FLOORS["chi2"] * n_w * n_r / max(n_w + n_r, 1)
    return FLOORS[test]


def temporal_factor(ref_stats: np.ndarray, ref_medians: np.ndarray, min_windows: int) -> float | None:
    """Mean + 3 sd of the reference windows' statistics over their noise medians; None with too few windows."""
    ok = np.isfinite(ref_stats) & (ref_medians > 0)
    if ok.sum() < min_windows:
        return None
    ratio = ref_stats[ok] / ref_medians[ok]
    return float(ratio.mean() + TEMPORAL_Z * ratio.std(ddof=1))


def thresholds(test: str, model: NullModel, sizes: np.ndarray, n_ref: int, factor: float | None) -> np.ndarray:
    """The threshold of one test for windows of the given sizes (see the module docstring)."""
    out = np.empty(len(sizes))
    for i, n in enumerate(sizes):
        med, hi = model.noise(int(n), n_ref)[test]
        out[i] = max(floor(test, int(n), n_ref), hi, (factor or 0.0) * med)
    return out
