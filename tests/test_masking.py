"""Personal-data features: marks per system, masked consistently for roles without read:personal."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from access_data import load, role

from workbench import explore
from workbench.cases import masking
from workbench.errors import PermissionDenied, WorkbenchError


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
    assert hidden["f.email"].str.match(r"^#[0-9a-f]{12}$").all()
    assert hidden["f.income"].str.match(r"^#[0-9a-f]{12}$").all()
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
    assert masked["email"].startswith("#") and masked["income"] == 1.0
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
    assert triage["f.name"].str.startswith("#").all()
    assert df[df.system_id == "loan"]["f.name"].isna().all()
    assert set(df.system_id) == {"loan", "triage"}
