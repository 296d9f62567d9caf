"""Explain decisions: a safe model registry, exact TreeSHAP, attribution drift, replay and surrogates."""

from workbench.explain import registry
from workbench.explain.attribution import alert_decision_ids, attribution_drift
from workbench.explain.explaining import explain_decisions
from workbench.explain.replay import decision_rule, replay
from workbench.explain.surrogate import fit_surrogate

__all__ = ["alert_decision_ids", "attribution_drift", "decision_rule", "explain_decisions", "fit_surrogate",
           "registry", "replay"]
