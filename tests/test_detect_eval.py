"""Honest measurement: eval credits an incident only through shared decisions or a named principal and reports
overall precision, recall, time to detect and false alerts per day (on the clean variant too); the same workspace
gives the same alerts on every run; a backdoor alert's id does not give away a masked trigger value."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from workbench.access import Actor, local_admin
from workbench.detect import context as ctx_mod
from workbench.detect import extraction, list_alerts, probing, run_all
from workbench.detect.evaluate import evaluate
from workbench.store import open_workspace
from workbench.timestamps import iso_z

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_nab.py"


def _truth(path: Path) -> dict:
    return json.loads(path.read_text())


def test_same_type_overlap_alone_earns_no_credit(demo_ws, admin, small_sample):
    truth = _truth(small_sample / "ground_truth.json")
    flood = next(i for i in truth["incidents"] if i["type"] == "dos_flood")
    # the same flood, relabelled: other decisions and another principal, same type, same window
    decoy = dict(flood, id="INC-DECOY", principals=["somebody-else"], decision_ids=["CF-none-1", "CF-none-2"])
    res = evaluate(demo_ws, admin, {"incidents": [decoy], "start": truth["start"], "end": truth["end"]})
    row = res["incidents"][0]
    assert not row["detected"] and not row["found"], row
    assert any(a["detector"] == "flood" for a in res["false_alerts"])


def test_a_named_principal_earns_credit(demo_ws, admin, small_sample):
    truth = _truth(small_sample / "ground_truth.json")
    flood = next(i for i in truth["incidents"] if i["type"] == "dos_flood")
    unlabelled = dict(flood, decision_ids=[])  # only the principal ties the alert to it
    res = evaluate(demo_ws, admin, {"incidents": [unlabelled], "start": truth["start"], "end": truth["end"]})
    row = res["incidents"][0]
    assert row["detected"] and row["credited_by"] == ["principal"], row


def test_overall_figures_on_the_sample_and_its_clean_variant(demo_ws, admin, small_sample, small_clean_sample,
                                                           tmp_path):
    res = evaluate(demo_ws, admin, small_sample / "ground_truth.json")
    s = res["summary"]
    assert s["incidents"] == len(res["incidents"]) and s["recall"] == 1.0, res["incidents"]
    assert s["precision"] >= 0.8 and s["credited_alerts"] + s["false_alerts"] == s["alerts"]
    assert s["time_to_detect_median_s"] is not None and s["days"] == pytest.approx(6.0)
    assert s["false_alerts_per_day"] == pytest.approx(s["false_alerts"] / 6.0)
    from workbench.demo import build_demo

    with open_workspace(tmp_path / "clean.duckdb") as cws:
        build_demo(cws, admin, small_clean_sample)
        clean = evaluate(cws, admin, small_clean_sample / "ground_truth.json")
    assert clean["truth_clean"] and clean["incidents"] == []
    c = clean["summary"]
    assert c["credited_alerts"] == 0 and c["false_alerts"] == c["alerts"]
    assert c["false_alerts_medium_plus_per_day"] <= 2 / 6.0, clean["false_alerts"]


def test_cli_eval_with_the_clean_variant(demo_ws, small_sample, small_clean_sample, tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.demo import build_demo

    clean_db = tmp_path / "clean.duckdb"
    with open_workspace(clean_db) as cws:
        build_demo(cws, local_admin(), small_clean_sample)
    path = str(demo_ws.path)
    demo_ws.close()
    runner = CliRunner()
    args = ["eval", "--db", path, "--truth", str(small_sample / "ground_truth.json"), "--clean-db", str(clean_db),
            "--clean-truth", str(small_clean_sample / "ground_truth.json")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "incident sample: precision" in res.stdout and "clean variant: precision" in res.stdout
    assert "false alerts per day" in res.stdout and "median time to detect" in res.stdout
    res = runner.invoke(app, [*args, "--json"])
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["clean"]["summary"]["incidents"] == 0 and "false_alerts_per_day" in out["clean"]["summary"]
    res = runner.invoke(app, ["eval", "--db", path, "--truth", str(small_sample / "ground_truth.json"),
                              "--clean-db", str(clean_db), "--clean-truth", str(small_sample / "ground_truth.json")])
    assert res.exit_code != 0 and "not a clean variant" in str(res.exception)


def _alerts_of(path: Path) -> dict[str, list[str]]:
    with open_workspace(path) as ws:
        ws.execute("SET threads = 2")
        return {a["alert_id"]: sorted(a["decision_ids"]) for a in run_all(ws, local_admin())}


def test_same_workspace_same_alerts_on_every_run(_demo_ws_template, tmp_path, monkeypatch):
    # small samples so the sampling steps really sample the small workspace's references
    monkeypatch.setattr(extraction, "SAMPLE", 2000)
    monkeypatch.setattr(probing, "SAMPLE", 1500)
    runs = []
    for k in range(2):
        path = tmp_path / f"copy{k}.duckdb"
        shutil.copy(_demo_ws_template, path)
        runs.append(_alerts_of(path))
    assert runs[0] == runs[1]
    with open_workspace(path) as ws:
        ctx = ctx_mod.build(ws, local_admin(), "t", None, None, None)
        s = next(x for x in ctx.systems if x.n_ref > 2000)
        bins = [[extraction.bin_sql(ctx, s, f) for f in s.features] for _ in range(3)]
        ctx_mod.drop(ctx)
    assert bins[0] == bins[1] == bins[2], "a reference sample must be the same rows every time"


def test_backdoor_alert_id_does_not_reveal_the_trigger(demo_ws, admin, small_sample):
    from workbench.access.masking import mark_personal

    truth = _truth(small_sample / "ground_truth.json")
    trigger = next(i for i in truth["incidents"] if i["type"] == "backdoor")["trigger"]
    bd = next(a for a in list_alerts(demo_ws, admin) if a["detector"] == "backdoor")
    mark_personal(demo_ws, admin, bd["system_id"], [bd["feature"]])
    seen = next(a for a in list_alerts(demo_ws, Actor("ana", "analyst")) if a["detector"] == "backdoor")
    assert seen["alert_id"] == bd["alert_id"] and str(trigger["value"]) not in json.dumps(seen)
    version = bd["evidence"]["new_version"]
    start = iso_z(np.datetime64(bd["window_start"].replace("Z", ""), "h").astype(object))
    # the id recipe with the raw value (as an analyst could try every amount) must not give the id
    for value in (trigger["value"], float(trigger["value"]), str(trigger["value"])):
        key = "|".join(["backdoor", bd["system_id"], bd["principal"] or "", bd["feature"], "", start,
                        f"{version}|{value}"])
        assert "AL-" + hashlib.sha256(key.encode()).hexdigest()[:16] != bd["alert_id"]
    again = {a["alert_id"] for a in run_all(demo_ws, admin) if a["detector"] == "backdoor"}
    assert again == {bd["alert_id"]}, "the id stays the same on a re-run"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_nab", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_nab_scoring_follows_the_published_definition():
    b = _bench()
    assert b.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert b.scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert b.scaled_sigmoid(0.0) == 0.0 and b.scaled_sigmoid(3.5) == -1.0
    windows = [(1000, 1099), (3000, 3199)]
    assert b.nab_raw(5000, np.array([1000, 3000]), windows) == (pytest.approx(2.0), 2)  # perfect
    assert b.nab_raw(5000, np.array([], dtype=int), windows) == (-2.0, 2)  # null
    raw, _ = b.nab_raw(5000, np.array([1000, 1050, 3000, 4000, 10]), windows)  # one far FP; 10 is probation
    assert raw == pytest.approx(2.0 - 0.11)
    late, _ = b.nab_raw(5000, np.array([1099, 3000]), windows)  # right edge of a window: almost no credit
    assert 1.0 < late < 1.05


def test_nab_benchmark_runs_the_workspace_path():
    b = _bench()
    assert b.DETECTORS["workspace"] is b.workspace_path
    import inspect

    assert "judge_series(" in inspect.getsource(b.workspace_path)
    nab = b.DEFAULT
    if not (nab / "labels" / "combined_windows.json").is_file():
        pytest.skip(f"NAB data not at {nab}")
    total = b.run(nab)["total"]
    for name in ("workspace", "detect_series_defaults", "rolling_zscore"):
        r = total[name]
        assert -200 < r["nab_standard"] <= 100 and 0 <= r["window_recall"] <= 1, (name, r)
