"""Everything the search writes to MLflow, through one ``MlflowClient`` in the main process.

Trials run one after another in the calling thread and only that thread talks to
the tracking server, so a SQLite backend never sees concurrent writers ("database
is locked"). A lost server becomes :class:`ServiceUnavailable` after a few fast
retries instead of MLflow's default four minutes of back-off.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import requests
import skops.io
import yaml
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from sklearn.pipeline import Pipeline

from kubricks.errors import ServiceUnavailable
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.tracking import lost, short_retries
from kubricks.training.result import HOLDOUT_ARTIFACT, MODEL_ARTIFACT, PROFILE_ARTIFACT

PINNED_PACKAGES = ("scikit-learn", "lightgbm", "pandas", "numpy", "mlflow", "skops")
TAG_PREFIX = "kubricks."


def pinned_requirements() -> list[str]:
    """Exact versions of what the model needs to load (skops is its serialization format)."""
    return [f"{name}=={version(name)}" for name in PINNED_PACKAGES]


def client_environment(settings: KubricksSettings) -> AbstractContextManager[None]:
    """Few, short HTTP retries and no per-run URL printing; explicit MLFLOW_* env wins."""
    return short_retries(settings)


def server_lost(settings: KubricksSettings) -> bool:
    return lost(settings.resolved_tracking_uri)


@contextmanager
def tracking_guard(settings: KubricksSettings, usecase: str) -> Iterator[None]:
    """Turn MLflow/HTTP errors into a one-line ServiceUnavailable when the server is gone."""
    try:
        yield
    except (MlflowException, requests.RequestException, ConnectionError) as exc:
        if not server_lost(settings):
            raise
        raise ServiceUnavailable(
            f"MLflow tracking server at {settings.resolved_tracking_uri} stopped answering while"
            f" training {usecase!r}; no model was registered. Start it (`kubricks up`) and run"
            " `kubricks train` again"
        ) from exc


def use_experiment(spec: UseCaseSpec, client: MlflowClient, parent_run_id: str | None) -> str:
    """The parent run's experiment, else one named after the use case (created if missing).

    It is also made mlflow's active experiment: ``log_model`` files the logged model there.
    """
    if parent_run_id:
        experiment_id = client.get_run(parent_run_id).info.experiment_id
        return mlflow.set_experiment(experiment_id=experiment_id).experiment_id
    return mlflow.set_experiment(spec.name).experiment_id


def start_run(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    parent_run_id: str | None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """A run (nested when ``parent_run_id`` is set); returns its id."""
    all_tags = dict(tags or {})
    if parent_run_id:
        all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    return client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id


def log_values(
    client: MlflowClient,
    run_id: str,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, object] | None = None,
    tags: Mapping[str, object] | None = None,
) -> None:
    """Metrics, params and tags in one request."""
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), mlflow_timestamp(), 0) for k, v in (metrics or {}).items()],
        params=[Param(k, str(v)) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )


def mlflow_timestamp() -> int:
    return int(time.time() * 1000)


def lineage_tags(lineage: Mapping[str, str]) -> dict[str, str]:
    return {f"{TAG_PREFIX}{k}": v for k, v in lineage.items()}


def spec_yaml(spec: UseCaseSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=False), sort_keys=False)


def log_artifacts(
    client: MlflowClient,
    run_id: str,
    spec: UseCaseSpec,
    profile: dict[str, Any],
    holdout: pd.DataFrame,
    figures: Mapping[str, Figure],
    importance: pd.Series,
) -> None:
    """The spec, the drift baseline, the gate's holdout, plots and importances."""
    client.log_text(run_id, spec_yaml(spec), f"spec/{spec.name}.yaml")
    client.log_dict(run_id, profile, PROFILE_ARTIFACT)
    client.log_dict(
        run_id, {str(k): float(v) for k, v in importance.items()}, "plots/feature_importance.json"
    )
    for name, figure in figures.items():
        client.log_figure(run_id, figure, f"plots/{name}.png")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(HOLDOUT_ARTIFACT).name
        holdout.to_parquet(path, index=False)
        client.log_artifact(run_id, str(path), str(Path(HOLDOUT_ARTIFACT).parent))


def signature(pipeline: Pipeline, sample: pd.DataFrame, problem_type: str) -> ModelSignature:
    """Inputs are the raw gold columns; outputs are class probabilities or predictions."""
    output = (
        pipeline.predict_proba(sample)
        if problem_type == "classification"
        else pipeline.predict(sample)
    )
    return infer_signature(sample, output)


@contextmanager
def quiet_example_check() -> Iterator[None]:
    """Silence MLflow's check of the input example while logging a model.

    MLflow checks the example by loading the model through its own loader, which every
    Kubricks process refuses (``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``, see
    kubricks.registry.safe_load), so the check can only fail and warn; the gate loads and
    scores the model the safe way instead.
    """
    logger = logging.getLogger("mlflow.models.model")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def log_model(
    run_id: str,
    pipeline: Pipeline,
    sample: pd.DataFrame,
    problem_type: str,
    metadata: Mapping[str, Any] | None = None,
) -> ModelInfo:
    """Log the fitted pipeline with skops (no pickle); pyfunc returns probabilities.

    ``metadata`` (the classes and the positive class) lands in the model's ``MLmodel``.
    """
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))  # types we just wrote
    with quiet_example_check():
        return mlflow.sklearn.log_model(
            pipeline,
            name=MODEL_ARTIFACT,
            run_id=run_id,
            signature=signature(pipeline, sample, problem_type),
            input_example=sample.head(5),
            pip_requirements=pinned_requirements(),
            pyfunc_predict_fn="predict_proba" if problem_type == "classification" else "predict",
            serialization_format="skops",
            skops_trusted_types=trusted,
            metadata=dict(metadata) if metadata else None,
        )


def end_run_quietly(
    client: MlflowClient, settings: KubricksSettings, run_id: str, status: str
) -> None:
    """Best-effort status on the way out of a failure; when the server is gone, the run is
    recorded for the next gate or loop to close (kubricks.runs.unfinished)."""
    if server_lost(settings):
        from kubricks.runs import unfinished

        unfinished.remember(settings, run_id, status, "tracking server lost")
        return
    with suppress(MlflowException, requests.RequestException):
        client.set_terminated(run_id, status)
