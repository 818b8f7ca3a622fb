"""A loaded model version and what it says about rows, decided the same way on every surface.

Serving, batch and streaming scoring, the gate and monitoring all hand the estimator the
raw feature columns (the model owns its encoding) and turn its answer into labels here,
so the same row gets the same prediction and probability wherever it is scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from kubricks.registry.safe_load import LoadedVersion, load_version
from kubricks.spec import ProblemType, UseCaseSpec
from kubricks.training.encoding import CategoryText, category_steps
from kubricks.training.labels import plain, positive_class

THRESHOLD = 0.5  # binary: the positive class from this probability on, as the metrics use


@dataclass
class Outputs:
    """What a model said about a batch: labels, and class probabilities when it has them."""

    labels: np.ndarray
    probabilities: np.ndarray | None  # rows x classes
    classes: list[Any] = field(default_factory=list)


@dataclass
class LoadedModel:
    """One registered version's estimator, ready to score raw feature rows."""

    name: str
    version: str
    estimator: Any
    spec: UseCaseSpec
    digest: str = ""
    # The gate-verified compiled form (kubricks.registry.compiled) when serving uses it;
    # ``backend`` says which scores the rows, ``backend_note`` why.
    compiled: Any = None
    backend_note: str = ""
    # Serving without a compiled form: the same estimator behind the fast preprocessing
    # (kubricks.training.fast_preprocess.FastPipeline), set by with_fast_preprocessing.
    fast: Any = None
    fast_note: str = "scikit-learn"

    @property
    def backend(self) -> str:
        return "onnx" if self.compiled is not None else "scikit-learn"

    @property
    def preprocessing(self) -> str:
        """Which code prepares the features: the fast form, or scikit-learn and why."""
        if self.compiled is not None:
            return str(getattr(self.compiled, "preprocessing_note", "scikit-learn"))
        return self.fast_note

    @property
    def predictor(self) -> Any:
        if self.compiled is not None:
            return self.compiled
        return self.fast if self.fast is not None else self.estimator

    @property
    def classification(self) -> bool:
        return self.spec.problem_type == ProblemType.CLASSIFICATION

    @cached_property
    def classes(self) -> list[Any]:
        return [plain(c) for c in getattr(self.estimator, "classes_", [])]

    @cached_property
    def class_array(self) -> np.ndarray:
        """The classes as plain Python values, so labels serialize as they were trained."""
        array = np.empty(len(self.classes), dtype=object)
        array[:] = self.classes
        return array

    @cached_property
    def positive_index(self) -> int | None:
        """Column of the positive class in ``predict_proba`` (binary only): what
        ``probability`` reports, as training, the gate and batch scoring do."""
        if not self.classification or len(self.classes) != 2:
            return None
        return self.classes.index(positive_class(self.spec, self.classes))

    @cached_property
    def categories(self) -> Mapping[str, CategoryText]:
        """The fitted vocabulary step of each categorical feature."""
        return category_steps(self.estimator)

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns, in the spec's order."""
        return frame[self.spec.gold_feature_columns()]

    def predict(self, frame: pd.DataFrame | Mapping[str, Any]) -> Outputs:
        """Labels as the original values, decided from ``predict_proba`` when there is one.

        ``frame`` may also be the columns as arrays by name: the fast preprocessing reads
        them as they are, anything else gets them as a DataFrame."""
        predictor = self.predictor
        if not isinstance(frame, pd.DataFrame) and not getattr(predictor, "takes_columns", False):
            frame = pd.DataFrame(frame)
        if self.classification and hasattr(predictor, "predict_proba"):
            proba = np.asarray(predictor.predict_proba(frame), dtype=float)
            return Outputs(self.decide(proba), proba, self.classes)
        labels = np.asarray(predictor.predict(frame))
        if not self.classification:
            labels = labels.astype(float).reshape(-1)
        return Outputs(labels, None, self.classes)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Binary: the positive class when its probability is at least 0.5; multiclass: the
        most probable class."""
        positive = self.positive_index
        if positive is None:
            return self.class_array[proba.argmax(axis=1)]
        chosen = np.where(proba[:, positive] >= THRESHOLD, positive, 1 - positive)
        return self.class_array[chosen]

    def unknown_categories(self, columns: Mapping[str, Any]) -> dict[str, int]:
        """Per categorical feature, how many values the model never saw (scored as unknown)."""
        out: dict[str, int] = {}
        for name, step in self.categories.items():
            if name in columns:
                count = step.unknown(columns[name])
                if count:
                    out[name] = count
        return out


def with_fast_preprocessing(model: LoadedModel) -> LoadedModel:
    """``model`` scoring with scikit-learn's estimator behind the fast preprocessing when
    that can be derived from its fitted steps; unchanged (with the reason) otherwise."""
    from kubricks.training.fast_preprocess import FastPipeline, for_pipeline

    fast, note = for_pipeline(model.estimator)
    if fast is None:
        return replace(model, fast=None, fast_note=note)
    return replace(model, fast=FastPipeline(fast, model.estimator.steps[-1][1]), fast_note=note)


def from_version(loaded: LoadedVersion, spec: UseCaseSpec) -> LoadedModel:
    return LoadedModel(loaded.name, loaded.version, loaded.estimator, spec, loaded.digest)


def load_model(client: Any, spec: UseCaseSpec, version: str) -> LoadedModel:
    """Registered version ``version`` of ``spec.name``, loaded the safe way."""
    return from_version(load_version(client, spec.name, str(version)), spec)
