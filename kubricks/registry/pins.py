"""Which gold table versions registered models still need, so vacuum can keep them.

Every registered version carries the gold snapshot it was trained on as the tags
``lineage.gold_table`` (the table's URI) and ``lineage.gold_version`` (see
:mod:`kubricks.features.training`); monitoring reads that snapshot back by time travel
as its baseline. A version that holds an alias (``champion``, ``challenger``) is
protected; the others are listed, so a vacuum says what it takes from them.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from kubricks.lakehouse.maintenance import Pin
from kubricks.registry.store import list_versions

GOLD_TABLE_TAG = "lineage.gold_table"
GOLD_VERSION_TAG = "lineage.gold_version"


def gold_pins(client: MlflowClient) -> dict[str, list[Pin]]:
    """Per gold table URI, the versions registered models were trained on."""
    pins: dict[str, list[Pin]] = {}
    for model in _all_models(client):
        aliases: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        for version in list_versions(client, model.name):
            uri, gold = version.tags.get(GOLD_TABLE_TAG), version.tags.get(GOLD_VERSION_TAG)
            if not uri or gold in (None, "", "None"):
                continue
            held = sorted(aliases.get(str(version.version), []))
            label = ", ".join(held) if held else "no alias"
            pin = Pin(int(gold), f"{model.name} v{version.version} ({label})", bool(held))
            pins.setdefault(uri.rstrip("/"), []).append(pin)
    return pins


def _all_models(client: MlflowClient) -> list:
    found: list[RegisteredModel] = []
    token: str | None = None
    while True:
        page = client.search_registered_models(max_results=200, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found
