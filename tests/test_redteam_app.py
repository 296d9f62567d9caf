"""The Red team page through AppTest: run an attack with coverage, see the charts and the coverage matrix."""

from __future__ import annotations

from pathlib import Path

import pytest
from redteam_data import build
from streamlit.testing.v1 import AppTest

from workbench.access import local_admin
from workbench.redteam import run_attack
from workbench.store import open_workspace

APP = Path(__file__).resolve().parent.parent / "workbench" / "streamlit_app.py"


@pytest.fixture()
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ws.duckdb"
    ws = open_workspace(path)
    build(ws, tmp_path, n=800)
    run_attack(ws, local_admin(), "loan", "extraction", budget=300, seed=1)
    ws.execute("CHECKPOINT")
    ws.close()
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_NO_AUTODEMO", "1")
    return path


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_red_team_page_runs_an_attack_and_shows_coverage(db: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("app_pages/redteam.py").run()
    _clean(at)
    assert at.title[0].value == "Red team"
    assert at.selectbox(key="rt_system").value == "loan"
    at.selectbox(key="rt_attack").set_value("probing")
    at.number_input(key="rt_budget").set_value(300)
    at.button(key="rt_run").click().run()
    _clean(at)
    runs = at.dataframe[0].value
    assert len(runs) == 2 and set(runs["attack"]) == {"probing", "extraction"}
    assert at.selectbox(key="rt_pick").value.startswith("RT-")
    assert len(at.get("plotly_chart")) >= 2  # the sweeps and the coverage matrix
    assert at.get("progress")  # the attack's queries against its budget


def test_red_team_page_starts_a_drill_from_an_emitted_run(db: Path) -> None:
    from workbench.drills.workspace import file_is_drill

    ws = open_workspace(db)
    run = run_attack(ws, local_admin(), "loan", "probing", budget=200, seed=2, emit_dir=db.parent / "emit")
    ws.execute("CHECKPOINT")
    ws.close()
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("app_pages/redteam.py").run()
    _clean(at)
    assert at.selectbox(key="rt_pick").value == run["run_id"]  # the newest run
    at.button(key="rt_drill").click().run()
    _clean(at)
    target = db.parent / "drills" / f"redteam-{run['run_id'].lower()}.duckdb"
    assert file_is_drill(target)
    assert any(str(target) in s.value for s in at.success)
    at.selectbox(key="rt_pick").set_value(next(i for i in at.selectbox(key="rt_pick").options if i != run["run_id"]))
    at.run()
    _clean(at)  # the extraction run kept no traffic: no button, a hint instead
    assert not [b for b in at.button if b.key == "rt_drill"]
    assert any("kept no traffic" in i.value for i in at.info)
