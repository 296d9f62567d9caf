"""Evidence sizes in the unit that fits each kind (rows, bytes, features) or nothing."""

from __future__ import annotations

from workbench.cases.evidence_size import human_bytes, size_text


def test_units_per_kind() -> None:
    assert size_text({"kind": "decision_set", "item_count": 66}) == "66 rows"
    assert size_text({"kind": "metric_window", "item_count": 1064}) == "1,064 rows"
    assert size_text({"kind": "file", "item_count": 13, "content": {"bytes": 13}}) == "13 bytes"
    assert size_text({"kind": "file", "item_count": 2500}) == "2.4 KiB"
    assert size_text({"kind": "alert", "item_count": 66}) == "66 decisions"
    assert size_text({"kind": "alert", "item_count": 0}) == ""
    assert size_text({"kind": "note", "item_count": None}) == ""
    assert size_text({"kind": "decision_set", "item_count": float("nan")}) == ""


def test_explanations_count_features() -> None:
    one = {"decision_id": "d1", "attributions": [{"feature": "a", "shap": 1}, {"feature": "b", "shap": 2}]}
    assert size_text({"kind": "explanation", "item_count": None, "content": one}) == "2 features"
    many = {"decisions": [{"attributions": [{"feature": "a"}, {"feature": "b"}]},
                          {"attributions": [{"feature": "a"}, {"feature": "c"}]}]}
    assert size_text({"kind": "explanation", "content": many}) == "3 features, 2 decisions"
    assert size_text({"kind": "explanation", "item_count": 0, "content": {"text": "x"}}) == ""
    assert size_text({"kind": "explanation", "content": {"attributions": {"a": 0.1}}}) == "1 feature"


def test_human_bytes() -> None:
    assert human_bytes(1) == "1 byte" and human_bytes(1023) == "1,023 bytes"
    assert human_bytes(5 * 1024 * 1024) == "5.0 MiB"
