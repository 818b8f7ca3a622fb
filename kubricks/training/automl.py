"""AutoML: an Optuna search across model families, every trial a nested MLflow run.

Concurrency: trials run sequentially (Optuna ``n_jobs=1``) and only the calling
thread talks to MLflow, so a SQLite tracking backend never sees two writers
("database is locked"). Trials are scored on a validation split of the training
part; the holdout is used once, by the refitted best model. ``train`` logs but never
registers: the registry gate registers once every artifact is in place.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from mlflow import MlflowClient
from optuna.trial import FixedTrial, Trial, TrialState
from sklearn.exceptions import ConvergenceWarning
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from kubricks.errors import KubricksError, SpecError
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec
from kubricks.tracking import connect
from kubricks.training import data, plots
from kubricks.training import mlflow_logging as log
from kubricks.training.labels import plain, positive_class
from kubricks.training.metrics import direction, metric_names, spec_metrics
from kubricks.training.profile import profile
from kubricks.training.progress import SearchProgress
from kubricks.training.result import TrainResult
from kubricks.training.search_space import FAMILY_PARAM, families, suggest_pipeline


class TrialFailed(Exception):
    """A candidate failed to fit or predict; the search records it and goes on."""


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame  # everything but the holdout: the best model is refitted on it
    fit: pd.DataFrame  # trials fit here ...
    validation: pd.DataFrame  # ... and are scored here
    holdout: pd.DataFrame  # only the best model sees it


def make_splits(frame: pd.DataFrame, spec: UseCaseSpec, seed: int) -> Splits:
    train_part, holdout = data.holdout_split(frame, spec)
    fit, validation = data.split(train_part, spec, seed, data.VALIDATION_FRACTION)
    return Splits(train_part, fit, validation, holdout)


def split_params(splits: Splits, spec: UseCaseSpec) -> dict[str, str]:
    """How the holdout was chosen; for ``split: time``, the period it covers."""
    params = {"split": spec.split}
    if spec.split == "time":
        times = pd.to_datetime(splits.holdout[EVENT_TIME_COLUMN], utc=True)
        params["holdout_from"] = times.min().isoformat()
        params["holdout_to"] = times.max().isoformat()
    return params


def predict_scores(pipeline: Pipeline, frame: pd.DataFrame, problem_type: str) -> np.ndarray:
    """Class probabilities (columns follow ``pipeline.classes_``), or the regression prediction."""
    if problem_type == "classification":
        return pipeline.predict_proba(frame)
    return pipeline.predict(frame)


def model_classes(pipeline: Pipeline, spec: UseCaseSpec) -> list[Any] | None:
    """A fitted classifier's original class values (None for regression)."""
    if spec.problem_type != "classification":
        return None
    return [plain(c) for c in pipeline.classes_]


def pipeline_metrics(
    pipeline: Pipeline, x: pd.DataFrame, y: np.ndarray, spec: UseCaseSpec
) -> dict[str, float]:
    """The spec's metrics of a fitted pipeline on (x, y)."""
    scores = predict_scores(pipeline, x, spec.problem_type)
    return spec_metrics(spec, y, scores, model_classes(pipeline, spec))


def check_metric(spec: UseCaseSpec) -> str:
    known = metric_names(spec.problem_type)
    if spec.metric.primary not in known:
        raise SpecError(
            f"spec {spec.name!r}: metric.primary {spec.metric.primary!r} is not a"
            f" {spec.problem_type} metric (one of {', '.join(known)})"
        )
    return spec.metric.primary


class Objective:
    """Fit one sampled pipeline, score it on validation, log it as a nested run."""

    def __init__(
        self,
        spec: UseCaseSpec,
        splits: Splits,
        seed: int,
        client: MlflowClient,
        experiment_id: str,
        parent_run_id: str,
    ) -> None:
        self.spec, self.seed, self.client = spec, seed, client
        self.experiment_id, self.parent_run_id = experiment_id, parent_run_id
        self.x_fit, self.y_fit = data.features(splits.fit, spec), data.labels(splits.fit, spec)
        self.x_val = data.features(splits.validation, spec)
        self.y_val = data.labels(splits.validation, spec)

    def __call__(self, trial: Trial) -> float:
        run_id = log.start_run(
            self.client,
            self.experiment_id,
            f"trial-{trial.number:03d}",
            self.parent_run_id,
            {"kubricks.trial": str(trial.number)},
        )
        try:
            family, pipeline = suggest_pipeline(trial, self.spec, self.seed)
            started = time.perf_counter()
            pipeline.fit(self.x_fit, self.y_fit)
            fit_seconds = time.perf_counter() - started
            metrics = pipeline_metrics(pipeline, self.x_val, self.y_val, self.spec)
        except Exception as exc:
            trial.set_user_attr("error", repr(exc)[:500])
            log.log_values(
                self.client, run_id, params=trial.params, tags={"kubricks.error": repr(exc)[:5000]}
            )
            self.client.set_terminated(run_id, "FAILED")
            raise TrialFailed(repr(exc)) from exc
        log.log_values(
            self.client,
            run_id,
            metrics={**metrics, "fit_seconds": fit_seconds},
            params=trial.params,
            tags={"kubricks.family": family.name},
        )
        self.client.set_terminated(run_id, "FINISHED")
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("run_id", run_id)
        return metrics[self.spec.metric.primary]


def search(
    objective: Objective,
    spec: UseCaseSpec,
    budget_minutes: float,
    max_trials: int,
    seed: int,
    show_progress: bool,
) -> optuna.Study:
    """TPE over the families, starting from each family's defaults, within the budget."""
    primary = spec.metric.primary
    budget = budget_minutes * 60.0
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures surface as one-line errors
    try:
        study = optuna.create_study(
            direction=direction(primary), sampler=optuna.samplers.TPESampler(seed=seed)
        )
        for family in families(spec.problem_type):
            study.enqueue_trial(family.enqueued())
        with (
            SearchProgress(max_trials, budget, primary, enabled=show_progress) as progress,
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", ConvergenceWarning)
            study.optimize(
                objective,
                n_trials=max_trials,
                timeout=budget,
                n_jobs=1,
                catch=(TrialFailed,),
                callbacks=[progress],
            )
    finally:
        optuna.logging.set_verbosity(verbosity)
    return study


def best_trial(study: optuna.Study, spec: UseCaseSpec) -> optuna.trial.FrozenTrial:
    if not any(t.state == TrialState.COMPLETE for t in study.trials):
        failed = [t for t in study.trials if t.state == TrialState.FAIL]
        why = failed[0].user_attrs.get("error", "failed") if failed else "no trial ran"
        raise KubricksError(f"AutoML for {spec.name!r}: no trial completed ({why})")
    return study.best_trial


def importance(
    pipeline: Pipeline, x: pd.DataFrame, y: np.ndarray, spec: UseCaseSpec, seed: int
) -> pd.Series:
    """Permutation importance of each raw gold column on the holdout: how much the spec's
    primary metric worsens when the column is shuffled (any label form, any problem type)."""
    primary = spec.metric.primary
    sign = -1.0 if direction(primary) == "minimize" else 1.0

    def scorer(model: Pipeline, features: pd.DataFrame, truth: np.ndarray) -> float:
        return sign * pipeline_metrics(model, features, truth, spec)[primary]

    result = permutation_importance(
        pipeline, x, y, scoring=scorer, n_repeats=5, random_state=seed, n_jobs=1
    )
    return pd.Series(result.importances_mean, index=x.columns)


def holdout_columns(holdout: pd.DataFrame, spec: UseCaseSpec) -> list[str]:
    """Key and event time (when present) for joins and the time split, features, label."""
    head = [c for c in (spec.entity_key, EVENT_TIME_COLUMN) if c in holdout.columns]
    return [*head, *spec.gold_feature_columns(), spec.label]


def label_params(classes: list[Any] | None, positive: Any) -> dict[str, str]:
    """What the model's classes are, as run params (empty for regression)."""
    if classes is None:
        return {}
    params = {"classes": json.dumps(classes)[:6000]}
    if positive is not None:
        params["positive_class"] = str(positive)
    return params


def label_metadata(classes: list[Any] | None, positive: Any) -> dict[str, Any]:
    """The classes and positive class in the MLflow model's metadata (``MLmodel``), so
    serving and monitoring can name probability columns without loading the model."""
    if classes is None:
        return {}
    return {"classes": classes, "positive_class": positive}


def lineage_strings(lineage: dict[str, object]) -> dict[str, str]:
    return {
        k: ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
        for k, v in lineage.items()
    }


def train(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    budget_minutes: float = 5.0,
    max_trials: int = 30,
    seed: int = 42,
    parent_run_id: str | None = None,
    progress: bool = True,
    gold_version: int | None = None,
) -> TrainResult:
    """Search, refit the best on the training part, evaluate it on the holdout, log it all.

    The budget bounds the search (Optuna ``timeout``); the refit and logging follow it.
    ``gold_version`` pins the gold snapshot read (default: latest); lineage records it.
    """
    check_metric(spec)
    client = connect(settings)
    training_set = data.load_training_set(spec, settings, gold_version)
    lineage = lineage_strings(training_set.lineage)
    where = f"{lineage.get('gold_table', spec.name)}@v{lineage.get('gold_version', '?')}"
    frame = data.check_frame(training_set.frame, spec, where)
    splits = make_splits(frame, spec, seed)
    with log.client_environment(settings), log.tracking_guard(settings, spec.name):
        experiment_id = log.use_experiment(spec, client, parent_run_id)
        run_id = log.start_run(
            client,
            experiment_id,
            f"automl-{spec.name}",
            parent_run_id,
            {**log.lineage_tags(lineage), "kubricks.usecase": spec.name},
        )
        try:
            log.log_values(
                client,
                run_id,
                params={
                    **{k: v or "none" for k, v in lineage.items()},
                    "usecase": spec.name,
                    "problem_type": spec.problem_type,
                    "primary_metric": spec.metric.primary,
                    "seed": seed,
                    "budget_minutes": budget_minutes,
                    "max_trials": max_trials,
                    "rows_unlabelled": len(training_set.frame) - len(frame),
                    "rows_train": len(splits.train),
                    "rows_holdout": len(splits.holdout),
                    **split_params(splits, spec),
                },
            )
            objective = Objective(spec, splits, seed, client, experiment_id, run_id)
            study = search(objective, spec, budget_minutes, max_trials, seed, progress)
            result = _finish(spec, splits, study, seed, client, run_id, lineage)
        except BaseException as exc:
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            log.end_run_quietly(client, settings, run_id, status)
            raise
    return result


def _finish(
    spec: UseCaseSpec,
    splits: Splits,
    study: optuna.Study,
    seed: int,
    client: MlflowClient,
    run_id: str,
    lineage: dict[str, str],
) -> TrainResult:
    """Refit the best configuration, evaluate on the holdout, log artifacts, then the model."""
    best = best_trial(study, spec)
    family, pipeline = suggest_pipeline(FixedTrial(best.params), spec, seed)
    x_train, y_train = data.features(splits.train, spec), data.labels(splits.train, spec)
    x_holdout, y_holdout = data.features(splits.holdout, spec), data.labels(splits.holdout, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(x_train, y_train)
    scores = predict_scores(pipeline, x_holdout, spec.problem_type)
    classes = model_classes(pipeline, spec)
    metrics = spec_metrics(spec, y_holdout, scores, classes)
    ranked = importance(pipeline, x_holdout, y_holdout, spec, seed)
    if classes is not None:
        positive = positive_class(spec, classes)
        figures = plots.classification_figures(
            y_holdout, scores, classes, positive, ranked, model_name=family.name
        )
    else:
        positive = None
        figures = plots.regression_figures(y_holdout, scores, ranked)
    completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
    best_validation: dict[str, Any] = best.user_attrs.get("metrics", {})
    log.log_values(
        client,
        run_id,
        metrics={
            **metrics,
            **{f"val_{k}": v for k, v in best_validation.items()},
            "n_trials": len(completed),
            "n_failed_trials": len(study.trials) - len(completed),
        },
        params={
            "best_family": family.name,
            **{f"best.{k}": v for k, v in best.params.items() if k != FAMILY_PARAM},
            **label_params(classes, positive),
        },
        tags={
            "kubricks.best_family": family.name,
            "kubricks.best_trial_run_id": best.user_attrs.get("run_id", ""),
        },
    )
    holdout = splits.holdout[holdout_columns(splits.holdout, spec)]
    log.log_artifacts(client, run_id, spec, profile(splits.train, spec), holdout, figures, ranked)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column")
        model = log.log_model(
            run_id, pipeline, x_train, spec.problem_type, label_metadata(classes, positive)
        )
    client.set_terminated(run_id, "FINISHED")
    return TrainResult(
        usecase=spec.name,
        run_id=run_id,
        model_uri=model.model_uri,
        family=family.name,
        metrics=metrics,
        params=dict(best.params),
        n_trials=len(completed),
        lineage=lineage,
    )
