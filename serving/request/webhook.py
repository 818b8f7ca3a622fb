"""Verify MLflow registry webhooks: HMAC-SHA256 over ``<delivery id>.<timestamp>.<body>``.

MLflow (3.3+) signs with the webhook secret and sends ``X-MLflow-Signature: v1,<base64>``,
``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp``. A delivery is refused when its
timestamp is older than the replay window or ahead of this clock by more than a small
skew, and when its delivery id was already accepted inside the window (a captured
delivery cannot be replayed, now or later). Header sizes and the body's nesting depth are
capped before anything is parsed, so hostile input gets a 4xx, never a 500.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_HEADER = "x-mlflow-delivery-id"
MAX_AGE_SECONDS = 300
MAX_FUTURE_SECONDS = 30  # clock skew tolerated between the MLflow server and this one
MAX_TIMESTAMP_DIGITS = 12  # Unix seconds have 10 digits until the year 2286
MAX_DELIVERY_ID_CHARS = 128  # MLflow sends a UUID
MAX_BODY_DEPTH = 16  # MLflow's payloads nest three levels deep
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


class WebhookRejected(Exception):
    """The call is not a validly signed, fresh, first delivery; ``status`` is the answer."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AliasEvent:
    model: str
    alias: str
    version: str | None  # None when the alias was deleted


class DeliveryLog:
    """Delivery ids accepted within the replay window, one empty file per id.

    A folder (beside the serving target file) rather than memory, so every worker of one
    server refuses a replay another worker accepted; creating a file with O_EXCL is the
    atomic "first time?" test. Files older than the window are pruned as ids are added.
    """

    def __init__(self, folder: Path, window: float = MAX_AGE_SECONDS + MAX_FUTURE_SECONDS) -> None:
        self.folder = folder
        self.window = window

    def first_time(self, delivery_id: str, now: float | None = None) -> bool:
        """Record ``delivery_id``; False when it was already recorded inside the window."""
        now = time.time() if now is None else now
        self.folder.mkdir(parents=True, exist_ok=True)
        self._prune(now)
        path = self.folder / hashlib.sha256(delivery_id.encode()).hexdigest()
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False
        os.utime(path, (now, now))
        return True

    def _prune(self, now: float) -> None:
        for path in self.folder.iterdir():
            with contextlib.suppress(FileNotFoundError):  # another worker pruned it first
                if path.stat().st_mtime < now - self.window:
                    path.unlink()


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _timestamp(value: str) -> int:
    """The header as Unix seconds; anything but a short run of digits is refused unparsed."""
    if not (value.isascii() and value.isdigit()) or len(value) > MAX_TIMESTAMP_DIGITS:
        raise WebhookRejected(
            f"X-MLflow-Timestamp: expected Unix seconds (at most {MAX_TIMESTAMP_DIGITS}"
            f" digits), got {len(value)} character(s)",
            400,
        )
    return int(value)


def verify(
    secret: str | None,
    headers: dict[str, str],
    body: bytes,
    now: float | None = None,
    deliveries: DeliveryLog | None = None,
) -> None:
    """Raise :class:`WebhookRejected` unless the headers carry a valid, fresh signature (and,
    with ``deliveries``, a delivery id not seen inside the replay window)."""
    if not secret:
        raise WebhookRejected("webhooks are disabled: KUBRICKS_REGISTRY_WEBHOOK_SECRET is unset")
    signature = headers.get(SIGNATURE_HEADER)
    delivery = headers.get(DELIVERY_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not (signature and delivery and timestamp):
        raise WebhookRejected("missing X-MLflow-Signature, -Delivery-Id or -Timestamp header")
    if len(delivery) > MAX_DELIVERY_ID_CHARS:
        raise WebhookRejected(
            f"X-MLflow-Delivery-Id: {len(delivery)} characters (max {MAX_DELIVERY_ID_CHARS})", 400
        )
    now = time.time() if now is None else now
    sent = _timestamp(timestamp)
    if sent - now > MAX_FUTURE_SECONDS:
        raise WebhookRejected(
            f"X-MLflow-Timestamp is {sent - now:.0f} s in the future (max {MAX_FUTURE_SECONDS})"
        )
    if now - sent > MAX_AGE_SECONDS:
        raise WebhookRejected(
            f"X-MLflow-Timestamp is {now - sent:.0f} s old (max {MAX_AGE_SECONDS})"
        )
    if not hmac.compare_digest(sign(secret, delivery, timestamp, body), signature):
        raise WebhookRejected("X-MLflow-Signature does not match the body")
    if deliveries is not None and not deliveries.first_time(delivery, now):
        raise WebhookRejected(f"delivery {delivery} was already received: a replay", 409)


def too_deep(body: bytes, limit: int = MAX_BODY_DEPTH) -> bool:
    """True when the JSON text nests arrays/objects deeper than ``limit`` (strings skipped)."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False


def alias_event(body: bytes) -> AliasEvent | None:
    """The alias change a verified body announces; None for other events.

    Raises :class:`WebhookRejected` (400) for a body that is not JSON or nests deeper than
    :data:`MAX_BODY_DEPTH`, which the parser would otherwise recurse into.
    """
    if too_deep(body):
        raise WebhookRejected(f"body: JSON nested deeper than {MAX_BODY_DEPTH} levels", 400)
    try:
        payload: Any = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected("body: not JSON", 400) from exc
    if not isinstance(payload, dict) or payload.get("entity") != "model_version_alias":
        return None
    data = payload.get("data") or {}
    if not isinstance(data, dict) or not data.get("name") or not data.get("alias"):
        return None
    version = data.get("version") if payload.get("action") == "created" else None
    return AliasEvent(
        str(data["name"]), str(data["alias"]), None if version is None else str(version)
    )
