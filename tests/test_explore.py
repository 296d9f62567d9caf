"""Decision-level reads: search, get, principal activity, metric windows, nearest normal; audited."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from access_data import START, load, role

from workbench import explore
from workbench.errors import PermissionDenied, WorkbenchError


@pytest.fixture()
def loan_ws(ws, tmp_path):
    load(ws, tmp_path)
    return ws


def _reads(ws) -> list[dict]:
    return [
        json.loads(r[0]) | {"actor": r[1], "object": r[2]}
        for r in ws.rows(
            "SELECT details, actor, object FROM audit_log WHERE action = 'read.decisions' ORDER BY seq"
        )
    ]


def test_search_expands_features_and_filters(loan_ws):
    df = explore.search_decisions(loan_ws, role("analyst"), "loan")
    assert len(df) == 40 and list(df["decision_id"][:2]) == ["L000", "L001"]
    assert {"f.income", "f.age", "f.email", "f.purpose", "f.vip"} <= set(df.columns)
    assert "features" not in df.columns and df["f.income"].dtype.kind == "f" and df["f.vip"].dtype == bool
    df = explore.search_decisions(
        loan_ws,
        role("analyst"),
        "loan",
        principal="app-1",
        prediction=["approve"],
        score_min=0.8,
        feature_filters=[("purpose", "in", ["car", "study"]), ("f.age", ">=", 21), ("vip", "=", "false")],
    )
    assert len(df) and (df.principal == "app-1").all() and (df.prediction == "approve").all()
    assert (df.score >= 0.8).all() and df["f.purpose"].isin(["car", "study"]).all() and (~df["f.vip"]).all()
    df = explore.search_decisions(
        loan_ws, role("analyst"), since=START.isoformat(), until="2024-05-01T00:30:00Z"
    )
    assert sorted(df["decision_id"]) == [
        "L000",
        "L001",
        "L002",
        "L003",
        "L004",
        "L005",
        "T000",
        "T001",
        "T002",
        "T003",
        "T004",
    ]
    assert len(explore.search_decisions(loan_ws, role("analyst"), "loan", limit=3)) == 3
    like = explore.search_decisions(
        loan_ws, role("analyst"), "loan", feature_filters=[("email", "like", "user1@%")]
    )
    assert (like["f.email"] == "user1@example.org").all() and len(like)


def test_search_rejects_unknown_features_and_bad_values(loan_ws):
    analyst = role("analyst")
    with pytest.raises(WorkbenchError, match="unknown feature"):
        explore.search_decisions(loan_ws, analyst, "loan", feature_filters=[("heart_rate", ">", 1)])
    with pytest.raises(WorkbenchError, match="unknown feature"):
        explore.search_decisions(loan_ws, analyst, "loan", feature_filters=[("income') OR 1=1 --", "=", 1)])
    with pytest.raises(WorkbenchError, match="unknown operator"):
        explore.search_decisions(loan_ws, analyst, "loan", feature_filters=[("income", "; DROP", 1)])
    with pytest.raises(WorkbenchError, match="cannot compare"):
        explore.search_decisions(loan_ws, analyst, "loan", feature_filters=[("income", ">", "lots")])
    # user values are parameters, never SQL
    df = explore.search_decisions(loan_ws, analyst, "loan", principal="x' OR '1'='1")
    assert df.empty
    assert loan_ws.scalar("SELECT count(*) FROM decisions") == 50


def test_reads_are_audited_with_decision_ids(loan_ws):
    explore.search_decisions(loan_ws, role("analyst"), "loan", principal="app-2", limit=5)
    explore.get_decisions(loan_ws, role("auditor"), ["T001", "L003"])
    first, second = _reads(loan_ws)
    assert first["actor"] == "test-analyst" and first["object"] == "loan" and first["rows"] == 5
    assert first["decision_ids"] == ["L001", "L003", "L005", "L007", "L009"]
    assert first["filter"]["principal"] == "app-2"
    assert second["actor"] == "test-auditor" and sorted(second["decision_ids"]) == ["L003", "T001"]


def test_viewers_get_aggregates_only(loan_ws):
    viewer = role("viewer")
    with pytest.raises(PermissionDenied):
        explore.search_decisions(loan_ws, viewer, "loan")
    with pytest.raises(PermissionDenied):
        explore.get_decisions(loan_ws, viewer, ["L001"])
    with pytest.raises(PermissionDenied):
        explore.nearest_normal(loan_ws, viewer, "loan", "L001")
    act = explore.principal_activity(loan_ws, viewer, "loan", "app-1", bucket="1 hour")
    assert act["decisions"].sum() == 20 and list(act.columns[:2]) == ["bucket", "decisions"]
    assert len(act) == 4  # 40 decisions x 5 min = 200 min -> 4 hourly buckets
    assert _reads(loan_ws) == []
    with pytest.raises(WorkbenchError, match="interval"):
        explore.principal_activity(
            loan_ws, viewer, "loan", "app-1", bucket="1 hour'; DROP TABLE decisions; --"
        )


def test_metric_window(loan_ws, tmp_path, admin):
    from workbench.ingest import ingest

    path = tmp_path / "metrics.jsonl"
    path.write_text(
        "".join(
            json.dumps({"ts": f"2024-05-01T0{h}:00:00Z", "system_id": "loan", "metric": m, "value": h}) + "\n"
            for h in range(4)
            for m in ("qps", "errors")
        )
    )
    assert ingest(loan_ws, admin, [path], kind="metrics")[0].error is None
    df = explore.metric_window(
        loan_ws, role("viewer"), "loan", ["qps"], "2024-05-01T01:00:00Z", "2024-05-01T03:00:00Z"
    )
    assert df["metric"].tolist() == ["qps", "qps"] and df["value"].tolist() == [1.0, 2.0]
    assert len(explore.metric_window(loan_ws, role("viewer"), "loan", None)) == 8


def test_nearest_normal(loan_ws):
    near = explore.nearest_normal(loan_ws, role("analyst"), "loan", "L005", k=3)
    assert len(near) == 3 and "L005" not in set(near["decision_id"])
    assert near["distance"].is_monotonic_increasing and "f.income" in near.columns
    reads = _reads(loan_ws)
    assert reads[-1]["nearest_to"] == "L005" and sorted(reads[-1]["decision_ids"]) == sorted(
        near["decision_id"]
    )
    # the same ranking computed in pandas: z-scores over the other decisions, euclidean distance
    all_rows = explore.search_decisions(loan_ws, role("analyst"), "loan")
    cand = all_rows[all_rows.decision_id != "L005"].set_index("decision_id")[["f.income", "f.age"]]
    target = all_rows.set_index("decision_id").loc["L005", ["f.income", "f.age"]]
    dist = (((cand - target) / cand.std()) ** 2).sum(axis=1) ** 0.5
    expected = dist.sort_values(kind="stable").head(3)
    assert near["distance"].round(9).tolist() == expected.round(9).tolist()
    with pytest.raises(WorkbenchError, match="no decision"):
        explore.nearest_normal(loan_ws, role("analyst"), "loan", "nope")


def test_nearest_normal_skips_alerted_decisions(loan_ws):
    before = explore.nearest_normal(loan_ws, role("analyst"), "loan", "L005", k=3)
    loan_ws.execute("INSERT INTO alert_decisions VALUES ('a1', 'loan', ?)", [before["decision_id"].iloc[0]])
    near = explore.nearest_normal(loan_ws, role("analyst"), "loan", "L005", k=3)
    assert before["decision_id"].iloc[0] not in set(near["decision_id"])
    assert near["decision_id"].iloc[0] == before["decision_id"].iloc[1]


# -- hostile feature names (issue 12, item 4) --------------------------------------------------------------------
# The callers under investigation write the feature names. Two payloads break out of a string literal holding a
# json_transform spec (the Drift page's, the explain loader's): on the code before the fix each created table
# `pwned` (they start with "!" to sort first in the catalog). The others are names a parser or a JSON path trips on.
DRIFT_BREAKOUT = ("!'||'k'||chr(34)||':'||chr(34)||'VARCHAR'||chr(34)||'}') AS f FROM decisions; "
                  "CREATE TABLE pwned(a INT); --")
EXPLAIN_BREAKOUT = ("!'||'k'||chr(34)||':'||chr(34)||'DOUBLE'||chr(34)||'}')) FROM decisions d; "
                    "CREATE TABLE pwned AS SELECT ?::TEXT a; --")
ODD_NAMES = ["x'); CREATE TABLE pwned(a INT); --", 'a"b', "'||'", "$.income", "a.b", "c[0]", "ünï €",
             "~/t", "back\\slash", "income"]
# hx1 also logs `Income` beside `income`: names a DuckDB struct (json_transform) cannot hold together
NAMES = {"hx1": [DRIFT_BREAKOUT, *ODD_NAMES, "Income"], "hx2": [EXPLAIN_BREAKOUT, *ODD_NAMES]}
N_HOSTILE = 240


def _hostile_rows(system: str, names: list[str]) -> list[dict]:
    rows = []
    for i in range(N_HOSTILE):
        feats = {name: (i % 7) + k for k, name in enumerate(names)}
        feats["'||'"] = f"v{i % 3}"  # a string feature
        rows.append({"decision_id": f"{system}-{i:04d}",
                     "ts": (START + timedelta(hours=i)).isoformat().replace("+00:00", "Z"),
                     "system_id": system, "model_version": "v1", "principal": f"p{i % 4}",
                     "prediction": "approve" if i % 2 else "deny", "score": (i % 10) / 10,
                     "features": feats})
    return rows


@pytest.fixture()
def hostile_ws(ws, tmp_path, admin):
    from access_data import write_jsonl

    from workbench.ingest import ingest

    files = [write_jsonl(tmp_path / f"{s}.jsonl", _hostile_rows(s, names)) for s, names in NAMES.items()]
    results = ingest(ws, admin, files)
    assert all(r.error is None and r.rows_loaded == N_HOSTILE for r in results), results
    for system, names in NAMES.items():
        types = dict(ws.rows("SELECT feature, type FROM feature_catalog WHERE system_id = ?", [system]))
        assert set(types) == set(names) and types["'||'"] == "string"
    return ws


def _types(ws, system: str) -> dict[str, str]:
    return dict(ws.rows("SELECT feature, type FROM feature_catalog WHERE system_id = ? ORDER BY 1", [system]))


def _value(system: str, name: str, i: int) -> object:
    return f"v{i % 3}" if name == "'||'" else (i % 7) + NAMES[system].index(name)


def test_drift_page_keeps_hostile_feature_names_out_of_sql(hostile_ws):
    from workbench.explore import overview

    for system in ("hx1", "hx2"):
        try:
            drift = overview.feature_drift(hostile_ws, role("viewer"), system)
        finally:
            assert not hostile_ws.table_exists("pwned")  # checked even when the call failed
        types = _types(hostile_ws, system)
        assert set(drift["feature"]) == set(types)  # none dropped, none renamed
        assert (drift.groupby("feature")["n"].sum() == N_HOSTILE).all()
        kinds = drift.groupby("feature")["type"].first()
        assert all(kinds[f] == ("number" if t == "number" else "category") for f, t in types.items())


def test_explain_loaders_keep_hostile_feature_names_out_of_sql(hostile_ws):
    from workbench.explain import features

    for system in ("hx2", "hx1"):
        types = _types(hostile_ws, system)
        try:
            sampled = features.load_where(hostile_ws, system, "TRUE", [], types, limit=50)
        finally:
            assert not hostile_ws.table_exists("pwned")
        assert len(sampled) == 50 and sampled["decision_id"].is_unique
        ids = [f"{system}-0003", f"{system}-0010", f"{system}-0003"]
        frame = features.load_by_ids(hostile_ws, system, ids, types)
        assert list(frame["decision_id"]) == ids
        for name in types:
            assert frame[name].tolist() == [_value(system, name, i) for i in (3, 10, 3)], name
        for _, row in sampled.iterrows():
            i = int(row["decision_id"].split("-")[1])
            assert all(row[name] == _value(system, name, i) for name in types)
    assert not hostile_ws.table_exists("pwned")


def test_reads_and_detection_with_hostile_feature_names(hostile_ws, admin):
    from workbench import detect
    from workbench.explore import overview
    from workbench.explore.sample import sample_decisions

    ws = hostile_ws
    for system in ("hx1", "hx2"):
        names = list(_types(ws, system))
        hits = explore.search_decisions(ws, admin, system, feature_filters=[(name, "=", _value(system, name, 6))
                                                                             for name in names])
        assert len(hits) == len([i for i in range(N_HOSTILE) if i % 21 == 6])
        assert all(hits[f"f.{name}"].tolist() == [_value(system, name, 6)] * len(hits) for name in names)
        sample = sample_decisions(ws, admin, system_id=system, limit=20)
        assert sample["shown"] == 20 and {f"f.{n}" for n in names} <= set(sample["decisions"].columns)
        assert len(explore.nearest_normal(ws, admin, system, f"{system}-0003", k=3)) == 3
    detect.run_all(ws, admin)
    summary = overview.workspace_summary(ws, admin)
    assert {s["system_id"] for s in summary["systems"]} == {"hx1", "hx2"}
    assert not ws.table_exists("pwned")
