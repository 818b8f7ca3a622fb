"""Moving aliases, each move recorded in the audit trail: gate passes, promotions, rollbacks."""

from __future__ import annotations

from mlflow import MlflowClient

from kubricks.registry import audit
from kubricks.registry.audit import AuditRecord
from kubricks.registry.champion import current_champion
from kubricks.registry.errors import RegistryError
from kubricks.registry.store import (
    CHAMPION,
    alias_version,
    open_registry,
    require_model,
    require_version,
)
from kubricks.settings import KubricksSettings


def move_alias(
    client: MlflowClient,
    settings: KubricksSettings,
    model: str,
    alias: str,
    version: str,
    action: str,
    reason: str,
) -> AuditRecord | None:
    """Point ``alias`` at ``version`` and audit it; None when it already points there.

    If the audit write fails the alias is put back, so no change goes unrecorded.
    """
    previous = alias_version(client, model, alias)
    if previous == str(version):
        return None
    client.set_registered_model_alias(model, alias, str(version))
    record = AuditRecord(
        at=audit.now(),
        actor=audit.current_actor(settings),
        model=model,
        alias=alias,
        from_version=previous,
        to_version=str(version),
        action=action,
        reason=reason,
    )
    try:
        audit.append(settings, record)
    except Exception:
        if previous is None:
            client.delete_registered_model_alias(model, alias)
        else:
            client.set_registered_model_alias(model, alias, previous)
        raise
    return record


def clear_alias(
    client: MlflowClient,
    settings: KubricksSettings,
    model: str,
    alias: str,
    action: str,
    reason: str,
) -> AuditRecord | None:
    """Delete ``alias`` and audit it; None when it is not set. A failed audit restores it."""
    previous = alias_version(client, model, alias)
    if previous is None:
        return None
    client.delete_registered_model_alias(model, alias)
    record = AuditRecord(
        at=audit.now(),
        actor=audit.current_actor(settings),
        model=model,
        alias=alias,
        from_version=previous,
        to_version=None,
        action=action,
        reason=reason,
    )
    try:
        audit.append(settings, record)
    except Exception:
        client.set_registered_model_alias(model, alias, previous)
        raise
    return record


def promote(
    settings: KubricksSettings,
    model: str,
    version: str,
    reason: str,
    client: MlflowClient | None = None,
    approval_required: bool = False,
) -> AuditRecord | None:
    """Manually make ``version`` the champion, bypassing the gate; None if it already is.

    Refused when the use case requires approval: there only the gate and a person's
    approval of a gated version move the champion.
    """
    if approval_required:
        raise RegistryError(
            f"registered model {model!r} requires approval: gate version {version}"
            f" (`kubricks models gate {version}`) and approve it"
            f" (`kubricks models approve {version} --reason ...`) instead of promoting by hand"
        )
    client = open_registry(settings, client)
    require_version(client, model, version)
    return move_alias(client, settings, model, CHAMPION, str(version), "promote", reason)


def rollback(
    settings: KubricksSettings,
    model: str,
    reason: str = "rollback",
    client: MlflowClient | None = None,
) -> AuditRecord:
    """Give the champion alias back to the version that held it before, per the audit trail."""
    client = open_registry(settings, client)
    require_model(client, model)
    current = current_champion(client, model)
    target = audit.previous_version(audit.read(settings, model), CHAMPION, current)
    if target is None:
        raise RegistryError(
            f"registered model {model!r} has no previous champion to roll back to"
            f" (current champion: {current or 'none'}; see `kubricks models history`)"
        )
    require_version(client, model, target)
    record = move_alias(client, settings, model, CHAMPION, target, "rollback", reason)
    if record is None:  # someone moved the alias since we looked
        raise RegistryError(f"version {target} of {model!r} is already the champion")
    return record
