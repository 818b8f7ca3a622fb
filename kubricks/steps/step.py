"""What every component body runs inside: settings, spec, a nested MLflow run, clean errors.

A step opens its MLflow run as a child of the pipeline's parent run (tag
``mlflow.parentRunId``) through the client API, so the code it calls may still use
``mlflow.start_run`` freely. A failure prints one line (the step and the error) and
exits non-zero instead of leaving a KFP traceback as the last word; the line is
also written as a step event that the local runner shows.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kubricks.errors import KubricksError
from kubricks.runs.correlation import PIPELINE_TAG
from kubricks.settings import KubricksSettings, get_settings
from kubricks.spec import UseCaseSpec, load_spec

PARENT_TAG = "mlflow.parentRunId"
STEP_TAG = "kubricks.step"


def events_dir(settings: KubricksSettings, parent_run_id: str) -> Path:
    """Where the steps of one local pipeline run leave their outcome for the runner."""
    return settings.home.expanduser().resolve() / "pipelines" / "events" / parent_run_id


@dataclass
class Step:
    """The context one component body works in."""

    name: str
    settings: KubricksSettings
    spec: UseCaseSpec
    parent_run_id: str
    mlflow_run_id: str | None = None
    outputs: dict[str, object] = field(default_factory=dict)

    def client(self):
        from kubricks.tracking import connect

        return connect(self.settings)

    def log_params(self, params: dict[str, object]) -> None:
        if self.mlflow_run_id:
            client = self.client()
            for key, value in params.items():
                client.log_param(self.mlflow_run_id, key, str(value)[:6000])

    def log_metrics(self, metrics: dict[str, float]) -> None:
        if self.mlflow_run_id:
            client = self.client()
            for key, value in metrics.items():
                client.log_metric(self.mlflow_run_id, key, float(value))

    def set_tags(self, tags: dict[str, object]) -> None:
        if self.mlflow_run_id:
            client = self.client()
            for key, value in tags.items():
                client.set_tag(self.mlflow_run_id, key, str(value))


def _open_run(step: Step) -> None:
    """Create the step's MLflow run under the parent, in the parent's experiment."""
    if not step.parent_run_id:
        return
    client = step.client()
    parent = client.get_run(step.parent_run_id)
    run = client.create_run(
        parent.info.experiment_id,
        run_name=step.name,
        tags={
            PARENT_TAG: step.parent_run_id,
            STEP_TAG: step.name,
            PIPELINE_TAG: parent.data.tags.get(PIPELINE_TAG, ""),
            "kubricks.usecase": step.spec.name,
        },
    )
    step.mlflow_run_id = run.info.run_id


def _close_run(step: Step, status: str) -> None:
    """End the step's run; if the server cannot be told, record it for the next gate or loop
    to close (kubricks.runs.unfinished) rather than leave it RUNNING for good."""
    if not step.mlflow_run_id:
        return
    try:
        step.client().set_terminated(step.mlflow_run_id, status)
    except Exception as exc:
        from kubricks.runs import unfinished

        unfinished.remember(
            step.settings, step.mlflow_run_id, "FAILED", f"step {step.name}: {one_line(exc)}"
        )
        raise


def _write_event(
    settings: KubricksSettings | None,
    name: str,
    parent_run_id: str,
    status: str,
    started: float,
    error: str | None = None,
    current: Step | None = None,
) -> None:
    if not parent_run_id or settings is None:
        return
    folder = events_dir(settings, parent_run_id)
    folder.mkdir(parents=True, exist_ok=True)
    event = {
        "step": name,
        "status": status,
        "error": error,
        "outputs": dict(current.outputs) if current else {},
        "mlflow_run_id": current.mlflow_run_id if current else None,
        "seconds": round(time.time() - started, 1),
    }
    (folder / f"{name}.json").write_text(json.dumps(event, default=str, indent=2))


def one_line(exc: BaseException) -> str:
    """A user error's own message; anything else prefixed with its type."""
    if isinstance(exc, KubricksError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@contextmanager
def step(name: str, usecase: str, parent_run_id: str = "") -> Iterator[Step]:
    """Run a component body; on failure print ``error: <step>: <message>`` and exit 1."""
    started = time.time()
    settings: KubricksSettings | None = None
    current: Step | None = None
    try:
        settings = get_settings()
        spec = load_spec(usecase, settings.usecases_dir, allow_paths=settings.step_usecase_paths)
        current = Step(name, settings, spec, parent_run_id)
        _open_run(current)
        yield current
        _close_run(current, "FINISHED")
    except Exception as exc:
        message = one_line(exc)
        if not isinstance(exc, KubricksError):
            traceback.print_exc(file=sys.stderr)
        if current is not None:
            _safely(lambda: _close_run(current, "FAILED"))
        _write_event(settings, name, parent_run_id, "failed", started, message, current)
        print(f"error: step {name}: {message}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    _write_event(settings, name, parent_run_id, "succeeded", started, None, current)


def _safely(action) -> None:
    try:
        action()
    except Exception as exc:  # the original error matters more than a failed cleanup
        print(f"warning: could not close the MLflow run: {one_line(exc)}", file=sys.stderr)
