"""The registry webhook: alias changes notify ``settings.registry_webhook_url`` (redeploys).

MLflow 3.3+ delivers webhooks from the server (SQL backends only), signed with HMAC
when a secret is set. Ensuring is idempotent: one webhook named :data:`WEBHOOK_NAME`,
updated only when its URL, events or secret fingerprint differ.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.webhook import Webhook, WebhookEvent, WebhookEventStr, WebhookStatus
from mlflow.exceptions import MlflowException

from kubricks.registry.errors import RegistryError
from kubricks.settings import KubricksSettings

WEBHOOK_NAME = "kubricks-registry-aliases"
ALIAS_EVENTS: tuple[WebhookEventStr, ...] = (
    "model_version_alias.created",
    "model_version_alias.deleted",
)


def description(settings: KubricksSettings) -> str:
    """Carries a short secret fingerprint: the server never returns the secret itself."""
    secret = settings.registry_webhook_secret
    fingerprint = (
        hashlib.sha256(secret.get_secret_value().encode()).hexdigest()[:8] if secret else "none"
    )
    return f"Kubricks: alias changes of registered models (secret {fingerprint})"


def find_webhook(client: MlflowClient, name: str = WEBHOOK_NAME) -> Webhook | None:
    token: str | None = None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        for hook in page:
            if hook.name == name:
                return hook
        token = page.token
        if not token:
            return None


def _up_to_date(hook: Webhook, settings: KubricksSettings) -> bool:
    return (
        hook.url == settings.registry_webhook_url
        and {str(e) for e in hook.events} == set(ALIAS_EVENTS)
        and hook.status == WebhookStatus.ACTIVE
        and hook.description == description(settings)
    )


def ensure_webhook(client: MlflowClient, settings: KubricksSettings) -> Webhook | None:
    """Create or update the alias webhook when a URL is configured; None when none is."""
    url = settings.registry_webhook_url
    if not url:
        return None
    secret = settings.registry_webhook_secret
    fields: dict[str, Any] = {
        "url": url,
        "events": [WebhookEvent.from_str(e) for e in ALIAS_EVENTS],
        "description": description(settings),
        "secret": secret.get_secret_value() if secret else None,
        "status": WebhookStatus.ACTIVE,
    }
    try:
        hook = find_webhook(client)
        if hook is None:
            return client.create_webhook(name=WEBHOOK_NAME, **fields)
        if _up_to_date(hook, settings):
            return hook
        return client.update_webhook(hook.webhook_id, **fields)
    except MlflowException as exc:
        hint = (
            " (the server allows only https unless MLFLOW_WEBHOOK_ALLOWED_SCHEMES says otherwise)"
            if url.startswith("http://")
            else ""
        )
        raise RegistryError(
            f"MLflow at {client.tracking_uri} refused the registry webhook for {url}:"
            f" {exc.message}{hint}"
        ) from exc
