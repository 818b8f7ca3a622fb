"""The gold versions registered models were trained on, read from the real registry."""

from __future__ import annotations

import uuid

from mlflow import MlflowClient

from kubricks.lakehouse.maintenance import Pin
from kubricks.registry.pins import gold_pins


def test_every_version_with_lineage_is_a_pin_and_aliased_ones_are_protected(
    mlflow_server: str,
) -> None:
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    name = f"pins_{uuid.uuid4().hex[:8]}"
    gold = f"/lake/{name}/gold/{name}"
    client.create_registered_model(name)
    run = client.create_run(client.create_experiment(name))
    source = f"{run.info.artifact_uri}/model"
    for gold_version in ("3", "5", "7"):
        tags = {"lineage.gold_table": gold + "/", "lineage.gold_version": gold_version}
        client.create_model_version(name, source, run.info.run_id, tags=tags)
    client.create_model_version(name, source, run.info.run_id)  # no lineage: not a pin
    client.set_registered_model_alias(name, "champion", "2")
    client.set_registered_model_alias(name, "challenger", "3")

    pins = gold_pins(client)[gold]  # keyed by the table's URI, trailing slash or not
    assert sorted(pins, key=lambda p: p.version) == [
        Pin(3, f"{name} v1 (no alias)", False),
        Pin(5, f"{name} v2 (champion)", True),
        Pin(7, f"{name} v3 (challenger)", True),
    ]
