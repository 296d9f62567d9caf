"""Opening an incident from an alert: a title asked for (prefilled from the alert, editable), and a warning
with a link when the alert already sits in an open incident, so a second click does not silently duplicate it."""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.access import Actor
from workbench.cases.incidents import create_incident, open_incidents_with_alerts, suggest_title
from workbench.ui import cached, connection
from workbench.ui.errors import shown


def go_to_incident(incident_id: str) -> None:
    """Open the Incidents page on one incident."""
    st.session_state["inc_selected"] = incident_id
    st.switch_page("app_pages/incidents.py")


def open_from_alert(actor: Actor, alert: dict[str, Any], key: str = "tr") -> None:
    """Title, duplicate warning and the Open incident button for one alert."""
    if not actor.can("write:incidents"):
        st.caption(f"Your role ({actor.role}) cannot open incidents.")
        return
    alert_id = str(alert.get("alert_id"))
    title = st.text_input("Incident title", value=suggest_title(alert), key=f"{key}_inc_title_{alert_id}",
                          max_chars=200)
    already = cached.fresh(open_incidents_with_alerts, actor, [alert_id])
    for dup in already:
        st.warning(f"This alert is already in open incident {dup['incident_id']} ({dup['status']}).",
                   icon=":material/content_copy:")
        if st.button(f"Go to {dup['incident_id']}", key=f"{key}_dup_go_{dup['incident_id']}", type="tertiary",
                     icon=":material/link:"):
            go_to_incident(dup["incident_id"])
    label = "Open another incident" if already else "Open incident"
    if st.button(label, type="secondary" if already else "primary", icon=":material/add_alert:",
                 key=f"{key}_open_inc"):
        with shown("Open incident"):
            inc = cached.fresh(create_incident, actor, title, str(alert.get("severity") or "medium").lower(),
                               alert_ids=[alert_id])
            connection.data_changed()
            go_to_incident(inc["incident_id"])
