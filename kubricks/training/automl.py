"""AutoML: an Optuna search across model families, every trial a nested MLflow run.

Concurrency: trials run sequentially (Optuna ``n_jobs=1``) and only the calling
thread talks to MLflow, so a SQLite tracking backend never sees two writers
("database is locked"). Trials are scored on a validation split of the training
part; the holdout is used once, by the refitted best model. ``train`` logs but never
registers: the registry gate registers once every artifact is in place.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from joblib import parallel_backend
from mlflow import MlflowClient
from optuna.trial import FixedTrial, Trial, TrialState
from sklearn.exceptions import ConvergenceWarning
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from kubricks.console import console
from kubricks.errors import KubricksError, SpecError
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec
from kubricks.tracking import connect
from kubricks.training import data, plots
from kubricks.training import mlflow_logging as log
from kubricks.training.budget import (
    AFTER_SEARCH_SHARE,
    FIXED_AFTER_SEARCH_SECONDS,
    MIN_SEARCH_ROWS,
    SAFETY,
    Budget,
    Costs,
    TrialCosts,
    overrun_note,
    search_rows,
)
from kubricks.training.labels import plain, positive_class
from kubricks.training.metrics import (
    direction,
    is_better,
    metric_names,
    metric_of_outputs,
    spec_metrics,
)
from kubricks.training.profile import profile
from kubricks.training.progress import SearchProgress
from kubricks.training.result import TrainResult
from kubricks.training.sampling import sample_positions, stratified_sample
from kubricks.training.search_space import (
    FAMILY_PARAM,
    families,
    family_named,
    suggest_pipeline,
)

IMPORTANCE_ROWS = 20_000  # bounded, seeded samples for importance, plots and the profile
PLOT_ROWS = 20_000
PROFILE_ROWS = 20_000
IMPORTANCE_REPEATS = 5
PILOT_ROWS = 5_000  # rows of the pilot fit that measures this machine's speed
PARALLEL_SECONDS = 2.0  # importance worth two threads (predictions release the GIL)
SIGNATURE_ROWS = 100  # the model signature comes from dtypes; a few rows show them
SKIPS_BEFORE_STOP = 3  # consecutive configurations too slow for the time left: stop
FALLBACK_FIT_PER_ROW = 2e-4  # a default forest on a quiet 2-core machine, if the pilot fails
FALLBACK_PREDICT_PER_ROW = 2e-5


class TrialFailed(Exception):
    """A candidate failed to fit or predict; the search records it and goes on."""


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame  # everything but the holdout: the best model is refitted on it
    fit: pd.DataFrame  # trials fit here ...
    validation: pd.DataFrame  # ... and are scored here
    holdout: pd.DataFrame  # only the best model sees it (at most data.HOLDOUT_MAX_ROWS)
    holdout_rows: int = 0  # rows held out before the cap


def make_splits(frame: pd.DataFrame, spec: UseCaseSpec, seed: int) -> Splits:
    train_part, holdout = data.holdout_split(frame, spec)
    fit, validation = data.split(train_part, spec, seed, data.VALIDATION_FRACTION)
    capped = stratified_sample(holdout, spec, data.HOLDOUT_MAX_ROWS, seed)
    return Splits(train_part, fit, validation, capped, len(holdout))


def split_params(splits: Splits, spec: UseCaseSpec) -> dict[str, str]:
    """How the holdout was chosen; for ``split: time``, the period it covers."""
    params: dict[str, str] = {"split": spec.split}
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


def pilot_costs(frame: pd.DataFrame, spec: UseCaseSpec, seed: int) -> Costs:
    """This machine's speed now: a default random forest fitted on a small stratified sample
    of ``frame`` and predicting it (the slowest default family, so estimates err long)."""
    sample = stratified_sample(frame, spec, PILOT_ROWS, seed)
    x, y = data.features(sample, spec), data.labels(sample, spec)
    forest = family_named(spec.problem_type, "random_forest")
    pipeline = suggest_pipeline(FixedTrial(forest.enqueued()), spec, seed)[1]
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipeline.fit(x, y)
            fitted = time.perf_counter()
            predict_scores(pipeline, x, spec.problem_type)
    except Exception:  # the trials will name what is wrong; only the speed is unknown here
        return Costs(FALLBACK_FIT_PER_ROW, FALLBACK_PREDICT_PER_ROW)
    done = time.perf_counter()
    rows = max(len(sample), 1)
    return Costs(fit_per_row=(fitted - started) / rows, predict_per_row=(done - fitted) / rows)


@dataclass(frozen=True)
class SearchPlan:
    """What the search fits and scores on, and the time kept for what follows it."""

    fit: pd.DataFrame
    validation: pd.DataFrame
    fraction: float  # of the fit rows the search uses; 1.0 means all of them
    costs: Costs
    after_search: float  # seconds the evaluation, logging and the gate are expected to take
    search_seconds: float

    def params(self, splits: Splits) -> dict[str, object]:
        return {
            "search_sample_fraction": round(self.fraction, 6),
            "rows_search_fit": len(self.fit),
            "rows_search_validation": len(self.validation),
            "rows_fit_all": len(splits.fit),
            "search_seconds_planned": round(self.search_seconds, 1),
        }


def plan_search(
    splits: Splits,
    spec: UseCaseSpec,
    budget: Budget,
    max_trials: int,
    seed: int,
    notes: Callable[[str], None] | None = None,
) -> SearchPlan:
    """Measure this machine (pilot fit), keep a reserve for after the search, and size the
    search sample so it can run several trials (at least one, whatever is left)."""
    costs = pilot_costs(splits.fit, spec, seed)
    after_search = costs.after_search_seconds(len(splits.holdout))
    reserve = max(AFTER_SEARCH_SHARE * budget.seconds, after_search)
    one_trial = costs.trial_seconds(
        min(len(splits.fit), MIN_SEARCH_ROWS), min(len(splits.validation), MIN_SEARCH_ROWS)
    )
    short = overrun_note(budget, one_trial, after_search)
    if short and notes:
        notes(short)
    search_seconds = max(one_trial, budget.left() - reserve)
    budget.search_deadline = time.monotonic() + search_seconds
    rows = search_rows(costs, search_seconds, max_trials, len(splits.fit))
    if rows >= len(splits.fit):
        return SearchPlan(splits.fit, splits.validation, 1.0, costs, after_search, search_seconds)
    fraction = rows / len(splits.fit)
    fit = stratified_sample(splits.fit, spec, rows, seed)
    validation = stratified_sample(
        splits.validation, spec, max(1, round(len(splits.validation) * fraction)), seed
    )
    return SearchPlan(
        fit, validation, len(fit) / len(splits.fit), costs, after_search, search_seconds
    )


class Objective:
    """Fit one sampled pipeline, score it on validation, log it as a nested run.

    A configuration whose expected time (from earlier trials of its family) exceeds what is
    left of the search is skipped before anything is fitted or logged. The best fitted
    pipeline is kept: when the search ran on a sample and a refit on every row does not fit
    the budget, it is the model.
    """

    def __init__(
        self,
        spec: UseCaseSpec,
        plan: SearchPlan,
        seed: int,
        client: MlflowClient,
        experiment_id: str,
        parent_run_id: str,
        budget: Budget | None = None,
    ) -> None:
        self.spec, self.seed, self.client = spec, seed, client
        self.experiment_id, self.parent_run_id = experiment_id, parent_run_id
        self.x_fit, self.y_fit = data.features(plan.fit, spec), data.labels(plan.fit, spec)
        self.x_val = data.features(plan.validation, spec)
        self.y_val = data.labels(plan.validation, spec)
        self.budget = budget
        self.costs = TrialCosts()
        self.skipped = 0
        self.skipped_in_a_row = 0
        self.best_pipeline: Pipeline | None = None
        self.best_value: float | None = None
        self.best_number: int | None = None

    def _too_slow(self, trial: Trial, family: str) -> bool:
        if self.budget is None:
            return False
        expected = self.costs.predict(family, trial.params, len(self.x_fit))
        return expected is not None and expected > self.budget.search_left()

    def __call__(self, trial: Trial) -> float:
        family, pipeline = suggest_pipeline(trial, self.spec, self.seed)
        if self._too_slow(trial, family.name):
            self.skipped += 1
            self.skipped_in_a_row += 1
            if self.skipped_in_a_row >= SKIPS_BEFORE_STOP:
                trial.study.stop()
            raise optuna.TrialPruned("expected to outlast the search's time budget")
        self.skipped_in_a_row = 0
        run_id = log.start_run(
            self.client,
            self.experiment_id,
            f"trial-{trial.number:03d}",
            self.parent_run_id,
            {"kubricks.trial": str(trial.number)},
        )
        try:
            started = time.perf_counter()
            pipeline.fit(self.x_fit, self.y_fit)
            fit_seconds = time.perf_counter() - started
            metrics = pipeline_metrics(pipeline, self.x_val, self.y_val, self.spec)
            trial_seconds = time.perf_counter() - started
        except Exception as exc:
            trial.set_user_attr("error", repr(exc)[:500])
            log.log_values(
                self.client, run_id, params=trial.params, tags={"kubricks.error": repr(exc)[:5000]}
            )
            self.client.set_terminated(run_id, "FAILED")
            raise TrialFailed(repr(exc)) from exc
        self.costs.record(family.name, trial.params, len(self.x_fit), trial_seconds)
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
        trial.set_user_attr("fit_seconds", fit_seconds)
        value = metrics[self.spec.metric.primary]
        primary = self.spec.metric.primary
        if self.best_value is None or (
            is_better(primary, value, self.best_value) and value != self.best_value
        ):
            self.best_value, self.best_pipeline = value, pipeline
            self.best_number = trial.number
        return value


def search(
    objective: Objective,
    spec: UseCaseSpec,
    budget_minutes: float,
    max_trials: int,
    seed: int,
    show_progress: bool,
    budget: Budget | None = None,
) -> optuna.Study:
    """TPE over the families, starting from each family's defaults, within the budget
    (``budget``'s search deadline when given, else ``budget_minutes`` from now)."""
    primary = spec.metric.primary
    seconds = budget_minutes * 60.0 if budget is None else max(1.0, budget.search_left())
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures surface as one-line errors
    try:
        study = optuna.create_study(
            direction=direction(primary), sampler=optuna.samplers.TPESampler(seed=seed)
        )
        for family in families(spec.problem_type):
            study.enqueue_trial(family.enqueued())
        with (
            SearchProgress(max_trials, seconds, primary, enabled=show_progress) as progress,
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", ConvergenceWarning)
            study.optimize(
                objective,
                n_trials=max_trials,
                timeout=seconds,
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
    pipeline: Pipeline,
    x: pd.DataFrame,
    y: np.ndarray,
    spec: UseCaseSpec,
    seed: int,
    repeats: int = IMPORTANCE_REPEATS,
    n_jobs: int = 1,
) -> pd.Series:
    """Permutation importance of each raw gold column on the holdout: how much the spec's
    primary metric worsens when the column is shuffled (any label form, any problem type).
    Only the primary metric is computed per shuffle, on labels prepared once."""
    sign = -1.0 if direction(spec.metric.primary) == "minimize" else 1.0
    metric = metric_of_outputs(spec, y, model_classes(pipeline, spec))

    def scorer(model: Pipeline, features: pd.DataFrame, truth: np.ndarray) -> float:
        return sign * metric(predict_scores(model, features, spec.problem_type))

    with parallel_backend("threading", n_jobs=n_jobs):  # no worker processes to start
        result = permutation_importance(
            pipeline, x, y, scoring=scorer, n_repeats=repeats, random_state=seed, n_jobs=n_jobs
        )
    return pd.Series(result.importances_mean, index=x.columns)


@dataclass(frozen=True)
class ImportancePlan:
    rows: int
    repeats: int
    n_jobs: int


def plan_importance(call_seconds: float, rows: int, columns: int, seconds: float) -> ImportancePlan:
    """As many of ``rows`` rows and repeats as ``seconds`` allow, from the measured time of one
    scoring (predict and metric) on ``rows`` rows; two threads when the work is long enough.
    (Threads, not processes: starting a worker process that imports scikit-learn cost
    minutes on a loaded 2-core machine, and tree and boosting predictions release the GIL.)"""
    repeats = IMPORTANCE_REPEATS
    workers = 2 if (os.cpu_count() or 1) >= 2 else 1
    per_row = call_seconds / max(rows, 1)

    def cost(r: int, k: int) -> float:
        return SAFETY * per_row * r * (columns * k + 1)

    while cost(rows, repeats) / workers > seconds and repeats > 2:
        repeats -= 1
    while cost(rows, repeats) / workers > seconds and rows > MIN_SEARCH_ROWS:
        rows = max(MIN_SEARCH_ROWS, rows // 2)
    n_jobs = workers if cost(rows, repeats) > PARALLEL_SECONDS else 1
    return ImportancePlan(rows, repeats, n_jobs)


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


def lineage_strings(lineage: Mapping[str, object]) -> dict[str, str]:
    return {
        k: ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
        for k, v in lineage.items()
    }


@dataclass
class Notes:
    """What a user should know about this run (sampling, refit), printed and logged."""

    show: bool
    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if self.show:
            console.print(line)


def train(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    budget_minutes: float = 5.0,
    max_trials: int = 30,
    seed: int = 42,
    parent_run_id: str | None = None,
    progress: bool = True,
    gold_version: int | None = None,
    budget: Budget | None = None,
    max_rows: int | None = None,
) -> TrainResult:
    """Load, search, refit the best, evaluate it on the holdout, log it all, within the budget.

    ``budget`` (default: ``budget_minutes`` from this call) is the wall clock of the whole
    step including the registry gate that follows, for which time is kept. ``gold_version``
    pins the gold snapshot read (default: latest); lineage records it. ``max_rows`` (default
    the ``training_max_rows`` setting) trains on a stratified sample of that many labelled rows.
    """
    budget = budget or Budget.minutes(budget_minutes)
    notes = Notes(progress)
    check_metric(spec)
    client = connect(settings)
    training_set = data.load_training_set(
        spec, settings, gold_version, data.row_cap(settings, max_rows), seed, budget
    )
    lineage = lineage_strings(training_set.lineage)
    where = f"{lineage.get('gold_table', spec.name)}@v{lineage.get('gold_version', '?')}"
    frame = data.check_frame(training_set.frame, spec, where)
    if training_set.sampled_from:
        notes(
            f"Training on a stratified sample of {len(training_set.frame):,} of"
            f" {training_set.sampled_from:,} labelled rows"
            f" ({len(training_set.frame) / training_set.sampled_from:.1%})."
        )
    splits = make_splits(frame, spec, seed)
    timings = {"load": budget.elapsed()}
    plan = plan_search(splits, spec, budget, max_trials, seed, notes)
    if plan.fraction < 1.0:
        notes(
            f"Searching on a stratified sample of {len(plan.fit):,} of {len(splits.fit):,} fit"
            f" rows ({plan.fraction:.1%}): all of them would not fit"
            f" {plan.search_seconds:.0f} s of search."
        )
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
                    "budget_minutes": budget.seconds / 60.0,
                    "max_trials": max_trials,
                    "rows_labelled_total": training_set.sampled_from or len(training_set.frame),
                    "rows_unlabelled": len(training_set.frame) - len(frame),
                    "rows_train": len(splits.train),
                    "rows_holdout": len(splits.holdout),
                    "rows_holdout_all": splits.holdout_rows,
                    **plan.params(splits),
                    **split_params(splits, spec),
                },
            )
            objective = Objective(spec, plan, seed, client, experiment_id, run_id, budget)
            started = time.monotonic()
            study = search(objective, spec, budget_minutes, max_trials, seed, progress, budget)
            timings["search"] = time.monotonic() - started
            result = _finish(
                spec, splits, plan, objective, study, seed, client, run_id, lineage, budget,
                timings, notes,
            )  # fmt: skip
        except BaseException as exc:
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            log.end_run_quietly(client, settings, run_id, status)
            raise
    return result


def _refit(
    spec: UseCaseSpec,
    splits: Splits,
    plan: SearchPlan,
    objective: Objective,
    best: optuna.trial.FrozenTrial,
    seed: int,
    budget: Budget,
    notes: Notes,
) -> tuple[Pipeline, str, int]:
    """The best configuration fitted on every training row when that fits the time left
    (always when the search saw every row), else the search's own fit on its sample."""
    family, pipeline = suggest_pipeline(FixedTrial(best.params), spec, seed)
    rows = len(splits.train)
    expected = SAFETY * float(best.user_attrs.get("fit_seconds", 0.0)) * rows / len(plan.fit)
    room = budget.left() - plan.after_search
    kept = objective.best_pipeline if objective.best_number == best.number else None
    if plan.fraction < 1.0 and expected > room and kept is not None:
        notes(
            f"Kept the {family.name} fitted on the {len(plan.fit):,}-row search sample: a refit"
            f" on all {rows:,} rows would take about {expected:.0f} s and {max(room, 0):.0f} s"
            " are left."
        )
        return kept, "search_sample", len(plan.fit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(data.features(splits.train, spec), data.labels(splits.train, spec))
    if plan.fraction < 1.0:
        notes(f"Refitted the {family.name} on all {rows:,} training rows.")
    return pipeline, "all_rows", rows


def _finish(
    spec: UseCaseSpec,
    splits: Splits,
    plan: SearchPlan,
    objective: Objective,
    study: optuna.Study,
    seed: int,
    client: MlflowClient,
    run_id: str,
    lineage: dict[str, str],
    budget: Budget,
    timings: dict[str, float],
    notes: Notes,
) -> TrainResult:
    """Refit the best configuration, evaluate on the holdout, log artifacts, then the model.

    Importance, plots and the profile use bounded seeded samples; their sizes are logged.
    """
    best = best_trial(study, spec)
    family = family_named(spec.problem_type, best.params[FAMILY_PARAM])
    clock = time.monotonic()
    pipeline, refit, refit_rows = _refit(spec, splits, plan, objective, best, seed, budget, notes)
    timings["refit"] = time.monotonic() - clock

    clock = time.monotonic()
    x_holdout, y_holdout = data.features(splits.holdout, spec), data.labels(splits.holdout, spec)
    scores = predict_scores(pipeline, x_holdout, spec.problem_type)
    timings["evaluate"] = time.monotonic() - clock
    classes = model_classes(pipeline, spec)
    metrics = spec_metrics(spec, y_holdout, scores, classes)

    clock = time.monotonic()
    gate_seconds = 2 * SAFETY * timings["evaluate"] + FIXED_AFTER_SEARCH_SECONDS  # measured
    at = sample_positions(splits.holdout, spec, IMPORTANCE_ROWS, seed)
    metric = metric_of_outputs(spec, y_holdout[at], classes)
    metric(predict_scores(pipeline, x_holdout.iloc[at], spec.problem_type))  # one scoring, timed
    chosen = plan_importance(
        time.monotonic() - clock, len(at), x_holdout.shape[1], budget.left() - gate_seconds
    )
    if chosen.rows < len(at):
        at = sample_positions(splits.holdout, spec, chosen.rows, seed)
    ranked = importance(
        pipeline, x_holdout.iloc[at], y_holdout[at], spec, seed, chosen.repeats, chosen.n_jobs
    )
    timings["importance"] = time.monotonic() - clock

    clock = time.monotonic()
    shown = sample_positions(splits.holdout, spec, PLOT_ROWS, seed)
    if classes is not None:
        positive = positive_class(spec, classes)
        figures = plots.classification_figures(
            y_holdout[shown], scores[shown], classes, positive, ranked, model_name=family.name
        )
    else:
        positive = None
        figures = plots.regression_figures(y_holdout[shown], scores[shown], ranked)
    profiled = stratified_sample(splits.train, spec, PROFILE_ROWS, seed)
    summary = profile(profiled, spec, rows=len(splits.train))
    completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
    best_validation: dict[str, Any] = best.user_attrs.get("metrics", {})
    log.log_values(
        client,
        run_id,
        metrics={
            **metrics,
            **{f"val_{k}": v for k, v in best_validation.items()},
            "n_trials": len(completed),
            "n_failed_trials": sum(t.state == TrialState.FAIL for t in study.trials),
            "n_skipped_trials": objective.skipped,
        },
        params={
            "best_family": family.name,
            **{f"best.{k}": v for k, v in best.params.items() if k != FAMILY_PARAM},
            **label_params(classes, positive),
            "refit": refit,
            "rows_refit": refit_rows,
            "importance_rows": len(at),
            "importance_repeats": chosen.repeats,
            "importance_jobs": chosen.n_jobs,
            "plot_rows": len(shown),
            "profile_rows": len(profiled),
        },
        tags={
            "kubricks.best_family": family.name,
            "kubricks.best_trial_run_id": best.user_attrs.get("run_id", ""),
            "kubricks.refit": refit,
            **({"kubricks.notes": " ".join(notes.lines)[:5000]} if notes.lines else {}),
        },
    )
    holdout = splits.holdout[holdout_columns(splits.holdout, spec)]
    log.log_artifacts(client, run_id, spec, summary, holdout, figures, ranked)
    timings["artifacts"] = time.monotonic() - clock

    clock = time.monotonic()
    sample = data.features(splits.train.head(SIGNATURE_ROWS), spec)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column")
        model = log.log_model(
            run_id, pipeline, sample, spec.problem_type, label_metadata(classes, positive)
        )
    timings["model"] = time.monotonic() - clock
    log.log_values(client, run_id, metrics={f"time_{k}_seconds": v for k, v in timings.items()})
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
        search_fraction=plan.fraction,
        refit=refit,
        notes=list(notes.lines),
        timings={k: round(v, 2) for k, v in timings.items()},
    )
