"""`kubricks demo`: the whole local lifecycle on synthetic data (or the spec's own data), in
one command."""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from kubricks.commands.options import AUTO, UseCaseOption, get_settings
from kubricks.console import command_line, console, section
from kubricks.errors import KubricksError

if TYPE_CHECKING:
    from kubricks.settings import KubricksSettings
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


class DemoFailed(KubricksError):
    """The demo stopped at a step; the servers it started are stopped again."""


@dataclass
class Started:
    """The servers this run of the demo started (not ones the user already had running)."""

    mlflow: bool = False
    serving: bool = False
    stage: str = "starting"

    def stop(self, settings: KubricksSettings, spec: UseCaseSpec) -> list[str]:
        """Stop what this run started; returns what was stopped, for the one-line error."""
        from kubricks import services
        from serving.packaging import local

        stopped = []
        if self.serving and local.stop(settings, spec.name):
            stopped.append("the model server")
        if self.mlflow and services.stop_mlflow(settings):
            stopped.append("MLflow")
        return stopped


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return first if isinstance(exc, KubricksError) else f"{type(exc).__name__}: {first}"


def failure(exc: BaseException, started: Started, settings, spec) -> DemoFailed:
    """One line for the user; the traceback goes to a file beside the demo's data."""
    log = settings.home.expanduser().resolve() / "demo" / "last-error.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(traceback.format_exception(exc)))
    stopped = started.stop(settings, spec)
    cleanup = f"; stopped {' and '.join(stopped)}" if stopped else ""
    return DemoFailed(
        f"demo stopped during {started.stage}: {_reason(exc)}{cleanup} (details: {log})"
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
    """Start MLflow, run the training pipeline, batch inference, serving and monitoring.

    On a failure it prints one line and stops the servers it started.
    """
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    ingested = demo_source(spec, source)
    if not sys.stderr.isatty():  # piped: progress bars' carriage returns clutter the file
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started = Started()
    try:
        _run(settings, spec, usecase, ingested, rows, budget_minutes, max_trials, started)
    except KeyboardInterrupt:
        started.stop(settings, spec)
        raise
    except Exception as exc:
        raise failure(exc, started, settings, spec) from exc


def _stage(started: Started, title: str) -> None:
    started.stage = title.split(":")[0].lower()
    section(title)


def _run(
    settings: KubricksSettings,
    spec: UseCaseSpec,
    usecase: str,
    ingested: str,
    rows: int,
    budget_minutes: float,
    max_trials: int,
    started: Started,
) -> None:
    from demo.serve import serve_and_predict
    from kubricks import services
    from kubricks.commands import models, pipelines, platform
    from kubricks.commands.lakehouse import print_tables
    from serving.packaging import local

    data = f"{rows:,} synthetic rows" if ingested == SYNTHETIC else ingested or spec.source.path
    section(f"Kubricks demo: {spec.name}, {data}")
    before = services.mlflow_status(settings)
    started.mlflow = not (before.running and before.healthy)
    started.stage = "starting MLflow"
    platform.up()
    _stage(started, "Training pipeline: ingest → features → AutoML → gate → deploy")
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
    _stage(started, "Batch inference pipeline: score gold with the champion")
    pipelines.run("batch_inference", param=[f"usecase={usecase}"])
    _stage(started, "What is there now: tables and model versions")
    print_tables()
    models.list_versions(usecase=usecase)
    _stage(started, "Real-time serving: the champion over HTTP")
    started.serving = not local.ready(local.url(settings))
    serve_and_predict(settings, spec)
    if spec.synthetic:
        monitoring_story(settings, spec, started)
    console.print(
        "Explore: the MLflow UI at the URL above; `kubricks runs`, `kubricks tables`,"
        " `kubricks features get --key ...`, `kubricks models history`. Stop everything with:"
    )
    command_line("kubricks down")


def monitoring_story(settings, spec, started: Started | None = None) -> None:
    """Months 2 (an upstream bug) and 3 (concept drift) through monitoring and the loop."""
    from demo.story import run_story
    from kubricks.commands.monitor import print_result
    from kubricks.spark import get_spark
    from serving.packaging.deploy import deploy_local

    title = "Monitoring: three months served, labels landing, the closed loop"
    if started is not None:
        _stage(started, title)
    else:
        section(title)
    console.print("Ingesting months 1-3, monitoring by week, running the loop once…")
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
