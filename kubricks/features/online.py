"""Load the latest gold features into the online store and read them back by key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from feast import FeatureStore, FeatureView
from feast.type_map import feast_value_type_to_python_type

from kubricks.console import err_console
from kubricks.features import delta_reader, online_keys
from kubricks.features.config import ONLINE_FILE
from kubricks.features.definitions import key_value_type
from kubricks.features.store import feature_store, feature_view_name, repo_path
from kubricks.lakehouse import tables
from kubricks.lakehouse.gold import gold_table, gold_version
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec, parse_key

# Feast writes the SQLite online store one value at a time: benchmarks/scale.py measured
# 1,000,000 keys in 305 s on 2 cores (about 3,300 keys a second, slower under load), and
# ten million did not finish in 22 minutes. Beyond this many keys the local store is the
# wrong tool; the cluster's online store is Redis-compatible (Valkey).
SQLITE_KEYS_PER_SECOND = 3_300
SQLITE_ADVISED_KEYS = 2_000_000


def sqlite_advice(keys: int, store_kind: str) -> str | None:
    """A warning when a materialization is too big for the local SQLite online store."""
    if store_kind != "sqlite" or keys <= SQLITE_ADVISED_KEYS:
        return None
    minutes = keys / SQLITE_KEYS_PER_SECOND / 60
    return (
        f"warning: {keys:,} keys into the local SQLite online store take {minutes:.0f} minutes"
        f" or more (about {SQLITE_KEYS_PER_SECOND:,} keys a second); above"
        f" {SQLITE_ADVISED_KEYS:,} keys materialize into a Redis-compatible store"
        " (KUBRICKS_FEAST_ONLINE_STORE=redis), as the cluster does"
    )


def keys_in_window(gold: pa.Table, key: str, start: datetime, end: datetime) -> int:
    """Distinct keys with a row in [start, end]: what one materialization run writes."""
    times = gold[EVENT_TIME_COLUMN]
    inside = pc.and_(
        pc.greater_equal(times, pa.scalar(start, times.type)),
        pc.less_equal(times, pa.scalar(end, times.type)),
    )
    return len(pc.unique(gold.filter(inside)[key]))


def earliest_event(gold: pa.Table) -> datetime | None:
    return pc.min(gold[EVENT_TIME_COLUMN]).as_py() if gold.num_rows else None


def materialize(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    end: datetime | None = None,
    version: int | None = None,
) -> int:
    """Materialize up to ``end`` (default now) from gold at ``version`` (default: latest).

    Returns the number of keys written. The first run starts at the earliest gold row
    (Feast's own default would skip rows older than a year); later runs continue
    incrementally from the last end time. Keys gold no longer holds are then deleted
    from the online store (:func:`prune`).
    """
    store, view = open_view(spec, settings)
    _, uri = gold_table(spec, settings)
    options = settings.storage_options()
    version = gold_version(spec, settings, version)
    end = (end or datetime.now(UTC)).astimezone(UTC)
    gold = tables.read_arrow(uri, version, options).select([spec.entity_key, EVENT_TIME_COLUMN])
    start = view.most_recent_end_time
    written = 0
    with delta_reader.pinned(uri, version):
        if start is None:
            start = earliest_event(gold)
            if start is not None and start <= end:
                written = _announce(gold, spec, settings, start, end)
                store.materialize(start_date=start, end_date=end, feature_views=[view.name])
        else:
            start = start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC)
            if start < end:
                written = _announce(gold, spec, settings, start, end)
                store.materialize_incremental(end_date=end, feature_views=[view.name])
    prune(store, view, gold[spec.entity_key].to_pylist())
    return written


def _announce(
    gold: pa.Table, spec: UseCaseSpec, settings: KubricksSettings, start: datetime, end: datetime
) -> int:
    """The keys this run writes, with a warning first when the local store is too small."""
    keys = keys_in_window(gold, spec.entity_key, start, end)
    advice = sqlite_advice(keys, settings.feast_online_store)
    if advice:
        err_console.print(advice, highlight=False, markup=False, soft_wrap=True)
    return keys


def prune(store: FeatureStore, view: FeatureView, gold_keys: list) -> int:
    """Delete online rows whose key gold no longer holds (a change feed deleted it, or a
    restore or rebuild took it out): the online store answers for gold as materialized.
    Returns how many keys were deleted."""
    keep = set(gold_keys)
    gone = [
        b for b in online_keys.stored(store, view) if online_keys.key_value(store, b) not in keep
    ]
    return online_keys.delete(store, view, gone)


def has_online_store(spec: UseCaseSpec, settings: KubricksSettings) -> bool:
    """False only for a local SQLite store that was never created (nothing to delete)."""
    if settings.feast_online_store != "sqlite":
        return True
    return (repo_path(spec, settings) / ONLINE_FILE).exists()


def forget_keys(spec: UseCaseSpec, settings: KubricksSettings, keys: list) -> int:
    """Delete these entities from the online store; returns how many were held there."""
    if not has_online_store(spec, settings):
        return 0
    store, view = open_view(spec, settings)
    wanted = set(online_keys.serialized(store, spec.entity_key, key_value_type(spec), keys))
    held = [b for b in online_keys.stored(store, view) if b in wanted]
    return online_keys.delete(store, view, held)


def open_view(spec: UseCaseSpec, settings: KubricksSettings) -> tuple[FeatureStore, FeatureView]:
    """The use case's Feast store and its feature view, as every online read or write needs."""
    store = feature_store(spec, settings)
    return store, store.get_feature_view(feature_view_name(spec))


def read_latest(
    store: FeatureStore, view: FeatureView, spec: UseCaseSpec, keys: list
) -> list[dict[str, Any] | None]:
    """The latest materialized features of each key (feature -> value), None for a key the
    store holds nothing for; keys must already have the entity key's type.

    One ``online_read`` per call through Feast's provider, each distinct key once: the read
    ``get_online_features`` makes, without building its response protos, which were
    two-thirds of a by-key request's CPU in the serving benchmark. Values are converted
    with Feast's own ``feast_value_type_to_python_type``, as ``to_dict`` does.
    """
    if not keys:
        return []
    unique = list(dict.fromkeys(keys))
    protos = online_keys.entity_keys(spec.entity_key, key_value_type(spec), unique)
    names = spec.gold_feature_columns()
    read = store.provider.online_read(store.config, view, protos, names)
    found: dict[Any, dict[str, Any] | None] = {}
    for key, (_, values) in zip(unique, read, strict=True):
        values = values or {}
        row = {
            n: feast_value_type_to_python_type(values[n]) if n in values else None for n in names
        }
        found[key] = row if any(v is not None for v in row.values()) else None
    return [found[key] for key in keys]


def online_features(spec: UseCaseSpec, settings: KubricksSettings, keys: list) -> list[dict]:
    """One dict per key: the key and its latest materialized features (None if unknown)."""
    store, view = open_view(spec, settings)
    parsed = [parse_key(spec, k) for k in keys]
    names = spec.gold_feature_columns()
    blank = dict.fromkeys(names)
    return [
        {spec.entity_key: key, **(row or blank)}
        for key, row in zip(parsed, read_latest(store, view, spec, parsed), strict=True)
    ]
