"""Purple team: attack your own registered model, emit the attack as decision logs, check the detectors see it.

`run_attack(ws, actor, system_id, attack, ...)` runs evasion, extraction, probing or a backdoor scan against a
registered version (safe loaders only) or a black box's surrogate, within a query and time budget;
`coverage(ws, actor, emit_dir)` scores the detectors on the emitted traffic; `report` renders both;
`assess` is the supply-chain gate for third-party artifacts.
"""

from workbench.redteam.runs import ATLAS, ATTACKS, get_run, list_runs, run_attack

__all__ = ["ATLAS", "ATTACKS", "get_run", "list_runs", "run_attack"]
