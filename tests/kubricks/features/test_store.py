"""The generated Feast repository for churn: config, definitions and idempotent apply."""

from __future__ import annotations

import pytest
import yaml
from feast import FeatureStore, ValueType
from feast.data_format import DeltaFormat
from feast.types import Float64, Int32, Int64

from kubricks.features import definitions
from kubricks.features.store import (
    feature_refs,
    feature_store,
    feature_view_name,
    gold_schema,
    gold_table,
    repo_path,
)
from kubricks.lakehouse.ingest import layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec

pytestmark = pytest.mark.slow
CHURN = load_spec("churn")


def registry_counts(store: FeatureStore) -> tuple[int, int, int]:
    return (
        len(store.list_entities()),
        len(store.list_data_sources()),
        len(store.list_feature_views()),
    )


def test_repository_is_generated_from_the_spec(churn_settings: KubricksSettings) -> None:
    store = feature_store(CHURN, churn_settings)
    repo = repo_path(CHURN, churn_settings)
    config = yaml.safe_load((repo / "feature_store.yaml").read_text())
    assert config["project"] == "churn" and config["provider"] == "local"
    assert config["registry"]["path"] == f"sqlite:///{repo}/registry.db"
    assert config["offline_store"] == {"type": "file"}
    assert config["online_store"] == {"type": "sqlite", "path": str(repo / "online.db")}
    assert (repo / "registry.db").read_bytes().startswith(b"SQLite format 3")

    view = store.get_feature_view(feature_view_name(CHURN))
    assert view.name == "churn_features"
    types = {f.name: f.dtype for f in view.features}
    assert list(types) == CHURN.gold_feature_columns()
    assert "Exited" not in types
    assert types["Age"] == Int32 and types["Balance"] == Float64
    assert [f.dtype for f in view.entity_columns] == [Int64]
    source = view.batch_source
    assert source.path == layer_tables(CHURN, churn_settings.lakehouse_uri)["gold"][1]
    assert isinstance(source.file_format, DeltaFormat)
    assert source.timestamp_field == "event_timestamp"
    entity = store.get_entity("CustomerId")
    assert entity.join_key == "CustomerId" and entity.value_type == ValueType.INT64
    assert feature_refs(CHURN)[0] == "churn_features:CreditScore"


def test_applying_again_changes_nothing(churn_settings: KubricksSettings) -> None:
    first = feature_store(CHURN, churn_settings)
    updated = first.get_feature_view("churn_features").last_updated_timestamp
    yaml_mtime = (repo_path(CHURN, churn_settings) / "feature_store.yaml").stat().st_mtime_ns

    second = feature_store(CHURN, churn_settings)
    assert registry_counts(second) == (1, 1, 1)
    assert second.get_feature_view("churn_features").last_updated_timestamp == updated
    assert (repo_path(CHURN, churn_settings) / "feature_store.yaml").stat().st_mtime_ns == (
        yaml_mtime
    )

    # Feast's own apply of the same objects is idempotent too.
    name, uri = gold_table(CHURN, churn_settings)
    objects = definitions.definitions(CHURN, uri, gold_schema(uri, churn_settings), name)
    second.apply(list(objects))
    second.apply(list(objects))
    third = FeatureStore(repo_path=str(repo_path(CHURN, churn_settings)))
    assert registry_counts(third) == (1, 1, 1)
    assert third.get_feature_view("churn_features").features == (
        first.get_feature_view("churn_features").features
    )


def test_a_changed_definition_is_reapplied(churn_settings: KubricksSettings) -> None:
    store = feature_store(CHURN, churn_settings)
    view = store.get_feature_view("churn_features")
    view.description = "edited by hand"
    store.apply([view])
    assert (
        feature_store(CHURN, churn_settings).get_feature_view("churn_features").description
        != "edited by hand"
    )
