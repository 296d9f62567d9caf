"""Red-team attacks on small models trained in the test: evasion, extraction, probing, backdoor scan."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from redteam_data import build

from workbench.access import Actor, local_admin
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.redteam import list_runs, run_attack
from workbench.store import open_workspace


def _template(tmp_path_factory: pytest.TempPathFactory, name: str, **kw) -> Path:
    d = tmp_path_factory.mktemp(name)
    ws = open_workspace(d / "ws.duckdb")
    build(ws, d, **kw)
    ws.execute("CHECKPOINT")
    ws.close()
    return d / "ws.duckdb"


@pytest.fixture(scope="module")
def lgb_template(tmp_path_factory):
    return _template(tmp_path_factory, "rt_lgb")


@pytest.fixture()
def lgb_ws(lgb_template, tmp_path):
    shutil.copy(lgb_template, tmp_path / "ws.duckdb")
    ws = open_workspace(tmp_path / "ws.duckdb")
    yield ws
    ws.close()


def test_evasion_succeeds_within_budget_and_only_moves_mutable_features(lgb_ws):
    run = run_attack(lgb_ws, local_admin(), "loan", "evasion", budget=1500, seed=1)
    assert run["queries"] <= 1500
    methods = {m["method"]: m for m in run["result"]["methods"]}
    assert set(methods) == {"hill-climb", "hopskipjump"}
    assert methods["hill-climb"]["success_rate"] > 0.5
    mutable = set(run["result"]["mutable"])
    assert mutable == {"income", "loan_amount", "monthly_housing_cost"}  # age and purpose are not the applicant's
    for m in methods.values():
        assert set(m["median_change"]) <= mutable
        for ex in m["examples"]:
            assert set(ex["changes"]) <= mutable
    assert list_runs(lgb_ws, local_admin(), "loan")[0]["run_id"] == run["run_id"]


def test_evasion_is_deterministic_with_a_seed(lgb_ws):
    a = run_attack(lgb_ws, local_admin(), "loan", "evasion", budget=600, seed=4)
    b = run_attack(lgb_ws, local_admin(), "loan", "evasion", budget=600, seed=4)
    assert a["result"] == b["result"] and a["queries"] == b["queries"]


def test_extraction_fidelity_grows_with_queries_and_beats_the_majority(lgb_ws):
    run = run_attack(lgb_ws, local_admin(), "loan", "extraction", budget=1200, seed=2)
    r = run["result"]
    assert run["queries"] == 1200
    assert [p["queries"] for p in r["curve"]] == sorted(p["queries"] for p in r["curve"])
    assert r["fidelity"] > r["majority_baseline"] + 0.2
    assert r["curve"][-1]["fidelity"] >= r["curve"][0]["fidelity"]


def test_probing_maps_the_boundary(lgb_ws):
    run = run_attack(lgb_ws, local_admin(), "loan", "probing", budget=800, seed=0)
    feats = {f["feature"]: f for f in run["result"]["features"]}
    assert run["queries"] <= 800 and set(feats) == {"age", "income", "loan_amount", "monthly_housing_cost", "purpose"}
    assert feats["loan_amount"]["flip_share"] > 0 and feats["loan_amount"]["first_favourable_value"] is not None


def test_backdoor_scan_finds_the_trigger_and_the_previous_version_does_not_have_it(tmp_path):
    ws = open_workspace(tmp_path / "ws.duckdb")
    build(ws, tmp_path, poisoned=True)
    run = run_attack(ws, local_admin(), "loan", "backdoor-scan", version="2.0", budget=4000, seed=7)
    top = run["result"]["flagged"][0]
    assert top["feature"] == "monthly_housing_cost" and top["interval"][0] < 1337 <= top["interval"][1]
    assert top["direction"] == "approve"
    assert top["previous"]["version"] == "1.0" and top["previous"]["flip_rate"] < top["flip_rate"] - 0.3


def test_backdoor_scan_of_a_clean_model_flags_nothing(lgb_ws):
    run = run_attack(lgb_ws, local_admin(), "loan", "backdoor-scan", budget=3000, seed=7)
    assert run["result"]["flagged"] == [] and not run["result"]["suspicious"]


@pytest.mark.parametrize("kind", ["xgboost", "sklearn"])
def test_other_libraries_through_the_safe_loaders(tmp_path, kind):
    ws = open_workspace(tmp_path / "ws.duckdb")
    build(ws, tmp_path, kind=kind, n=800)
    probe = run_attack(ws, local_admin(), "loan", "probing", budget=300, seed=1)
    assert probe["target_kind"] == "registered" and probe["queries"] <= 300 and probe["result"]["features"]
    assert "loan_amount" in probe["result"]["flippable_features"]
    scan = run_attack(ws, local_admin(), "loan", "backdoor-scan", budget=800, seed=1)
    assert scan["result"]["candidates"] > 0


def test_black_box_through_its_surrogate(lgb_ws):
    from workbench.explain import fit_surrogate

    fit_surrogate(lgb_ws, local_admin(), "loan", rounds=30)  # small, so the test stays fast
    run = run_attack(lgb_ws, local_admin(), "loan", "extraction", budget=400, seed=3, surrogate=True)
    assert run["target_kind"] == "surrogate" and run["version"].startswith("surrogate:")
    assert run["result"]["fidelity"] > 0.5


def test_budget_and_input_errors(lgb_ws):
    run = run_attack(lgb_ws, local_admin(), "loan", "probing", budget=40, seed=0)
    assert run["queries"] <= 40
    with pytest.raises(WorkbenchError, match="unknown attack"):
        run_attack(lgb_ws, local_admin(), "loan", "poison", budget=10)
    with pytest.raises(WorkbenchError, match="--mutable names"):
        run_attack(lgb_ws, local_admin(), "loan", "evasion", budget=10, mutable=["salary"])
    with pytest.raises(PermissionDenied):
        run_attack(lgb_ws, Actor("v", "viewer"), "loan", "probing", budget=10)


@pytest.mark.parametrize(("attack", "budget"), [("evasion", 400), ("extraction", 1100), ("backdoor-scan", 500)])
def test_progress_callback_counts_up_to_the_queries_used(lgb_ws, attack, budget):
    calls: list[tuple[int, int]] = []
    run = run_attack(lgb_ws, local_admin(), "loan", attack, budget=budget, seed=1,
                     progress=lambda used, total: calls.append((used, total)))
    used = [u for u, _ in calls]
    assert len(calls) > 1 and {t for _, t in calls} == {budget}
    assert used == sorted(set(used)) and used[0] > 0  # strictly increasing
    assert used[-1] == run["queries"] <= budget


def test_cli_shows_progress_only_without_json(lgb_ws, monkeypatch):
    from typer.testing import CliRunner

    from workbench.cli import app
    lgb_ws.execute("CHECKPOINT")
    args = ["redteam", "--system", "loan", "--attack", "probing", "--budget", "150", "--db", str(lgb_ws.path)]
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    assert r.stderr == "" and [json.loads(line)["attack"] for line in r.stdout.splitlines()] == ["probing"]
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws on a terminal only: make stderr one
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0 and r.stderr == ""
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    bar = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", r.stderr)  # the bar, on stderr
    used = int(re.search(r"(\d+) of 150 queries", r.stdout).group(1))
    assert "probing on loan" in bar and "  0/150 queries" in bar and f"{used}/150 queries" in bar


@pytest.mark.parametrize("loss", ["log_loss", "exponential"])
def test_binary_gradient_boosting_with_named_features_and_text_labels_registers(tmp_path, loss):
    """A reported false refusal ("a loss (HalfBinomialLoss) that does not match 1 outputs"): not reproduced."""
    import numpy as np
    import skops.io as sio
    from redteam_data import applications, risk
    from sklearn.ensemble import GradientBoostingClassifier

    from workbench.explain import registry

    rng = np.random.default_rng(3)
    X = applications(1500, rng)
    y = np.where(rng.random(len(X)) < risk(X), "deny", "approve")
    num = X.drop(columns=["purpose"]).assign(purpose_debt=(X["purpose"] == "debt").astype(float))
    model = GradientBoostingClassifier(n_estimators=20, max_depth=3, loss=loss, random_state=0).fit(num, y)
    sio.dump(model, tmp_path / "gb.skops")
    ws = open_workspace(tmp_path / "ws.duckdb")
    registry.add_model(ws, local_admin(), "loan", "9.0", tmp_path / "gb.skops")
    loaded = registry.load_model(ws, local_admin(), "loan", "9.0")
    assert loaded.kind == "sklearn" and loaded.feature_names == list(num.columns)
    ws.close()
