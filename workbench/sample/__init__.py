"""Deterministic labelled sample data: two AI systems, 30 days of decisions, real models, incidents."""

from workbench.sample.generator import default_incidents, generate
from workbench.sample.incidents import ATLAS, INCIDENT_TYPES, NATURAL_SYSTEM, IncidentSpec
from workbench.sample.models import load_model, model_input
from workbench.sample.systems import SYSTEMS

__all__ = [
    "ATLAS",
    "INCIDENT_TYPES",
    "NATURAL_SYSTEM",
    "SYSTEMS",
    "IncidentSpec",
    "default_incidents",
    "generate",
    "load_model",
    "model_input",
]
