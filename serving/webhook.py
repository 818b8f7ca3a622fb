"""Verify MLflow registry webhooks: HMAC-SHA256 over ``<delivery id>.<timestamp>.<body>``.

MLflow (3.3+) signs with the webhook secret and sends ``X-MLflow-Signature: v1,<base64>``,
``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp``. Old timestamps are refused so a
captured delivery cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_HEADER = "x-mlflow-delivery-id"
MAX_AGE_SECONDS = 300


class WebhookRejected(Exception):
    """The call is not a validly signed, fresh MLflow delivery (answered with 401)."""


@dataclass(frozen=True)
class AliasEvent:
    model: str
    alias: str
    version: str | None  # None when the alias was deleted


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str | None, headers: dict[str, str], body: bytes, now: float | None = None
) -> None:
    """Raise :class:`WebhookRejected` unless the headers carry a valid, fresh signature."""
    if not secret:
        raise WebhookRejected("webhooks are disabled: KUBRICKS_REGISTRY_WEBHOOK_SECRET is unset")
    signature = headers.get(SIGNATURE_HEADER)
    delivery = headers.get(DELIVERY_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not (signature and delivery and timestamp):
        raise WebhookRejected("missing X-MLflow-Signature, -Delivery-Id or -Timestamp header")
    try:
        age = abs((now or time.time()) - int(timestamp))
    except ValueError as exc:
        raise WebhookRejected("X-MLflow-Timestamp is not a Unix time") from exc
    if age > MAX_AGE_SECONDS:
        raise WebhookRejected(f"X-MLflow-Timestamp is {age:.0f} s old (max {MAX_AGE_SECONDS})")
    if not hmac.compare_digest(sign(secret, delivery, timestamp, body), signature):
        raise WebhookRejected("X-MLflow-Signature does not match the body")


def alias_event(body: bytes) -> AliasEvent | None:
    """The alias change a verified body announces; None for other events."""
    payload: Any = json.loads(body)
    if not isinstance(payload, dict) or payload.get("entity") != "model_version_alias":
        return None
    data = payload.get("data") or {}
    if not isinstance(data, dict) or not data.get("name") or not data.get("alias"):
        return None
    version = data.get("version") if payload.get("action") == "created" else None
    return AliasEvent(
        str(data["name"]), str(data["alias"]), None if version is None else str(version)
    )
