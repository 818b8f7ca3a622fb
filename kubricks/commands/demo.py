"""`kubricks demo`: the whole local lifecycle on synthetic data, in one command."""

from __future__ import annotations

from typing import Annotated

import typer

from kubricks.console import console


def demo(
    usecase: Annotated[str, typer.Option(help="Use case to run.")] = "churn",
    rows: Annotated[int, typer.Option(help="Synthetic rows to generate.")] = 10_000,
    budget_minutes: Annotated[float, typer.Option(help="AutoML search budget.")] = 1.0,
    max_trials: Annotated[int, typer.Option(help="AutoML trials at most.")] = 15,
) -> None:
    """Start MLflow, run the training pipeline, then batch inference, with kfp.local."""
    from kubricks.commands import models, pipelines, platform
    from kubricks.commands.lakehouse import print_tables

    console.rule(f"Kubricks demo: {usecase}, {rows:,} synthetic rows")
    platform.up()
    console.rule("Training pipeline: ingest → features → AutoML → gate → deploy")
    pipelines.run(
        "training",
        param=[
            f"usecase={usecase}",
            "source=synthetic",
            f"rows={rows}",
            f"budget_minutes={budget_minutes}",
            f"max_trials={max_trials}",
        ],
    )
    console.rule("Batch inference pipeline: score gold with the champion")
    pipelines.run("batch_inference", param=[f"usecase={usecase}"])
    console.rule("What is there now")
    print_tables()
    models.list_versions(usecase=usecase)
    console.rule("Real-time serving: the champion over HTTP")
    from kubricks.settings import get_settings
    from kubricks.spec import load_spec
    from serving.demo import serve_and_predict

    settings = get_settings()
    serve_and_predict(settings, load_spec(usecase, settings.usecases_dir))
    console.print(
        "Explore: the MLflow UI at the URL above; `kubricks runs`, `kubricks tables`,"
        " `kubricks features get --key ...`, `kubricks models history`. Stop with `kubricks down`."
    )
