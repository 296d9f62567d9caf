"""Personal-data features: marked per system, masked for roles without `read:personal` on every read.

A masked value is a token, 'hmac:' + the first 16 hex digits of HMAC-SHA256 (stdlib `hmac`) under a random
256-bit workspace key (`secrets`, created at first use, kept in `access_secrets`, never reachable through
ad-hoc SQL), over the system, the feature and the value's canonical text. Equal values give equal tokens (an
analyst can still group, compare and match a token across search, explanations and alerts) but cannot be read
back: the key is full-length; only the display is cut, to 64 bits, which keeps accidental collisions out of
reach for the values of one feature (birthday bound ~4e9 distinct values). Canonical text: numbers as Python's
repr of the float (DuckDB's DOUBLE -> VARCHAR gives the same), booleans as true/false, strings as they are;
the SQL form (`mask_sql`) and the Python form (`mask_value`) give identical tokens.

Every read of alerts, evidence and explanations passes through a `Masker` (alerts.fetch, evidence_reading,
explain_batch), keyed by the actor. The rule for nested JSON (alert evidence, evidence content, explanations):

- a dict with a "feature" key naming a personal feature: its value-bearing keys are masked: `value`,
  `values`, `grew_most` and any key ending in `_value`, `_values` or `_median`, and the keys of a `shares` map;
- an alert whose `feature` is personal: the same keys of its top-level evidence;
- a `features` object (dict or JSON text) and `f.<feature>` keys: the personal features' values;
- free text that quotes a masked value (alert summaries, evidence labels, notes, timeline and audit lines
  about the incident): every rendering of the value (1111, 1111.0, 1.111e+03, ...) becomes its token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from typing import Any

import pandas as pd

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.store import Workspace

MASK = "***"  # shown when there is no key to make a token with (a read-only workspace that never had one)
TOKEN_PREFIX = "hmac:"
TOKEN_HEX = 16
_KEY_NAME = "masking_hmac_key"
_BLOCK = 64  # SHA-256 block size: HMAC pads the key to it
_VALUE_KEYS = frozenset({"value", "values", "grew_most"})
_VALUE_SUFFIXES = ("_value", "_values", "_median")
_VALUE_MAPS = frozenset({"shares"})
_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}[0-9a-f]{{{TOKEN_HEX}}}$")


def masked_for(actor: Actor) -> bool:
    """Whether personal features must be masked for this actor."""
    return not actor.can("read:personal")


def catalog(ws: Workspace, system_id: str) -> dict[str, str]:
    """Feature name -> type (number, string, bool) of one system, from feature_catalog."""
    return {
        f: t
        for f, t in ws.rows(
            "SELECT feature, type FROM feature_catalog WHERE system_id = ? ORDER BY feature", [system_id]
        )
    }


def mark_personal(
    ws: Workspace, actor: Actor, system_id: str, features: Iterable[str], personal: bool = True
) -> list[str]:
    """Mark (or unmark) features of a system as personal data; returns the system's personal features."""
    require(actor, "write:settings", ws)
    features = list(dict.fromkeys(features))
    if not features:
        raise WorkbenchError("give at least one feature to mark")
    known = catalog(ws, system_id)
    if not known:
        raise WorkbenchError(f"unknown system {system_id!r} (no features in the catalog)")
    unknown = [f for f in features if f not in known]
    if unknown:
        raise WorkbenchError(
            f"system {system_id} has no feature(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    with ws.transaction():
        masking_key(ws)  # made now, so a workspace later opened read-only still has it
        for f in features:
            if personal:
                ws.execute(
                    "INSERT OR IGNORE INTO personal_features VALUES (?, ?, now(), ?)",
                    [system_id, f, actor.user],
                )
            else:
                ws.execute(
                    "DELETE FROM personal_features WHERE system_id = ? AND feature = ?", [system_id, f]
                )
        audit.record(
            ws, actor, "personal.mark" if personal else "personal.unmark", system_id, {"features": features}
        )
    return personal_features(ws, system_id)


def personal_features(ws: Workspace, system_id: str) -> list[str]:
    """The features of a system marked as personal data."""
    return [
        r[0]
        for r in ws.rows(
            "SELECT feature FROM personal_features WHERE system_id = ? ORDER BY feature", [system_id]
        )
    ]


def all_personal(ws: Workspace) -> dict[str, list[str]]:
    """Every system's personal features."""
    out: dict[str, list[str]] = {}
    for system_id, feature in ws.rows("SELECT system_id, feature FROM personal_features ORDER BY ALL"):
        out.setdefault(system_id, []).append(feature)
    return out


def any_personal(ws: Workspace) -> bool:
    """Whether any feature of any system is marked personal."""
    return bool(ws.scalar("SELECT count(*) FROM personal_features"))


def masking_key(ws: Workspace) -> str | None:
    """The workspace's HMAC key in the form `mask_value` and `mask_sql` take (hex of the inner and outer pads),
    the key created on first use; None in a read-only workspace that never had one."""
    secret = ws.scalar("SELECT value FROM access_secrets WHERE name = ?", [_KEY_NAME])
    if secret is None and not ws.read_only:
        ws.execute("INSERT OR IGNORE INTO access_secrets VALUES (?, ?)", [_KEY_NAME, secrets.token_hex(32)])
        secret = ws.scalar("SELECT value FROM access_secrets WHERE name = ?", [_KEY_NAME])
    return None if secret is None else _pads(bytes.fromhex(secret))


def _pads(secret: bytes) -> str:
    """HMAC's inner and outer padded keys (RFC 2104), hex: SQL computes the HMAC from them with sha256."""
    block = secret.ljust(_BLOCK, b"\0")
    return (bytes(b ^ 0x36 for b in block) + bytes(b ^ 0x5C for b in block)).hex()


@functools.lru_cache(maxsize=8)
def _hmac_key(key: str) -> bytes:
    """The HMAC key back from its pads (zero-padded to the block size, which HMAC treats as the same key)."""
    return bytes(b ^ 0x36 for b in bytes.fromhex(key[: 2 * _BLOCK]))


def _message(system_id: str, feature: str, text: str) -> bytes:
    """What is MACed: system and feature length-prefixed (in bytes), then the value's canonical text."""
    s, f = system_id.encode("utf-8"), feature.encode("utf-8")
    return b"%d:%s%d:%s%s" % (len(s), s, len(f), f, text.encode("utf-8"))


def canonical_text(value: Any) -> str | None:
    """The text a value is hashed from (see the module docstring)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    if hasattr(value, "item"):  # numpy scalars
        return canonical_text(value.item())
    return str(value)


def mask_value(key: str | None, system_id: str, feature: str, value: Any) -> str | None:
    """The masked form of one value: its HMAC token (None stays None; no key gives MASK)."""
    text = canonical_text(value)
    if text is None:
        return None
    if key is None:
        return MASK
    mac = hmac.new(_hmac_key(key), _message(system_id, feature, text), hashlib.sha256).hexdigest()
    return TOKEN_PREFIX + mac[:TOKEN_HEX]


def is_token(value: Any) -> bool:
    """Whether a value is already masked (a token or MASK), so it is never masked twice."""
    return isinstance(value, str) and (value == MASK or _TOKEN_RE.match(value) is not None)


def mask_sql(system_sql: str, text_sql: str, key_sql: str, feature_sql: str) -> str:
    """SQL for the token of a VARCHAR expression (the same as `mask_value`), given the key's placeholder."""
    message = (
        f"encode(CAST(strlen({system_sql}) AS VARCHAR) || ':' || ({system_sql}) || "
        f"CAST(strlen({feature_sql}) AS VARCHAR) || ':' || {feature_sql} || ({text_sql}))"
    )
    inner = f"unhex(sha256(unhex(substr({key_sql}, 1, {2 * _BLOCK})) || {message}))"
    mac = f"sha256(unhex(substr({key_sql}, {2 * _BLOCK + 1}, {2 * _BLOCK})) || {inner})"
    return f"CASE WHEN ({text_sql}) IS NULL THEN NULL ELSE '{TOKEN_PREFIX}' || left({mac}, {TOKEN_HEX}) END"


def mask_features(
    ws: Workspace, actor: Actor, system_id: str, features: dict[str, Any] | str
) -> dict[str, Any]:
    """A features object (dict or JSON text) with personal values masked for this actor."""
    values = json.loads(features) if isinstance(features, str) else dict(features)
    return Masker(ws, actor)._features(system_id, values)


def mask_frame(
    ws: Workspace, actor: Actor, df: pd.DataFrame, system_id: str | None = None, prefix: str = "f."
) -> pd.DataFrame:
    """A copy of a decision-level frame with personal values masked for this actor.

    Masks columns named `<prefix><feature>` and, if present, a `features` column (dict or JSON text).
    The system comes from `system_id` or, per row, from the frame's `system_id` column.
    """
    m = Masker(ws, actor)
    if not m.active or df.empty:
        return df
    systems = {system_id} if system_id is not None else set(m.marks)
    out = df.copy()
    for sys_id in systems:
        rows = (out["system_id"] == sys_id) if system_id is None and "system_id" in out \
            else pd.Series(True, index=out.index)
        if not m.personal(sys_id) or not rows.any():
            continue
        for f in m.personal(sys_id):
            col = prefix + f
            if col in out.columns:
                out[col] = out[col].astype(object)
                out.loc[rows, col] = out.loc[rows, col].map(functools.partial(m.value, sys_id, f))
        if "features" in out.columns:
            out.loc[rows, "features"] = out.loc[rows, "features"].map(
                lambda v, s=sys_id: v if v is None else m._features(s, v)
            )
    return out


def mask_alerts(ws: Workspace, actor: Actor, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alerts (contract dicts) with personal values masked for this actor, in evidence and summary."""
    m = Masker(ws, actor)
    return [m.alert(a) for a in alerts] if m.active else alerts


class Masker:
    """Masks personal feature values for one actor: every read of alerts, evidence and explanations uses one.

    A no-op (inputs come back as they are) for roles holding read:personal or when nothing is marked. It
    remembers each value it masked, so `text` can replace the value wherever free text quotes it.
    """

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        marks = all_personal(ws) if masked_for(actor) else {}
        self.marks = {s: frozenset(fs) for s, fs in marks.items() if fs}
        self.active = bool(self.marks)
        self.key = masking_key(ws) if self.active else None
        self._seen: list[tuple[Any, str]] = []  # (raw value, token) of every value masked
        self._quoted: dict[str, str] = {}  # a rendering of a masked value -> its token (built by `text`)
        self._pattern: re.Pattern[str] | None = None
        self._cache: dict[tuple[str | None, str, str | None], str | None] = {}

    def personal(self, system_id: str | None) -> frozenset[str]:
        """The personal features of a system (of any system when it is not known)."""
        if system_id is None:
            return frozenset().union(*self.marks.values())
        return self.marks.get(system_id, frozenset())

    def value(self, system_id: str | None, feature: str, value: Any) -> Any:
        """One value of a feature: its token if the feature is personal, else the value."""
        if not self.active or feature not in self.personal(system_id) or value is None or is_token(value):
            return value
        if system_id is None:  # system unknown: the token of the one system marking the feature, else MASK
            owners = [s for s, fs in self.marks.items() if feature in fs]
            system_id = owners[0] if len(owners) == 1 else None
        seen = (system_id, feature, canonical_text(value))
        if seen in self._cache:
            return self._cache[seen]
        token = self._cache[seen] = mask_value(self.key if system_id else None, system_id or "", feature, value)
        if token is not None:
            self._seen.append((value, token))
            self._pattern = None
        return token

    def payload(self, obj: Any, system_id: str | None = None, about: str | None = None) -> Any:
        """A copy of a JSON-like object with personal values masked by the rule in the module docstring."""
        return self._walk(obj, system_id, about) if self.active else obj

    def explanations(self, system_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Explanations (explain's output) with the value of each attribution naming a personal feature masked
        (the nested rule, on the one place explanations hold feature values; faster than `payload`)."""
        personal = self.personal(system_id) if self.active else frozenset()
        if not personal:
            return rows
        return [{**e, "attributions": [
            {**a, "value": self.value(system_id, a["feature"], a.get("value"))} if a.get("feature") in personal
            else a for a in e.get("attributions") or []]} for e in rows]

    def alert(self, alert: dict[str, Any]) -> dict[str, Any]:
        """An alert with personal values masked in its evidence, and in its summary wherever it quotes them."""
        system = alert.get("system_id")
        if not self.active or not self.personal(system):
            return alert
        about = alert.get("feature") if alert.get("feature") in self.personal(system) else None
        own = self._child()
        out = dict(alert)
        evidence = alert.get("evidence")
        if isinstance(evidence, str):
            out["evidence"] = json.dumps(own._walk(json.loads(evidence), system, about), sort_keys=True)
        else:
            out["evidence"] = own._walk(evidence, system, about)
        out["summary"] = own.text(alert.get("summary"))
        self._absorb(own)
        return out

    def text(self, obj: Any) -> Any:
        """Free text (or every string inside a JSON-like object) with each quoted masked value as its token."""
        if not self._seen:
            return obj
        if isinstance(obj, str):
            if self._pattern is None:
                self._quoted = {}
                for value, token in self._seen:
                    for text in _renderings(value):
                        self._quoted.setdefault(text, token)
                alts = sorted(self._quoted, key=lambda r: (-len(r), r))
                self._pattern = re.compile("|".join(_alternative(r) for r in alts) or r"(?!)")
            return self._pattern.sub(lambda m: self._quoted[m.group(0)], obj)
        if isinstance(obj, dict):
            return {k: self.text(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.text(v) for v in obj]
        return obj

    def _child(self) -> Masker:
        child = object.__new__(Masker)
        child.marks, child.active, child.key = self.marks, self.active, self.key
        child._seen, child._quoted, child._pattern, child._cache = [], {}, None, {}
        return child

    def _absorb(self, child: Masker) -> None:
        self._seen += child._seen
        self._pattern = None

    def _walk(self, obj: Any, system_id: str | None, about: str | None) -> Any:
        if isinstance(obj, list | tuple):
            return [self._walk(v, system_id, None) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if isinstance(obj.get("system_id"), str):
            system_id = obj["system_id"]
        feature = obj["feature"] if isinstance(obj.get("feature"), str) else about
        personal = self.personal(system_id)
        hit = feature in personal
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if hit and (k in _VALUE_KEYS or k.endswith(_VALUE_SUFFIXES)):
                out[k] = ([self.value(system_id, feature, x) for x in v] if isinstance(v, list)
                          else self.value(system_id, feature, v))
            elif hit and k in _VALUE_MAPS and isinstance(v, dict):
                out[k] = {str(self.value(system_id, feature, x)): y for x, y in v.items()}
            elif k == "features" and isinstance(v, dict | str):
                out[k] = self._features(system_id, v)
            elif k.startswith("f.") and k[2:] in personal:
                out[k] = self.value(system_id, k[2:], v)
            else:
                out[k] = self._walk(v, system_id, None)
        return out

    def _features(self, system_id: str | None, features: dict[str, Any] | str) -> Any:
        try:
            values = json.loads(features) if isinstance(features, str) else features
        except ValueError:
            return features
        if not isinstance(values, dict):
            return features
        masked = {k: self.value(system_id, k, v) for k, v in values.items()}
        return json.dumps(masked) if isinstance(features, str) else masked


def _renderings(value: Any) -> set[str]:
    """The ways text may quote a value: 1111 as 1111, 1111.0, 1,111, 1.111e+03 (.4g), ..."""
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, bool):
        return {str(value), str(value).lower()}
    if isinstance(value, int | float):
        f = float(value)
        if f != f or f in (float("inf"), float("-inf")):
            return set()
        out = {str(value), repr(f), f"{f:g}", f"{f:.4g}", f"{f:.6g}"}
        if f.is_integer():
            out |= {str(int(f)), f"{int(f):,}"}
        return out
    text = str(value).strip()
    return {text} if text else set()


def _alternative(text: str) -> str:
    """A regex for one rendering, standing alone (not inside a longer word, number or hash)."""
    word = re.compile(r"\w")
    head = r"(?<![\w.])" if word.match(text[0]) else ""
    tail = r"(?!\w|\.\d)" if word.match(text[-1]) else ""
    return head + re.escape(text) + tail
