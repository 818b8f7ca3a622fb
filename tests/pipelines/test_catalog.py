"""Pipeline names and ``k=v`` parameters: typed, validated, with the valid choices listed."""

from __future__ import annotations

import pytest

from kubricks.settings import KubricksSettings
from pipelines import catalog


@pytest.fixture(scope="module")
def training():
    return catalog.build("training", KubricksSettings())


def test_unknown_pipeline_lists_the_valid_ones() -> None:
    with pytest.raises(catalog.UnknownPipeline, match="training, batch_inference, monitoring"):
        catalog.canonical("trainig")
    assert catalog.canonical("batch-inference") == "batch_inference"


def test_parameters_are_converted_to_their_declared_types(training) -> None:
    args = catalog.parse(
        "training",
        training,
        [
            "rows=2000",
            "budget_minutes=0.5",
            "source=data/x.csv",
            'thresholds={"roc_auc": 0.7}',
            "max-trials=4",
        ],
    )
    assert args == {
        "rows": 2000,
        "budget_minutes": 0.5,
        "source": "data/x.csv",
        "thresholds": {"roc_auc": 0.7},
        "max_trials": 4,
    }


def test_unknown_parameter_lists_the_valid_ones(training) -> None:
    with pytest.raises(catalog.BadParameter) as info:
        catalog.parse("training", training, ["budget=3"])
    message = str(info.value)
    assert "'budget'" in message and "budget_minutes" in message and "thresholds" in message
    assert "parent_run_id" not in message  # internal: set by the runner


@pytest.mark.parametrize("pair", ["rows=many", "thresholds=[1]", "thresholds={bad", "rows"])
def test_bad_values_name_the_parameter(training, pair: str) -> None:
    with pytest.raises(catalog.BadParameter, match="rows|thresholds"):
        catalog.parse("training", training, [pair])


def test_defaults_fill_the_recorded_parameters(training) -> None:
    full = catalog.with_defaults(training, {"rows": 5})
    assert full["rows"] == 5 and full["usecase"] == "churn" and full["thresholds"] == {}
    assert "parent_run_id" not in full
