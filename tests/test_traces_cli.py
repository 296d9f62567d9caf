"""The trace commands (`conversations list|show|freeze`, `traces policy`), ingest of a whole traces folder and the
--from trace formats, the demo with the agent's traces, and `eval` on the LLM incident types. In-process CLI
(`workbench.cli.main` with sys.argv), real DuckDB files."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from trace_helpers import build_trace_ws, conversation_of, incident_span

from workbench.access import local_admin
from workbench.cli import main
from workbench.store import open_workspace


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A trace workspace template (8 days of the agent, every LLM incident type, detectors run)."""
    return build_trace_ws(tmp_path_factory.mktemp("traces_cli"))


@pytest.fixture()
def db(traced, tmp_path: Path) -> Path:
    """A fresh copy of the trace workspace."""
    path = tmp_path / "t.duckdb"
    shutil.copy(traced[0], path)
    return path


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run `workbench ARGS` in-process; (exit code, stdout, stderr)."""
    old, sys.argv = sys.argv, ["workbench", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


def test_conversations_list_flagged_and_json(db: Path, traced, capsys) -> None:
    code, out, _ = cli(capsys, "conversations", "list", "--db", str(db), "--flagged", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and rows and all(r["flags"] for r in rows)
    assert {f for r in rows for f in r["flags"]} >= {"llm_injection", "llm_sensitive", "llm_agency"}
    code, out, _ = cli(capsys, "conversations", "list", "--db", str(db), "--system", "nope")
    assert code == 0 and "no conversations in nope" in out
    code, text, _ = cli(capsys, "conversations", "list", "--db", str(db), "--flagged")
    assert code == 0 and "conversation_id" in text and rows[0]["conversation_id"] in text


def test_show_tree_marks_flagged_spans(db: Path, traced, capsys) -> None:
    conv = conversation_of(db, incident_span(traced[1], "llm_indirect_injection"))
    code, out, _ = cli(capsys, "conversations", "show", conv, "--db", str(db))
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(f"conversation {conv} of bank-assist")
    assert any(line.startswith("- agent:") for line in lines)  # the root turn, not indented
    flagged = [line for line in lines if line.lstrip().startswith("! ")]
    assert flagged and all(line.startswith("  ") for line in flagged)  # children of the turn
    assert any("FLAGGED by llm_indirect" in line for line in lines)
    assert not any("You are Ava" in line for line in lines)  # the system prompt only with --full
    code, full, _ = cli(capsys, "conversations", "show", conv, "--db", str(db), "--full")
    assert "You are Ava" in full
    code, js, _ = cli(capsys, "conversations", "show", conv, "--db", str(db), "--json")
    data = json.loads(js)
    assert data["conversation_id"] == conv and data["flagged_spans"] == sum(line.lstrip().startswith("! ")
                                                                           for line in lines)


def test_show_masks_personal_values_for_an_analyst(db: Path, traced, capsys, monkeypatch) -> None:
    from workbench.access import accounts

    conv = conversation_of(db, incident_span(traced[1], "llm_sensitive_data"))
    with open_workspace(db) as ws:
        seeded = {a["role"]: a for a in accounts.seed_demo_accounts(ws, local_admin())}
    monkeypatch.setenv("WORKBENCH_PASSWORD", seeded["lead"]["password"])
    _, lead, _ = cli(capsys, "conversations", "show", conv, "--db", str(db), "--user", "demo-lead")
    monkeypatch.setenv("WORKBENCH_PASSWORD", seeded["analyst"]["password"])
    code, analyst, _ = cli(capsys, "conversations", "show", conv, "--db", str(db), "--user", "demo-analyst")
    assert code == 0 and "masked for your role" in analyst and "hmac:" in analyst
    assert "hmac:" not in lead and lead != analyst
    monkeypatch.setenv("WORKBENCH_PASSWORD", seeded["viewer"]["password"])
    code, _, err = cli(capsys, "conversations", "show", conv, "--db", str(db), "--user", "demo-viewer")
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_freeze_into_an_incident(db: Path, traced, capsys) -> None:
    from workbench.cases import incidents

    conv = conversation_of(db, incident_span(traced[1], "llm_prompt_leak"))
    with open_workspace(db) as ws:
        inc = incidents.create_incident(ws, local_admin(), "Prompt leak", severity="high")["incident_id"]
    code, out, _ = cli(capsys, "conversations", "freeze", conv, "--incident", inc, "--db", str(db), "--json")
    ev = json.loads(out)
    assert code == 0 and ev["kind"] == "file" and len(ev["sha256"]) == 64 and conv in ev["label"]
    with open_workspace(db) as ws:
        assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'evidence.add' AND object = ?", [inc]) == 1
    code, _, err = cli(capsys, "conversations", "freeze", "conv-nope", "--incident", inc, "--db", str(db))
    assert code == 2 and "no conversation 'conv-nope'" in err


def test_policy_applies_to_later_ingest_and_needs_lead_or_admin(db: Path, traced, capsys, tmp_path: Path,
                                                                monkeypatch) -> None:
    from workbench.access import accounts

    code, out, _ = cli(capsys, "traces", "policy", "bank-assist", "mask", "--db", str(db))
    assert code == 0 and "content policy mask" in out
    code, _, err = cli(capsys, "traces", "policy", "bank-assist", "shred", "--db", str(db))
    assert code == 2 and "unknown content policy 'shred'" in err
    # A new span of the system is stored masked; the ones ingested before keep their text.
    line = gzip.open(traced[0].parent / "traces" / "spans" / "bank-assist-legacy.jsonl.gz").readline()
    doc = json.loads(line)
    for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:  # the same spans in new traces
        s["traceId"] = hashlib.sha256(s["traceId"].encode()).hexdigest()[:32]
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps(doc) + "\n")
    code, out, _ = cli(capsys, "ingest", str(new), "--db", str(db))
    assert code == 0 and "traces/otlp-json" in out
    with open_workspace(db) as ws:
        policies = dict(ws.rows("SELECT content_policy, count(*) FROM trace_spans GROUP BY 1"))
        assert policies.get("mask") == len(doc["resourceSpans"][0]["scopeSpans"][0]["spans"])
        seeded = {a["role"]: a for a in accounts.seed_demo_accounts(ws, local_admin())}
    monkeypatch.setenv("WORKBENCH_PASSWORD", seeded["analyst"]["password"])
    code, _, err = cli(capsys, "traces", "policy", "bank-assist", "keep", "--db", str(db), "--user", "demo-analyst")
    assert code == 2 and "may not write settings" in err and len(err.strip().splitlines()) == 1


def test_ingest_a_traces_folder_skips_its_ground_truth_with_a_note(traced, tmp_path: Path, capsys) -> None:
    folder = traced[0].parent / "traces"
    db = tmp_path / "fresh.duckdb"
    code, out, err = cli(capsys, "ingest", str(folder), "--db", str(db))
    assert code == 0 and not err, err
    gt = [line for line in out.splitlines() if "ground_truth.json" in line]
    assert len(gt) == 1 and "skipped: not a data file" in gt[0]
    assert out.count("traces/otlp-json") == len(list((folder / "spans").iterdir()))
    code, out, _ = cli(capsys, "ingest", str(folder / "ground_truth.json"), "--db", str(db), "--json")
    row = json.loads(out)
    assert code == 0 and row["skipped"] and "ground_truth.json" in row["note"] and row["source_id"] is None
    with open_workspace(db) as ws:
        assert ws.scalar("SELECT count(*) FROM sources WHERE path LIKE '%ground_truth.json'") == 0


def test_from_names_the_trace_formats(traced, tmp_path: Path, capsys) -> None:
    one = tmp_path / "one.jsonl"
    one.write_bytes(gzip.open(traced[0].parent / "traces" / "spans" / "bank-assist-legacy.jsonl.gz").readline())
    for i, fmt in enumerate(("otlp", "otlp-json")):
        db = tmp_path / f"f{i}.duckdb"
        code, out, err = cli(capsys, "ingest", str(one), "--from", fmt, "--db", str(db))
        assert code == 0 and "traces/otlp-json read 60, loaded 60" in out, (fmt, out, err)
    code, out, _ = cli(capsys, "ingest", str(one), "--kind", "traces", "--from", "jsonl", "--db",
                       str(tmp_path / "f3.duckdb"))
    assert code == 0 and "traces/otlp-json" in out
    code, _, err = cli(capsys, "ingest", str(one), "--kind", "traces", "--from", "csv", "--db",
                       str(tmp_path / "f4.duckdb"))
    assert code == 1 and "traces are read from OTLP JSON or Langfuse JSONL" in err
    lf = tmp_path / "lf.jsonl"
    lf.write_text(json.dumps({"id": "obs-1", "traceId": "tr-1", "type": "GENERATION", "name": "chat",
                              "startTime": "2026-10-01T10:00:00Z", "endTime": "2026-10-01T10:00:01Z",
                              "model": "gpt-4o", "input": "hi", "output": "hello", "userId": "u1"}) + "\n")
    code, out, err = cli(capsys, "ingest", str(lf), "--from", "langfuse", "--db", str(tmp_path / "f5.duckdb"))
    assert code == 0 and "traces/langfuse read 1, loaded 1" in out, (out, err)


def test_demo_ingests_the_agent_traces(tmp_path: Path) -> None:
    from workbench.demo import build_demo
    from workbench.sample.llm_agent import generate_traces

    sample = tmp_path / "sample"
    (sample / "decisions").mkdir(parents=True)
    (sample / "metrics").mkdir()
    (sample / "decisions" / "d.jsonl").write_text(json.dumps({
        "system_id": "s", "decision_id": "d1", "ts": "2026-10-01T00:00:00Z", "principal": "p",
        "prediction": "approve", "score": 0.5, "features": {"x": 1}}) + "\n")
    (sample / "metrics" / "m.jsonl").write_text(json.dumps({
        "ts": "2026-10-01T00:00:00Z", "system_id": "s", "metric": "latency_ms", "value": 3}) + "\n")
    generate_traces(sample, seed=3, days=8, conversations_per_day=10)
    with open_workspace(tmp_path / "demo.duckdb") as ws:
        out = build_demo(ws, local_admin(), sample)
        assert [f for f in out["files"] if f["kind"] == "traces"] and not any(f["error"] for f in out["files"])
        assert ws.scalar("SELECT count(*) FROM trace_spans") > 500
        assert ws.scalar("SELECT canary FROM trace_systems WHERE system_id = 'bank-assist'")
        assert ws.scalar("SELECT count(DISTINCT detector) FROM alerts WHERE starts_with(detector, 'llm_')") == 6


def test_eval_scores_the_llm_incident_types(db: Path, traced, capsys, tmp_path: Path) -> None:
    truth = traced[0].parent / "traces" / "ground_truth.json"
    code, out, _ = cli(capsys, "eval", "--truth", str(truth), "--db", str(db), "--json")
    res = json.loads(out)
    assert code == 0 and res["summary"]["detected"] == res["summary"]["incidents"] == 6
    assert res["llm"]["detected"] == 6 and res["llm"]["false_alerts"] == 0
    assert {r["type"] for r in res["incidents"] if r["detected"]} >= {"llm_direct_injection", "llm_prompt_leak"}
    # A decision sample's truth beside the traces: its own figures ignore the llm_* alerts, the traces are scored
    # too.
    decisions_truth = traced[0].parent / "ground_truth.json"
    decisions_truth.write_text(json.dumps({"incidents": [], "start": "2026-10-01T00:00:00Z",
                                           "end": "2026-10-09T00:00:00Z"}))
    code, out, _ = cli(capsys, "eval", "--truth", str(decisions_truth), "--db", str(db), "--json")
    res = json.loads(out)
    assert code == 0 and res["alerts_total"] == 0 and res["traces"]["llm"]["detected"] == 6
    code, text, _ = cli(capsys, "eval", "--truth", str(decisions_truth), "--db", str(db))
    assert "LLM incidents (LLM traces)" in text and "LLM traces: 6 of 6 incidents detected" in text
