"""Feast objects (Entity, FileSource, FeatureView) derived from a spec and the gold schema.

Pure: the gold table's Arrow schema comes in, Feast objects come out, so any spec gets
its feature view without a hand-written Feast file.
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.type_map import pa_to_feast_value_type
from feast.types import FeastType, from_value_type

from kubricks.errors import KubricksError
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec

_KEY_VALUE_TYPES = {
    "string": ValueType.STRING,
    "int": ValueType.INT32,
    "long": ValueType.INT64,
    "double": ValueType.DOUBLE,
    "boolean": ValueType.BOOL,
}


def feature_view_name(spec: UseCaseSpec) -> str:
    return f"{spec.name}_features"


def source_name(spec: UseCaseSpec) -> str:
    return f"{spec.name}_gold"


def feature_refs(spec: UseCaseSpec) -> list[str]:
    """``<view>:<column>`` for every gold feature column, in spec order."""
    view = feature_view_name(spec)
    return [f"{view}:{column}" for column in spec.gold_feature_columns()]


def key_value_type(spec: UseCaseSpec) -> ValueType:
    """Feast's value type for the entity key, from the spec's column type."""
    column_type = spec.column(spec.entity_key).type
    if column_type not in _KEY_VALUE_TYPES:
        raise KubricksError(
            f"use case {spec.name}: entity_key {spec.entity_key!r} has type {column_type};"
            f" Feast join keys must be one of {', '.join(_KEY_VALUE_TYPES)}"
        )
    return _KEY_VALUE_TYPES[column_type]


def feast_type(arrow_type: pa.DataType) -> FeastType:
    """Feast's type for an Arrow column type (all Arrow string flavours are strings)."""
    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or (pa.types.is_string_view(arrow_type))
    ):
        arrow_type = pa.string()
    return from_value_type(pa_to_feast_value_type(str(arrow_type)))


def definitions(
    spec: UseCaseSpec, gold_uri: str, gold_schema: pa.Schema, gold_table: str
) -> tuple[Entity, FileSource, FeatureView]:
    """The entity, the Delta source over gold and the one feature view of a use case."""
    missing = [c for c in spec.gold_feature_columns() if c not in gold_schema.names]
    if missing:
        raise KubricksError(
            f"{gold_table}: feature column {missing[0]!r} is not in the gold table"
            f" (re-run `kubricks ingest --usecase {spec.name}`)"
        )
    value_type = key_value_type(spec)
    entity = Entity(
        name=spec.entity_key,
        join_keys=[spec.entity_key],
        value_type=value_type,
        description=f"{spec.name}: one row per {spec.entity_key}",
    )
    source = FileSource(
        name=source_name(spec),
        path=gold_uri,
        file_format=DeltaFormat(),
        timestamp_field=EVENT_TIME_COLUMN,
        description=f"Delta table {gold_table}",
    )
    fields = [Field(name=spec.entity_key, dtype=from_value_type(value_type))] + [
        Field(name=c, dtype=feast_type(gold_schema.field(c).type))
        for c in spec.gold_feature_columns()
    ]
    view = FeatureView(
        name=feature_view_name(spec),
        entities=[entity],
        schema=fields,
        source=source,
        ttl=timedelta(0),  # no expiry: the point-in-time join takes the latest row at or before
        online=True,
        description=f"Gold feature columns of {spec.name} (the label {spec.label!r} excluded)",
        tags={"kubricks.usecase": spec.name, "kubricks.gold_table": gold_table},
    )
    return entity, source, view
