"""Monitoring results as Delta tables (``monitoring/<name>_{profile,drift,quality}_metrics``).

Shaped like Databricks Lakehouse Monitoring's tables: one row per window, granularity,
slice key and value and column, with the model version, baseline (gold) version and
inference-log version the numbers came from. A re-run replaces the windows it recomputed
in one atomic commit (``predicate`` overwrite), so running monitoring twice never
duplicates rows and a failed run leaves the previous version in place.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
from deltalake import CommitProperties, write_deltalake

from kubricks.lakehouse import tables

LAYER = "monitoring"
KINDS = ("profile", "drift", "quality")


def table_name(usecase: str, kind: str) -> str:
    return f"{usecase}_{kind}_metrics"


def table_uri(root: str, usecase: str, kind: str) -> str:
    return tables.table_uri(root, LAYER, table_name(usecase, kind))


def _arrow(frame: pd.DataFrame) -> pa.Table:
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object and column not in ("quantiles",):
            sample = out[column].dropna()
            if sample.empty or isinstance(sample.iloc[0], str):
                out[column] = out[column].astype("string")
    for column in ("window_start", "window_end", "window_cmp_start", "window_cmp_end"):
        if column in out:
            out[column] = (
                pd.to_datetime(out[column]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
            )
    return pa.Table.from_pandas(out, preserve_index=False)


def write(
    frame: pd.DataFrame,
    uri: str,
    lineage: dict[str, str],
    storage_options: dict[str, str] | None = None,
) -> int | None:
    """Replace this granularity's recomputed windows in ``uri``; returns the new version."""
    if frame.empty:
        return tables.current_version(uri, storage_options)
    frame = frame.copy()
    for key, value in lineage.items():
        frame[key] = value
    frame["computed_at"] = pd.Timestamp(datetime.now(UTC))
    data = _arrow(frame)
    properties = CommitProperties(
        custom_metadata={"kubricks.monitoring": ",".join(lineage.values())}
    )
    if not tables.exists(uri, storage_options):
        write_deltalake(
            uri, data, mode="error", storage_options=storage_options, commit_properties=properties
        )
    else:
        starts = frame["window_start"].dropna()
        granularity = str(frame["granularity"].iloc[0])
        predicate = f"granularity = '{granularity}'"
        model = lineage.get("model_version")
        if model is not None:
            predicate += f" AND model_version = '{model}'"
        if not starts.empty:
            low = pd.Timestamp(starts.min()).strftime("%Y-%m-%dT%H:%M:%S.%f")
            high = pd.Timestamp(starts.max()).strftime("%Y-%m-%dT%H:%M:%S.%f")
            predicate += (
                f" AND (window_start IS NULL OR (window_start >= '{low}Z'"
                f" AND window_start <= '{high}Z'))"
            )
        write_deltalake(
            uri,
            data,
            mode="overwrite",
            predicate=predicate,
            schema_mode="merge",
            storage_options=storage_options,
            commit_properties=properties,
        )
    return tables.current_version(uri, storage_options)
