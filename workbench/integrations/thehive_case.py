"""An incident as a TheHive 5 case: the payload (case, observables, TTPs) and the push through `thehive4py`.

TLP and PAP as TheHive numbers (0 clear/white, 1 green, 2 amber, 3 red; amber+strict is sent as amber with a
tag); severity 1 low .. 4 critical. TTPs are case procedures with the ATLAS technique id as patternId (TheHive
knows them once the ATLAS patterns are imported there). The API key is read from its environment variable at
push time and never stored or logged.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from workbench.errors import WorkbenchError
from workbench.integrations.common import ms

TLP = {"clear": 0, "green": 1, "amber": 2, "amber+strict": 2}
PAP = {"clear": 0, "green": 1, "amber": 2, "red": 3}
SEVERITY = {"low": 1, "medium": 2, "high": 3, "critical": 4}
# observable type -> (TheHive dataType, ioc)
DATATYPES = {"ip": ("ip", True), "model_sha256": ("hash", True), "api_key": ("hash", False), "url": ("url", True),
             "email": ("mail", True), "principal": ("other", False), "decision_id": ("other", False),
             "feature_value": ("other", False), "other": ("other", False)}


def case_payload(data: dict[str, Any]) -> dict[str, Any]:
    """{'case': InputCase, 'observables': [InputObservable], 'procedures': [InputProcedure]} for gathered data."""
    inc_id = data["incident_id"]
    start = ms(data.get("created_at")) or int(datetime.now(UTC).timestamp() * 1000)
    tags = ["workbench", f"workbench:{inc_id}", *(f"system:{s}" for s in data["systems"]),
            *(f"atlas:{t['id']}" for t in data["atlas"])]
    if data["tlp"] == "amber+strict":
        tags.append("tlp:amber+strict")
    lines = [data.get("description") or data["title"], "", "Alerts:"]
    lines += [f"- {a['alert_id']} ({a['severity']} {a['detector']} on {a['system_id']}): {a['summary']}"
              for a in data["alerts"]] or ["- none"]
    case = {"title": f"{inc_id}: {data['title']}"[:512], "description": "\n".join(lines),
            "severity": SEVERITY.get(data["severity"], 2), "startDate": start, "tags": tags,
            "tlp": TLP[data["tlp"]], "pap": PAP.get(data["pap"], 2), "flag": data["severity"] == "critical"}
    observables = []
    for o in data["observables"]:
        dtype, ioc = DATATYPES.get(o["type"], ("other", False))
        observables.append({"dataType": dtype, "data": o["value"], "message": o.get("note") or o["type"],
                            "tlp": TLP.get(str(o.get("tlp") or data["tlp"]).lower(), TLP[data["tlp"]]),
                            "ioc": ioc, "tags": [f"workbench:{o['type']}"]})
    procedures = [{"occurDate": start, "patternId": t["id"], "description": f"{t['name']} (MITRE ATLAS)"}
                  for t in data["atlas"]]
    return {"case": case, "observables": observables, "procedures": procedures}


def push(data: dict[str, Any], url: str, api_key_env: str, *, organisation: str | None = None,
         retries: int = 2) -> dict[str, Any]:
    """Create the case, then its observables and procedures, in TheHive 5 with thehive4py."""
    from thehive4py import TheHiveApi
    from thehive4py.errors import TheHiveError

    key = os.environ.get(api_key_env)
    if not key:
        raise WorkbenchError(f"the environment variable {api_key_env} (the TheHive API key) is not set")
    payload = case_payload(data)
    hive = TheHiveApi(url=url, apikey=key, organisation=organisation, max_retries=retries)
    try:
        created = hive.case.create(case=payload["case"])
        case_id = created["_id"]
        n_obs = 0
        for obs in payload["observables"]:
            n_obs += len(hive.case.create_observable(case_id=case_id, observable=obs) or [])
        for proc in payload["procedures"]:
            hive.case.create_procedure(case_id, proc)
    except TheHiveError as exc:
        raise WorkbenchError(f"TheHive refused the case: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    except OSError as exc:  # requests' connection errors are OSErrors
        raise WorkbenchError(f"cannot reach TheHive at {url}: {str(exc).splitlines()[0]}") from exc
    return {"case_id": case_id, "number": created.get("number"), "observables": n_obs,
            "procedures": len(payload["procedures"])}
