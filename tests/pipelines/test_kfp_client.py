"""Submitting and scheduling on Kubeflow Pipelines (the KFP API is a stand-in: no cluster here)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings
from pipelines import kfp_client


class FakeKfp:
    """Records calls and checks the package it is handed is a compiled pipeline."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _check(self, path: str) -> str:
        spec = next(yaml.safe_load_all(Path(path).read_text()))
        return spec["pipelineInfo"]["name"]

    def create_run_from_pipeline_package(self, pipeline_file: str, **kwargs: Any):
        self.calls.append(("run", {**kwargs, "pipeline": self._check(pipeline_file)}))
        return SimpleNamespace(run_id="run-123")

    def create_experiment(self, name: str, namespace: str | None = None):
        self.calls.append(("experiment", {"name": name}))
        return SimpleNamespace(experiment_id="exp-1")

    def create_recurring_run(self, **kwargs: Any):
        path = kwargs.pop("pipeline_package_path")
        self.calls.append(("recurring", {**kwargs, "pipeline": self._check(path)}))
        return SimpleNamespace(recurring_run_id="rec-9")


def test_submit_compiles_and_starts_a_run(tmp_path: Path) -> None:
    api = FakeKfp()
    done = kfp_client.submit(
        "training",
        {"usecase": "churn", "parent_run_id": "p1"},
        KubricksSettings(home=tmp_path),
        "http://kfp.local:8888",
        run_name="training-abc",
        api=api,
    )
    assert done.kfp_run_id == "run-123"
    assert done.url == "http://kfp.local:8888/#/runs/details/run-123"
    kind, call = api.calls[0]
    assert kind == "run" and call["pipeline"] == "training"
    assert call["arguments"] == {"usecase": "churn", "parent_run_id": "p1"}
    assert call["enable_caching"] is False and call["run_name"] == "training-abc"


def test_schedule_takes_a_five_field_cron(tmp_path: Path) -> None:
    api = FakeKfp()
    job = kfp_client.schedule(
        "monitoring",
        "0 3 * * *",
        {"drift_share": 0.3},
        KubricksSettings(home=tmp_path),
        "http://kfp",
        api=api,
    )
    assert job == "rec-9"
    ((_, call),) = [c for c in api.calls if c[0] == "recurring"]
    assert call["cron_expression"] == "0 0 3 * * *"
    assert call["pipeline"] == "monitoring" and call["experiment_id"] == "exp-1"
    assert call["params"] == {"drift_share": 0.3} and call["max_concurrency"] == 1


@pytest.mark.parametrize("cron", ["every day", "* * *", "0 0 0 0 0 0 0"])
def test_bad_cron_is_explained(cron: str) -> None:
    with pytest.raises(KubricksError, match="5 fields"):
        kfp_client.cron_expression(cron)


def test_unreachable_host_is_named(tmp_path: Path) -> None:
    with pytest.raises(KubricksError, match="127.0.0.1:9"):
        kfp_client.submit(
            "training", {}, KubricksSettings(home=tmp_path), "http://127.0.0.1:9", run_name="x"
        )
