"""Tabletop drills on the workbench's own engine: scenarios, separate drill workspaces, injects, scoring, reports."""

from workbench.drills.scenario import Scenario, list_scenarios, load_scenario, parse_scenario
from workbench.drills.workspace import DrillInfo, is_drill, require_drill, start_drill

__all__ = ["DrillInfo", "Scenario", "is_drill", "list_scenarios", "load_scenario", "parse_scenario",
           "require_drill", "start_drill"]
