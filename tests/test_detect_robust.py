"""workbench.detect.robust: MAD and the robust scale, one way."""

from __future__ import annotations

import numpy as np

from workbench.detect.robust import MAD_K, mad, robust_center_scale, trailing_mad_scale


def test_mad_ignores_one_outlier() -> None:
    v = np.array([1.0, 2.0, 3.0, 4.0, 1000.0])
    assert mad(v) == 1.0
    assert mad(v, np.array([1.0, 2.0, 3.0, 4.0, 5.0])) == 0.0


def test_center_scale_drops_non_finite_and_floors_constant_data() -> None:
    assert robust_center_scale(np.array([1.0, 2.0, 3.0, np.nan, np.inf])) == (2.0, MAD_K)
    assert robust_center_scale(np.array([5.0, 5.0, 5.0]), floor=0.05) == (5.0, 0.05)
    assert robust_center_scale(np.array([]), floor=0.1) == (0.0, 0.1)


def test_trailing_scale_never_includes_the_point_itself() -> None:
    dev = np.array([1.0] * 30 + [100.0])
    scale = trailing_mad_scale(dev, window=10, min_periods=5)
    assert np.isnan(scale[:5]).all()
    assert scale[-1] == MAD_K  # the spike does not widen its own scale
