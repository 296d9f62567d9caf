"""Send one signed JSON body to a webhook: HMAC-SHA256 signature header and an idempotency key."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from workbench.errors import WorkbenchError

SIGNATURE_HEADER = "X-Workbench-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Workbench-Event"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class DeliveryError(WorkbenchError):
    """A delivery that did not go through (retried later by the outbox)."""


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value: 'sha256=' + hex HMAC-SHA256 of the body under the secret."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """Whether a signature header matches the body (what a receiver does)."""
    return hmac.compare_digest(sign(secret, body), header or "")


def check_env_name(name: str) -> str:
    """An environment variable's name (never its value), or WorkbenchError."""
    if not ENV_NAME.match(name or ""):
        raise WorkbenchError(f"{name!r} is not an environment variable name (letters, digits, underscore)")
    return name


def check_url(url: str) -> str:
    """An http(s) URL without credentials in it, or WorkbenchError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WorkbenchError(f"not an http(s) URL: {url!r}")
    if parts.username or parts.password:
        raise WorkbenchError("a webhook URL must not carry credentials; give the secret with --secret-env, or the "
                             "whole URL as env:VAR")
    return url


def resolve_target(target: str) -> str:
    """The URL to post to: the target itself, or for 'env:VAR' the URL held by that variable now."""
    if target.startswith("env:"):
        name = target[4:]
        url = os.environ.get(name)
        if not url:
            raise DeliveryError(f"the environment variable {name} (the webhook URL) is not set")
        return check_url(url)
    return target


def secret(env_name: str | None) -> bytes | None:
    """The HMAC secret from its environment variable, read now (None when the sink has no secret)."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if not value:
        raise DeliveryError(f"the environment variable {env_name} (the webhook secret) is not set")
    return value.encode("utf-8")


def _opener(url: str) -> urllib.request.OpenerDirector:
    host = urlsplit(url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    # A proxy from the environment must not see a loopback receiver's traffic; others use the usual proxies.
    return urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback else urllib.request.build_opener()


def post(target: str, body: bytes, *, event_id: str, secret_env: str | None = None, timeout: float = 10.0) -> int:
    """POST the JSON body, signed when the sink has a secret; return the HTTP status, or raise DeliveryError."""
    url = resolve_target(target)
    headers = {"Content-Type": "application/json", "User-Agent": "workbench-webhook/1",
               IDEMPOTENCY_HEADER: event_id, EVENT_HEADER: event_id}
    key = secret(secret_env)
    if key is not None:
        headers[SIGNATURE_HEADER] = sign(key, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener(url).open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} from the webhook") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"cannot reach the webhook: {str(reason).splitlines()[0] if str(reason) else exc}") \
            from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status} from the webhook")
    return status
