"""A hostile copy of a sample: attacker-controlled text in every field a caller writes, for security tests.

Decision logs are written by the callers under investigation, so principal names, feature names and values,
predictions and decision ids are attacker text. This module rewrites a generated sample so that the attackers'
principals, one extra feature, a few predictions and decision ids carry payloads that would run code, script,
SQL or a spreadsheet formula if any path treated them as anything but data. A payload that runs leaves a marker
file behind (SQL through DuckDB's COPY, a shell through `touch`, Python through `open`), so a test only has to
check that the marker never appears.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb


def payloads(marker: Path) -> dict[str, str]:
    """The payloads, each named by what it tries; those that could act write `marker` if they ever run."""
    m = str(marker).replace("'", "")
    return {
        "script": "<script>alert('xss-principal')</script>",
        "img": "<img src=x onerror=alert('xss-img')>",
        "sql": f"x'); COPY (SELECT 42) TO '{m}'; --",
        "sql_ident": f'x"); COPY (SELECT 42) TO \'{m}\'; --',
        "formula": '=HYPERLINK("http://127.0.0.1/x","click")',
        "cmd_formula": "=cmd|' /C calc'!A0",
        "at_formula": "@SUM(1+1)*cmd|' /C calc'!A0",
        "shell": f"$(touch {m}); `touch {m}`",
        "python": f"__import__('os').system('touch {m}')",
        "template": "{{ cycler.__init__.__globals__.os.system('touch " + m + "') }}",
        "markdown": "[click](javascript:alert('xss-md')) **bold** <b>b</b>",
        "close_script": "</script><script>alert('xss-close')</script>",
        "unicode": "prin\u202ecipal\u200b-\u00e9\u4e2d",
    }


def _ident(name: str) -> str:
    """A DuckDB identifier for any text (the corpus' own SQL; the workbench has its own quoting)."""
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def make_hostile_sample(source: Path, target: Path, marker: Path) -> dict[str, object]:
    """Copy a generated sample to `target` with payloads in principals, a feature, predictions and ids."""
    source, target = Path(source), Path(target)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    p = payloads(marker)
    truth = json.loads((source / "ground_truth.json").read_text())
    # Every labelled attacker gets a payload as its name, so alert summaries, evidence and reports carry them.
    names = [p["script"], p["img"], p["sql"], p["formula"], p["shell"], p["template"], p["close_script"],
             p["cmd_formula"], p["python"], p["unicode"]]
    attackers: list[str] = []
    for inc in truth["incidents"]:
        for principal in inc.get("principals") or []:
            if principal not in attackers:
                attackers.append(principal)
    renames = {old: names[i % len(names)] + f" #{i}" for i, old in enumerate(attackers)}
    for inc in truth["incidents"]:
        inc["principals"] = [renames.get(x, x) for x in inc.get("principals") or []]
        inc["description"] = inc["description"] + " " + " ".join(renames.get(x, "") for x in inc["principals"])
    (target / "ground_truth.json").write_text(json.dumps(truth, indent=1))

    feature = p["sql_ident"]
    con = duckdb.connect()
    try:
        for file in sorted((target / "decisions").glob("*.parquet")):
            case = " ".join(f"WHEN {_lit(old)} THEN {_lit(new)}" for old, new in renames.items())
            principal_sql = f"CASE principal {case} ELSE principal END" if renames else "principal"
            # A handful of rows get payload predictions and decision ids; every row gets the hostile feature.
            con.execute(f"""
                COPY (
                  SELECT * REPLACE (
                    {principal_sql} AS principal,
                    CASE WHEN hash(decision_id) % 997 = 0 THEN {_lit(p['markdown'])} ELSE prediction END
                      AS prediction,
                    CASE WHEN hash(decision_id) % 991 = 0 THEN decision_id || {_lit(p['img'])}
                         WHEN hash(decision_id) % 983 = 0 THEN decision_id || {_lit(p['at_formula'])}
                         ELSE decision_id END AS decision_id),
                    CASE WHEN hash(decision_id) % 2 = 0 THEN {_lit(p['script'])} ELSE {_lit(p['formula'])} END
                      AS {_ident('features.' + feature)}
                  FROM read_parquet({_lit(str(file))})
                ) TO {_lit(str(file) + '.tmp')} (FORMAT parquet)""")
            Path(str(file) + ".tmp").replace(file)
        rows = con.execute(f"SELECT count(*) FROM read_parquet({_lit(str(target / 'decisions' / '*.parquet'))}, "
                           "union_by_name=true)").fetchone()[0]
    finally:
        con.close()
    return {"payloads": p, "renames": renames, "feature": feature, "decisions": int(rows)}
