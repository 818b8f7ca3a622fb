"""The champion home on the real server: the alias as a version, and one clear line without it."""

from __future__ import annotations

import uuid

import pytest
from mlflow import MlflowClient

from kubricks.registry.champion import champion, champion_version, current_champion
from kubricks.registry.errors import RegistryError


@pytest.fixture
def client(mlflow_server: str) -> MlflowClient:
    return MlflowClient(mlflow_server, registry_uri=mlflow_server)


def test_the_alias_resolves_to_its_version_and_follows_it(client: MlflowClient) -> None:
    name = f"champion_home_{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    run = client.create_run(client.create_experiment(name))
    versions = [
        client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id)
        for _ in range(2)
    ]
    assert current_champion(client, name) is None
    with pytest.raises(RegistryError, match=f"{name!r} has no 'champion' alias: nothing to deploy"):
        champion_version(client, name, "nothing to deploy")

    client.set_registered_model_alias(name, "champion", versions[0].version)
    assert champion_version(client, name) == current_champion(client, name) == "1"
    client.set_registered_model_alias(name, "champion", versions[1].version)
    assert champion(client, name).version == "2"
    assert current_champion(client, name) == "2"


def test_an_unknown_model_is_a_registry_error(client: MlflowClient) -> None:
    with pytest.raises(RegistryError, match="'no_such_model_here' has no 'champion' alias"):
        champion(client, "no_such_model_here")
