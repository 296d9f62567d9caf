"""Talking to the SOC: watch mode, alert sinks (webhook, files) with an outbox, OCSF/STIX/MISP/TheHive exports,
and findings from other tools (guardrails, OCSF) taken in as external alerts.

Everything that leaves the workspace is masked for personal values (unless an admin asks otherwise), refuses
anything marked TLP:RED, and is audited.
"""
