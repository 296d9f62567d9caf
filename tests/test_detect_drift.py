"""Drift at any volume: windows chosen from the data, thresholds from the reference, judged on generated
scenarios the detector was not tuned on (low volume over months: slow drift, sudden drift, a stable system with
weekly and daily cycles), and the Drift page showing the detector's own figures."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from workbench.access import Actor, local_admin
from workbench.detect import drift, list_alerts, run_all
from workbench.detect import drift_tests as dt
from workbench.detect import drift_windows as dw
from workbench.errors import WorkbenchError
from workbench.ingest import ingest_file
from workbench.sample import scenarios
from workbench.store import Workspace, open_workspace

APP = Path(__file__).resolve().parent.parent / "workbench" / "streamlit_app.py"


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _build(path: Path, sc: str | scenarios.Scenario, seed: int = 0) -> dict:
    """Write a scenario, ingest it into a workspace at path/ws.duckdb and run every detector."""
    truth = scenarios.write(path, sc, seed)
    ws = open_workspace(path / "ws.duckdb")
    try:
        res = ingest_file(ws, local_admin(), next((path / "decisions").glob("*.parquet")))
        assert not res.error, res.error
        run_all(ws, local_admin())
    finally:
        ws.close()
    return truth


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    """The three shipped scenarios, each ingested and detected once (workspace path, ground truth)."""
    out = {}
    for name in scenarios.SCENARIOS:
        d = tmp_path_factory.mktemp(name)
        out[name] = (d / "ws.duckdb", _build(d, name))
    return out


@pytest.fixture()
def open_ws(built, tmp_path):
    """Open a fresh copy of a built scenario's workspace."""
    opened: list[Workspace] = []

    def _open(name: str) -> tuple[Workspace, dict]:
        path = tmp_path / f"{name}.duckdb"
        shutil.copy(built[name][0], path)
        opened.append(open_workspace(path))
        return opened[-1], built[name][1]

    yield _open
    for w in opened:
        w.close()


def _values(arr) -> np.ndarray:
    """A plotly JSON array (plain list, or typed {'dtype', 'bdata'})."""
    if isinstance(arr, dict):
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]))
    return np.asarray(arr, dtype=float)


def _drift_alerts(ws: Workspace) -> list[dict]:
    return [a for a in list_alerts(ws, local_admin()) if a["detector"] == "drift"]


# --- windows and thresholds --------------------------------------------------------------------------------------

def test_window_rule_follows_the_volume():
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(days=100)
    assert dw.choose(100 * 11_000, t0, t1).kind == "day"
    assert dw.choose(100 * 165, t0, t1).kind == "week"
    assert dw.choose(100 * 40, t0, t1).kind == "month"
    low = dw.choose(100 * 10, t0, t1)
    assert (low.kind, low.size, low.label) == ("count", dw.MIN_WINDOW, "500 decisions")
    assert dw.choose(100 * 11_000, t0, t1, dw.parse_rule("week")).kind == "week"


def test_window_setting_is_read_and_checked(monkeypatch):
    assert dw.parse_rule("auto") is None and dw.parse_rule("") is None
    assert dw.parse_rule("Weekly").kind == "week"
    assert dw.parse_rule("750") == dw.Rule("count", 750, "set")
    monkeypatch.setenv("WORKBENCH_DRIFT_WINDOW", "month")
    assert dw.setting_rule().kind == "month"
    for bad in ("fortnight", "10", "-5"):
        with pytest.raises(WorkbenchError):
            dw.parse_rule(bad)


@pytest.mark.parametrize("kind", ["number", "category"])
def test_thresholds_hold_their_false_alarm_rate(kind):
    rng = np.random.default_rng(5)
    shares = np.r_[0.0, np.full(20, 0.05)] if kind == "number" else np.r_[0.01, 0.5, 0.3, 0.15, 0.04, 0.0]
    centers = np.linspace(-2, 2, 20) if kind == "number" else None
    model = dt.NullModel(kind, shares, centers, 1.0, np.random.default_rng(1))
    n_ref = 5000
    ref = rng.multinomial(n_ref, shares)
    for n in (150, 1500):
        wins = rng.multinomial(n, shares, size=4000)
        over = np.zeros(len(wins), dtype=bool)
        for test in dt.tests_for(kind):
            thr = dt.thresholds(test, model, np.array([n]), n_ref, None)[0]
            over |= dt.statistic(test, wins, ref[None, :], centers, 1.0) > thr
        assert over.mean() <= 3 * dt.ALPHA, (kind, n, over.mean())
    # PSI's bar follows its expected noise: smaller windows need a larger PSI to count
    if kind == "number":
        small, big = (dt.thresholds("psi", model, np.array([n]), n_ref, None)[0] for n in (150, 1500))
        assert small > 2 * big


def test_reference_variation_raises_the_bar():
    model = dt.NullModel("number", np.r_[0.0, np.full(10, 0.1)], np.arange(10.0), 1.0, np.random.default_rng(2))
    quiet = dt.thresholds("ks", model, np.array([1000]), 5000, None)[0]
    noisy = dt.thresholds("ks", model, np.array([1000]), 5000, 6.0)[0]
    assert noisy == pytest.approx(6.0 * model.noise(1000, 5000)["ks"][0]) and noisy > 1.5 * quiet
    assert dt.temporal_factor(np.array([1.0, 1.1, 0.9]), np.ones(3), 4) is None  # too few reference windows


# --- generated scenarios -----------------------------------------------------------------------------------------

def test_scenarios_are_deterministic_by_seed(tmp_path):
    a, ta = scenarios.build("sudden-drift", 3)
    b, tb = scenarios.build("sudden-drift", 3)
    c, _ = scenarios.build("sudden-drift", 4)
    assert ta == tb and all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["features.claim_amount"][:100], c["features.claim_amount"][:100])
    scenarios.write(tmp_path / "x", "slow-drift", 1)
    scenarios.write(tmp_path / "y", "slow-drift", 1)
    assert (tmp_path / "x/decisions/branch-credit.parquet").read_bytes() == \
        (tmp_path / "y/decisions/branch-credit.parquet").read_bytes()
    per_day = len(a["ts"]) / scenarios.SCENARIOS["sudden-drift"].days
    assert 100 <= per_day <= 200
    with pytest.raises(WorkbenchError):
        scenarios.get("nope")


def test_one_sd_shift_of_a_165_a_day_system_is_found_within_weeks(open_ws):
    ws, truth = open_ws("sudden-drift")
    inc = truth["incidents"][0]
    start = _ts(inc["start"])
    found = [a for a in _drift_alerts(ws) if a["feature"] == inc["feature"]]
    assert len(found) == 1, _drift_alerts(ws)
    a = found[0]
    ev = a["evidence"]
    assert ev["window"] == "1 week"
    assert start - timedelta(days=7) <= _ts(a["window_start"]) <= start + timedelta(days=7)
    assert _ts(ev["detected_at"]) - start <= timedelta(days=21)
    assert a["severity"] == "medium" and ev["psi_peak"] >= drift.PSI_MEDIUM


def test_slow_drift_is_found_while_it_ramps(open_ws):
    ws, truth = open_ws("slow-drift")
    inc = truth["incidents"][0]
    start = _ts(inc["start"])
    found = [a for a in _drift_alerts(ws) if a["feature"] == inc["feature"]]
    assert len(found) == 1, _drift_alerts(ws)
    detected = _ts(found[0]["evidence"]["detected_at"])
    assert start <= _ts(found[0]["window_start"]) + timedelta(days=7)
    assert detected - start <= timedelta(days=inc["ramp_days"] / 2)


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_features_that_do_not_move_never_alert(open_ws, name):
    ws, truth = open_ws(name)
    moved = {i["feature"] for i in truth["incidents"]}
    alerts = _drift_alerts(ws)
    features = {a["feature"] for a in alerts if a["feature"]}
    assert features <= moved, alerts
    assert not features & set(truth["stable_features"])
    outputs = {a["metric"] for a in alerts if a["metric"]}
    assert not outputs or truth["outputs_move"], alerts
    assert all(a["severity"] == "low" for a in alerts if a["feature"] not in moved)


def test_stable_system_with_weekly_and_daily_cycles_raises_nothing(open_ws):
    ws, truth = open_ws("seasonal-stable")
    assert truth["clean"] and {"wait_minutes", "arrival_hour"} <= set(truth["seasonal_features"])
    assert _drift_alerts(ws) == []
    table = drift.windows(ws, local_admin(), "clinic-triage")
    assert set(table["verdict"]) <= {"reference", "pass", "over"}
    assert (table["window_rule"] == "1 week").all()


def test_low_volume_reference_is_extended_to_enough_windows(open_ws):
    ws, _ = open_ws("slow-drift")
    ev = _drift_alerts(ws)[0]["evidence"]["reference"]
    assert ev["windows"] >= dw.REF_WINDOWS and ev["decisions"] >= dw.REF_MIN
    assert ev["extended"] and "extended" in ev["extended"]
    assert ev["configured"]["source"] == "default"


def test_very_low_volume_is_judged_in_runs_of_decisions(tmp_path):
    sc = scenarios.variant("sudden-drift", per_day=12, days=720,
                           shifts=(scenarios.Shift("claim_amount", 400, sd=1.0),))
    truth = _build(tmp_path, sc)
    ws = open_workspace(tmp_path / "ws.duckdb")
    try:
        found = [a for a in _drift_alerts(ws) if a["feature"] == "claim_amount"]
        assert found and found[0]["evidence"]["window"] == "500 decisions"
        assert {a["feature"] for a in _drift_alerts(ws) if a["feature"]} == {"claim_amount"}
        assert _ts(found[0]["evidence"]["detected_at"]) - _ts(truth["incidents"][0]["start"]) <= timedelta(days=120)
    finally:
        ws.close()


def test_categories_with_quotes_and_symbols_are_binned(tmp_path):
    values = ("0 - 20K €", "20K - 40K €", "l'autre", 'say "hi"', "ünïcode")
    sc = scenarios.Scenario(
        "odd-categories", "odd-system", 140, 300,
        (scenarios.Feature("band", "category", values=values, probs=(0.3, 0.3, 0.2, 0.1, 0.1)),
         scenarios.Feature("x", "normal", 0, 1)),
        (scenarios.Shift("band", 70, category="l'autre", share=0.15),))
    _build(tmp_path, sc)
    ws = open_workspace(tmp_path / "ws.duckdb")
    try:
        found = [a for a in _drift_alerts(ws) if a["feature"] == "band"]
        assert found and found[0]["evidence"]["grew_most"] == "l'autre"
        table = drift.windows(ws, local_admin(), "odd-system")
        ref = table[(table["target"] == "band") & (table["role"] == "reference")]
        assert (ref["statistic"] > 0).all()  # every value found its own bin (a JSON-escaped list matched none)
    finally:
        ws.close()


def test_a_model_release_is_not_output_drift(built, tmp_path):
    path = tmp_path / "release.duckdb"
    shutil.copy(built["seasonal-stable"][0], path)
    ws = open_workspace(path)
    try:
        ws.execute("UPDATE decisions SET model_version = '2.0', score = score * 0.5, prediction = 'routine' "
                   "WHERE ts >= TIMESTAMPTZ '2025-08-01 00:00:00+00'")
        run_all(ws, local_admin(), only=["drift"])
        assert [a for a in _drift_alerts(ws) if a["metric"]] == []
        table = drift.windows(ws, local_admin(), "clinic-triage")
        outputs = table[table["kind"] != "feature"]
        assert (outputs.loc[outputs["window_start"] >= pd.Timestamp("2025-08-04", tz="UTC"), "verdict"]
                == "new version").all()
    finally:
        ws.close()


# --- the figures shown are the detector's ------------------------------------------------------------------------

def test_the_windows_table_holds_the_alerts_figures(open_ws):
    ws, truth = open_ws("sudden-drift")
    a = next(a for a in _drift_alerts(ws) if a["feature"] == "claim_amount")
    table = drift.windows(ws, Actor("vera", "viewer"), "claims-triage")
    assert "decision_id" not in table.columns
    mine = table[table["target"] == "claim_amount"]
    first = a["evidence"]["first_drift_window"]
    at = mine[mine["window_start"] == pd.Timestamp(first["start"])]
    for test in ("ks", "wasserstein", "psi"):
        row = at[at["test"] == test].iloc[0]
        assert row["statistic"] == pytest.approx(first[test]["statistic"], rel=1e-4)  # evidence is rounded
        assert row["threshold"] == pytest.approx(first[test]["threshold"], rel=1e-4)
        assert row["alert_id"] == a["alert_id"] and row["verdict"] == "drift"
    summary = drift.summary(table).set_index("target")
    assert summary.loc["claim_amount", "result"] == "drift"
    assert summary.loc["claim_amount", "alert_id"] == a["alert_id"]
    assert (summary.drop(index=["claim_amount", "prediction", "score"])["result"] != "drift").all()
    live = drift.windows(ws, local_admin(), "claims-triage", "auto")  # the same code, run now
    assert live["run_id"].isna().all()
    assert set(live.loc[live["verdict"] == "drift", "target"]) == set(table.loc[table["verdict"] == "drift",
                                                                                "target"])
    daily = drift.windows(ws, local_admin(), "claims-triage", "day")  # other windows on request
    assert (daily["window_rule"] == "1 day").all()
    assert "claim_amount" in set(daily.loc[daily["verdict"] == "drift", "target"])


def test_same_workspace_same_drift_results(open_ws):
    ws, _ = open_ws("slow-drift")
    before = drift.windows(ws, local_admin(), "branch-credit")
    ids = sorted(a["alert_id"] for a in _drift_alerts(ws))
    run_all(ws, local_admin())
    after = drift.windows(ws, local_admin(), "branch-credit")
    assert sorted(a["alert_id"] for a in _drift_alerts(ws)) == ids
    cols = ["target", "test", "window_start", "n", "statistic", "threshold", "verdict"]
    pd.testing.assert_frame_equal(before[cols].reset_index(drop=True), after[cols].reset_index(drop=True))


def test_drift_page_shows_the_detectors_tests(built, tmp_path, monkeypatch):
    path = tmp_path / "page.duckdb"
    shutil.copy(built["sudden-drift"][0], path)
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_NO_AUTODEMO", "1")
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("app_pages/drift.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    verdicts = at.dataframe[0].value  # the pass/fail table, then the per-window table
    assert verdicts.set_index("target").loc["claim_amount", "result"] == "drift"
    assert at.selectbox(key="dr_target").value == verdicts["target"].iloc[0]
    at.selectbox(key="dr_target").select("claim_amount").run()
    at.selectbox(key="dr_test").select("ks").run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {tr.get("name") for tr in spec["data"]}
    assert {"threshold", "drift", "pass"} <= names
    ws = open_workspace(path)
    try:
        table = drift.windows(ws, local_admin(), "claims-triage")
    finally:
        ws.close()
    ks = table[(table["target"] == "claim_amount") & (table["test"] == "ks")].sort_values("window_start")
    shown = next(tr for tr in spec["data"] if tr.get("name") == "threshold")
    assert np.allclose(_values(shown["y"]), ks["threshold"].to_numpy())
    drifted = next(tr for tr in spec["data"] if tr.get("name") == "drift")
    assert np.allclose(_values(drifted["y"]), ks.loc[ks["verdict"] == "drift", "statistic"].to_numpy())
    wide = at.dataframe[1].value
    assert {"statistic ks", "threshold ks", "verdict"} <= set(wide.columns)
