"""Local execution: a pipeline run by ``kfp.local`` in this virtualenv, recorded and correlated.

kfp.local's ``SubprocessRunner(use_venv=False)`` runs each step as
``<this python> -m kfp.dsl.executor_main`` (it swaps ``python3`` in the command for
``sys.executable``); components are built with ``install_kfp_package=False`` and no
``packages_to_install``, so nothing is pip-installed at run time. Settings reach the
steps as ``KUBRICKS_*`` variables in the environment the subprocesses inherit.

KFP's own chatter and each step's output go to a log file; the terminal gets one line
per step (from the events the steps leave) and, on failure, the failing step's error.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any, TextIO

from kubricks.errors import KubricksError
from kubricks.runs import correlation, records
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec
from kubricks.steps.environment import exported, settings_env
from kubricks.steps.step import events_dir
from pipelines import catalog

StepCallback = Callable[[dict[str, Any]], None]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class PipelineFailed(KubricksError):
    """A local pipeline run stopped at a failing step."""


def outputs_root(settings: KubricksSettings) -> Path:
    """Where kfp.local writes step outputs (artifacts, executor outputs)."""
    if settings.pipeline_root and "://" not in settings.pipeline_root:
        return Path(settings.pipeline_root).expanduser().resolve()
    return settings.home.expanduser().resolve() / "pipelines" / "outputs"


def step_names(pipeline: Any) -> list[str]:
    """Every step of a compiled pipeline, nested pipelines included, in order.

    The exit handler that closes the MLflow run is bookkeeping, not a step.
    """
    from kfp.pipeline_spec import pipeline_spec_pb2

    exit_strategy = pipeline_spec_pb2.PipelineTaskSpec.TriggerPolicy.ALL_UPSTREAM_TASKS_COMPLETED
    spec = pipeline.pipeline_spec
    components = dict(spec.components.items())

    def walk(dag: Any) -> Iterator[str]:
        order = TopologicalSorter(
            {n: sorted(t.dependent_tasks) for n, t in sorted(dag.tasks.items())}
        )
        for name in order.static_order():
            task = dag.tasks[name]
            if task.trigger_policy.strategy == exit_strategy:
                continue
            component = components.get(task.component_ref.name)
            if component is not None and component.WhichOneof("implementation") == "dag":
                yield from walk(component.dag)
            else:
                yield name

    seen: list[str] = []
    for name in walk(spec.root.dag):
        if name not in seen:
            seen.append(name)
    return seen


class _EventSink:
    """A file-like target for KFP's output that also reports step events as they land."""

    def __init__(self, log: TextIO, folder: Path, on_step: StepCallback | None) -> None:
        self.log = log
        self.folder = folder
        self.on_step = on_step
        self.seen: dict[str, float] = {}

    def write(self, text: str) -> int:
        self.log.write(_ANSI.sub("", text))
        self.poll()
        return len(text)

    def flush(self) -> None:
        self.log.flush()

    def isatty(self) -> bool:
        return False

    def poll(self) -> None:
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
            stamp = path.stat().st_mtime
            if self.seen.get(path.name) == stamp:
                continue
            self.seen[path.name] = stamp
            if self.on_step:
                try:
                    self.on_step(json.loads(path.read_text()))
                except ValueError:  # a half-written file; the next write re-reads it
                    self.seen.pop(path.name)


def read_events(folder: Path) -> dict[str, dict[str, Any]]:
    events: dict[str, dict[str, Any]] = {}
    if folder.is_dir():
        for path in folder.glob("*.json"):
            event = json.loads(path.read_text())
            events[event["step"]] = event
    return events


def summarize(
    names: list[str], events: dict[str, dict[str, Any]], succeeded: bool
) -> list[dict[str, Any]]:
    """One entry per task: its event, or skipped (condition false) / not run (after a failure)."""
    steps = []
    for name in names:
        if name in events:
            steps.append(events[name])
        else:
            steps.append(
                {
                    "step": name,
                    "status": "skipped" if succeeded else "not run",
                    "outputs": {},
                    "error": None,
                    "mlflow_run_id": None,
                }
            )
    return steps


def failure_message(events: dict[str, dict[str, Any]], exc: BaseException, log: Path) -> str:
    failed = [e for e in events.values() if e.get("status") == "failed"]
    if failed:
        event = failed[-1]
        return f"step {event['step']} failed: {event['error']} (full log: {log})"
    text = _ANSI.sub("", str(exc)).strip().splitlines()
    return f"{text[0] if text else type(exc).__name__} (full log: {log})"


@contextmanager
def _captured(log_path: Path, folder: Path, on_step: StepCallback | None) -> Iterator[_EventSink]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        sink = _EventSink(log, folder, on_step)
        with redirect_stdout(sink), redirect_stderr(sink), warnings.catch_warnings():
            # kfp.local warns that image, resources and display names have no local effect
            warnings.simplefilter("ignore")
            yield sink
        sink.poll()


def step_env(settings: KubricksSettings) -> dict[str, str]:
    """The steps' environment: the settings, and this interpreter for Spark's Python workers
    (PySpark otherwise starts ``python3`` from PATH, which may lack the project's packages)."""
    return {
        **settings_env(settings),
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON") or sys.executable,
    }


def run_local(
    name: str,
    arguments: dict[str, Any],
    settings: KubricksSettings,
    on_step: StepCallback | None = None,
) -> records.RunRecord:
    """Run a pipeline with kfp.local; return its record (status ``succeeded`` or ``failed``).

    Creates the MLflow parent run first and passes its id to every step, records the
    run before and after, and never lets a KFP traceback reach the caller.
    """
    from kfp import local

    from kubricks.tracking import connect

    key = catalog.canonical(name)
    pipeline = catalog.build(key, settings)
    params = catalog.with_defaults(pipeline, arguments)
    spec = load_spec(str(params["usecase"]), settings.usecases_dir)  # an unknown one fails here
    client = connect(settings)
    record = records.RunRecord(records.new_run_id(), key, params)
    record.mlflow_run_id = correlation.start_parent_run(  # beside the training runs, by name
        client, spec.name, key, record.run_id, params
    )
    records.save(record, settings)

    root = outputs_root(settings) / record.run_id
    log_path = root / "log.txt"
    folder = events_dir(settings, record.mlflow_run_id)
    succeeded = False
    try:
        with exported(step_env(settings)), _captured(log_path, folder, on_step):
            local.init(
                runner=local.SubprocessRunner(use_venv=False),
                pipeline_root=str(root),
                raise_on_error=True,
            )
            pipeline(**params, parent_run_id=record.mlflow_run_id)
        succeeded = True
    except RuntimeError as exc:  # kfp.local's "finished with status FAILURE"
        record.error = failure_message(read_events(folder), exc, log_path)
    except BaseException as exc:
        record.error = f"interrupted: {type(exc).__name__} (full log: {log_path})"
        raise
    finally:
        record.status = "succeeded" if succeeded else "failed"
        record.finished_at = datetime.now(UTC)
        record.steps = summarize(step_names(pipeline), read_events(folder), succeeded)
        _finish(client, record, settings)
        records.save(record, settings)
    return record


def _finish(client: Any, record: records.RunRecord, settings: KubricksSettings) -> None:
    try:
        assert record.mlflow_run_id is not None  # run_local starts the parent run first
        with redirect_stdout(io.StringIO()):  # MLflow prints "View run ..." links here
            correlation.finish_parent_run(
                client, record.mlflow_run_id, record.status == "succeeded"
            )
    except Exception as exc:  # the run's own outcome matters more; the next gate closes it
        from kubricks.runs import unfinished

        status = "FINISHED" if record.status == "succeeded" else "FAILED"
        unfinished.remember(settings, record.mlflow_run_id, status, f"pipeline run: {exc}")
        print(f"warning: could not close MLflow run {record.mlflow_run_id}: {exc}", file=sys.stderr)
