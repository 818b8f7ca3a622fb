"""Pipelines from declared parameters: monitoring reuses training's instead of repeating them."""

from __future__ import annotations

import pytest

from kubricks.settings import KubricksSettings
from pipelines import builder, catalog, monitoring, training


@pytest.fixture(scope="module")
def settings() -> KubricksSettings:
    return KubricksSettings(image="registry.test/kubricks:1")


def test_monitoring_declares_training_parameters_by_reference_only() -> None:
    own = {p.name for p in monitoring.PARAMETERS}
    assert own == {"monitor_source", "granularity", "retrain", "maintain", "retain_hours"}
    assert not own & {p.name for p in training.PARAMETERS}


def test_monitoring_takes_training_search_parameters_with_their_types_and_defaults(
    settings: KubricksSettings,
) -> None:
    trains = catalog.parameters(catalog.build("training", settings))
    monitors = catalog.parameters(catalog.build("monitoring", settings))
    search = {p.name for p in training.SEARCH_PARAMETERS}
    assert set(monitors) == {"usecase"} | search | {p.name for p in monitoring.PARAMETERS}
    for name in search:
        assert monitors[name] == trains[name], name
    assert trains["budget_minutes"].description == (
        "Wall clock of the train step: load, search, refit, logging, time kept for the gate."
    )


def test_the_monitor_step_gets_each_search_parameter_of_the_same_name(
    settings: KubricksSettings,
) -> None:
    spec = catalog.build("monitoring", settings).pipeline_spec
    (task,) = [
        task
        for component in spec.components.values()
        if component.WhichOneof("implementation") == "dag"
        for task in component.dag.tasks.values()
        if task.component_ref.name == "comp-monitor"
    ]
    passed = {k: v.component_input_parameter for k, v in task.inputs.parameters.items()}
    expected = {
        p.name
        for p in (
            builder.USECASE,
            *monitoring.MONITOR_PARAMETERS,
            *training.SEARCH_PARAMETERS,
            builder.PARENT_RUN_ID,
        )
    }
    assert passed == {name: f"pipelinechannel--{name}" for name in expected}


def test_a_parameter_declared_twice_is_refused() -> None:
    twice = [builder.USECASE, builder.Param("usecase", str, "x", "again")]
    with pytest.raises(ValueError, match="declared twice"):
        builder.pipeline("twice", "a pipeline", twice, lambda args: None)


def test_values_picks_the_named_parameters() -> None:
    args = {"usecase": "u", "seed": 1, "granularity": "day"}
    assert builder.values(args, [builder.USECASE]) == {"usecase": "u"}
