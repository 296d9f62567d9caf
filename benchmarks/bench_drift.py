"""Benchmark: the drift detector on public data with known shifts (NannyML's bundled datasets).

    python benchmarks/bench_drift.py [--data PATH] [--datasets car_loan,work_from_home,...] [--json]

The data ships inside the `nannyml` package on PyPI (Apache-2.0): reference and analysis CSVs of synthetic
monitoring datasets, in which the second half of the analysis period has known covariate shifts. Nothing is
downloaded at run time: the CSVs are read from an installed nannyml (`pip install --no-deps nannyml==0.13.1`;
the benchmark never imports it, so its pinned dependencies are not needed), or from `--data`: a nannyml wheel
file or a directory holding its `datasets/data` CSVs. Without either it prints how to get them and exits 0.

Each dataset becomes one system's decision log (timestamps as logged, every input as a feature, the model's
prediction and score), ingested into a fresh workspace; the drift detector runs as the workspace runs it, twice:
with the reference pinned to the dataset's reference period (as a NannyML user would), and with the default
reference a new user gets (the first 30% of the data, at most 7 days, extended by the detector when it holds
too few decisions). The truth is measured on the data, not taken from a label: each input's change from the
reference period to the late half of the analysis period (mean shift in reference SDs, SD ratio and KS for
numbers, total variation of the mix for categories); shifted = KS or chi-square p < 1e-6 on all rows. The
known shift starts at the analysis period's midpoint. For every input it prints whether drift was found, the
first drifting window and when a run would have raised it (`evidence.detected_at`, delay after the shift), and
which inputs that did not move stayed quiet.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import duckdb
import pandas as pd

from workbench.access import local_admin
from workbench.detect import LAST_RUN, list_alerts, run_all, set_baseline
from workbench.ingest import ingest_file
from workbench.store import open_workspace

# name -> (file stem, system id, features, prediction column, score column); which features shift is measured
SHIFTED_P = 1e-6
DATASETS = {
    "car_loan": ("synthetic_car_loan", "car-loan",
                 ["car_value", "salary_range", "debt_to_income_ratio", "loan_length", "repaid_loan_on_prev_car",
                  "size_of_downpayment", "driver_tenure"], "y_pred", "y_pred_proba"),
    "work_from_home": ("synthetic_sample", "wfh-predictor",
                       ["distance_from_office", "salary_range", "gas_price_per_litre", "public_transportation_cost",
                        "wfh_prev_workday", "workday", "tenure"], "y_pred", "y_pred_proba"),
    "credit_card": ("mc", "card-offer",
                    ["acq_channel", "app_behavioral_score", "requested_credit_limit", "app_channel",
                     "credit_bureau_score", "stated_income", "is_customer"], "y_pred", None),
    "car_price": ("regression_synthetic", "car-price",
                  ["car_age", "km_driven", "price_new", "accident_count", "door_count", "fuel", "transmission"],
                  None, "y_pred"),
}
HINT = ("no NannyML datasets found: `pip install --no-deps nannyml==0.13.1` (data only; not imported), or pass "
        "--data with a nannyml wheel (`pip download --no-deps nannyml==0.13.1`) or its datasets/data directory")


def find_data(arg: str | None, tmp: Path) -> Path | None:
    """The directory holding the NannyML CSVs: from --data (wheel or directory) or an installed nannyml."""
    if arg:
        p = Path(arg)
        if p.is_file() and p.suffix == ".whl":
            with zipfile.ZipFile(p) as z:
                for name in z.namelist():
                    if "/datasets/data/" in name and name.endswith(".csv"):
                        z.extract(name, tmp)
            return next((d.parent for d in tmp.rglob("synthetic_car_loan_reference.csv")), None)
        return next((d.parent for d in p.rglob("synthetic_car_loan_reference.csv")), None)
    try:
        dist = importlib.metadata.distribution("nannyml")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if str(f).endswith("synthetic_car_loan_reference.csv"):
            return Path(dist.locate_file(f)).parent
    return None


def decisions(data: Path, name: str, out: Path) -> tuple[Path, dict]:
    """Write the dataset as a canonical decision log; return it with the reference span and shift time."""
    stem, system, feats, pred, score = DATASETS[name]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    ref = data / f"{stem}_reference.csv"
    ana = data / f"{stem}_analysis.csv"
    con.execute(f"""CREATE TABLE r AS SELECT 'reference' AS part, * FROM read_csv_auto('{ref}', union_by_name=true)
                    UNION ALL BY NAME
                    SELECT 'analysis' AS part, * FROM read_csv_auto('{ana}', union_by_name=true)""")
    cols = ", ".join(f'"{f}" AS "features.{f}"' for f in feats)
    prediction = f'"{pred}"::VARCHAR' if pred else "'estimate'"
    score_sql = f'"{score}"::DOUBLE' if score else "NULL::DOUBLE"
    path = out / f"{system}.parquet"
    con.execute(f"""COPY (SELECT '{system}-' || id AS decision_id, timestamp::TIMESTAMPTZ AS ts,
                                '{system}' AS system_id, '1.0' AS model_version, 'app' AS principal,
                                {prediction} AS prediction, {score_sql} AS score, {cols}
                         FROM r ORDER BY timestamp) TO '{path}' (FORMAT parquet)""")
    span = con.execute("SELECT min(timestamp)::TIMESTAMPTZ, max(timestamp)::TIMESTAMPTZ FROM r "
                       "WHERE part = 'reference'").fetchone()
    mid = con.execute("SELECT timestamp::TIMESTAMPTZ FROM (SELECT timestamp, row_number() OVER (ORDER BY timestamp) "
                      "AS rn, count(*) OVER () AS n FROM r WHERE part = 'analysis') WHERE rn = n // 2 + 1").fetchone()
    truth = _truth(con, feats)
    con.close()
    return path, {"reference": span, "shift": mid[0], "truth": truth, "rows": int(pd.read_parquet(path).shape[0])}


def _truth(con: duckdb.DuckDBPyConnection, feats: list[str]) -> dict[str, dict]:
    """Each feature's change from the reference period to the late half of the analysis period, measured on the
    data (all rows): numbers by the mean shift in reference SDs, the SD ratio and a KS test; categories by the
    total variation of the value mix and a chi-square test. Shifted = p < 1e-6."""
    from scipy import stats

    con.execute("CREATE TABLE h AS SELECT *, part = 'reference' AS early, row_number() OVER (PARTITION BY part "
                "ORDER BY timestamp) > count(*) OVER (PARTITION BY part) / 2 AND part = 'analysis' AS late FROM r")
    out = {}
    for f in feats:
        a = con.execute(f'SELECT "{f}" FROM h WHERE early AND "{f}" IS NOT NULL').df()[f]
        b = con.execute(f'SELECT "{f}" FROM h WHERE late AND "{f}" IS NOT NULL').df()[f]
        if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
            ks = stats.ks_2samp(a, b)
            sd = float(a.std()) or 1.0
            out[f] = {"change": f"mean {(b.mean() - a.mean()) / sd:+.2f} sd, sd x{b.std() / sd:.2f}, "
                                f"KS {ks.statistic:.3f}", "p": float(ks.pvalue)}
        else:
            tab = pd.crosstab(pd.concat([a, b]).astype(str), [0] * len(a) + [1] * len(b))
            share = tab / tab.sum()
            p = float(stats.chi2_contingency(tab.to_numpy())[1]) if tab.shape[0] > 1 else 1.0
            out[f] = {"change": f"mix TV {0.5 * (share[0] - share[1]).abs().sum():.3f}", "p": p}
    return out


def run(data: Path, name: str, workdir: Path, pinned: bool) -> dict:
    """Ingest one dataset into a fresh workspace, run the drift detector, and score it per feature."""
    _, system, feats, _, _ = DATASETS[name]
    tag = "pinned" if pinned else "default"
    out = workdir / f"{name}-{tag}"
    out.mkdir(parents=True, exist_ok=True)
    path, info = decisions(data, name, out)
    ws = open_workspace(out / "ws.duckdb")
    actor = local_admin()
    try:
        res = ingest_file(ws, actor, path)
        if res.error:
            raise SystemExit(res.error)
        if pinned:
            set_baseline(ws, actor, system, info["reference"][0], info["reference"][1], "NannyML reference period")
        t = time.perf_counter()
        run_all(ws, actor, only=["drift"])
        seconds = time.perf_counter() - t
        notes = [n for n in LAST_RUN.get("notes", []) if n.startswith("drift")]
        alerts = {a["feature"] or a["metric"]: a for a in list_alerts(ws, actor, system=system)
                  if a["detector"] == "drift"}
    finally:
        ws.close()
    shift = pd.Timestamp(info["shift"])
    truth = info["truth"]
    shifted = {f for f in feats if truth[f]["p"] < SHIFTED_P}
    rows = []
    for f in feats + ["prediction", "score"]:
        a = alerts.get(f)
        ev = (a or {}).get("evidence") or {}
        found = pd.Timestamp(ev["detected_at"]) if a and ev.get("detected_at") else None
        rows.append({"feature": f, "change (reference -> late analysis)": truth[f]["change"] if f in truth else
                     "(model output)",
                     "shifted": f in shifted if f in feats else None, "alert": bool(a),
                     "severity": a["severity"] if a else "", "first_window": a["window_start"][:10] if a else "",
                     "found_at": found.strftime("%Y-%m-%d") if found is not None else "",
                     "delay_days": round((found - shift).total_seconds() / 86400, 1) if found is not None else None,
                     "window": ev.get("window", "")})
    shifted_found = [r for r in rows if r["shifted"] and r["alert"]]
    quiet = [r["feature"] for r in rows if r["shifted"] is False and not r["alert"]]
    loud = [r["feature"] for r in rows if r["shifted"] is False and r["alert"]]
    return {"dataset": name, "reference": tag, "rows": info["rows"], "shift_at": shift.strftime("%Y-%m-%d %H:%M"),
            "seconds": round(seconds, 2), "features": rows,
            "shifted_found": f"{len(shifted_found)}/{sum(1 for r in rows if r['shifted'])}",
            "stable_quiet": quiet, "stable_alerted": loud,
            "window": next((r["window"] for r in rows if r["window"]), ""), "notes": notes}


def main() -> None:
    """Run the benchmark over the datasets and print per-feature results and a summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a nannyml wheel, or a directory holding its datasets/data CSVs")
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: " + ", ".join(DATASETS))
    ap.add_argument("--reference", choices=["both", "pinned", "default"], default="both")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = find_data(args.data, Path(tmp) / "data")
        if data is None:
            print(HINT)
            return
        results = []
        for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
            if name not in DATASETS:
                sys.exit(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
            for pinned in ([True, False] if args.reference == "both" else [args.reference == "pinned"]):
                results.append(run(data, name, Path(tmp) / "work", pinned))
    if args.json:
        print(json.dumps(results, indent=2, default=str))
        return
    for r in results:
        print(f"\n## {r['dataset']} ({r['rows']:,} decisions; reference: {r['reference']}; windows of {r['window']}; "
              f"known shift at {r['shift_at']}; {r['seconds']} s)")
        print("; ".join(r["notes"]))
        print(pd.DataFrame(r["features"]).drop(columns=["window"]).to_string(index=False))
        print(f"shifted features found: {r['shifted_found']}; stable features quiet: "
              f"{', '.join(r['stable_quiet']) or '-'}; alerted: {', '.join(r['stable_alerted']) or '-'}")
    print("\n| dataset | reference | windows | shifted found | median delay (days) | stable quiet | stable alerted |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        delays = [f["delay_days"] for f in r["features"] if f["shifted"] and f["delay_days"] is not None]
        med = f"{pd.Series(delays).median():.1f}" if delays else "-"
        stable = [f for f in r["features"] if f["shifted"] is False]
        print(f"| {r['dataset']} | {r['reference']} | {r['window']} | {r['shifted_found']} | {med} | "
              f"{len(r['stable_quiet'])}/{len(stable)} | {', '.join(r['stable_alerted']) or 'none'} |")


if __name__ == "__main__":
    main()
