"""Importers for what serving platforms and monitoring stacks export (SageMaker, KServe, Prometheus text, ...).

An importer fills the same staging table as the canonical readers (`_stage` for decisions, see
workbench.ingest.decisions.STAGE_COLUMNS; `_mstage` for metrics, see workbench.ingest.metrics.MSTAGE_COLUMNS),
so validation, quarantine, de-duplication, custody and audit are shared with every other ingest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.ingest.reading import Reader


@dataclass(frozen=True)
class Importer:
    """One export format: its name, the kind it yields, how to stage it, and how to recognise it."""

    name: str
    kind: str  # decisions | metrics
    stage: Callable[[Reader, Path, str | None, dict[str, Any] | None], None]
    sniff: Callable[[Path, str], bool] | None = None  # (path, first 64 KiB of text) -> is it this format?
    needs_mapping: bool = False
    help: str = ""


IMPORTERS: dict[str, Importer] = {}


def register(importer: Importer) -> Importer:
    """Make an importer available to `workbench ingest --from NAME` and to format sniffing."""
    IMPORTERS[importer.name] = importer
    return importer


def load_all() -> dict[str, Importer]:
    """Import the importer modules so that they register themselves, then return the registry."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    return IMPORTERS
