"""The one experiment get-or-create: safe when another process creates it meanwhile."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from mlflow.exceptions import MlflowException

from kubricks.runs.correlation import experiment_id


@dataclass
class RacingClient:
    """The part of MlflowClient the lookup uses, where another process wins the create:
    the first lookup finds nothing, the create then fails, the second lookup finds it."""

    winner: str | None = "7"
    lookups: list[str] = field(default_factory=list)

    def get_experiment_by_name(self, name: str) -> Any:
        self.lookups.append(name)
        if len(self.lookups) == 1 or self.winner is None:
            return None
        return type("Experiment", (), {"experiment_id": self.winner})()

    def create_experiment(self, name: str) -> str:
        raise MlflowException(f"Experiment(name={name}) already exists.")


def test_a_lost_race_returns_the_winners_experiment() -> None:
    client = RacingClient()
    assert experiment_id(client, "churn") == "7"  # type: ignore[arg-type]
    assert client.lookups == ["churn", "churn"]


def test_a_create_that_fails_for_another_reason_is_raised() -> None:
    with pytest.raises(MlflowException):
        experiment_id(RacingClient(winner=None), "churn")  # type: ignore[arg-type]
