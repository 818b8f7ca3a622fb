"""`kubricks train`: AutoML on a use case's training set, then the registry gate."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Annotated

import typer

from kubricks.commands.options import AUTO, UseCaseOption, get_settings
from kubricks.console import console, table


def train(
    usecase: UseCaseOption = AUTO,
    budget_minutes: Annotated[
        float,
        typer.Option(
            min=0.05,
            help="Wall clock of the whole step (load, search, refit, logging, the gate), minutes.",
        ),
    ] = 5.0,
    max_trials: Annotated[int, typer.Option(min=1, help="Stop after this many trials.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the splits, the sampler and the models.")] = 42,
    gold_version: Annotated[
        int | None,
        typer.Option(min=0, help="Gold Delta version to train on; default: the latest ingest's."),
    ] = None,
    max_rows: Annotated[
        int | None,
        typer.Option(
            min=1000,
            help="Train on a stratified sample of this many labelled rows (when there are more).",
        ),
    ] = None,
) -> None:
    """Search model families with Optuna, log every trial to MLflow, gate the best model."""
    from kubricks.training.budget import Budget

    budget = Budget.minutes(budget_minutes)  # everything from here on counts
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
        budget=budget,
        max_rows=max_rows,
    )
    console.print(
        f"Best of {result.n_trials} trials: [bold]{result.family}[/]"
        f" (run {result.run_id}, gold version {result.lineage.get('gold_version', '?')})"
    )
    from kubricks.commands.models import metric_title

    classes = _classes(settings, result.run_id)
    console.print(
        table(
            "Holdout metrics",
            ["metric", "value"],
            [(metric_title(k, classes), f"{v:.4f}") for k, v in result.metrics.items()],
        )
    )
    console.print(f"Model: {result.model_uri}")
    if find_spec("kubricks.registry.gate") is None:
        console.print("No registry gate installed: the model is logged, not registered.")
        return
    from kubricks.commands.models import print_decision
    from kubricks.registry.gate import raise_on_alarm, register_and_gate

    gate_started = budget.elapsed()
    decision = register_and_gate(spec, settings, result)
    judged = (*decision.resolved, decision)  # versions an interrupted gate left come first
    for each in judged:
        print_decision(spec.name, each)
    phases = {**result.timings, "gate": budget.elapsed() - gate_started}
    console.print(
        f"Took {budget.elapsed():.0f} s of a {budget.seconds:.0f} s budget: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in phases.items())
    )
    for each in judged:  # an alarm exits non-zero, after everything is printed
        raise_on_alarm(spec.name, each)


def _classes(settings, run_id: str) -> list | None:
    """The classes the search run's model predicts (None for regression)."""
    from kubricks.registry import listing

    return listing.classes(settings, run_id)
