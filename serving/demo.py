"""The end of `kubricks demo`: the champion served locally and a few real HTTP predictions."""

from __future__ import annotations

from typing import Any

from kubricks.console import console, table
from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import layer_tables
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from serving import build, client, local


def sample_keys(spec: UseCaseSpec, settings: KubricksSettings, count: int) -> list[Any]:
    gold = tables.read_arrow(layer_tables(spec, settings.lakehouse_uri)["gold"][1])
    return gold.column(spec.entity_key).slice(0, count).to_pylist()


def print_predictions(spec: UseCaseSpec, keys: list[Any], answer: dict[str, Any]) -> None:
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
            f"POST /predict_by_key (request {answer['request_id']})",
            [spec.entity_key, "prediction", "probability", "model", "arm"],
            rows,
        )
    )


def serve_and_predict(
    settings: KubricksSettings, spec: UseCaseSpec, count: int = 3, port: int | None = None
) -> dict[str, Any]:
    """Serve the champion in the background (left running) and predict a few gold keys.

    Keys go through ``/predict_by_key``, so the answer also shows the online store at work.
    Stop the server with ``kubricks serve --stop``.
    """
    runtime = build.prepare(settings, spec)
    base = local.url(settings, port)
    if not local.ready(base):
        local.start(settings, runtime, port=port)
    keys = sample_keys(spec, settings, count)
    answer = client.predict_keys(base, keys)
    print_predictions(spec, keys, answer)
    console.print(
        f"The champion (v{runtime.champion}) serves at {base}; stop: kubricks serve --stop"
    )
    return {"url": base, "keys": keys, **answer}
