"""The Feast repository of a use case: write its config, apply its definitions, open it.

Everything is generated from the spec under ``<home>/feature_repo/<usecase>/``; no
use case has hand-written Feast files. Calling :func:`feature_store` again is cheap:
the config is rewritten only when it changed and definitions are applied only when
they differ from the registry.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
from feast import FeatureStore, FeatureView

from kubricks.features import config as feast_config
from kubricks.features import definitions, delta_reader
from kubricks.lakehouse import tables
from kubricks.lakehouse.gold import gold_table
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec

feature_view_name = definitions.feature_view_name
feature_refs = definitions.feature_refs


def repo_path(spec: UseCaseSpec, settings: KubricksSettings) -> Path:
    return settings.home.expanduser().resolve() / "feature_repo" / spec.name


def gold_schema(uri: str, settings: KubricksSettings) -> pa.Schema:
    table = tables.open_table(uri, storage_options=settings.storage_options())
    return pa.schema(table.schema().to_arrow())


def write_config(spec: UseCaseSpec, settings: KubricksSettings) -> Path:
    """Write ``feature_store.yaml`` if its content changed; private when it holds a secret."""
    repo = repo_path(spec, settings)
    repo.mkdir(parents=True, exist_ok=True)
    config = feast_config.repo_config(spec, settings, repo)
    text = feast_config.render(config)
    path = repo / "feature_store.yaml"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    if feast_config.has_secret(config):
        os.chmod(path, 0o600)
    return repo


def _is_current(store: FeatureStore, objects: tuple) -> bool:
    """True when the registry already holds exactly these definitions."""
    entity, source, view = objects
    try:
        registered_view = store.get_feature_view(view.name)
        registered_entity = store.get_entity(entity.name)
        registered_source = store.get_data_source(source.name)
    except Exception:  # Feast raises a different *NotFound class per object type
        return False
    candidate = FeatureView.__copy__(view)
    candidate.materialization_intervals = registered_view.materialization_intervals
    return (
        registered_view == candidate and registered_entity == entity and registered_source == source
    )


def feature_store(spec: UseCaseSpec, settings: KubricksSettings) -> FeatureStore:
    """The use case's Feast store with its entity, Delta source and feature view applied."""
    name, uri = gold_table(spec, settings)
    delta_reader.install()
    delta_reader.register(uri, settings.storage_options())
    repo = write_config(spec, settings)
    objects = definitions.definitions(spec, uri, gold_schema(uri, settings), name)
    store = FeatureStore(repo_path=str(repo))
    if not _is_current(store, objects):
        store.apply(list(objects))
    return store
