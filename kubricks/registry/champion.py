"""The champion of a use case's model: the one place that resolves the alias to a version.

Deploy, batch scoring, monitoring and the gate all ask here, so "the champion" means
the same version everywhere and a missing alias fails with the same actionable line.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from kubricks.registry.errors import RegistryError
from kubricks.registry.store import CHAMPION, alias_version

# MLflow answers an unset alias with INVALID_PARAMETER_VALUE, an unknown model with NOT_FOUND
_UNSET = ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def current_champion(client: MlflowClient, model: str) -> str | None:
    """The champion's version, or None when the alias is unset (the model must exist)."""
    return alias_version(client, model, CHAMPION)


def champion(client: MlflowClient, model: str, needed_for: str = "") -> ModelVersion:
    """The model version ``champion`` points at; a one-line error when there is none.

    ``needed_for`` completes the message, e.g. "nothing to deploy".
    """
    try:
        return client.get_model_version_by_alias(model, CHAMPION)
    except MlflowException as exc:
        if exc.error_code not in _UNSET:
            raise
        why = f": {needed_for}" if needed_for else ""
        raise RegistryError(
            f"registered model {model!r} has no {CHAMPION!r} alias{why}: train one that passes"
            f" the gate with `kubricks train --usecase {model}` (or `kubricks models promote V`)"
        ) from exc


def champion_version(client: MlflowClient, model: str, needed_for: str = "") -> str:
    """The concrete version behind ``models:/<model>@champion``, as text."""
    return str(champion(client, model, needed_for).version)
