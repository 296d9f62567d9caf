"""Every setting of the workbench, declared once: name, default, environment variable and help."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    """One setting: where it comes from and what it means."""

    name: str
    env: str
    default: str
    help: str

    def get(self) -> str:
        """The value from the environment, else the default."""
        return os.environ.get(self.env, self.default)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("db", "WORKBENCH_DB", "workbench.duckdb", "Path of the workspace DuckDB file."),
        Setting("user", "WORKBENCH_USER", "", "Account to act as in the CLI and notebooks (default: the OS user)."),
        Setting("password", "WORKBENCH_PASSWORD", "",
                "Password for --user when the workspace has accounts (CLI, notebooks)."),
        Setting("sample_dir", "WORKBENCH_SAMPLE_DIR", "",
                "Where the demo's sample data lives (default: the repo's sample_data/)."),
        Setting("query_timeout", "WORKBENCH_QUERY_TIMEOUT", "30", "Seconds an ad-hoc SQL query may run."),
        Setting("drill_role", "WORKBENCH_DRILL_ROLE", "",
                "In a drill workspace, `participant` hides the facilitator's page; `facilitator` shows it in "
                "single-user mode (unset: only accounts with facilitate:drills see it)."),
        Setting("query_max_rows", "WORKBENCH_QUERY_MAX_ROWS", "10000", "Rows an ad-hoc SQL query may return."),
        Setting("query_memory_limit", "WORKBENCH_QUERY_MEMORY_LIMIT", "2GB",
                "Memory an ad-hoc SQL query may take on top of what the process holds (e.g. 512MB, 4GB)."),
        Setting("login_max_failures", "WORKBENCH_LOGIN_MAX_FAILURES", "5",
                "Failed sign-ins in a row after which an account is locked."),
        Setting("login_lockout_minutes", "WORKBENCH_LOGIN_LOCKOUT_MINUTES", "15",
                "Minutes a locked account stays locked."),
        Setting("memory_limit", "WORKBENCH_MEMORY_LIMIT", "",
                "DuckDB memory_limit, e.g. '4GB' (default: DuckDB's own)."),
        Setting("threads", "WORKBENCH_THREADS", "", "DuckDB threads (default: all cores)."),
        Setting("lock_wait", "WORKBENCH_LOCK_WAIT", "10",
                "Seconds to keep retrying while another process (app, command, notebook) holds the workspace."),
        Setting("atlas", "WORKBENCH_ATLAS", "", "Path of a newer MITRE ATLAS.yaml to validate technique IDs against."),
        Setting("no_autodemo", "WORKBENCH_NO_AUTODEMO", "",
                "Set to 1 to stop the app building the demo on an empty workspace."),
        Setting("drift_window", "WORKBENCH_DRIFT_WINDOW", "auto",
                "Drift windows: auto (the shortest of day/week/month holding ~500 decisions, else runs of 500), "
                "day, week, month, or a number of decisions."),
        Setting("ts_min", "WORKBENCH_TS_MIN", "1970-01-01",
                "Ingest quarantines timestamps before this (a date, or days from now such as -3650d)."),
        Setting("ts_max", "WORKBENCH_TS_MAX", "+366d",
                "Ingest quarantines timestamps at or after this (a date, or days from now such as +366d)."),
        Setting("evidence_max_mb", "WORKBENCH_EVIDENCE_MAX_MB", "50",
                "Largest file (MiB) the app accepts as incident evidence; uploads over it are refused."),
        Setting("spark_master", "WORKBENCH_SPARK_MASTER", "local[2]",
                "Spark master for `detect --engine spark` (a cluster URL, or local[N])."),
        Setting("spark_memory", "WORKBENCH_SPARK_MEMORY", "1g", "Spark driver memory for `detect --engine spark`."),
    ]
}


def get(name: str) -> str:
    """The current value of a setting by name."""
    return SETTINGS[name].get()


def db_path(explicit: str | os.PathLike | None = None) -> Path:
    """Resolve the workspace path: explicit argument, else WORKBENCH_DB, else ./workbench.duckdb."""
    return Path(explicit) if explicit else Path(get("db"))


def repo_root() -> Path:
    """The project checkout this package was installed from (holds sample_data/, playbooks/)."""
    return Path(__file__).resolve().parent.parent


def sample_dir() -> Path:
    """Where the shipped sample data lives."""
    value = get("sample_dir")
    return Path(value) if value else repo_root() / "sample_data"


def playbooks_dir() -> Path:
    """Where the shipped playbooks live."""
    return repo_root() / "playbooks"
