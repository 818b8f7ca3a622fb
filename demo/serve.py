"""The end of `kubricks demo`: the champion served locally and a few real HTTP predictions."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from kubricks.console import console, table
from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from serving.packaging import build, client, local
from serving.request.schema import feature_types

SAMPLED = 200  # gold rows looked at for complete ones
START_SECONDS = 300.0  # a loaded laptop can take minutes to import BentoML and load a model


def json_value(value: Any, kind: str) -> Any:
    """A gold value as a request carries it: dates and times as ISO text, missing as null."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime):
        return value.date().isoformat() if kind == "date" else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def sample_rows(spec: UseCaseSpec, settings: KubricksSettings, count: int) -> list[dict]:
    """A few gold rows as request bodies: the key and the feature columns, complete rows
    first (a row with a missing value is a valid request only where the spec allows it)."""
    uri = layer_tables(spec, settings.lakehouse_uri)["gold"][1]
    gold = tables.read_arrow(uri, None, settings.storage_options())
    kinds = {spec.entity_key: spec.column(spec.entity_key).type, **feature_types(spec)}
    rows = [
        {name: json_value(value, kinds[name]) for name, value in row.items()}
        for row in gold.select(list(kinds)).slice(0, SAMPLED).to_pylist()
    ]
    complete = [row for row in rows if all(v is not None for v in row.values())]
    return (complete + [row for row in rows if row not in complete])[:count]


def print_predictions(
    spec: UseCaseSpec, keys: list[Any], answer: dict[str, Any], route: str
) -> None:
    rows = [
        (
            str(key),
            str(p["prediction"]),
            "" if p["probability"] is None else f"{p['probability']:.3f}",
            f"{p['model_name']} v{p['model_version']}",
            p["arm"],
        )
        for key, p in zip(keys, answer["predictions"], strict=True)
    ]
    console.print(
        table(
            f"POST {route} (request {answer['request_id']})",
            [spec.entity_key, "prediction", "probability", "model", "arm"],
            rows,
        )
    )


def serve_and_predict(
    settings: KubricksSettings, spec: UseCaseSpec, count: int = 3, port: int | None = None
) -> dict[str, Any]:
    """Serve the champion in the background (left running) and predict a few gold keys.

    Keys go through ``/predict_by_key`` (the online store at work); if the store has no
    features for them, the same gold rows go through ``/predict``.
    Stop the server with ``kubricks serve --stop``.
    """
    runtime = build.prepare(settings, spec)
    base = local.url(settings, port)
    if not local.ready(base):
        local.start(settings, runtime, port=port, timeout=START_SECONDS)
    rows = sample_rows(spec, settings, count)
    keys = [row[spec.entity_key] for row in rows]
    try:  # by key shows the online store at work, when features were materialized
        answer, route = client.predict_keys(base, keys), "/predict_by_key"
    except KubricksError:
        answer, route = client.predict_rows(base, rows), "/predict"
    print_predictions(spec, keys, answer, route)
    console.print(
        f"The champion (v{runtime.champion}) serves at {base}; stop: kubricks serve --stop"
    )
    return {"url": base, "keys": keys, "route": route, **answer}
