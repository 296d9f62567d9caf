"""Lake export and attach: partitioned Parquet with a manifest, read-only attach with custody, and attached
decisions searchable, explainable, freezable and reportable like ingested ones (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.access import Actor
from workbench.errors import WorkbenchError
from workbench.lake import attach, detach, export_lake, list_lakes, verify
from workbench.store import Workspace, open_workspace


@pytest.fixture()
def lake_dir(demo_ws: Workspace, admin: Actor, tmp_path: Path) -> Path:
    """The demo workspace exported as a lake."""
    out = tmp_path / "lake"
    export_lake(demo_ws, admin, out)
    return out


@pytest.fixture()
def lake_ws(lake_dir: Path, admin: Actor, tmp_path: Path, small_sample: Path) -> Workspace:
    """A fresh workspace with the lake attached and the sample's models registered (nothing ingested)."""
    from workbench.demo import _register_models

    w = open_workspace(tmp_path / "lake_ws.duckdb")
    attach(w, admin, lake_dir, name="cards")
    _register_models(w, admin, small_sample, lambda _m: None)
    yield w
    w.close()


def test_export_writes_hive_partitions_and_manifest(demo_ws: Workspace, admin: Actor, lake_dir: Path) -> None:
    doc = json.loads((lake_dir / "_manifest.json").read_text())
    base = lake_dir / "decisions"
    parts = {p.parent.relative_to(base).as_posix() for p in base.rglob("*.parquet")}
    assert parts and all(p.startswith("system_id=") and "/date=" in p for p in parts)
    assert doc["decisions"] == demo_ws.scalar("SELECT count(*) FROM decisions")
    assert len(doc["files"]) == len(list(lake_dir.rglob("*.parquet")))
    assert demo_ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'lake.export'") == 1
    with pytest.raises(WorkbenchError, match="not empty"):
        export_lake(demo_ws, admin, lake_dir)


def test_attach_is_read_only_view_with_custody(lake_ws: Workspace, demo_ws: Workspace, admin: Actor) -> None:
    assert lake_ws.scalar("SELECT count(*) FROM decisions") == 0  # nothing copied
    same = "SELECT system_id, count(*), min(ts), max(ts), sum(score) FROM {} GROUP BY 1 ORDER BY 1"
    got, want = lake_ws.rows(same.format("all_decisions")), demo_ws.rows(same.format("decisions"))
    assert [r[:4] for r in got] == [r[:4] for r in want]
    assert [round(r[4], 6) for r in got] == [round(r[4], 6) for r in want]
    (lake,) = list_lakes(lake_ws, admin)
    assert lake["name"] == "cards" and lake["format"] == "parquet" and lake["files"] > 0
    assert lake_ws.scalar("SELECT kind FROM sources WHERE source_id = ?", [lake["source_id"]]) == "lake"
    assert lake_ws.scalar("SELECT count(*) FROM lake_files WHERE lake = 'cards' AND length(sha256) = 64") \
        == lake["files"]
    assert lake_ws.scalar("SELECT count(*) FROM metrics") == demo_ws.scalar("SELECT count(*) FROM metrics")
    assert verify(lake_ws, admin) == [{"name": "cards", "files": lake["files"], "ok": True, "problems": [],
                                       "manifest_sha256": lake["manifest_sha256"]}]
    actions = {r[0] for r in lake_ws.rows("SELECT action FROM audit_log")}
    assert {"lake.attach", "lake.verify"} <= actions


def test_verify_finds_a_changed_file(lake_ws: Workspace, lake_dir: Path, admin: Actor) -> None:
    victim = sorted((lake_dir / "decisions").rglob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes() + b"x")
    (row,) = verify(lake_ws, admin, "cards")
    assert not row["ok"] and row["problems"][0]["path"].endswith(victim.name)


def test_attach_refuses_a_changed_export_and_an_overlap(demo_ws: Workspace, lake_dir: Path, admin: Actor,
                                                       ws: Workspace) -> None:
    with pytest.raises(WorkbenchError, match="already in this workspace"):
        attach(demo_ws, admin, lake_dir)
    victim = sorted((lake_dir / "decisions").rglob("*.parquet"))[-1]
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    with pytest.raises(WorkbenchError, match="differ from its _manifest.json"):
        attach(ws, admin, lake_dir)
    with pytest.raises(WorkbenchError, match="not supported yet"):
        attach(ws, admin, "s3://bucket/lake")


def test_attached_decisions_search_explain_freeze_report(lake_ws: Workspace, admin: Actor) -> None:
    from workbench.cases import evidence
    from workbench.cases.incidents import create_incident
    from workbench.cases.reports import render_report
    from workbench.explain.explaining import explain_decisions
    from workbench.explore import search_decisions

    found = search_decisions(lake_ws, admin, system_id="loan-origination", limit=5)
    assert len(found) == 5
    ids = list(found["decision_id"])
    exp = explain_decisions(lake_ws, admin, "loan-origination", ids[:2])
    assert [e["decision_id"] for e in exp] == ids[:2] and exp[0]["attributions"]
    inc = create_incident(lake_ws, admin, "lake incident", "high", systems=["loan-origination"])
    ev = evidence.add_decision_set(lake_ws, admin, inc["incident_id"], "loan-origination", ids)
    assert lake_ws.scalar("SELECT count(*) FROM evidence_decisions") == 5
    assert ev
    text = render_report(lake_ws, admin, inc["incident_id"], "md").decode()
    assert "lake incident" in text


def test_detach_and_delta_lake(lake_ws: Workspace, lake_dir: Path, admin: Actor, tmp_path: Path) -> None:
    deltalake = pytest.importorskip("deltalake")
    import pyarrow.dataset as pads

    table = pads.dataset(lake_dir / "decisions", format="parquet", partitioning="hive").to_table()
    delta = tmp_path / "delta"
    deltalake.write_deltalake(str(delta), table.drop_columns(["date"]), partition_by=["system_id"])
    w = open_workspace(tmp_path / "delta_ws.duckdb")
    res = attach(w, admin, f"file://{delta}")
    assert res["format"] == "delta" and res["version"] == 0
    assert w.scalar("SELECT count(*) FROM all_decisions") == table.num_rows
    assert w.scalar("SELECT count(DISTINCT type) FROM feature_catalog") >= 1
    detach(w, admin, res["name"])
    assert w.scalar("SELECT count(*) FROM all_decisions") == 0
    w.close()


def test_cli_lake_export_attach_list_verify(demo_ws: Workspace, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from workbench.cli import app
    demo_ws.close()
    run = CliRunner().invoke
    out, db2 = tmp_path / "cli_lake", tmp_path / "cli.duckdb"
    res = run(app, ["lake", "export", "--out", str(out), "--db", str(demo_ws.path), "--json"])
    assert res.exit_code == 0, res.output
    res = run(app, ["lake", "attach", str(out), "--name", "L1", "--db", str(db2), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["name"] == "L1"
    res = run(app, ["lake", "list", "--db", str(db2), "--json"])
    assert json.loads(res.output.splitlines()[0])["name"] == "L1"
    res = run(app, ["lake", "verify", "--db", str(db2)])
    assert res.exit_code == 0 and "L1: ok" in res.output
