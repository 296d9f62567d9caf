"""MITRE ATLAS technique IDs and names: the few the workbench ships, or a full ATLAS.yaml the user points at.

The package ships only IDs and names (``atlas_techniques.yaml``). Set ``WORKBENCH_ATLAS`` (or pass ``path``)
to a full ATLAS.yaml from MITRE to validate against a newer catalogue; its ``matrices[*].techniques``
entries (``id``, ``name``) are read.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from workbench import settings
from workbench.errors import WorkbenchError

TECHNIQUE_ID = re.compile(r"^AML\.T\d{4}(\.\d{3})?$")


def is_technique_id(text: str) -> bool:
    """Whether text has the shape of an ATLAS technique or sub-technique ID (AML.T0000 or AML.T0000.000)."""
    return bool(TECHNIQUE_ID.match(str(text)))


def parent(technique_id: str) -> str:
    """The parent technique of a sub-technique (AML.T0024.002 -> AML.T0024); a technique is its own parent."""
    return technique_id[:9]


@lru_cache(maxsize=1)
def shipped() -> dict[str, str]:
    """The IDs and names shipped with the workbench."""
    text = resources.files("workbench.cases").joinpath("atlas_techniques.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text)["techniques"])


@lru_cache(maxsize=4)
def _read_full(path: str, mtime: float) -> dict[str, str]:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise WorkbenchError(f"cannot read ATLAS file {path}: {str(exc).splitlines()[0]}") from exc
    found: dict[str, str] = {}
    for matrix in (doc or {}).get("matrices") or []:
        for tech in matrix.get("techniques") or []:
            if isinstance(tech, dict) and tech.get("id") and is_technique_id(tech["id"]):
                found[tech["id"]] = str(tech.get("name", ""))
    if not found:
        raise WorkbenchError(f"{path} holds no ATLAS techniques (expected matrices[].techniques[].id)")
    return found


def load_full(path: str | Path) -> dict[str, str]:
    """Technique IDs and names from a full MITRE ATLAS.yaml."""
    p = Path(path)
    if not p.is_file():
        raise WorkbenchError(f"no ATLAS file at {p}")
    return _read_full(str(p.resolve()), p.stat().st_mtime)


def catalog(path: str | Path | None = None) -> dict[str, str]:
    """The catalogue in force: an explicit file, else $WORKBENCH_ATLAS, else the shipped IDs and names."""
    chosen = path or settings.get("atlas") or None
    return load_full(chosen) if chosen else shipped()


def name(technique_id: str, path: str | Path | None = None) -> str | None:
    """The technique's name, or None when the catalogue does not know it."""
    return catalog(path).get(technique_id)


def unknown(ids: list[str] | tuple[str, ...], path: str | Path | None = None) -> list[str]:
    """The IDs that are malformed or absent from the catalogue in force."""
    known = catalog(path)
    return [i for i in ids if not is_technique_id(i) or i not in known]


def normalise(ids: list[str] | tuple[str, ...]) -> list[str]:
    """Upper-case, de-duplicated, sorted technique IDs; raise WorkbenchError for a malformed one."""
    out = sorted({str(i).strip().upper() for i in ids if str(i).strip()})
    bad = [i for i in out if not is_technique_id(i)]
    if bad:
        raise WorkbenchError(
            f"not an ATLAS technique ID: {', '.join(bad)} (expected AML.T0000 or AML.T0000.000)"
        )
    return out
