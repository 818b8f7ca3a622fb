"""`kubricks demo`: the whole local lifecycle on synthetic data (or the spec's own data), in
one command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kubricks.commands.options import AUTO, UseCaseOption, get_settings
from kubricks.console import command_line, console, section
from kubricks.errors import KubricksError

if TYPE_CHECKING:
    from kubricks.spec import UseCaseSpec

SYNTHETIC = "synthetic"


def demo_source(spec: UseCaseSpec, source: str | None) -> str:
    """What the training pipeline ingests: the option, else synthetic rows when the spec can
    generate them, else the spec's own file (``""`` tells the pipeline to use it)."""
    if source == SYNTHETIC and not spec.synthetic:
        raise KubricksError(
            f"spec {spec.name!r} has no synthetic section to generate rows from:"
            " pass --source PATH (a CSV, Parquet or JSON file)"
        )
    if source:
        return source
    if spec.synthetic:
        return SYNTHETIC
    if spec.source.path:
        return ""
    raise KubricksError(
        f"spec {spec.name!r} has neither a synthetic section nor a source path:"
        " pass --source PATH (a CSV, Parquet or JSON file)"
    )


def demo(
    usecase: UseCaseOption = AUTO,
    source: Annotated[
        str | None,
        typer.Option(
            help="Data to ingest: 'synthetic' or a path. Default: synthetic rows when"
            " the spec can generate them, else the spec's source file."
        ),
    ] = None,
    rows: Annotated[int, typer.Option(help="Synthetic rows to generate.")] = 10_000,
    budget_minutes: Annotated[float, typer.Option(help="AutoML search budget.")] = 1.0,
    max_trials: Annotated[int, typer.Option(help="AutoML trials at most.")] = 15,
) -> None:
    """Start MLflow, run the training pipeline, then batch inference, with kfp.local."""
    from kubricks.commands import models, pipelines, platform
    from kubricks.commands.lakehouse import print_tables
    from kubricks.spec import load_spec
    from serving.demo import serve_and_predict

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    ingested = demo_source(spec, source)
    data = f"{rows:,} synthetic rows" if ingested == SYNTHETIC else ingested or spec.source.path
    section(f"Kubricks demo: {spec.name}, {data}")
    platform.up()
    section("Training pipeline: ingest → features → AutoML → gate → deploy")
    pipelines.run(
        "training",
        param=[
            f"usecase={usecase}",
            f"source={ingested}",
            f"rows={rows}",
            f"budget_minutes={budget_minutes}",
            f"max_trials={max_trials}",
        ],
    )
    section("Batch inference pipeline: score gold with the champion")
    pipelines.run("batch_inference", param=[f"usecase={usecase}"])
    section("What is there now")
    print_tables()
    models.list_versions(usecase=usecase)
    section("Real-time serving: the champion over HTTP")
    serve_and_predict(settings, spec)
    if spec.synthetic:
        monitoring_story(settings, spec)
    console.print(
        "Explore: the MLflow UI at the URL above; `kubricks runs`, `kubricks tables`,"
        " `kubricks features get --key ...`, `kubricks models history`. Stop everything with:"
    )
    command_line("kubricks down")


def monitoring_story(settings, spec) -> None:
    """Months 2 (an upstream bug) and 3 (concept drift) through monitoring and the loop."""
    from kubricks.commands.monitor import print_result
    from kubricks.monitoring.story import run_story
    from kubricks.spark import get_spark
    from serving.deploy import deploy_local

    section("Monitoring: three months served, labels landing, the closed loop")
    with console.status("Ingesting months 1-3, monitoring by week, running the loop once…"):
        story = run_story(get_spark(settings), spec, settings)
    scenario = story.scenario
    console.print(
        f"Month 2: {scenario.unit_feature} switched units (x*1.8+32) and {scenario.nulled_feature}"
        f" was nulled where {scenario.null_rows}; month 3: the label's relation to"
        f" {scenario.concept_feature} flipped. Silver quarantined {story.ingested.quarantined}."
    )
    print_result(story.monitored)
    console.print(f"Closed loop: {story.outcome.summary()}")
    if story.outcome.promoted and story.outcome.champion_after:
        swapped = deploy_local(settings, spec, story.outcome.champion_after)
        console.print(f"Serving: {swapped}")
