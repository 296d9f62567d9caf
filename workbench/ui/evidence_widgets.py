"""Freeze what the analyst is looking at as incident evidence, from the page they are on: a SHAP explanation
(Decisions), drift tests and an attribution-drift result (Drift), a metric window (Triage's metrics view).

Each widget is one call at the end of its page: pick an open incident and a label, press the button; the
library hashes and audits the item. A result computed on a button press (attribution drift) is remembered in
the session, so the freeze still has it on the rerun that the freeze button causes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from workbench.access import Actor
from workbench.cases.evidence import (
    add_explanation,
    add_file_bytes,
    add_metric_window,
    max_upload_bytes,
)
from workbench.cases.evidence_results import add_attribution_drift, add_drift
from workbench.cases.incidents import list_incidents
from workbench.ui import cached, connection
from workbench.ui.errors import shown


def _open_incidents(actor: Actor) -> list[dict[str, Any]]:
    return cached.call(list_incidents, actor, open_only=True)


def _freeze_box(actor: Actor, key: str, what: str, default_label: str) -> tuple[str, str] | None:
    """Incident picker, label and button inside the caller's expander; (incident, label) when pressed."""
    incs = _open_incidents(actor)
    if not incs:
        st.caption("No open incident: open one from Triage or the Incidents page first.")
        return None
    titles = {i["incident_id"]: i["title"] for i in incs}
    c1, c2, c3 = st.columns([2, 3, 1.4])
    target = c1.selectbox("Incident", list(titles), key=f"{key}_inc",
                          format_func=lambda i: f"{i} · {str(titles[i])[:40]}")
    label = c2.text_input("Label", value=default_label, key=f"{key}_label")
    if c3.button(f"Freeze {what}", key=f"{key}_go", icon=":material/ac_unit:"):
        return target, label.strip() or default_label
    return None


def _done(item: dict[str, Any] | list[dict[str, Any]], target: str) -> None:
    connection.data_changed()
    items = item if isinstance(item, list) else [item]
    for i in items:
        st.success(f"Frozen in {target} as evidence #{i['evidence_id']} ({i['kind']}), "
                   f"sha256 {str(i['sha256'])[:12]}…")


def _can(actor: Actor) -> bool:
    return actor.can("write:incidents")


def freeze_explanation(actor: Actor, system: str | None, explanation: dict[str, Any] | None,
                       key: str = "frz_shap") -> None:
    """The SHAP view: freeze the shown decision's explanation."""
    if not _can(actor) or not system or not explanation:
        return
    with st.expander("Freeze this explanation as incident evidence", icon=":material/ac_unit:"), \
            shown("Freeze explanation"):
        picked = _freeze_box(actor, key, "explanation", f"SHAP explanation of {explanation.get('decision_id')}")
        if picked:
            item = cached.fresh(add_explanation, actor, picked[0], {"system_id": system, **explanation}, picked[1])
            _done(item, picked[0])


def freeze_drift_page(actor: Actor, system: str | None, tests: pd.DataFrame | None, target: str | None,
                      attribution: pd.DataFrame | None, key: str = "frz_drift") -> None:
    """The Drift page: freeze the shown drift tests of a target, and the last attribution-drift result."""
    if not _can(actor) or not system:
        return
    stash = f"{key}_attr_{system}"
    if attribution is not None and len(attribution):
        st.session_state[stash] = (attribution.to_dict("records"), dict(attribution.attrs))
    attr = st.session_state.get(stash)
    has_tests = tests is not None and len(tests)
    if not has_tests and not attr:
        return
    with st.expander("Freeze as incident evidence", icon=":material/ac_unit:"), shown("Freeze drift"):
        if has_tests:
            picked = _freeze_box(actor, f"{key}_tests", "drift tests", f"drift tests of {target} on {system}")
            if picked:
                item = cached.fresh(add_drift, actor, picked[0], system, tests, target=target, label=picked[1])
                _done(item, picked[0])
        if attr:
            rows, attrs = attr
            picked = _freeze_box(actor, f"{key}_attr", "attribution drift",
                                 f"attribution drift of {system} ({attrs.get('alert_n', len(rows))} decisions)")
            if picked:
                item = cached.fresh(add_attribution_drift, actor, picked[0], system, rows,
                                    meta={k: attrs.get(k) for k in ("alert_n", "reference_n", "versions", "method")},
                                    label=picked[1])
                _done(item, picked[0])


def freeze_alert_metrics(actor: Actor, alert: dict[str, Any] | None, key: str = "frz_metrics") -> None:
    """The metrics view around an alert: freeze every metric of its system over the window shown."""
    if not _can(actor) or not alert or not alert.get("system_id"):
        return
    start, end = pd.Timestamp(alert.get("window_start")), pd.Timestamp(alert.get("window_end"))
    pad = max(pd.Timedelta(hours=2), (end - start) * 2)
    t0, t1 = start - pad, end + pad
    with st.expander("Freeze the metrics around this alert as incident evidence", icon=":material/ac_unit:"), \
            shown("Freeze metrics"):
        st.caption(f"Every metric of {alert['system_id']} from {t0:%Y-%m-%d %H:%M} to {t1:%Y-%m-%d %H:%M} UTC "
                   "(the window the metrics view shows).")
        picked = _freeze_box(actor, key, "metric window", f"metrics of {alert['system_id']} around "
                             f"{alert.get('alert_id')}")
        if picked:
            item = cached.fresh(add_metric_window, actor, picked[0], alert["system_id"], None, t0.isoformat(),
                                t1.isoformat(), picked[1])
            _done(item, picked[0])


def upload_evidence(actor: Actor, incident_id: str, key: str = "frz_upload") -> None:
    """An incident's file upload: kept read-only in the evidence store, hashed, refused over the size limit."""
    if not _can(actor):
        return
    limit = max_upload_bytes()
    with st.form(f"{key}_form", clear_on_submit=True):
        up = st.file_uploader(f"Add a file as evidence (at most {limit / 1024 / 1024:g} MiB)", key=f"{key}_file")
        label = st.text_input("Label (default: the file name)", key=f"{key}_label")
        if st.form_submit_button("Add file", icon=":material/upload_file:") and up is not None:
            with shown("Evidence file"):
                if up.size > limit:
                    st.error(f"{up.name} is {up.size:,} bytes; evidence files are limited to {limit:,} bytes.")
                    return
                item = cached.fresh(add_file_bytes, actor, incident_id, up.name, up.getvalue(), label.strip() or None)
                _done(item, incident_id)
