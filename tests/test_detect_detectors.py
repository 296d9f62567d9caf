"""Each detector fires on its incident in the small generated sample and stays quiet on the clean one."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from workbench.access import local_admin
from workbench.detect import list_alerts
from workbench.detect.alerts import severity_at_least
from workbench.detect.evaluate import TYPE_DETECTOR, evaluate
from workbench.detect.flood import bucket_minutes
from workbench.detect.llm_eval import TYPE_DETECTOR as LLM_TYPE_DETECTOR
from workbench.detect.metric_anomaly import detect_series
from workbench.store import open_workspace


@pytest.fixture(scope="session")
def scored(_demo_ws_template: Path, small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Evaluation of the demo workspace (built once) against the small sample's ground truth."""
    path = tmp_path_factory.mktemp("scored") / "demo.duckdb"
    shutil.copy(_demo_ws_template, path)
    ws = open_workspace(path)
    try:
        return evaluate(ws, local_admin(), small_sample / "ground_truth.json")
    finally:
        ws.close()


@pytest.fixture(scope="session")
def clean_alerts(small_clean_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Alerts of a workspace built from the clean small sample."""
    from workbench.demo import build_demo

    path = tmp_path_factory.mktemp("clean") / "clean.duckdb"
    ws = open_workspace(path)
    try:
        build_demo(ws, local_admin(), small_clean_sample)
        return list_alerts(ws, local_admin())
    finally:
        ws.close()


# The LLM incident types live in the trace sample and are measured in tests/test_detect_llm.py.
@pytest.mark.parametrize("kind", sorted(set(TYPE_DETECTOR) - set(LLM_TYPE_DETECTOR)))
def test_detector_fires_on_its_incident(scored, kind):
    rows = [r for r in scored["incidents"] if r["type"] == kind]
    assert rows, f"the small sample has no {kind} incident"
    for r in rows:
        assert r["detected"], r
        if r["recall"] is not None:
            assert r["recall"] >= 0.9, r
            assert r["precision"] >= 0.9, r
        if r["principal_named"] is not None:
            assert r["principal_named"], r
        if r["feature_named"] is not None:
            assert r["feature_named"], r
        if r["window_found"] is not None:
            assert r["window_found"], r


def test_no_medium_false_alerts_on_the_incident_sample(scored):
    assert all(n <= 2 for n in scored["false_alerts_medium_plus_by_system"].values()), scored["false_alerts"]


def test_clean_sample_stays_quiet(clean_alerts):
    loud = [a for a in clean_alerts if severity_at_least(a["severity"], "medium")]
    per_system: dict[str, int] = {}
    for a in loud:
        per_system[a["system_id"]] = per_system.get(a["system_id"], 0) + 1
    assert all(n <= 2 for n in per_system.values()), loud
    attacks = [a for a in clean_alerts if a["detector"] in ("extraction", "evasion", "backdoor", "artifact",
                                                           "flood", "credential")]
    assert attacks == [], attacks


def test_metric_detector_finds_spikes_and_shifts_not_noise():
    rng = np.random.default_rng(3)
    day = 288
    t = np.arange(day * 6)
    base = 100 + 20 * np.sin(2 * np.pi * t / day) + rng.normal(0, 2, len(t))
    assert detect_series(base, day) == []
    spiky = base.copy()
    spiky[day * 4 + 10: day * 4 + 14] += 60
    events = detect_series(spiky, day)
    assert any(day * 4 + 8 <= e.start <= day * 4 + 14 for e in events)
    shifted = base.copy()
    shifted[day * 5:] += 15
    assert any(e.start >= day * 5 for e in detect_series(shifted, day))


def test_bucket_size_follows_the_rate():
    assert bucket_minutes(100_000, 1440) == 1
    assert bucket_minutes(1440, 1440) == 10
    assert bucket_minutes(10, 1440) == 15
