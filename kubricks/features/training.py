"""Point-in-time correct training sets from Feast, with the lineage to reproduce them.

Like Databricks ``create_training_set``: label rows arrive with their own timestamps
and each one gets the feature values that were current at that time, never later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from kubricks.errors import KubricksError
from kubricks.features import delta_reader
from kubricks.features.store import feature_refs, feature_store, feature_view_name
from kubricks.lakehouse import tables
from kubricks.lakehouse.gold import gold_table, gold_version
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec


@dataclass
class TrainingSet:
    """Rows to train on (key, event time, features, label) and where they came from."""

    frame: pd.DataFrame
    lineage: dict[str, str] = field(default_factory=dict)
    sampled_from: int = 0  # label rows before ``select`` took a sample (0: not sampled)


def label_rows(gold: pa.Table, spec: UseCaseSpec, table_name: str) -> pd.DataFrame:
    """The default entity frame: key, event timestamp and label of every gold row."""
    wanted = [spec.entity_key, EVENT_TIME_COLUMN, spec.label]
    for column in wanted:
        if column not in gold.column_names:
            what = "label" if column == spec.label else "column"
            raise KubricksError(f"{table_name}: {what} {column!r} is missing from the gold table")
    return gold.select(wanted).to_pandas()


def check_entity_df(entity_df: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
    """Validate a caller's entity frame; timestamps become UTC so the join compares instants."""
    for column in (spec.entity_key, EVENT_TIME_COLUMN, spec.label):
        if column not in entity_df.columns:
            what = "label" if column == spec.label else "column"
            raise KubricksError(
                f"entity_df: {what} {column!r} is missing (use case {spec.name} needs"
                f" {spec.entity_key}, {EVENT_TIME_COLUMN} and {spec.label})"
            )
    clash = [c for c in spec.gold_feature_columns() if c in entity_df.columns]
    if clash:
        raise KubricksError(
            f"entity_df: column {clash[0]!r} is a feature of {spec.name}; pass only keys,"
            f" {EVENT_TIME_COLUMN}, the label and extra columns"
        )
    out = entity_df.copy()
    out[EVENT_TIME_COLUMN] = pd.to_datetime(out[EVENT_TIME_COLUMN], utc=True)
    return out


def restore_rows(
    entity_df: pd.DataFrame, features: pd.DataFrame, spec: UseCaseSpec
) -> pd.DataFrame:
    """Every entity row, with the features Feast found for its (key, time), else nulls.

    Feast's Dask store drops a request whose only feature rows lie in its future and
    collapses requests sharing a key and time (feast-dev/feast#6787). Asking Feast
    once per distinct (key, time) and left-joining back keeps exactly one output row
    per label row; the point-in-time choice of feature values is still Feast's.
    """
    on = [spec.entity_key, EVENT_TIME_COLUMN]
    left = entity_df.astype({EVENT_TIME_COLUMN: "datetime64[ns, UTC]"})
    right = features[[*on, *spec.gold_feature_columns()]].astype(
        {EVENT_TIME_COLUMN: "datetime64[ns, UTC]"}
    )
    return left.merge(right, on=on, how="left", validate="many_to_one")


def order_columns(frame: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
    """Key, event time, features, label, then anything else the caller passed along."""
    head = [spec.entity_key, EVENT_TIME_COLUMN, *spec.gold_feature_columns(), spec.label]
    rest = [c for c in frame.columns if c not in head]
    ordered = frame[head + rest].sort_values([EVENT_TIME_COLUMN, spec.entity_key], kind="stable")
    return ordered.reset_index(drop=True)


def training_set(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    entity_df: pd.DataFrame | None = None,
    version: int | None = None,
    select: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> TrainingSet:
    """Join features onto label rows as of each row's timestamp, from one gold snapshot.

    ``version`` time-travels the gold table (default: its current version); lineage
    records the version actually read. ``select`` sees the label rows before Feast is
    asked (training takes a sample there, or refuses a set too large for memory).
    """
    store = feature_store(spec, settings)
    name, uri = gold_table(spec, settings)
    options = settings.storage_options()
    read_version = gold_version(spec, settings, version)
    if entity_df is None:
        entity_df = label_rows(tables.read_arrow(uri, read_version, options), spec, name)
    else:
        entity_df = check_entity_df(entity_df, spec)
    labelled = len(entity_df)
    if select is not None:
        entity_df = select(entity_df)
    refs = feature_refs(spec)
    requests = entity_df[[spec.entity_key, EVENT_TIME_COLUMN]].drop_duplicates()
    with delta_reader.pinned(uri, read_version):
        features = store.get_historical_features(entity_df=requests, features=refs).to_df()
    return TrainingSet(
        frame=order_columns(restore_rows(entity_df, features, spec), spec),
        lineage={
            "gold_table": uri,
            "gold_name": name,
            "gold_version": str(read_version),
            "feature_views": feature_view_name(spec),
            "feature_refs": ",".join(refs),
            "feast_project": store.project,
            "feature_repo": str(store.repo_path),
            "entity_rows": str(len(entity_df)),
        },
        sampled_from=labelled if len(entity_df) < labelled else 0,
    )
