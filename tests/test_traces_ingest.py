"""Trace ingest: OTLP JSON (GenAI current and older shapes, OpenInference), Langfuse, quarantine, accounting,
idempotent re-ingest, content policy and the checked sensitive-value signals."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from workbench.access import Actor, local_admin
from workbench.ingest import ingest_file
from workbench.sample.llm_agent import generate_traces
from workbench.store import open_workspace
from workbench.traces.systems import configure

T0 = 1_790_000_000_000_000_000


def _av(v):
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    return {"stringValue": v}


def _span(tid: str, sid: str, attrs: dict, parent: str | None = None, events: list | None = None, t: int = 0,
          name: str = "s") -> dict:
    span = {"traceId": tid, "spanId": sid, "name": name, "startTimeUnixNano": str(T0 + t),
            "endTimeUnixNano": str(T0 + t + 1_000_000_000),
            "attributes": [{"key": k, "value": _av(v)} for k, v in attrs.items()]}
    if parent:
        span["parentSpanId"] = parent
    if events:
        span["events"] = [{"name": n, "attributes": [{"key": k, "value": _av(v)} for k, v in a.items()]}
                          for n, a in events]
    return span


def _doc(spans: list[dict], service: str = "bot") -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                               "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}


TID, TID2 = "0af7651916cd43dd8448eb211c80319c", "1af7651916cd43dd8448eb211c80319c"
CURRENT = _span(TID, "b7ad6b7169203331", {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30, "gen_ai.conversation.id": "conv-1",
    "enduser.id": "cust-1", "gen_ai.agent.name": "helper",
    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You are a helpful bank bot."}]),
    "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi, balance?"}]}]),
    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "It is 5."}]}])})
TOOL = _span(TID, "c7ad6b7169203331", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "send_email",
                                       "gen_ai.tool.call.arguments": json.dumps({"to": "x@evil.net"}),
                                       "gen_ai.tool.call.result": "sent"}, parent="b7ad6b7169203331", t=10)
LEGACY = _span(TID2, "d7ad6b7169203331", {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4",
                                          "gen_ai.usage.prompt_tokens": 10, "gen_ai.usage.completion_tokens": 5,
                                          "user.id": "u2"},
               events=[("gen_ai.system.message", {"content": "be brief"}),
                       ("gen_ai.user.message", {"content": "hello"}),
                       ("gen_ai.choice", {"gen_ai.event.content": json.dumps({"content": "hi there"})})])
OPENINF = _span("2af7651916cd43dd8448eb211c80319c", "e7ad6b7169203331", {
    "openinference.span.kind": "RETRIEVER", "session.id": "s9", "user.id": "u9",
    "retrieval.documents.0.document.content": "Branch hours are 9-5.",
    "retrieval.documents.1.document.content": "Cards activate in the app."})


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def ws(tmp_path: Path):
    w = open_workspace(tmp_path / "ws.duckdb")
    yield w
    w.close()


def test_otlp_shapes_load_to_canonical_spans(ws, tmp_path: Path) -> None:
    f = _write(tmp_path / "t.jsonl", [json.dumps(_doc([CURRENT, TOOL])), json.dumps(_doc([LEGACY, OPENINF]))])
    r = ingest_file(ws, local_admin(), f)
    assert r.error is None and r.kind == "traces" and r.format == "otlp-json"
    assert (r.rows_read, r.rows_loaded, r.duplicates, r.rows_quarantined) == (4, 4, 0, 0)
    got = {s["span_id"]: s for s in ws.dicts("SELECT * FROM trace_spans")}
    cur = got["b7ad6b7169203331"]
    assert (cur["kind"], cur["convention"], cur["model"], cur["provider"]) == ("llm", "genai", "gpt-4o", "openai")
    assert (cur["input_tokens"], cur["output_tokens"], cur["principal"], cur["conversation_id"]) == (120, 30,
                                                                                                     "cust-1", "conv-1")
    assert cur["system_prompt"] == "You are a helpful bank bot." and cur["input_text"] == "hi, balance?"
    assert cur["output_text"] == "It is 5." and cur["agent"] == "helper" and cur["latency_ms"] == 1000
    tool = got["c7ad6b7169203331"]
    assert tool["kind"] == "tool" and tool["tool_name"] == "send_email" and tool["parent_span_id"] == cur["span_id"]
    assert tool["principal"] == "cust-1"  # trace-level attributes hold for every span of the trace
    assert tool["destinations"][0].endswith(":evil.net")
    old = got["d7ad6b7169203331"]
    assert (old["convention"], old["input_tokens"], old["output_tokens"]) == ("genai-legacy", 10, 5)
    assert (old["system_prompt"], old["input_text"], old["output_text"]) == ("be brief", "hello", "hi there")
    assert old["principal"] == "u2" and old["system_id"] == "bot"
    oi = got["e7ad6b7169203331"]
    assert (oi["kind"], oi["convention"], oi["principal"], oi["conversation_id"]) == ("retrieval", "openinference",
                                                                                      "u9", "s9")
    assert "Branch hours" in oi["output_text"] and "Cards activate" in oi["output_text"]
    assert ws.scalar("SELECT count(*) FROM model_calls") == 2 and ws.scalar("SELECT count(*) FROM tool_calls") == 1
    assert ws.scalar("SELECT count(*) FROM retrievals") == 1


def test_quarantine_reasons_exact_accounting_and_reingest(ws, tmp_path: Path) -> None:
    bad_id = dict(CURRENT, traceId="zz", spanId="a7ad6b7169203331")
    changed = dict(TOOL, name="changed")
    f = _write(tmp_path / "t.jsonl", [json.dumps(_doc([CURRENT, TOOL])), "not json", json.dumps({"x": 1}),
                                      json.dumps(_doc([bad_id, TOOL, changed]))])
    who = local_admin()
    r = ingest_file(ws, who, f)
    assert r.error is None
    assert r.rows_read == r.rows_loaded + r.duplicates + r.rows_quarantined
    assert (r.rows_read, r.rows_loaded, r.duplicates, r.rows_quarantined) == (7, 2, 1, 4)
    reasons = dict(ws.rows("SELECT reason, line FROM quarantine"))
    assert reasons["not valid JSON"] == 2
    assert reasons["not an OTLP traces document (no resourceSpans list)"] == 3
    assert any(k.startswith("traceId is not 32 hex") for k in reasons)
    assert any(k.startswith("conflicting duplicate: span c7ad6b7169203331") for k in reasons)
    again = ingest_file(ws, who, f)
    assert again.skipped and again.source_id == r.source_id
    re2 = ingest_file(ws, who, f, reingest=True)
    assert (re2.rows_loaded, re2.rows_quarantined) == (0, 4) and re2.rows_read == 7
    assert ws.scalar("SELECT count(*) FROM trace_spans") == 2
    assert ws.scalar("SELECT kind FROM sources WHERE source_id = ?", [r.source_id]) == "traces"


def test_pretty_single_document_gzip_and_forced_kind(ws, tmp_path: Path) -> None:
    f = tmp_path / "one.json"
    f.write_text(json.dumps(_doc([CURRENT]), indent=2))
    r = ingest_file(ws, local_admin(), f)
    assert r.error is None and r.rows_loaded == 1
    g = tmp_path / "t.jsonl.gz"
    with gzip.open(g, "wt") as fh:
        fh.write(json.dumps(_doc([LEGACY])) + "\n")
    assert ingest_file(ws, local_admin(), g).rows_loaded == 1
    junk = _write(tmp_path / "junk.txt", ["hello", "world"])
    forced = ingest_file(ws, local_admin(), junk, kind="traces")
    assert forced.error is None and (forced.rows_read, forced.rows_quarantined) == (2, 2)


def test_langfuse_observations(ws, tmp_path: Path) -> None:
    rows = [{"id": "obs-1", "traceId": "tr-1", "type": "GENERATION", "name": "chat",
             "startTime": "2026-10-01T10:00:00Z",
             "endTime": "2026-10-01T10:00:02Z", "model": "gpt-4o", "userId": "u1", "sessionId": "sess-1",
             "input": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hello"}],
             "output": {"role": "assistant", "content": "hi"}, "usageDetails": {"input": 12, "output": 3}},
            {"id": "obs-2", "traceId": "tr-1", "type": "TOOL", "name": "lookup", "parentObservationId": "obs-1",
             "startTime": "2026-10-01T10:00:01Z", "input": {"id": 1}, "output": "ok"},
            {"id": "obs-3", "traceId": "tr-1", "type": "SPAN"}]
    f = _write(tmp_path / "lf.jsonl", [json.dumps(x) for x in rows])
    r = ingest_file(ws, local_admin(), f, system="helpdesk")
    assert r.format == "langfuse" and (r.rows_loaded, r.rows_quarantined) == (2, 1)
    gen = ws.dicts("SELECT * FROM trace_spans WHERE kind = 'llm'")[0]
    assert (gen["system_id"], gen["principal"], gen["conversation_id"], gen["input_tokens"]) == ("helpdesk", "u1",
                                                                                               "sess-1", 12)
    assert (gen["system_prompt"], gen["input_text"], gen["output_text"]) == ("be nice", "hello", "hi")
    assert len(gen["span_id"]) == 16 and len(gen["trace_id"]) == 32
    tool = ws.dicts("SELECT * FROM trace_spans WHERE kind = 'tool'")[0]
    assert tool["parent_span_id"] == gen["span_id"] and tool["tool_name"] == "lookup"


def test_content_policy_mask_and_drop_keep_signals(ws, tmp_path: Path) -> None:
    who = local_admin()
    configure(ws, who, "masked", content_policy="mask")
    configure(ws, who, "dropped", content_policy="drop")
    leak = dict(CURRENT, attributes=CURRENT["attributes"] + [
        {"key": "gen_ai.output.messages", "value": {"stringValue": "x"}}])
    for sysname in ("masked", "dropped"):
        f = _write(tmp_path / f"{sysname}.jsonl", [json.dumps(_doc([leak, TOOL], service=sysname))])
        assert ingest_file(ws, who, f).rows_loaded == 2
    m = ws.dicts("SELECT * FROM trace_spans WHERE system_id = 'masked' AND kind = 'llm'")[0]
    assert m["input_text"].startswith("hmac:") and m["system_prompt"].startswith("hmac:")
    assert "balance" not in json.dumps(m["messages"]) and "balance" not in (m["attributes"] or "")
    d = ws.dicts("SELECT * FROM trace_spans WHERE system_id = 'dropped' AND kind = 'llm'")[0]
    assert d["input_text"] is None and d["messages"] is None and "gen_ai.input.messages" not in d["attributes"]
    assert d["content_policy"] == "drop" and d["model"] == "gpt-4o"
    tool = ws.dicts("SELECT * FROM trace_spans WHERE system_id = 'dropped' AND kind = 'tool'")[0]
    assert tool["tool_args"] is None and tool["destinations"]  # the signal was taken before the text went


def test_sensitive_values_are_checked(ws, tmp_path: Path) -> None:
    text = ("card 4111 1111 1111 1111 and 4111 1111 1111 1112, NRIC S1234567D and S1234567A, "
            "mail bob@example.com, key sk-live-4f9aQ2xY7bN1mK8pL3sT6vW0")
    span = _span(TID, "b7ad6b7169203331", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                                           "gen_ai.output.messages": json.dumps([{"role": "assistant",
                                                                                  "content": text}])})
    ingest_file(ws, local_admin(), _write(tmp_path / "s.jsonl", [json.dumps(_doc([span]))]))
    found = ws.scalar("SELECT sig_sensitive FROM trace_spans")
    kinds = sorted(v.split(":")[0] for v in found)
    assert kinds == ["card", "email", "nric", "secret"]  # one valid card, one valid NRIC
    assert not any("4111" in v or "bob" in v for v in found)


def test_viewer_cannot_ingest_traces(ws, tmp_path: Path) -> None:
    from workbench.errors import PermissionDenied

    viewer = Actor("v", "viewer")
    f = _write(tmp_path / "t.jsonl", [json.dumps(_doc([CURRENT]))])
    with pytest.raises(PermissionDenied):
        ingest_file(ws, viewer, f)


def test_sample_is_deterministic_and_small(tmp_path: Path) -> None:
    a = generate_traces(tmp_path / "a", seed=5, days=3, conversations_per_day=5)
    b = generate_traces(tmp_path / "b", seed=5, days=3, conversations_per_day=5)
    assert a["files"] == b["files"]
    for name in a["files"]:
        assert (tmp_path / "a" / "traces" / name).read_bytes() == (tmp_path / "b" / "traces" / name).read_bytes()
    truth = json.loads((tmp_path / "a" / "traces" / "ground_truth.json").read_text())
    assert len(truth["incidents"]) == 6 and all(len(d) == 16 for i in truth["incidents"] for d in i["decision_ids"])
    shipped = Path(__file__).resolve().parents[1] / "sample_data" / "traces"
    assert sum(p.stat().st_size for p in shipped.rglob("*") if p.is_file()) < 3_000_000
