"""One set of detectors, two engines: `detect --lake` on DuckDB and on local Spark give the same alerts as
`detect` on the ingested workspace (same detectors, systems, principals, windows and decision ids)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workbench.access import Actor
from workbench.detect import run_all
from workbench.lake import export_lake
from workbench.lake.engine import SPARK_FAMILIES, detect
from workbench.store import Workspace, open_workspace


def signature(alerts: list[dict]) -> list[tuple]:
    """What must not differ between engines: detector, system, principal, window, feature, metric, decisions."""
    return sorted((a["detector"], a["system_id"], a.get("principal") or "", str(a["window_start"]),
                   str(a["window_end"]), a.get("feature") or "", a.get("metric") or "",
                   tuple(sorted(a["decision_ids"]))) for a in alerts)


@pytest.fixture(scope="module")
def expected(_demo_ws_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple], Path]:
    """The ingested workspace's alerts and its export (computed once for the module)."""
    from workbench.access import local_admin

    tmp = tmp_path_factory.mktemp("lake_engine")
    shutil.copy(_demo_ws_template, tmp / "demo.duckdb")
    w = open_workspace(tmp / "demo.duckdb")
    alerts = run_all(w, local_admin())
    export_lake(w, local_admin(), tmp / "lake")
    w.close()
    return signature(alerts), tmp / "lake"


@pytest.fixture(scope="session")
def spark_session():
    """One local Spark for the test session (local[2], 1g driver), stopped at the end."""
    pytest.importorskip("pyspark")
    from workbench.lake import spark

    yield spark.session()
    spark.stop()


def _lake_ws(tmp_path: Path, admin: Actor, small_sample: Path) -> Workspace:
    from workbench.demo import _register_models

    w = open_workspace(tmp_path / "lake_ws.duckdb")
    _register_models(w, admin, small_sample, lambda _m: None)
    return w


def test_duckdb_over_attached_lake_gives_the_same_alerts(expected, admin: Actor, tmp_path: Path,
                                                         small_sample: Path) -> None:
    want, lake = expected
    w = _lake_ws(tmp_path, admin, small_sample)
    alerts, where = detect(w, admin, str(lake), engine="duckdb")
    assert where["engine"] == "duckdb" and where["spark"] == []
    assert w.scalar("SELECT count(*) FROM decisions") == 0
    assert signature(alerts) == want and any(a[0] == "flood" for a in want)
    w.close()


@pytest.mark.slow
def test_spark_engine_parity(expected, spark_session, admin: Actor, tmp_path: Path, small_sample: Path) -> None:
    from typer.testing import CliRunner

    from workbench.cli import app

    want, lake = expected
    w = _lake_ws(tmp_path, admin, small_sample)
    w.close()
    res = CliRunner().invoke(app, ["detect", "--engine", "spark", "--lake", str(lake), "--json",
                                   "--db", str(tmp_path / "lake_ws.duckdb")])
    assert res.exit_code == 0, res.output
    alerts = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert signature(alerts) == want
    flood = [a for a in alerts if a["detector"] == "flood"]
    assert flood and all(a["evidence"]["engine"] == "spark" for a in flood)
    assert set(SPARK_FAMILIES) == {"flood"}
