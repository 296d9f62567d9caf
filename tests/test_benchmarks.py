"""The benchmark scripts run end to end at a small size, so they do not rot between measurements.

Their figures are not checked here (speed targets are measured, not tested); only that each script completes
and prints the lines its README table is read from.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script: str, *args: str) -> str:
    out = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["export", "compact"])
def test_bench_ingest_runs(tmp_path, shape):
    text = _run("bench_ingest.py", "--rows", "20000", "--workdir", str(tmp_path), "--shape", shape)
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith(("csv ", "jsonl "))}
    assert set(rows) == {"csv", "jsonl"}, text
    for cols in rows.values():
        assert cols[-2].endswith("%") and int(cols[-1].replace(",", "")) > 0, text


@pytest.mark.slow
def test_bench_detect_runs(tmp_path):
    text = _run("bench_detect.py", "--rows", "200000", "--db", str(tmp_path / "detect.duckdb"))
    assert "total" in text and "errors: none" in text, text


@pytest.mark.slow
def test_bench_explain_runs():
    text = _run("bench_explain.py", "--rows", "100", "--repeats", "1")
    assert "pred_contrib" in text and "cached" in text, text


@pytest.mark.slow
def test_bench_app_runs(tmp_path):
    text = _run("bench_app.py", "--decisions", "50000", "--db", str(tmp_path / "app.duckdb"))
    pages = [line.split() for line in text.splitlines() if line[:1].isupper() and line.split()[-1].isdigit()]
    assert len(pages) >= 9 and all(p[-1] == "0" for p in pages), text  # every page rendered, none with errors
