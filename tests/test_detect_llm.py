"""The LLM detectors on a small generated agent sample: every incident type found, alerts in the standard contract
(span ids as decision ids, ATLAS and OWASP ids in evidence), none on the clean variant; conversations and freezing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workbench.access import Actor, local_admin
from workbench.detect import run_all
from workbench.detect.llm_detectors import NAMES
from workbench.detect.llm_eval import score
from workbench.ingest import ingest
from workbench.sample.llm_agent import generate_traces
from workbench.store import open_workspace
from workbench.traces.systems import configure


def _build(tmp: Path, **opts) -> tuple:
    generate_traces(tmp, days=12, conversations_per_day=15, **opts)
    truth = json.loads((tmp / "traces" / "ground_truth.json").read_text())
    ws = open_workspace(tmp / "ws.duckdb")
    who = local_admin()
    configure(ws, who, truth["system_id"], canary=truth["canary"], org_domains=truth["org_domains"])
    files = ingest(ws, who, [tmp / "traces" / "spans"])
    assert all(f.error is None for f in files)
    return ws, truth


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory):
    ws, truth = _build(tmp_path_factory.mktemp("llm"), seed=3)
    alerts = run_all(ws, local_admin(), only=list(NAMES))
    yield ws, truth, alerts
    ws.close()


def test_every_incident_type_is_detected(attacked) -> None:
    _, truth, alerts = attacked
    res = score(alerts, truth)
    assert res["detected"] == res["total"] == 6, res
    assert res["false_alerts"] == 0, res


def test_alerts_follow_the_contract(attacked) -> None:
    _, _, alerts = attacked
    assert {a["detector"] for a in alerts} == set(NAMES)
    for a in alerts:
        assert a["alert_id"].startswith("AL-") and a["atlas"] and a["summary"]
        assert a["evidence"]["owasp_llm_top10_2025"] and a["evidence"]["atlas"] == a["atlas"]
        assert a["decision_ids"] and all(re.fullmatch(r"[0-9a-f]{16}", d) for d in a["decision_ids"])
    by = {a["detector"]: a for a in alerts}
    assert by["llm_leak"]["severity"] == "critical"  # the canary came back
    assert by["llm_injection"]["evidence"]["owasp_llm_top10_2025"] == ["LLM01"]
    assert "AML.T0034" in by["llm_consumption"]["atlas"]


def test_rerun_is_idempotent(attacked) -> None:
    ws, _, alerts = attacked
    again = run_all(ws, local_admin(), only=list(NAMES))
    assert sorted(a["alert_id"] for a in again) == sorted(a["alert_id"] for a in alerts)


def test_other_phrasing_and_rates_still_detected(tmp_path: Path) -> None:
    ws, truth = _build(tmp_path, seed=29, phrasing="b", attack_scale=0.6)
    res = score(run_all(ws, local_admin(), only=list(NAMES)), truth)
    assert res["detected"] == 6 and res["false_alerts"] == 0, res


def test_clean_variant_has_no_llm_alerts(tmp_path: Path) -> None:
    ws, _ = _build(tmp_path, seed=3, clean=True)
    assert run_all(ws, local_admin(), only=list(NAMES)) == []


def test_conversation_tree_masking_and_freeze(attacked) -> None:
    from workbench.cases import incidents
    from workbench.traces import conversations

    ws, truth, _ = attacked
    flagged = conversations.list_conversations(ws, local_admin(), flagged_only=True)
    assert flagged and all(c["flags"] for c in flagged)
    sens = next(i for i in truth["incidents"] if i["type"] == "llm_sensitive_data")
    conv_id = ws.scalar("SELECT conversation_id FROM trace_spans WHERE span_id = ?", [sens["decision_ids"][0]])
    full = conversations.conversation(ws, local_admin(), "bank-assist", conv_id)
    assert full["spans"][0]["depth"] == 0 and max(s["depth"] for s in full["spans"]) == 1
    assert any(s["flags"] for s in full["spans"])
    analyst = Actor("ann", "analyst")
    seen = conversations.conversation(ws, analyst, "bank-assist", conv_id)
    assert seen["masked"]
    text = " ".join(s["output_text"] or "" for s in seen["spans"])
    raw = " ".join(s["output_text"] or "" for s in full["spans"])
    assert any(tag in text for tag in ("[email hmac:", "[nric hmac:", "[card hmac:", "[phone hmac:"))
    assert text != raw and "hmac:" not in raw
    inc = incidents.create_incident(ws, local_admin(), "LLM data leak", severity="high")
    ev = conversations.freeze(ws, local_admin(), inc["incident_id"], "bank-assist", conv_id)
    assert ev["kind"] == "file" and len(ev["sha256"]) == 64


def test_conversations_page_opens_a_flagged_conversation(attacked, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from streamlit.testing.v1 import AppTest

    ws = attacked[0]
    ws.execute("CHECKPOINT")
    db = tmp_path / "app.duckdb"
    shutil.copy(ws.path, db)
    monkeypatch.setenv("WORKBENCH_DB", str(db))
    monkeypatch.setenv("WORKBENCH_NO_AUTODEMO", "1")
    app = Path(__file__).resolve().parents[1] / "workbench" / "streamlit_app.py"
    at = AppTest.from_file(str(app), default_timeout=60)
    at.run()
    at.switch_page("app_pages/conversations.py").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert at.title[0].value == "Conversations" and len(at.dataframe) == 1
