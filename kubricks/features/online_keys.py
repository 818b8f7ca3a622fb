"""Entity keys in Feast's online store: which ones it holds, and deleting some.

Feast can write and read rows by key but has no call that deletes one key, and a
deleted entity (a change feed's delete, ``kubricks forget``) must not keep answering
by-key lookups. This module does it for the three online stores Kubricks configures
(SQLite, Redis, Postgres), with Feast's own key serialization and table naming, so the
rows removed are exactly the rows Feast wrote. Check it on a Feast upgrade: it uses the
stores' connection helpers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from feast import FeatureStore, FeatureView, ValueType
from feast.infra.key_encoding_utils import (
    deserialize_entity_key,
    serialize_entity_key,
    serialize_entity_key_prefix,
)
from feast.infra.online_stores.helpers import compute_table_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.type_map import python_values_to_proto_values

from kubricks.errors import KubricksError


def entity_keys(join_key: str, value_type: ValueType, keys: list) -> list[EntityKeyProto]:
    """Feast's entity key of each (single-column) key value."""
    values = python_values_to_proto_values(list(keys), value_type)
    return [EntityKeyProto(join_keys=[join_key], entity_values=[value]) for value in values]


def serialized(store: FeatureStore, join_key: str, value_type: ValueType, keys: list) -> list:
    """Feast's byte form of each key, as the online store indexes it."""
    version = store.config.entity_key_serialization_version
    return [
        serialize_entity_key(proto, entity_key_serialization_version=version)
        for proto in entity_keys(join_key, value_type, keys)
    ]


def key_value(store: FeatureStore, blob: bytes) -> Any:
    """The Python value of one serialized (single-column) entity key."""
    proto = deserialize_entity_key(
        blob, entity_key_serialization_version=store.config.entity_key_serialization_version
    )
    value = proto.entity_values[0]
    kind = value.WhichOneof("val")
    return getattr(value, kind) if kind else None


def _table(store: FeatureStore, view: FeatureView) -> str:
    versioning = bool(
        getattr(store.config.registry, "enable_online_feature_view_versioning", False)
    )
    return compute_table_id(store.config.project, view, versioning)


def _kind(store: FeatureStore) -> str:
    kind = store.config.online_store.type
    if kind not in ("sqlite", "redis", "postgres"):
        raise KubricksError(f"online store {kind!r}: deleting keys is not supported")
    return kind


def stored(store: FeatureStore, view: FeatureView) -> list[bytes]:
    """Every serialized entity key the online store holds for ``view``."""
    # The sqlite, postgres and redis stores each have their own private connection helper.
    online: Any = store.provider.online_store
    kind = _kind(store)
    if kind == "sqlite":
        conn = online._get_conn(store.config)
        try:
            cursor = conn.execute(f'SELECT DISTINCT entity_key FROM "{_table(store, view)}"')
        except Exception as exc:  # sqlite3.OperationalError: nothing materialized yet
            if "no such table" in str(exc):
                return []
            raise
        return [bytes(row[0]) for row in cursor.fetchall()]
    if kind == "postgres":
        from psycopg import sql

        query = sql.SQL("SELECT DISTINCT entity_key FROM {}").format(
            sql.Identifier(_table(store, view))
        )
        with online._get_conn(store.config) as conn, conn.cursor() as cur:
            cur.execute(query)
            return [bytes(row[0]) for row in cur.fetchall()]
    client = online._get_client(store.config.online_store)
    suffix = store.config.project.encode()
    pattern = serialize_entity_key_prefix(
        list(view.join_keys),
        entity_key_serialization_version=store.config.entity_key_serialization_version,
    )
    return [bytes(k)[: -len(suffix)] for k in client.scan_iter(pattern + b"*" + suffix)]


def delete(store: FeatureStore, view: FeatureView, blobs: Iterable[bytes]) -> int:
    """Delete the rows of these serialized keys; returns how many keys were asked for."""
    blobs = list(blobs)
    if not blobs:
        return 0
    # The sqlite, postgres and redis stores each have their own private connection helper.
    online: Any = store.provider.online_store
    kind = _kind(store)
    if kind == "sqlite":
        conn = online._get_conn(store.config)
        table = _table(store, view)
        with conn:
            try:
                conn.executemany(
                    f'DELETE FROM "{table}" WHERE entity_key = ?', [(b,) for b in blobs]
                )
            except Exception as exc:
                if "no such table" not in str(exc):
                    raise
        return len(blobs)
    if kind == "postgres":
        from psycopg import sql

        statement = sql.SQL("DELETE FROM {} WHERE entity_key = ANY(%s)").format(
            sql.Identifier(_table(store, view))
        )
        with online._get_conn(store.config, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(statement, (blobs,))
        return len(blobs)
    # Redis: one hash per entity and project holds every view's fields; Kubricks has one
    # view per project (the use case), so the whole hash goes.
    client = online._get_client(store.config.online_store)
    suffix = store.config.project.encode()
    client.delete(*[b + suffix for b in blobs])
    return len(blobs)
