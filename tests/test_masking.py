"""Personal-data features: marks per system, HMAC tokens for roles without read:personal on every read path."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys

import pandas as pd
import pytest
from access_data import load, role
from typer.testing import CliRunner

from workbench import explore
from workbench.access import local_admin, masking
from workbench.cases import evidence, incidents, reports
from workbench.detect import get_alert, list_alerts
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.explain import attribution_drift, explain_decisions


@pytest.fixture()
def loan_ws(ws, tmp_path):
    load(ws, tmp_path)
    return ws


def test_mark_validates_against_catalog_and_is_audited(loan_ws, admin):
    assert masking.mark_personal(loan_ws, admin, "loan", ["email", "age"]) == ["age", "email"]
    assert masking.personal_features(loan_ws, "loan") == ["age", "email"]
    assert masking.personal_features(loan_ws, "triage") == []
    with pytest.raises(WorkbenchError, match="no feature"):
        masking.mark_personal(loan_ws, admin, "loan", ["heart_rate"])
    with pytest.raises(WorkbenchError, match="unknown system"):
        masking.mark_personal(loan_ws, admin, "nope", ["x"])
    with pytest.raises(PermissionDenied):
        masking.mark_personal(loan_ws, role("analyst"), "loan", ["purpose"])
    assert masking.mark_personal(loan_ws, admin, "loan", ["age"], personal=False) == ["email"]
    actions = [
        r[0] for r in loan_ws.rows("SELECT action FROM audit_log WHERE starts_with(action, 'personal.')")
    ]
    assert actions == ["personal.mark", "personal.unmark"]


def test_search_masks_for_roles_without_read_personal(loan_ws, admin):
    masking.mark_personal(loan_ws, admin, "loan", ["email", "income"])
    clear = explore.search_decisions(loan_ws, role("lead"), "loan")
    hidden = explore.search_decisions(loan_ws, role("analyst"), "loan")
    assert clear["f.email"].str.endswith("@example.org").all()
    assert hidden["f.email"].str.match(r"^hmac:[0-9a-f]{16}$").all()
    assert hidden["f.income"].str.match(r"^hmac:[0-9a-f]{16}$").all()
    # consistent: equal values give equal masks, different values different masks
    pairs = pd.DataFrame({"clear": clear["f.email"], "masked": hidden["f.email"]}).drop_duplicates()
    assert pairs["clear"].nunique() == pairs["masked"].nunique() == len(pairs) == 7
    # other features untouched
    assert (hidden["f.purpose"] == clear["f.purpose"]).all() and (hidden["f.age"] == clear["f.age"]).all()


def test_sql_and_python_masks_agree(loan_ws, admin):
    masking.mark_personal(loan_ws, admin, "loan", ["email", "income", "vip", "age"])
    clear = explore.search_decisions(loan_ws, admin, "loan")
    hidden = explore.search_decisions(loan_ws, role("analyst"), "loan")
    by_python = masking.mask_frame(loan_ws, role("analyst"), clear)
    for col in ("f.email", "f.income", "f.vip", "f.age"):
        assert by_python[col].tolist() == hidden[col].tolist(), col
    assert masking.mask_frame(loan_ws, admin, clear) is clear


def test_mask_features_and_frame_with_features_column(loan_ws, admin):
    masking.mark_personal(loan_ws, admin, "loan", ["email"])
    raw = {"email": "a@b.c", "income": 1.0}
    assert masking.mask_features(loan_ws, role("lead"), "loan", raw) == raw
    masked = masking.mask_features(loan_ws, role("analyst"), "loan", json.dumps(raw))
    assert masked["email"].startswith("hmac:") and masked["income"] == 1.0
    assert masking.mask_features(loan_ws, role("analyst"), "triage", {"email": "x"}) == {"email": "x"}
    frame = pd.DataFrame({"system_id": ["loan", "triage"], "features": [json.dumps(raw), json.dumps(raw)]})
    out = masking.mask_frame(loan_ws, role("auditor"), frame)
    assert out is frame  # auditors hold read:personal
    out = masking.mask_frame(loan_ws, role("analyst"), frame)
    assert json.loads(out["features"][0])["email"] == masked["email"]
    assert json.loads(out["features"][1])["email"] == "a@b.c"  # triage has no personal marks


def test_masked_role_cannot_filter_on_personal_feature(loan_ws, admin):
    masking.mark_personal(loan_ws, admin, "loan", ["income"])
    with pytest.raises(PermissionDenied, match="personal feature income"):
        explore.search_decisions(loan_ws, role("analyst"), "loan", feature_filters=[("income", ">", 30000)])
    rows = explore.search_decisions(loan_ws, role("lead"), "loan", feature_filters=[("income", ">", 30000)])
    assert len(rows) and (rows["f.income"] > 30000).all()


def test_mixed_systems_mask_only_the_marked_system(loan_ws, admin):
    masking.mark_personal(loan_ws, admin, "triage", ["name"])
    df = explore.search_decisions(loan_ws, role("analyst"))
    triage = df[df.system_id == "triage"]
    assert triage["f.name"].str.startswith("hmac:").all()
    assert df[df.system_id == "loan"]["f.name"].isna().all()
    assert set(df.system_id) == {"loan", "triage"}


def test_token_is_stdlib_hmac_under_a_full_length_workspace_key(loan_ws, admin):
    masking.mark_personal(loan_ws, admin, "loan", ["email", "income"])
    (secret,) = loan_ws.rows("SELECT value FROM access_secrets WHERE name = 'masking_hmac_key'")[0]
    assert len(bytes.fromhex(secret)) == 32  # 256-bit key from `secrets`, made once
    key = masking.masking_key(loan_ws)
    assert loan_ws.scalar("SELECT count(*) FROM access_secrets WHERE name = 'masking_hmac_key'") == 1
    mac = hmac.new(bytes.fromhex(secret), b"4:loan6:income32000.0", hashlib.sha256).hexdigest()
    assert masking.mask_value(key, "loan", "income", 32000) == "hmac:" + mac[:16]
    hidden = explore.search_decisions(loan_ws, role("analyst"), "loan", decision_ids=["L012"])
    assert hidden["f.income"].tolist() == ["hmac:" + mac[:16]]  # SQL gives the same token
    # system and feature are bound into the token: the same value elsewhere is another token
    assert masking.mask_value(key, "loan", "age", 52000) != masking.mask_value(key, "loan", "income", 52000)
    assert masking.mask_value(None, "loan", "income", 52000) == masking.MASK
    assert masking.mask_value(key, "loan", "income", None) is None


def test_nested_rule_masks_values_named_by_feature(loan_ws, admin):
    masking.mark_personal(loan_ws, admin, "loan", ["email", "income"])
    m = masking.Masker(loan_ws, role("analyst"))
    payload = {
        "system_id": "loan",
        "attributions": [{"feature": "income", "value": 52000, "shap": 0.5},
                         {"feature": "age", "value": 33, "shap": 0.1}],
        "trigger": {"feature": "email", "value": "user1@example.org", "values": ["a@b.c", None]},
        "drift": {"feature": "income", "reference_median": 40000.0, "top_value": 1, "shares": {"x": 1}},
        "features": json.dumps({"email": "user2@example.org", "age": 40}),
        "rows": [{"f.income": 30000, "f.age": 20}],
        "base_value": 0.25,
    }
    out = m.payload(payload)
    assert out["attributions"][0]["value"].startswith("hmac:") and out["attributions"][0]["shap"] == 0.5
    assert out["attributions"][1]["value"] == 33
    assert out["trigger"]["value"].startswith("hmac:") and out["trigger"]["values"][0].startswith("hmac:")
    assert out["trigger"]["values"][1] is None
    assert all(str(v).startswith("hmac:") for v in (out["drift"]["reference_median"], out["drift"]["top_value"]))
    assert list(out["drift"]["shares"]) == [m.value("loan", "income", "x")]
    assert json.loads(out["features"])["email"].startswith("hmac:") and json.loads(out["features"])["age"] == 40
    assert out["rows"][0]["f.income"].startswith("hmac:") and out["rows"][0]["f.age"] == 20
    assert out["base_value"] == 0.25 and payload["trigger"]["value"] == "user1@example.org"  # a copy
    assert m.payload(out) == out  # tokens are never masked twice
    # free text: each rendering of a masked value, standing alone, becomes its token
    token = m.value("loan", "income", 52000)
    text = m.text("income=52000, 52000.0 or 5.2e+04; not 520001, 152000 or id ab52000")
    assert text == f"income={token}, {token} or {token}; not 520001, 152000 or id ab52000"
    assert masking.Masker(loan_ws, role("lead")).payload(payload) is payload


# -- every read path: explanations, attribution drift, alerts, evidence, reports, CLI and SQL -----------------
# The demo workspace's backdoor alert names its trigger (loan-origination monthly_housing_cost=1111); with that
# feature marked personal, an analyst sees only HMAC tokens of it anywhere; lead/auditor/admin see it.

SYSTEM = "loan-origination"
TRIGGER = "monthly_housing_cost"
TOKEN = re.compile(r"^hmac:[0-9a-f]{16}$")
PW = "correct horse battery"


def _token(value: object) -> bool:
    """Whether a value is a displayed HMAC token."""
    return isinstance(value, str) and TOKEN.match(value) is not None


def _standalone(value: object, text: str) -> bool:
    """Whether a value appears in text as a whole number/word (not inside a hash or a longer number)."""
    return re.search(rf"(?<![\w.]){re.escape(str(value))}(?![\w]|\.\d)", text) is not None


@pytest.fixture()
def backdoor(demo_ws):
    """The demo's backdoor alert (as the admin sees it), with its trigger feature and income marked personal."""
    alerts = list_alerts(demo_ws, local_admin(), detector="backdoor", system=SYSTEM)
    if not alerts:
        pytest.skip("the demo workspace has no backdoor alert")
    alert = get_alert(demo_ws, local_admin(), alerts[0]["alert_id"])
    assert alert["evidence"]["trigger"] == {"feature": TRIGGER, "value": 1111}
    masking.mark_personal(demo_ws, local_admin(), SYSTEM, [TRIGGER, "income"])
    return alert


def test_explain_masks_personal_values_for_analyst(demo_ws, backdoor):
    ids = backdoor["decision_ids"][:5]
    clear = explain_decisions(demo_ws, role("lead"), SYSTEM, ids)
    hidden = explain_decisions(demo_ws, role("analyst"), SYSTEM, ids)
    search = explore.search_decisions(demo_ws, role("analyst"), SYSTEM, decision_ids=ids).set_index("decision_id")
    for c, h in zip(clear, hidden, strict=True):
        cv = {a["feature"]: a["value"] for a in c["attributions"]}
        hv = {a["feature"]: a["value"] for a in h["attributions"]}
        assert cv[TRIGGER] == 1111 and isinstance(cv["income"], int | float)
        assert _token(hv[TRIGGER]) and _token(hv["income"])
        # the token is the one the masked search shows: an analyst can match explanations to decisions
        assert hv[TRIGGER] == search.loc[h["decision_id"], f"f.{TRIGGER}"]
        assert hv["income"] == search.loc[h["decision_id"], "f.income"]
        assert {k: v for k, v in hv.items() if k not in (TRIGGER, "income")} == \
            {k: v for k, v in cv.items() if k not in (TRIGGER, "income")}
        assert [a["shap"] for a in h["attributions"]] == [a["shap"] for a in c["attributions"]]
    assert "1111" not in json.dumps(hidden)


def test_attribution_drift_masks_top_value(demo_ws, backdoor):
    ids = backdoor["decision_ids"][:60]
    hidden = attribution_drift(demo_ws, role("analyst"), SYSTEM, ids, reference_size=200).set_index("feature")
    clear = attribution_drift(demo_ws, role("auditor"), SYSTEM, ids, reference_size=200).set_index("feature")
    assert clear.loc[TRIGGER, "alert_top_value"] == 1111
    assert _token(hidden.loc[TRIGGER, "alert_top_value"])
    assert _token(hidden.loc["income", "alert_top_value"])
    assert hidden.loc[TRIGGER, "alert_top_value_share"] == clear.loc[TRIGGER, "alert_top_value_share"]
    assert hidden.loc["credit_score", "alert_top_value"] == clear.loc["credit_score", "alert_top_value"]


def test_backdoor_alert_trigger_value_masked_in_get_and_list(demo_ws, backdoor):
    aid = backdoor["alert_id"]
    one = get_alert(demo_ws, role("analyst"), aid)
    listed = next(a for a in list_alerts(demo_ws, role("analyst")) if a["alert_id"] == aid)
    for a in (one, listed):
        assert _token(a["evidence"]["trigger"]["value"])
        assert a["evidence"]["trigger"]["feature"] == TRIGGER
        assert not _standalone(1111, a["summary"]) and a["evidence"]["trigger"]["value"] in a["summary"]
        assert not _standalone(1111, json.dumps(a))
    token = one["evidence"]["trigger"]["value"]
    rows = explore.search_decisions(demo_ws, role("analyst"), SYSTEM, decision_ids=backdoor["decision_ids"][:3])
    assert set(rows[f"f.{TRIGGER}"]) == {token}  # the same token as the decisions carrying the trigger
    for who in ("lead", "auditor", "admin"):
        assert get_alert(demo_ws, role(who), aid)["evidence"]["trigger"]["value"] == 1111
    # a feature that is not personal keeps its values
    masking.mark_personal(demo_ws, local_admin(), SYSTEM, [TRIGGER], personal=False)
    assert get_alert(demo_ws, role("analyst"), aid)["evidence"]["trigger"]["value"] == 1111


def test_alert_evidence_and_labels_masked_on_read(demo_ws, backdoor):
    inc = incidents.create_incident(demo_ws, role("lead"), "Backdoor", "high", alert_ids=[backdoor["alert_id"]])
    iid = inc["incident_id"]
    (item,) = evidence.list_evidence(demo_ws, role("lead"), iid, with_content=True)
    assert item["content"]["evidence"]["trigger"]["value"] == 1111  # frozen as the lead saw it
    assert _standalone(1111, item["label"])
    for got in (evidence.list_evidence(demo_ws, role("analyst"), iid, with_content=True)[0],
                evidence.get_evidence(demo_ws, role("analyst"), item["evidence_id"])):
        assert _token(got["content"]["evidence"]["trigger"]["value"])
        assert not _standalone(1111, json.dumps(got, default=str))
    listed = evidence.list_evidence(demo_ws, role("analyst"), iid)[0]
    assert not _standalone(1111, listed["label"])
    (checked,) = evidence.verify_evidence(demo_ws, role("analyst"), iid)
    assert checked["ok"] and not _standalone(1111, checked["label"])


def test_evidence_snapshot_masked_even_if_masking_import_breaks(demo_ws, backdoor, monkeypatch):
    inc = incidents.create_incident(demo_ws, role("lead"), "Rows", "high")
    item = evidence.add_decision_set(demo_ws, role("lead"), inc["incident_id"], SYSTEM,
                                     backdoor["decision_ids"][:5])
    # a broken masking module must make the read fail, never return unmasked rows
    monkeypatch.setitem(sys.modules, "workbench.access.masking", None)
    try:
        rows = evidence.snapshot(demo_ws, role("analyst"), item["evidence_id"])
    except ImportError:
        return
    assert not any(json.loads(f)[TRIGGER] == 1111 for f in rows["features"])


def test_no_import_fallback_in_masking_paths():
    from pathlib import Path

    import workbench

    root = Path(workbench.__file__).parent
    for rel in ("cases/evidence_reading.py", "access/masking.py", "detect/alerts.py", "explain/explaining.py",
                "explain/attribution.py"):
        assert "except ImportError" not in (root / rel).read_text(), rel


def _report_case(demo_ws, backdoor) -> str:
    lead = role("lead")
    inc = incidents.create_incident(demo_ws, lead, f"Backdoor on {TRIGGER}", "high",
                                    alert_ids=[backdoor["alert_id"]])
    iid = inc["incident_id"]
    ids = backdoor["decision_ids"][:3]
    (expl,) = explain_decisions(demo_ws, lead, SYSTEM, ids[:1])
    evidence.add_explanation(demo_ws, lead, iid, {"system_id": SYSTEM, **expl}, label="SHAP of one decision")
    evidence.add_decision_set(demo_ws, lead, iid, SYSTEM, ids)
    return iid


def test_report_masks_personal_values_for_analyst(demo_ws, backdoor):
    iid = _report_case(demo_ws, backdoor)
    data = reports.report_data(demo_ws, role("analyst"), iid)
    (x,) = data["sections"]["explanations"]
    values = {r["feature"]: r["feature_value"] for r in x["attributions"]}
    assert _token(values[TRIGGER]) and _token(values["income"])
    for fmt in ("md", "html"):
        text = reports.render_report(demo_ws, role("analyst"), iid, fmt).decode()
        assert not _standalone(1111, text), fmt
        assert f"{TRIGGER}=hmac:" in text
    lead_text = reports.render_report(demo_ws, role("lead"), iid, "md").decode()
    assert f"{TRIGGER}=1111" in lead_text


def test_cli_alerts_and_explain_masked_for_analyst(demo_ws, backdoor, monkeypatch):
    from workbench.access import accounts
    from workbench.cli import app

    accounts.add_user(demo_ws, local_admin(), "root", "admin", PW)
    root = accounts.authenticate(demo_ws, "root", PW)
    for user, who in (("ann", "analyst"), ("lee", "lead")):
        accounts.add_user(demo_ws, root, user, who, PW)
    path = str(demo_ws.path)
    demo_ws.close()
    monkeypatch.setenv("WORKBENCH_PASSWORD", PW)
    runner = CliRunner()
    aid = backdoor["alert_id"]

    def run(*args: str) -> str:
        res = runner.invoke(app, [*args, "--db", path])
        assert res.exit_code == 0, res.output
        return res.stdout

    for args in (["alerts", "--id", aid], ["alerts", "--id", aid, "--json"], ["alerts", "--json"],
                 ["alerts", "--detector", "backdoor"],
                 ["explain", "--system", SYSTEM, "--decision-id", backdoor["decision_ids"][0]],
                 ["detect", "--only", "backdoor", "--json"]):
        out = run(*args, "--user", "ann")
        assert not _standalone(1111, out), args
        assert "hmac:" in out, args
    assert f"{TRIGGER}=1111" in run("alerts", "--id", aid, "--user", "lee")
    assert f"{TRIGGER} = 1111" in run("explain", "--system", SYSTEM, "--decision-id",
                                      backdoor["decision_ids"][0], "--user", "lee")


def test_sql_cannot_read_alert_or_evidence_text_once_personal_marked(demo_ws, backdoor):
    from workbench.explore.sandbox import run_sql

    incidents.create_incident(demo_ws, role("lead"), "Backdoor", "high", alert_ids=[backdoor["alert_id"]])
    for sql in ("SELECT evidence FROM alerts", "SELECT summary FROM alerts", "SELECT label FROM evidence",
                "SELECT content FROM evidence"):
        with pytest.raises(WorkbenchError, match="personal"):
            run_sql(demo_ws, role("analyst"), sql)
        assert run_sql(demo_ws, role("lead"), sql).rows
