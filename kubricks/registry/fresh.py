"""Fresh labels: the rows a champion never trained on, where a degraded champion shows.

A champion's holdout score is from the day it was trained. When later gold versions hold
labels it never saw (the world changed, the labels landed), the gate also scores both
models on those rows. Only rows of the candidate's own holdout qualify, so neither model
has trained on them: the champion's training gold did not hold them, the candidate held
them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from pandas.api.types import is_numeric_dtype

from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec

# Where a version records the gold Delta version it was trained on: the version's lineage
# tag (set when the gate registers it), else the training run's tag.
GOLD_VERSION_TAGS = ("lineage.gold_version", "kubricks.gold_version")


@dataclass(frozen=True)
class FreshRows:
    """The fresh part of a holdout, or why there is none (``rows`` is then None)."""

    rows: pd.DataFrame | None
    since_gold_version: int | None
    note: str


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def trained_gold_version(client: MlflowClient, version: ModelVersion) -> int | None:
    """The gold version a registered model was trained on, from its lineage; None if unknown."""
    gold = _int((version.tags or {}).get(GOLD_VERSION_TAGS[0]))
    if gold is None and version.run_id:
        try:
            tags = client.get_run(version.run_id).data.tags
        except MlflowException:
            return None
        gold = _int(tags.get(GOLD_VERSION_TAGS[1]))
    return gold


def observation_columns(spec: UseCaseSpec) -> list[str]:
    """What identifies one labelled observation: the key, and its event time when the spec
    has a real one. Without one, gold's time is the ingestion time, which changes whenever
    a row is re-delivered and would make old labels look new."""
    return [spec.entity_key, EVENT_TIME_COLUMN] if spec.event_timestamp else [spec.entity_key]


def _comparable(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = frame[columns].copy()
    if EVENT_TIME_COLUMN in out.columns:
        out[EVENT_TIME_COLUMN] = pd.to_datetime(out[EVENT_TIME_COLUMN], utc=True)
    return out


def unseen_labelled(
    latest: pd.DataFrame, previous: pd.DataFrame | None, on: list[str], label: str
) -> pd.DataFrame:
    """Labelled rows of ``latest`` that ``previous`` does not hold with the same label.

    ``on`` identifies an observation; a changed label counts as unseen, a row without a
    label does not count at all.
    """
    labelled = latest[latest[label].notna()]
    if previous is None or previous.empty:
        return labelled
    columns = [*on, label]
    seen = _comparable(previous, columns).dropna(subset=[label]).drop_duplicates()
    mine = _comparable(labelled, columns)
    if mine[label].dtype != seen[label].dtype:  # int32 here, int64 or float there
        numeric = all(is_numeric_dtype(f[label]) for f in (mine, seen))
        kind = float if numeric else str
        mine[label], seen[label] = mine[label].astype(kind), seen[label].astype(kind)
    merged = mine.merge(seen, on=columns, how="left", indicator=True)
    return labelled[(merged["_merge"] == "left_only").to_numpy()]


def fresh_rows(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    holdout: pd.DataFrame,
    champion_gold_version: int | None,
    candidate_gold_version: int | None,
) -> FreshRows:
    """The rows of the candidate's holdout that the champion's training gold did not hold."""
    from kubricks.lakehouse.gold import read_gold

    if champion_gold_version is None:
        return FreshRows(None, None, "the champion records no training gold version")
    if candidate_gold_version is not None and candidate_gold_version <= champion_gold_version:
        return FreshRows(
            None, champion_gold_version, f"no gold newer than v{champion_gold_version}"
        )
    on = observation_columns(spec)
    missing = [c for c in on if c not in holdout.columns]
    if missing:
        return FreshRows(
            None, champion_gold_version, f"the holdout lacks {', '.join(missing)} to tell rows"
        )
    try:
        previous, _ = read_gold(spec, settings, champion_gold_version, [*on, spec.label])
    except Exception as exc:  # vacuumed, or another lakehouse: judge on the holdout only
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return FreshRows(
            None, champion_gold_version, f"gold v{champion_gold_version} unreadable ({first})"
        )
    unseen = unseen_labelled(holdout, previous.to_pandas(), on, spec.label)
    return FreshRows(
        unseen,
        champion_gold_version,
        f"{len(unseen)} holdout row(s) newer than the champion's gold v{champion_gold_version}",
    )
