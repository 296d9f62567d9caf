"""The mapping file schema: what each key of a platform export's YAML mapping may hold (pydantic).

`MappingDoc` validates a parsed mapping document, reporting every problem with its field path; each selector
becomes a `Selector` (see workbench/ingest/importers/mapping.py for the keys and the SQL that applies them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

FEATURE_TYPES = ("number", "string", "bool", "auto")
SELECTOR_KINDS = ("field", "custom_attribute", "header", "input", "output", "path")
OPTIONAL = ("decision_id", "source_ip", "session_id", "latency_ms", "status", "ground_truth", "model_sha256")
KNOWN_KEYS = ("system_id", "model_version", "principal", "features", "score", "prediction", *OPTIONAL)


@dataclass(frozen=True)
class Selector:
    """Where a value comes from: a constant, or a kind (field, custom_attribute, header, input, output) and key."""

    kind: str = "const"
    key: Any = None
    index: Any = None
    values: dict[str, str] | None = None
    const: str | None = None


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


class SelectorDoc(BaseModel):
    """A selector as written: a constant, ``output``, or exactly one ``{KIND: key}`` with optional index, values."""

    model_config = ConfigDict(extra="forbid")
    const: str | None = None
    field: Any = None
    custom_attribute: Any = None
    header: Any = None
    input: Any = None
    output: Any = None
    path: Any = None
    index: Any = None
    values: dict[str, str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _written(cls, value: Any) -> Any:
        if _scalar(value):
            return {"output": None} if value == "output" else {"const": str(value)}
        if not isinstance(value, dict):
            raise ValueError(f"expected a value or a selector such as {{field: name}}, got {value!r}")
        kinds = [k for k in value if k in SELECTOR_KINDS]
        if len(kinds) != 1 or any(k not in (*SELECTOR_KINDS, *cls._also()) for k in value):
            raise ValueError(f"give exactly one of {', '.join(SELECTOR_KINDS)} (got {', '.join(map(str, value))})")
        return value

    @classmethod
    def _also(cls) -> tuple[str, ...]:
        return ("index", "values")

    @field_validator("values", mode="before")
    @classmethod
    def _values(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise ValueError("must map raw values to canonical ones, e.g. {0: allow, 1: block}")
        return {str(k): str(v) for k, v in value.items()} if value else None

    def selector(self) -> Selector:
        """The Selector this describes."""
        kind = next((k for k in SELECTOR_KINDS if k in self.model_fields_set), None)
        if kind is None:
            return Selector(const=self.const)
        return Selector(kind, getattr(self, kind), self.index, self.values)


class PredictionDoc(SelectorDoc):
    """The prediction: a selector, or ``{thresholds: [...], labels: [...]}`` bands over the score."""

    thresholds: list[float] | None = None
    labels: Annotated[list[Annotated[str, BeforeValidator(str)]] | None, Field(validate_default=True)] = None

    @model_validator(mode="before")
    @classmethod
    def _written(cls, value: Any) -> Any:
        if isinstance(value, dict) and "thresholds" in value:
            return {k: value[k] for k in ("thresholds", "labels") if k in value}
        return super()._written(value)

    @field_validator("thresholds", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, list):
            raise ValueError("must be a list of numbers")
        return value

    @field_validator("labels")
    @classmethod
    def _one_per_band(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        thresholds = info.data.get("thresholds")
        if thresholds is not None and len(value or []) != len(thresholds) + 1:
            raise ValueError(f"needs {len(thresholds) + 1} labels for {len(thresholds)} thresholds "
                             "(one per band, lowest score first)")
        return value


def _feature_type(value: Any) -> str:
    if value not in FEATURE_TYPES:
        raise ValueError(f"type must be one of {', '.join(FEATURE_TYPES)}, got {value!r}")
    return str(value)


class MappingDoc(BaseModel):
    """The mapping file schema (see the module docstring); `context={'system': ...}` stands in for system_id."""

    model_config = ConfigDict(extra="forbid")
    system_id: Annotated[str | None, Field(validate_default=True)] = None
    model_version: SelectorDoc
    principal: SelectorDoc
    features: dict[str, Annotated[str, BeforeValidator(_feature_type)]] | None = None
    prediction: PredictionDoc
    score: Annotated[SelectorDoc | None, Field(validate_default=True)] = None
    decision_id: SelectorDoc | None = None
    source_ip: SelectorDoc | None = None
    session_id: SelectorDoc | None = None
    latency_ms: SelectorDoc | None = None
    status: SelectorDoc | None = None
    ground_truth: SelectorDoc | None = None
    model_sha256: SelectorDoc | None = None

    @field_validator("system_id", mode="before")
    @classmethod
    def _system(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and not (info.context or {}).get("system"):
            raise ValueError("missing (name the system, or pass --system)")
        return None if value is None else str(value)

    @field_validator("model_version", "principal", "prediction", mode="before")
    @classmethod
    def _required(cls, value: Any) -> Any:
        if value in (None, ""):
            raise ValueError("missing")
        return value

    @field_validator("features", mode="before")
    @classmethod
    def _features(cls, value: Any) -> Any:
        if isinstance(value, list):
            names = [str(f) for f in value]
            if len(set(names)) != len(names):
                raise ValueError("names must be unique")
            return dict.fromkeys(names, "auto")
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        if value is not None:
            raise ValueError("must be a list of names in payload order, or name: type lines")
        return value

    @field_validator("score")
    @classmethod
    def _score(cls, value: SelectorDoc | None, info: ValidationInfo) -> SelectorDoc | None:
        if value is not None and value.const is not None:
            raise ValueError(f"expected a selector such as {{output: 1}}, got {value.const!r}")
        prediction = info.data.get("prediction")
        if value is None and prediction is not None and prediction.thresholds is not None:
            raise ValueError("missing (prediction.thresholds are applied to the score)")
        return value
