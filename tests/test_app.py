"""The Streamlit app through AppTest: every page on the demo and on an empty workspace, sign-in, roles."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from workbench.access import Actor, local_admin
from workbench.app_pages import PAGES, pages_for
from workbench.store import Workspace, open_workspace
from workbench.ui.auth import is_local_client
from workbench.ui.widgets import parse_conditions

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "workbench" / "streamlit_app.py"
PAGE_FILES = [p.file for p in PAGES]
TIMEOUT = 60


def _copy(ws: Workspace, target: Path) -> Path:
    ws.execute("CHECKPOINT")
    shutil.copy(ws.path, target)
    return target


@pytest.fixture()
def demo_db(demo_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the demo workspace that the app serves through WORKBENCH_DB."""
    path = _copy(demo_ws, tmp_path / "app_demo.duckdb")
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_NO_AUTODEMO", "1")
    return path


@pytest.fixture()
def empty_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace that the app serves (auto-demo off)."""
    path = tmp_path / "app_empty.duckdb"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_NO_AUTODEMO", "1")
    return path


def _app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def _clean(at: AppTest, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    assert not at.error, f"{where}: {[e.value for e in at.error]}"


# user -> (workspace file, password), filled by _with_accounts: _as signs in (a hand-made Actor is refused).
_SIGNED_UP: dict[str, tuple[Path, str]] = {}


def _as(at: AppTest, actor: Actor) -> AppTest:
    from workbench.access import accounts

    db, password = _SIGNED_UP[actor.user]
    with open_workspace(db) as ws:
        actor = accounts.authenticate(ws, actor.user, password)
    at.session_state["wb_actor"] = actor
    at.session_state["wb_auth_mode"] = "accounts"
    return at


def _with_accounts(db: Path) -> dict[str, str]:
    from workbench.access import accounts

    ws = open_workspace(db)
    try:
        users = {r["role"]: r for r in accounts.seed_demo_accounts(ws, local_admin())}
    finally:
        ws.close()
    _SIGNED_UP.update({r["user"]: (db, r["password"]) for r in users.values()})
    return {role: r["password"] for role, r in users.items()}


@pytest.mark.parametrize("page", PAGE_FILES)
def test_page_renders_on_demo(demo_db: Path, page: str) -> None:
    at = _app().run()
    _clean(at, "start page")
    at.switch_page(f"app_pages/{page}").run()
    _clean(at, page)
    assert at.title, f"{page} has no title"


@pytest.mark.parametrize("page", PAGE_FILES)
def test_page_renders_on_empty_workspace(empty_db: Path, page: str) -> None:
    at = _app().run()
    _clean(at, "start page")
    at.switch_page(f"app_pages/{page}").run()
    _clean(at, page)


def test_overview_key_elements(demo_db: Path) -> None:
    at = _app().run()
    _clean(at, "overview")
    assert at.title[0].value == "Overview"
    labels = {m.label for m in at.metric}
    assert {"Systems", "Decisions", "Source files"} <= labels
    assert int(at.metric[0].value) == 2
    assert any("Single-user mode" in w.value for w in at.warning)
    assert at.dataframe, "inventory and sources tables expected"


def test_empty_workspace_says_what_to_do(empty_db: Path) -> None:
    at = _app().run()
    _clean(at, "overview")
    assert any("empty" in i.value for i in at.info)


def test_decisions_search_and_select(demo_db: Path) -> None:
    at = _app().run()
    at.switch_page("app_pages/decisions.py").run()
    _clean(at, "decisions")
    assert at.dataframe, "the decisions table should show for an admin"
    at.text_input(key="dec_where").input("nonsense condition here").run()
    assert any("cannot read the condition" in w.value for w in at.warning)


def test_decisions_chart_says_how_many_of_how_many(demo_db: Path) -> None:
    import json as json_mod

    ws = open_workspace(demo_db)
    try:
        counts = dict(ws.rows("SELECT system_id, count(*) FROM decisions GROUP BY 1"))
    finally:
        ws.close()
    at = _app().run()
    at.switch_page("app_pages/decisions.py").run()
    system = at.selectbox(key="dec_system").value
    at.number_input(key="dec_limit").set_value(100).run()
    _clean(at, "decisions, 100 rows")
    spec = json_mod.loads(at.get("plotly_chart")[0].proto.spec)
    title = spec["layout"]["title"]["text"]
    assert title.startswith("100 of ") and "sampled evenly across the window" in title, title
    total = int(title.split(" of ")[1].split()[0].replace(",", ""))
    assert 100 < total <= counts[system]
    assert any("are not shown" in c.value and "narrow" in c.value for c in at.caption)
    ts = pd.to_datetime(at.dataframe[0].value["ts"], utc=True)
    assert ts.max() - ts.min() > pd.Timedelta(days=2), "the sample spans the window, not its first hours"
    at.selectbox(key="dec_sample_mode").select("newest").run()
    title = json_mod.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
    assert title == f"100 of {total:,} decisions, the newest"


def test_sql_page_runs_a_query(demo_db: Path) -> None:
    at = _app().run()
    at.switch_page("app_pages/sql.py").run()
    at.text_area(key="sql_text").input("SELECT system_id, count(*) AS n FROM decisions GROUP BY ALL").run()
    at.button(key="sql_run").click().run()
    _clean(at, "sql")
    assert at.dataframe and len(at.dataframe[-1].value) == 2  # the result (the schema browser's tables first)
    at.text_area(key="sql_text").input("SELECT * FROM read_csv('/etc/passwd')").run()
    at.button(key="sql_run").click().run()
    assert not at.exception and at.error, "a refused query is one clear error, not a traceback"


def test_audit_verify_button(demo_db: Path) -> None:
    at = _app().run()
    at.switch_page("app_pages/audit.py").run()
    at.button(key="audit_verify").click().run()
    _clean(at, "audit")
    assert any("intact" in s.value for s in at.success)


def test_incident_by_hand_and_status(demo_db: Path) -> None:
    at = _app().run()
    at.switch_page("app_pages/incidents.py").run()
    at.text_input(key="inc_new_title").input("Suspicious approvals")
    [b for b in at.button if b.label == "Create"][0].click().run()
    _clean(at, "incidents")
    assert any("INC-0001" in s.value for s in at.subheader)
    at.selectbox(key="inc_next").select("triage")
    [b for b in at.button if b.label == "Apply"][0].click().run()
    _clean(at, "status change")
    assert any("status **triage**" in m.value for m in at.markdown)


def test_incident_evidence_sizes_fit_each_kind(demo_db: Path, tmp_path: Path) -> None:
    from workbench.cases import evidence, incidents

    note = tmp_path / "note.txt"
    note.write_text("trigger 1337\n")  # 13 bytes
    ws = open_workspace(demo_db)
    try:
        admin = local_admin()
        iid = incidents.create_incident(ws, admin, "Sizes", "high")["incident_id"]
        system, ids = ws.one("SELECT system_id, list(decision_id ORDER BY decision_id)[1:3] FROM decisions "
                             "GROUP BY ALL ORDER BY 1 LIMIT 1")
        evidence.add_decision_set(ws, admin, iid, system, ids)
        evidence.add_file(ws, admin, iid, note)
        evidence.add_explanation(ws, admin, iid, {"decision_id": ids[0], "method": "tree", "attributions": [
            {"feature": "a", "value": 1337, "shap": 0.5}, {"feature": "b", "value": 2, "shap": -0.1}]})
        evidence.add_note(ws, admin, iid, "a note")
    finally:
        ws.close()
    at = _app().run()
    at.switch_page("app_pages/incidents.py").run()
    _clean(at, "incidents")
    table = next(df.value for df in at.dataframe if "size" in df.value.columns)
    sizes = dict(zip(table["kind"], table["size"], strict=True))
    assert sizes == {"decision_set": "3 rows", "file": "13 bytes", "explanation": "2 features", "note": ""}
    assert "item_count" not in table.columns and "content" not in table.columns


def test_incident_writeup_editable_in_the_app(demo_db: Path) -> None:
    from workbench.cases import incidents, report_writeup, reports

    with open_workspace(demo_db) as ws:
        iid = incidents.create_incident(ws, local_admin(), "Write-up", "high")["incident_id"]
    at = _app().run()
    at.switch_page("app_pages/incidents.py").run()
    _clean(at, "incidents")
    at.text_area(key="inc_wu_exec_summary").input("Approvals through a **stolen** key; contained.")
    at.text_area(key="inc_wu_root_cause").input("A leaked partner API key.")
    at.text_area(key="inc_wu_lessons").input("Rotate partner keys monthly.")
    at.text_input(key="inc_wu_amount_feature").input("loan_amount")
    at.text_input(key="inc_wu_amount_note").input("requested amounts, not losses")
    [b for b in at.button if b.label == "Save write-up"][0].click().run()
    _clean(at, "write-up saved")
    assert any("Write-up saved (5 of 5 fields filled)" in s.value for s in at.success)
    at.text_area(key="inc_wu_lessons").input("")  # clearing a field
    [b for b in at.button if b.label == "Save write-up"][0].click().run()
    _clean(at, "write-up cleared")
    with open_workspace(demo_db) as ws:
        w = report_writeup.get(ws, local_admin(), iid)
        assert w["root_cause"] == "A leaked partner API key." and w["amount_feature"] == "loan_amount"
        assert w["lessons"] is None and w["amount_note"] == "requested amounts, not losses"
        assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'incident.write' AND object = ?", [iid]) == 2
        md = reports.render_report(ws, local_admin(), iid, "md").decode()
    assert "A leaked partner API key." in md and "Approvals through a **stolen** key" in md


def test_sign_in_required_when_accounts_exist(demo_db: Path) -> None:
    passwords = _with_accounts(demo_db)
    at = _app().run()
    assert at.title[0].value == "Sign in to the workbench"
    assert not at.metric, "no data before sign-in"
    at.text_input(key="signin_user").input("demo-analyst")
    at.text_input(key="signin_password").input("wrong")
    at.button[0].click().run()
    assert at.error and "sign-in failed" in at.error[0].value
    at.text_input(key="signin_user").input("demo-analyst")
    at.text_input(key="signin_password").input(passwords["analyst"])
    at.button[0].click().run()
    _clean(at, "after sign-in")
    assert at.title[0].value == "Overview"
    assert any("demo-analyst" in m.value for m in at.sidebar.markdown)


def test_viewer_sees_no_decision_rows(demo_db: Path) -> None:
    _with_accounts(demo_db)
    at = _as(_app(), Actor("demo-viewer", "viewer")).run()
    _clean(at, "overview as viewer")
    for page in ("decisions.py", "triage.py", "data.py", "drift.py"):
        at.switch_page(f"app_pages/{page}").run()
        _clean(at, f"{page} as viewer")
        for df in at.dataframe:
            assert "decision_id" not in df.value.columns, f"{page} showed decision rows to a viewer"
            assert "raw" not in df.value.columns, f"{page} showed quarantined raw rows to a viewer"
    at.switch_page("app_pages/decisions.py").run()
    assert any("aggregates only" in i.value for i in at.info)


@pytest.mark.parametrize("role", ["viewer", "analyst", "lead", "auditor", "admin"])
def test_audit_page_only_for_auditor_and_admin(demo_db: Path, role: str) -> None:
    _with_accounts(demo_db)
    actor = Actor(f"demo-{role}", role)
    visible = any(p.file == "audit.py" for p in pages_for(actor))
    assert visible == (role in ("auditor", "admin"))
    at = _as(_app(), actor).run()
    if visible:
        at.switch_page("app_pages/audit.py").run()
        _clean(at, f"audit as {role}")
        assert at.dataframe
    else:
        with pytest.raises(ValueError):
            at.switch_page("app_pages/audit.py")


def test_single_user_mode_refuses_remote_clients() -> None:
    assert is_local_client(None, {})
    assert is_local_client("127.0.0.1", {"Host": "localhost:8501"})
    assert is_local_client("::1", {})
    assert is_local_client("::ffff:127.0.0.1", {})  # IPv4 peer of a dual-stack server
    assert not is_local_client("::ffff:10.1.2.3", {})
    assert not is_local_client("10.1.2.3", {})
    assert not is_local_client(None, {"X-Forwarded-For": "203.0.113.9"})
    assert not is_local_client(None, {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'})
    assert is_local_client(None, {"X-Forwarded-For": "127.0.0.1"})


def test_parse_conditions() -> None:
    got = parse_conditions("income > 50000 and purpose in ('car', 'home') AND x is not null and y = 'a b'")
    assert got == [("income", ">", 50000.0), ("purpose", "in", ["car", "home"]), ("x", "is not null", None),
                   ("y", "=", "a b")]
    assert parse_conditions("") == []
    with pytest.raises(ValueError):
        parse_conditions("income >")


def test_no_module_shadows_an_imported_package() -> None:
    """Streamlit puts workbench/ first on sys.path: no name there may hide a top-level package we import."""
    import importlib.util

    ours = {p.stem for p in (ROOT / "workbench").iterdir()
            if (p.suffix == ".py" or (p.is_dir() and not p.name.startswith(("_", ".")))) and p.stem != "__init__"}
    others = [p for p in sys.path if Path(p or ".").resolve() not in (ROOT, ROOT / "workbench")]
    clashes = []
    for name in sorted(ours):
        for entry in others:
            base = Path(entry or ".")
            if (base / name).is_dir() and (base / name / "__init__.py").exists() or (base / f"{name}.py").exists():
                clashes.append(f"{name} (also in {entry})")
                break
        if name in sys.stdlib_module_names:
            clashes.append(f"{name} (standard library)")
    assert not clashes, clashes
    assert importlib.util.find_spec("workbench.streamlit_app") is not None


# -- Triage -> Decisions: exactly an alert's decisions (issue 13) ------------------------------------------------
def _alert_of(db: Path, detector: str) -> dict:
    from workbench.detect import get_alert, list_alerts

    with open_workspace(db) as ws:
        aid = next(a["alert_id"] for a in list_alerts(ws, local_admin()) if a["detector"] == detector)
        return get_alert(ws, local_admin(), aid)


def _explain_from_triage(at: AppTest, alert_id: str) -> AppTest:
    at.switch_page("app_pages/triage.py")
    at.session_state["tr_alert"] = alert_id
    at.run()
    _clean(at, "triage")
    at.button(key="tr_explain").click().run()
    _clean(at, "decisions from triage")
    at.switch_page("app_pages/decisions.py")  # AppTest reruns the page it was last sent to
    return at


def test_triage_explain_shows_exactly_the_alerts_decisions(demo_db: Path) -> None:
    alert = _alert_of(demo_db, "backdoor")
    ids = sorted(alert["decision_ids"])
    at = _explain_from_triage(_app().run(), alert["alert_id"])
    assert at.title[0].value == "Decisions"
    assert at.text_input(key="dec_principal").value == "", "no principal pre-filled"
    assert any(f"exactly its {len(ids)} decisions" in i.value for i in at.info)
    table = next(df.value for df in at.dataframe if "decision_id" in df.value.columns)
    assert sorted(table["decision_id"].astype(str)) == ids, "the last decision at the window end is included"


def test_freezing_from_an_alert_freezes_exactly_its_set(demo_db: Path) -> None:
    from workbench.cases import incidents

    alert = _alert_of(demo_db, "flood")
    with open_workspace(demo_db) as ws:
        iid = incidents.create_incident(ws, local_admin(), "Flood", "high")["incident_id"]
    at = _explain_from_triage(_app().run(), alert["alert_id"])
    at.number_input(key="dec_limit").set_value(100).run()  # the table shows a sample of the alert's decisions
    _clean(at, "decisions, 100 rows")
    at.selectbox(key="dec_inc").select(iid).run()
    button = at.button(key="dec_add")
    assert button.label == f"Add the alert's {len(alert['decision_ids']):,} decisions"
    button.click().run()
    _clean(at, "freeze")
    with open_workspace(demo_db) as ws:
        frozen = [r[0] for r in ws.rows("SELECT decision_id FROM evidence_decisions d JOIN evidence e "
                                        "USING (evidence_id) WHERE e.incident_id = ? ORDER BY 1", [iid])]
    assert frozen == sorted(alert["decision_ids"])


def test_triage_header_names_every_principal(demo_db: Path) -> None:
    alert = _alert_of(demo_db, "flood")
    named = alert["evidence"]["principals"]
    at = _app().run()
    at.switch_page("app_pages/triage.py")
    at.session_state["tr_alert"] = alert["alert_id"]
    at.run()
    _clean(at, "triage")
    head = next(m.value for m in at.markdown if "system `" in m.value)
    assert all(f"`{p}`" in head for p in named), head


# -- issue 16 item 7: the app's rough edges ------------------------------------------------------------------------
def test_triage_queue_is_sorted_by_severity_then_time(demo_db: Path) -> None:
    from workbench.ui.widgets import SEVERITIES

    at = _app().run()
    at.switch_page("app_pages/triage.py").run()
    _clean(at, "triage")
    queue = next(df.value for df in at.dataframe if "alert_id" in df.value.columns)
    rank = [SEVERITIES.index(s) for s in queue["severity"].str.lower()]
    assert rank == sorted(rank), list(queue["severity"])
    for _, group in queue.groupby("severity"):
        assert group["start"].is_monotonic_decreasing, "newest first within a severity"
    assert len(set(rank)) > 1


def test_triage_evidence_numbers_are_whole(demo_db: Path) -> None:
    alert = _alert_of(demo_db, "flood")  # its metric anomalies run past 1,000 characters when printed
    at = _app().run()
    at.switch_page("app_pages/triage.py")
    at.session_state["tr_alert"] = alert["alert_id"]
    at.run()
    _clean(at, "triage")
    table = next(df.value for df in at.dataframe if list(df.value.columns) == ["measure", "value"])
    values = dict(zip(table["measure"], table["value"], strict=True))
    assert not any(v.startswith(("{", "[{")) for v in values.values()), "no dict printed (and cut) as text"
    first = alert["evidence"]["metric_anomalies"][0]
    for key, value in first.items():
        if not isinstance(value, dict | list):
            assert f"metric_anomalies[1].{key}" in values, sorted(values)
    assert values["peak_bucket.observed"] == "111"


def test_alert_links_to_its_attribution_drift(demo_db: Path) -> None:
    alert = _alert_of(demo_db, "backdoor")
    at = _app().run()
    at.switch_page("app_pages/triage.py")
    at.session_state["tr_alert"] = alert["alert_id"]
    at.run()
    at.button(key="tr_attr_drift").click().run()
    _clean(at, "attribution drift from triage")
    at.switch_page("app_pages/drift.py")  # AppTest reruns the page it was last sent to
    assert at.title[0].value == "Drift"
    assert at.selectbox(key="dr_attr_source").value == f"alert {alert['alert_id']}"
    shown = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any("alert vs reference" in t for t in shown), shown


def test_triage_decision_chart_says_what_part_it_shows(demo_db: Path) -> None:
    from workbench.ui.widgets import part_title

    assert part_title(2000, 5321, "the first 2,000") == "2,000 of 5,321 decisions, the first 2,000"
    assert part_title(69, 69, "x") == "All 69 decisions"
    assert part_title(500, None, "the first 500").endswith("the window holds more")
    alert = _alert_of(demo_db, "backdoor")
    at = _app().run()
    at.switch_page("app_pages/triage.py")
    at.session_state["tr_alert"] = alert["alert_id"]
    at.run()
    titles = [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]
    assert f"All {len(alert['decision_ids'])} decisions" in titles, titles


def test_waterfall_labels_its_axis_and_has_a_legend() -> None:
    from workbench.charts_explain import waterfall

    e = {"decision_id": "D1", "model_version": "3.1", "method": "tree", "base_value": -2.0, "output": 0.5,
         "class_index": None, "attributions": [{"feature": f"f{i}", "value": i, "shap": (-1) ** i * 0.5}
                                               for i in range(15)]}
    fig = waterfall(e, top=12)
    assert "log-odds" in fig.layout.xaxis.title.text
    assert fig.layout.showlegend and {t.name for t in fig.data[1:]} >= {"lowers the output", "base value and output"}
    assert any("raises the output" in (t.name or "") for t in fig.data)
    assert "top 12 of 15 features" in fig.layout.title.text and "probability 0.622" in fig.layout.title.text
    surrogate = waterfall({**e, "method": "surrogate"})
    assert "log-odds" not in surrogate.layout.xaxis.title.text and "score" in surrogate.layout.xaxis.title.text


def test_nearest_normal_shows_distance_and_what_differs(demo_ws: Workspace) -> None:
    from workbench.explore import nearest_normal

    system, did = demo_ws.one("SELECT system_id, min(decision_id) FROM decisions GROUP BY ALL ORDER BY 1 LIMIT 1")
    near = nearest_normal(demo_ws, local_admin(), system, did, k=5)
    assert list(near.columns[:3]) == ["decision_id", "distance", "differs"]
    assert near["distance"].is_monotonic_increasing
    text = " ".join(near["differs"])
    assert " vs " in text and " sd)" in text, text


def test_sql_examples_return_rows_on_the_demo(demo_db: Path) -> None:
    at = _app().run()
    at.switch_page("app_pages/sql.py").run()
    examples = [o for o in at.selectbox(key="sql_example").options if o != "(none)"]
    assert len(examples) >= 4
    for name in examples:
        at.selectbox(key="sql_example").select(name).run()
        at.button(key="sql_run").click().run()
        _clean(at, name)
        assert any("rows in" in c.value and not c.value.startswith("0 rows") for c in at.caption), name


def test_sql_schema_browser_and_stale_results(demo_db: Path) -> None:
    at = _app().run()
    at.switch_page("app_pages/sql.py").run()
    _clean(at, "sql")
    tables = next(df.value for df in at.dataframe if "rows (approx.)" in df.value.columns)
    assert {"decisions", "alerts", "incidents"} <= set(tables["table"])
    assert "accounts" not in set(tables["table"]), "only tables the sandbox would run"
    at.selectbox(key="sql_schema_table").select("decisions").run()
    assert any("features" in set(df.value.get("column", [])) for df in at.dataframe)
    at.text_area(key="sql_text").input("SELECT 42 AS answer").run()
    at.button(key="sql_run").click().run()
    assert any("1 rows in" in c.value for c in at.caption)
    at.text_area(key="sql_text").input("SELECT 43 AS other").run()  # edited, not run: the old result goes
    assert not any("rows in" in c.value for c in at.caption)
    assert any("query changed" in c.value for c in at.caption)
    at.text_area(key="sql_text").input("SELECT * FROM nowhere").run()
    at.button(key="sql_run").click().run()
    assert at.error and not any("rows in" in c.value for c in at.caption), "a failed run shows no old result"


def test_data_page_kind_auto_and_errors_name_the_users_file(demo_db: Path) -> None:
    from workbench.ingest import ingest_file
    from workbench.ui.uploads import save_upload
    from workbench.ui.widgets import user_named

    at = _app().run()
    at.switch_page("app_pages/data.py").run()
    _clean(at, "data")
    assert at.selectbox(key="up_kind").value == "auto"
    with open_workspace(demo_db) as ws:
        saved = save_upload(ws, "my log.parquet", b"this is not parquet at all")
        try:
            res = ingest_file(ws, local_admin(), saved)
            message = res.error or ""
        except Exception as exc:  # noqa: BLE001 - either way the message must name the user's file
            message = str(exc)
    assert str(saved.parent) in message or saved.name in message, "the library names the kept copy"
    shown = user_named(message, saved, "my log.parquet")
    assert "my log.parquet" in shown and saved.name not in shown and ".uploads" not in shown, shown


def test_playbook_step_text_shown_once(demo_db: Path) -> None:
    from workbench.cases import incidents, playbook_progress

    with open_workspace(demo_db) as ws:
        iid = incidents.create_incident(ws, local_admin(), "Backdoor", "high")["incident_id"]
        playbook_progress.attach(ws, local_admin(), iid, "ai-backdoor-poisoned-version")
    at = _app().run()
    at.switch_page("app_pages/incidents.py").run()
    _clean(at, "incidents")
    labels = [c.label for c in at.checkbox if c.key and c.key.startswith("inc_step_")]
    assert labels and not any("action:" in label for label in labels), labels
    actions = [c.value for c in at.caption if c.value.startswith("Workbench action:")]
    assert any("workbench model list" in a for a in actions), actions


def test_gitignore_covers_evidence_and_uploads() -> None:
    import subprocess

    paths = ["workbench.duckdb.evidence/models/x.txt", "drills/x.duckdb.evidence/files/a.bin",
             "workbench.uploads/0123_my.csv"]
    got = subprocess.run(["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True)
    assert got.stdout.split() == paths


def test_streamlit_config_keeps_usage_statistics_off() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "workbench" / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert ":material/" not in APP.read_text().split("set_page_config", 1)[1].split("\n", 1)[0], \
        "a material page icon makes the browser fetch the favicon from fonts.gstatic.com"


@pytest.fixture(scope="module")
def full_demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace built from the shipped 30-day sample (sample_data/, as `workbench demo` builds it)."""
    from workbench.demo import build_demo

    path = tmp_path_factory.mktemp("app_full_demo") / "demo.duckdb"
    with open_workspace(path) as ws:
        build_demo(ws, local_admin(), ROOT / "sample_data")
    return path


@pytest.mark.slow
def test_full_demo_backdoor_alert_in_triage_and_decisions(full_demo_db: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The reported case: two principals sent the trigger (33 decisions each); the header names both and Explain
    shows all 66 decisions, the last one at the window end included."""
    db = tmp_path / "full.duckdb"
    shutil.copy(full_demo_db, db)
    monkeypatch.setenv("WORKBENCH_DB", str(db))
    monkeypatch.setenv("WORKBENCH_NO_AUTODEMO", "1")
    alert = _alert_of(db, "backdoor")
    senders = sorted(alert["evidence"]["decisions_by_principal"])
    assert len(senders) == 2
    at = _app().run()
    at.switch_page("app_pages/triage.py")
    at.session_state["tr_alert"] = alert["alert_id"]
    at.run()
    _clean(at, "triage")
    head = next(m.value for m in at.markdown if "system `" in m.value)
    assert "principals" in head and all(f"`{p}`" in head for p in senders), head
    at.button(key="tr_explain").click().run()
    _clean(at, "decisions")
    table = next(df.value for df in at.dataframe if "decision_id" in df.value.columns)
    assert sorted(table["decision_id"].astype(str)) == sorted(alert["decision_ids"])
    assert set(table["principal"]) == set(senders)
