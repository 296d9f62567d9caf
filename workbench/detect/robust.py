"""Robust statistics for the detectors: median absolute deviation (MAD) and the scale it gives.

MAD is the median of |x - center|; times MAD_K it estimates a standard deviation under normality, yet one
outlier (the attack being looked for) cannot inflate it. Applied to aggregates, never to raw decision rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAD_K = 1.4826  # MAD -> standard deviation under normality


def mad(values: np.ndarray, center: float | np.ndarray | None = None) -> float:
    """Median absolute deviation of `values` from `center` (their median when None; an array pairs up)."""
    v = np.asarray(values, dtype=float)
    c = np.median(v) if center is None else center
    return float(np.median(np.abs(v - c)))


def robust_center_scale(values: np.ndarray, floor: float = 1e-9) -> tuple[float, float]:
    """Median and MAD-based scale of the finite values (floored so constant data does not divide by zero)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, floor
    med = float(np.median(v))
    return med, max(mad(v, med) * MAD_K, floor)


def trailing_mad_scale(abs_dev: np.ndarray, window: int, min_periods: int = 20) -> np.ndarray:
    """Per point, MAD_K times the median of the previous `window` absolute deviations (the point itself never
    widens its own scale), carried forward over gaps."""
    rolled = pd.Series(abs_dev).rolling(window, min_periods=min_periods).median().shift(1).ffill()
    return rolled.to_numpy() * MAD_K
