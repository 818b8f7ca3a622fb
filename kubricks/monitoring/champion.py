"""The champion's side of monitoring: its model, its scores, and its quality on the holdout.

The reference quality is the champion's holdout scored with the definitions training and
the gate use (``kubricks.training.metrics``), so the spec's primary metric, whatever it
is, has a reference for every problem type (macro F1 for several classes, included).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from kubricks.errors import KubricksError
from kubricks.monitoring import quality
from kubricks.monitoring.analysis import QualityInputs
from kubricks.monitoring.frames import MonitorError
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.training.labels import normalise, plain, positive_class
from kubricks.training.metrics import LOWER_IS_BETTER, evaluate, spec_metrics

RUN_TAG = "kubricks.run_id"  # set by the registry gate on each version
PROBABILITIES = "probabilities"  # the inference log's {class: probability} JSON


def load_model(settings: KubricksSettings, spec: UseCaseSpec, version: str) -> Any:
    """The champion's scikit-learn model: the one place monitoring loads a model, through
    the safe loader (skops, trusted types, the gate's digest), never MLflow's own."""
    from kubricks.registry.safe_load import load_version
    from kubricks.tracking import connect, use_server

    use_server(settings.resolved_tracking_uri)
    return load_version(connect(settings), spec.name, version).estimator


def class_column(value: Any) -> str:
    """The column holding the probability of one class (several classes only)."""
    return f"probability[{value}]"


def model_input(rows: pd.DataFrame, spec: UseCaseSpec, where: str) -> pd.DataFrame:
    """The columns the champion takes, as gold holds them; a missing one is named."""
    columns = spec.gold_feature_columns()
    absent = [c for c in columns if c not in rows.columns]
    if absent:
        raise MonitorError(f"{where}: no column {absent[0]!r}, which the champion takes")
    return rows[columns]


def score_frame(model: Any, rows: pd.DataFrame, spec: UseCaseSpec, where: str) -> pd.DataFrame:
    """The champion's ``prediction`` (text for classification) and ``probability``: the
    positive class's (binary) or the predicted class's, plus one column per class for
    several classes (as the inference log's ``probabilities``)."""
    features = model_input(rows, spec, where)
    out = pd.DataFrame(index=rows.index)
    if spec.problem_type != "classification":
        out["prediction"] = np.asarray(model.predict(features), dtype=float)
        return out
    classes = [plain(c) for c in model.classes_]
    proba = np.asarray(model.predict_proba(features), dtype=float)
    labels = np.array([str(c) for c in classes], dtype=object)
    out["prediction"] = labels[proba.argmax(axis=1)]
    positive = positive_class(spec, classes) if len(classes) == 2 else None
    if positive is not None:
        out["probability"] = proba[:, classes.index(positive)]
    else:
        out["probability"] = proba.max(axis=1)
        for k, value in enumerate(classes):
            out[class_column(value)] = proba[:, k]
    return out


def class_probabilities(rows: pd.DataFrame, classes: list[Any]) -> np.ndarray | None:
    """Rows x classes probabilities: the per-class columns, or the log's JSON objects."""
    columns = [class_column(c) for c in classes]
    if all(c in rows.columns for c in columns):
        return rows[columns].to_numpy(dtype=float)
    if PROBABILITIES not in rows.columns:
        return None
    parsed = [json.loads(v) if isinstance(v, str) else {} for v in rows[PROBABILITIES]]
    names = [str(c) for c in classes]
    return np.array([[row.get(n, np.nan) for n in names] for row in parsed], dtype=float)


@dataclass(frozen=True)
class ChampionQuality:
    """What the holdout says about the champion: its quality and how to calibrate it."""

    classes: list[Any] = field(default_factory=list)  # [] for regression
    positive: Any = None  # binary only
    calibrator: quality.Calibrator = field(default_factory=quality.Calibrator)  # positive/max
    class_calibrators: tuple[quality.Calibrator, ...] = ()  # several classes, one-vs-rest
    reference: dict[str, float] = field(default_factory=dict)
    missing: str = ""  # why there is no reference, when there is none


def _texts(values: pd.Series) -> np.ndarray:
    """Label values as text, integral floats (an int column that held nulls) as integers."""
    # pandas-stubs types na_value as a non-null scalar; pandas documents None as valid
    return normalise(values).astype("string").to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]


def holdout_quality(spec: UseCaseSpec, model: Any, holdout: pd.DataFrame) -> ChampionQuality:
    """Score the champion on its holdout and calibrate its probabilities there."""
    features = model_input(holdout, spec, "the champion's holdout")
    truth = holdout[spec.label]
    if spec.problem_type != "classification":
        predicted = np.asarray(model.predict(features), dtype=float)
        return ChampionQuality(reference=evaluate("regression", truth.to_numpy(float), predicted))
    classes = [plain(c) for c in model.classes_]
    proba = np.asarray(model.predict_proba(features), dtype=float)
    try:
        reference = spec_metrics(spec, truth.to_numpy(), proba, classes)
    except ValueError as exc:  # label values the model never saw
        reference, missing = {}, f"holdout not scored: {exc}"
    else:
        missing = ""
    names = np.array([str(c) for c in classes], dtype=object)
    text = _texts(truth)
    if len(classes) == 2:
        positive = positive_class(spec, classes)
        column = classes.index(positive)
        hits = (text == str(positive)).astype(int)
        calibrator = quality.Calibrator.fit(proba[:, column], hits)
        return ChampionQuality(classes, positive, calibrator, (), reference, missing)
    right = (text == names[proba.argmax(axis=1)]).astype(int)
    calibrator = quality.Calibrator.fit(proba.max(axis=1), right)
    per_class = tuple(
        quality.Calibrator.fit(proba[:, k], (text == names[k]).astype(int))
        for k in range(len(classes))
    )
    return ChampionQuality(classes, None, calibrator, per_class, reference, missing)


def champion_quality(
    client: MlflowClient, version: ModelVersion, spec: UseCaseSpec, model: Any
) -> ChampionQuality:
    """The holdout quality of a registered version (its training run logged the holdout)."""
    from kubricks.registry.scoring import load_holdout

    run_id = (version.tags or {}).get(RUN_TAG) or version.run_id
    try:
        holdout = load_holdout(client, run_id, spec)
    except KubricksError as exc:
        if spec.problem_type != "classification":
            return ChampionQuality(missing=str(exc))
        classes = [plain(c) for c in model.classes_]
        positive = positive_class(spec, classes) if len(classes) == 2 else None
        return ChampionQuality(classes, positive, missing=str(exc))
    return holdout_quality(spec, model, holdout)


def is_positive(values: pd.Series, positive: Any) -> np.ndarray:
    """Which values are the positive class, whether they arrive as 1, 1.0 or "1" (the log
    holds predictions as text)."""
    if isinstance(positive, bool | np.bool_):
        return values.astype(str).str.lower().isin(["true", "1", "1.0"]).to_numpy() == positive
    if isinstance(positive, int | float | np.integer | np.floating):
        return (pd.to_numeric(values, errors="coerce") == float(positive)).to_numpy()
    return (values.astype(str) == str(positive)).to_numpy()


def _codes(values: pd.Series, names: list[str]) -> np.ndarray:
    """Class indices as floats: NaN where missing, ``len(names)`` for a class the model lacks."""
    text = _texts(values)
    lookup = {n: i for i, n in enumerate(names)}
    return np.array([np.nan if v is None else lookup.get(v, len(names)) for v in text], dtype=float)


def quality_inputs(
    spec: UseCaseSpec, rows: pd.DataFrame, labels: pd.Series, champion: ChampionQuality
) -> QualityInputs:
    """Arrays for the quality frame, coded as :class:`QualityInputs` describes."""
    primary = spec.metric.primary
    better = primary not in LOWER_IS_BETTER
    if spec.problem_type != "classification":
        return QualityInputs(
            "regression",
            pd.to_numeric(labels, errors="coerce").to_numpy(float),
            rows["prediction"].to_numpy(float),
            None,
            primary,
            better,
            champion.reference,
        )
    raw = rows["probability"].to_numpy(float) if "probability" in rows else None
    calibrated = None if raw is None else champion.calibrator(raw)
    if len(champion.classes) <= 2:
        positive = champion.positive
        label = np.where(labels.isna(), np.nan, is_positive(labels, positive).astype(float))
        predicted = is_positive(rows["prediction"], positive).astype(float)
        return QualityInputs(
            "classification",
            label,
            predicted,
            calibrated,
            primary,
            better,
            champion.reference,
            raw_probability=raw,
        )
    names = [str(c) for c in champion.classes]
    matrix = class_probabilities(rows, champion.classes)
    per_class = None
    if matrix is not None and champion.class_calibrators:
        per_class = np.column_stack(
            [cal(matrix[:, k]) for k, cal in enumerate(champion.class_calibrators)]
        )
    return QualityInputs(
        "classification",
        _codes(labels, names),
        _codes(rows["prediction"], names),
        calibrated,
        primary,
        better,
        champion.reference,
        probabilities=matrix,
        calibrated=per_class,
        classes=len(names),
    )
