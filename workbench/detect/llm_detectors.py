"""The LLM and agent trace detectors, in the order run_all runs them (after the tabular ones)."""

from __future__ import annotations

from workbench.detect import llm_agency, llm_content

DETECTORS = (
    ("llm_injection", llm_content.injection),
    ("llm_indirect", llm_content.indirect),
    ("llm_leak", llm_content.leakage),
    ("llm_sensitive", llm_content.sensitive),
    ("llm_agency", llm_agency.agency),
    ("llm_consumption", llm_agency.consumption),
)
NAMES = tuple(name for name, _ in DETECTORS)
