"""The deploy step's hand-off to serving.

Serving is not wired into pipelines yet, so the hand-off is recorded, not performed:
it resolves ``champion`` to a concrete version and says what would be deployed.
"""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient

from kubricks.registry.champion import champion_version
from kubricks.registry.store import CHAMPION
from kubricks.spec import UseCaseSpec


def plan(client: MlflowClient, spec: UseCaseSpec, gated_version: str | None) -> dict[str, Any]:
    """The champion version to serve; fails if the alias is missing."""
    version = champion_version(client, spec.name, "nothing to deploy")
    uri = f"models:/{spec.name}@{CHAMPION}"
    note = (
        f"would deploy {uri} (version {version}) to serving; the serving hand-off is"
        " not implemented yet, so nothing was changed"
    )
    if gated_version and str(gated_version) != str(version):
        note += f" (the gate passed v{gated_version}, but the champion is now v{version})"
    return {
        "model": spec.name,
        "alias": CHAMPION,
        "version": str(version),
        "uri": uri,
        "status": "recorded",
        "note": note,
    }
