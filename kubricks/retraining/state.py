"""What the loop needs to know before deciding: the champion, gold's labels, the policy state.

The champion comes with the gold version in its lineage, so the loop can count labelled
rows that neither it nor an earlier retraining attempt trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlflow import MlflowClient

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.registry.champion import champion as registry_champion
from kubricks.registry.errors import RegistryError
from kubricks.registry.fresh import observation_columns, trained_gold_version
from kubricks.retraining import decisions
from kubricks.retraining.policy import LoopState, labels_since, new_labelled_rows
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec


@dataclass(frozen=True)
class Champion:
    version: str
    gold_version: int | None  # the gold Delta version it was trained on, from its lineage


def champion(client: MlflowClient, spec: UseCaseSpec) -> Champion | None:
    """The champion and the gold version in its lineage (version tags, else its run's tags);
    None only when the model has no champion alias: any other MLflow error propagates."""
    try:
        version = registry_champion(client, spec.name)
    except RegistryError:  # no such model, or its alias is unset
        return None
    return Champion(str(version.version), trained_gold_version(client, version))


def gold_labels(
    spec: UseCaseSpec, settings: KubricksSettings, version: int | None = None
) -> tuple[int, Any]:
    """(version, key/time/label frame) of a gold snapshot, read with delta-rs; by default the
    version the last recorded ingest left (see :func:`kubricks.lakehouse.gold.pinned_version`)."""
    from kubricks.lakehouse.gold import pinned_version
    from kubricks.lakehouse.ingest import layer_tables

    name, uri = layer_tables(spec, settings.lakehouse_uri)["gold"]
    options = settings.storage_options()
    if not tables.exists(uri, options):
        raise KubricksError(f"{name}: no gold table at {uri}: run `kubricks ingest`")
    if version is None:
        version = pinned_version(spec, settings)
    table = tables.open_table(uri, version, options)
    columns = [*observation_columns(spec), spec.label]
    return table.version(), table.to_pyarrow_table(columns=columns).to_pandas()


def gather_state(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    current: Champion | None,
    rows: list[dict[str, Any]],
    at: datetime,
) -> LoopState:
    """The policy's inputs: gold versions, new labels since the last use, lease, last retrain."""
    latest_version, latest = gold_labels(spec, settings)
    since = labels_since(
        current.gold_version if current else None, decisions.attempted_gold_version(rows)
    )
    if since is not None and since >= latest_version:
        fresh = 0
    else:
        previous = None
        if since is not None:
            try:
                previous = gold_labels(spec, settings, since)[1]
            except Exception:  # vacuumed or never existed: count every labelled row as new
                previous = None
        fresh = new_labelled_rows(latest, previous, observation_columns(spec), spec.label)
    last = decisions.last_retrain(rows)
    return LoopState(
        now=at,
        champion_version=current.version if current else None,
        latest_gold_version=latest_version,
        labels_since_version=since,
        new_labelled_rows=fresh,
        lease=decisions.active_lease(rows, at),
        last_retrain_at=last["at"] if last else None,
    )
