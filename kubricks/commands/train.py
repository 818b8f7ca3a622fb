"""`kubricks train`: AutoML on a use case's training set, then the registry gate."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Annotated

import typer

from kubricks.console import console, table
from kubricks.settings import get_settings


def train(
    usecase: Annotated[str, typer.Option(help="Use-case name or path to a spec YAML.")] = "churn",
    budget_minutes: Annotated[
        float, typer.Option(min=0.05, help="Time budget of the search, in minutes.")
    ] = 5.0,
    max_trials: Annotated[int, typer.Option(min=1, help="Stop after this many trials.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the splits, the sampler and the models.")] = 42,
    gold_version: Annotated[
        int | None,
        typer.Option(min=0, help="Gold Delta version to train on; default: the latest ingest's."),
    ] = None,
) -> None:
    """Search model families with Optuna, log every trial to MLflow, gate the best model."""
    from kubricks.lakehouse.gold import ingested
    from kubricks.spec import load_spec
    from kubricks.training.automl import train as run_train

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    if gold_version is None:  # pinned before the search starts: a batch landing meanwhile waits
        gold_version = ingested(spec, settings).version
    result = run_train(
        spec,
        settings,
        budget_minutes=budget_minutes,
        max_trials=max_trials,
        seed=seed,
        gold_version=gold_version,
    )
    console.print(
        f"Best of {result.n_trials} trials: [bold]{result.family}[/]"
        f" (run {result.run_id}, gold version {result.lineage.get('gold_version', '?')})"
    )
    console.print(
        table(
            "Holdout metrics",
            ["metric", "value"],
            [(k, f"{v:.4f}") for k, v in result.metrics.items()],
        )
    )
    console.print(f"Model: {result.model_uri}")
    if find_spec("kubricks.registry.gate") is None:
        console.print("No registry gate installed: the model is logged, not registered.")
        return
    from kubricks.commands.models import print_decision
    from kubricks.registry.gate import raise_on_alarm, register_and_gate

    decision = register_and_gate(spec, settings, result)
    judged = (*decision.resolved, decision)  # versions an interrupted gate left come first
    for each in judged:
        print_decision(spec.name, each)
    for each in judged:  # an alarm exits non-zero, after everything is printed
        raise_on_alarm(spec.name, each)
