"""The deploy step's hand-off to serving: which concrete version ``champion`` names now.

The step (``components/deploy.py``) then hot-swaps the local server or applies the cluster
objects (``serving.packaging.deploy``); this core half only resolves and describes the version.
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
    note = f"{uri} is version {version}"
    if gated_version and str(gated_version) != str(version):
        note += f" (the gate passed v{gated_version}, but the champion is now v{version})"
    return {
        "model": spec.name,
        "alias": CHAMPION,
        "version": str(version),
        "uri": uri,
        "note": note,
    }
