"""A person's approval of a gated version, for use cases whose spec says ``approval: required``.

As with Databricks deployment jobs, the gate judges and a person decides: a version that
passed the gate waits as ``challenger`` (tag ``gate.approval=pending``). Approving makes it
the champion; rejecting clears the challenger alias. Both record who and why in the audit
trail and on the version. An approval is refused if the champion changed since the gate
judged the version: that comparison no longer holds, so the version is gated again first.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mlflow import MlflowClient

from kubricks import tracking
from kubricks.registry import audit
from kubricks.registry.aliases import clear_alias, move_alias
from kubricks.registry.audit import AuditRecord
from kubricks.registry.champion import current_champion
from kubricks.registry.errors import RegistryError
from kubricks.registry.gate import (
    APPROVAL_TAG,
    CHAMPION_VERSION_TAG,
    PASSED,
    PENDING,
    STATUS_TAG,
    status_text,
)
from kubricks.registry.store import CHALLENGER, CHAMPION, alias_version, open_registry
from kubricks.registry.store import require_version as find_version
from kubricks.settings import KubricksSettings

APPROVED, REJECTED = "approved", "rejected"
BY_TAG = "gate.approval_by"
REASON_TAG = "gate.approval_reason"
AT_TAG = "gate.approval_at"


def _decision_tags(settings: KubricksSettings, state: str, reason: str) -> dict[str, str]:
    return {
        BY_TAG: audit.current_actor(settings),
        REASON_TAG: reason[:5000],
        AT_TAG: datetime.now(UTC).isoformat(timespec="seconds"),
        APPROVAL_TAG: state,  # last: the other tags are complete once it changes
    }


def _awaiting(client: MlflowClient, model: str, version: str, also: str | None = None) -> dict:
    """The version's tags if it awaits a decision (or already has ``also``); else a clear error."""
    tags = find_version(client, model, version).tags or {}
    state = tags.get(APPROVAL_TAG)
    if tags.get(STATUS_TAG) != PASSED or state not in (PENDING, also):
        raise RegistryError(
            f"version {version} of {model!r} is not waiting for approval"
            f" (gate: {status_text(tags)})"
        )
    return tags


def approve(
    settings: KubricksSettings,
    model: str,
    version: str,
    reason: str,
    client: MlflowClient | None = None,
) -> AuditRecord | None:
    """Make a version that passed the gate and waits for approval the champion (audited).

    Re-running after a failure half-way finishes the approval; None if nothing moved.
    """
    version = str(version)
    with tracking.short_retries(settings):
        client = open_registry(settings, client)
        tags = _awaiting(client, model, version, also=APPROVED)
        current = current_champion(client, model)
        compared = tags.get(CHAMPION_VERSION_TAG) or None
        if current not in (compared, version):
            raise RegistryError(
                f"the gate compared v{version} with champion v{compared or 'none'}, but the"
                f" champion is now v{current}: gate it again (`kubricks models gate {version}`)"
                " before approving"
            )
        record = move_alias(client, settings, model, CHAMPION, version, "approve", reason)
        if alias_version(client, model, CHALLENGER) != version:
            move_alias(client, settings, model, CHALLENGER, version, "approve", reason)
        for key, value in _decision_tags(settings, APPROVED, reason).items():
            client.set_model_version_tag(model, version, key, value)
    return record


def reject(
    settings: KubricksSettings,
    model: str,
    version: str,
    reason: str,
    client: MlflowClient | None = None,
) -> AuditRecord:
    """Refuse a version waiting for approval: tag it, clear ``challenger`` if it holds it."""
    version = str(version)
    with tracking.short_retries(settings):
        client = open_registry(settings, client)
        _awaiting(client, model, version, also=REJECTED)
        for key, value in _decision_tags(settings, REJECTED, reason).items():
            client.set_model_version_tag(model, version, key, value)
        record = None
        if alias_version(client, model, CHALLENGER) == version:
            record = clear_alias(client, settings, model, CHALLENGER, "reject", reason)
        if record is None:  # another version holds the challenger alias: record it anyway
            record = AuditRecord(
                at=audit.now(),
                actor=audit.current_actor(settings),
                model=model,
                alias=CHALLENGER,
                from_version=version,
                to_version=None,
                action="reject",
                reason=reason,
            )
            audit.append(settings, record)
    return record
