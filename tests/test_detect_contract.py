"""The alert contract: fields and types, idempotency, empty and tiny workspaces, permissions, CLI output."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from workbench.access import Actor
from workbench.detect import get_alert, list_alerts, run_all, set_baseline, set_status
from workbench.detect.alerts import CONTRACT, SEVERITIES, alert_id
from workbench.detect.baseline import default_window, reference
from workbench.errors import PermissionDenied, WorkbenchError

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
ATLAS_ID = re.compile(r"^AML\.T\d{4}(\.\d{3})?$")


def check_contract(a: dict) -> None:
    """Every contract field present and typed."""
    for key in CONTRACT:
        assert key in a, key
    assert isinstance(a["alert_id"], str) and a["alert_id"].startswith("AL-")
    assert a["severity"] in SEVERITIES
    assert ISO_Z.match(a["window_start"]) and ISO_Z.match(a["window_end"])
    assert a["window_start"] <= a["window_end"]
    for key in ("principal", "feature", "metric"):
        assert a[key] is None or isinstance(a[key], str)
    assert isinstance(a["decision_ids"], list) and all(isinstance(i, str) for i in a["decision_ids"])
    assert isinstance(a["atlas"], list) and all(ATLAS_ID.match(t) for t in a["atlas"])
    assert isinstance(a["summary"], str) and a["summary"].endswith(".") and "\n" not in a["summary"]
    assert isinstance(a["evidence"], dict) and a["evidence"]
    json.dumps(a, default=str)


def test_demo_alerts_follow_the_contract(demo_ws, admin):
    alerts = list_alerts(demo_ws, admin)
    assert alerts, "the demo workspace should hold alerts"
    for a in alerts:
        check_contract(a)
    assert {a["detector"] for a in alerts} >= {"artifact", "evasion", "extraction", "flood", "credential",
                                               "backdoor", "drift"}


def test_rerun_does_not_duplicate_and_keeps_status(demo_ws, admin):
    before = {a["alert_id"]: a for a in list_alerts(demo_ws, admin)}
    target = next(iter(before))
    set_status(demo_ws, admin, target, "acknowledged", "looking into it")
    again = run_all(demo_ws, admin)
    after = {a["alert_id"]: a for a in list_alerts(demo_ws, admin)}
    assert set(after) == set(before)
    assert {a["alert_id"] for a in again} <= set(before)
    assert after[target]["status"] == "acknowledged"
    for aid, a in after.items():
        assert sorted(a["decision_ids"]) == sorted(before[aid]["decision_ids"])
    assert demo_ws.scalar("SELECT count(*) FROM alerts") == len(after)


def test_empty_workspace_gives_no_alerts(ws, admin):
    assert run_all(ws, admin) == []
    assert list_alerts(ws, admin) == []


def test_tiny_workspace_does_not_crash(ws, admin, tmp_path):
    rows = [{"system_id": "tiny", "decision_id": f"t{i}", "ts": f"2026-01-01T0{i}:00:00Z", "model_version": "1",
             "principal": "p", "prediction": "yes", "score": 0.5, "features": {"x": i, "c": "a"}} for i in range(5)]
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    from workbench.ingest import ingest

    ingest(ws, admin, [path], kind="decisions")
    assert run_all(ws, admin) == []


def test_permissions(demo_ws):
    viewer = Actor("vic", "viewer")
    with pytest.raises(PermissionDenied):
        run_all(demo_ws, viewer)
    rows = list_alerts(demo_ws, viewer)
    assert rows and all(r["decision_ids"] == [] for r in rows)
    assert any(r["n_decisions"] for r in rows)


def test_get_alert_and_errors(demo_ws, admin):
    a = list_alerts(demo_ws, admin, severity="high")[0]
    assert get_alert(demo_ws, admin, a["alert_id"])["alert_id"] == a["alert_id"]
    with pytest.raises(WorkbenchError):
        get_alert(demo_ws, admin, "AL-nope")
    with pytest.raises(WorkbenchError):
        set_status(demo_ws, admin, a["alert_id"], "bogus")


def test_alert_id_is_deterministic_and_hour_keyed():
    t = datetime(2026, 1, 1, 10, 17, tzinfo=UTC)
    a = alert_id("flood", "s", "p", None, "request_rate", t)
    assert a == alert_id("flood", "s", "p", None, "request_rate", t.replace(minute=45))
    assert a != alert_id("flood", "s", "q", None, "request_rate", t)


def test_baseline_default_and_set(demo_ws, admin):
    first = datetime(2026, 1, 1, tzinfo=UTC)
    s, u = default_window(first, datetime(2026, 1, 31, tzinfo=UTC))
    assert (u - s).days == 7
    s, u = default_window(first, datetime(2026, 1, 11, tzinfo=UTC))
    assert (u - s).days == 3
    sid = demo_ws.scalar("SELECT min(system_id) FROM decisions")
    ref = reference(demo_ws, sid)
    assert ref["source"] == "default"
    row = set_baseline(demo_ws, admin, sid, ref["since"], ref["until"])
    assert row["source"] == "set" and row["decisions"] > 0
    with pytest.raises(WorkbenchError):
        set_baseline(demo_ws, admin, sid, "2026-01-02", "2026-01-01")


def test_cli_detect_json_and_eval(demo_ws, small_sample, tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app
    path = str(demo_ws.path)
    demo_ws.close()
    runner = CliRunner()
    res = runner.invoke(app, ["detect", "--db", path, "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
    assert lines
    for a in lines:
        check_contract(a)
    res = runner.invoke(app, ["alerts", "--db", path, "--json", "--severity", "high"])
    assert res.exit_code == 0 and res.stdout.strip()
    res = runner.invoke(app, ["eval", "--db", path, "--truth", str(small_sample / "ground_truth.json")])
    assert res.exit_code == 0, res.output
    assert "by incident type" in res.stdout
    res = runner.invoke(app, ["baseline", "show", "--db", path, "--json"])
    assert res.exit_code == 0 and res.stdout.strip()
