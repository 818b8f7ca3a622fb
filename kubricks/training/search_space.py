"""Model families and their Optuna search spaces; the family is itself a hyperparameter.

Every candidate is an sklearn Pipeline over the raw gold feature columns: numeric
columns are imputed (and scaled for linear models), date/timestamp columns become
calendar parts, categorical columns are encoded as the spec says
(:mod:`kubricks.training.encoding`), so the logged model takes the raw rows a user has.
Optuna parameter names carry the family prefix (``lightgbm.num_leaves``) because a
name must keep one distribution across a study.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightgbm import LGBMClassifier, LGBMRegressor
from optuna.trial import BaseTrial
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from kubricks.spec import UseCaseSpec
from kubricks.training.calendar_features import CalendarFeatures
from kubricks.training.encoding import categorical_pipeline

FAMILY_PARAM = "family"
N_JOBS = 1  # trials run one at a time on shared machines; threads would only contend

Suggest = Callable[[BaseTrial, str], dict[str, Any]]


@dataclass(frozen=True)
class Family:
    """One model family: how to sample its settings and build its estimator."""

    name: str
    estimator: Callable[..., BaseEstimator]
    suggest: Suggest  # (trial, prefix) -> estimator keyword arguments
    defaults: dict[str, Any]  # a sane first configuration, tried before sampling
    linear: bool = False  # linear models need scaled inputs
    fixed: dict[str, Any] | None = None  # keyword arguments that are not searched

    def param(self, name: str) -> str:
        return f"{self.name}.{name}"

    def enqueued(self) -> dict[str, Any]:
        """The Optuna parameters of this family's default configuration."""
        return {FAMILY_PARAM: self.name, **{self.param(k): v for k, v in self.defaults.items()}}


def _logistic(trial: BaseTrial, p: str) -> dict[str, Any]:
    return {"C": trial.suggest_float(f"{p}.C", 1e-3, 100.0, log=True)}


def _ridge(trial: BaseTrial, p: str) -> dict[str, Any]:
    return {"alpha": trial.suggest_float(f"{p}.alpha", 1e-3, 1e3, log=True)}


def _elastic_net(trial: BaseTrial, p: str) -> dict[str, Any]:
    return {
        "alpha": trial.suggest_float(f"{p}.alpha", 1e-4, 10.0, log=True),
        "l1_ratio": trial.suggest_float(f"{p}.l1_ratio", 0.05, 1.0),
    }


def _forest(trial: BaseTrial, p: str) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int(f"{p}.n_estimators", 50, 300, step=25),
        "max_depth": trial.suggest_int(f"{p}.max_depth", 3, 24),
        "min_samples_leaf": trial.suggest_int(f"{p}.min_samples_leaf", 1, 20, log=True),
        "max_features": trial.suggest_float(f"{p}.max_features", 0.2, 1.0),
    }


def _lightgbm(trial: BaseTrial, p: str) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int(f"{p}.n_estimators", 50, 600, step=25),
        "learning_rate": trial.suggest_float(f"{p}.learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int(f"{p}.num_leaves", 4, 128, log=True),
        "min_child_samples": trial.suggest_int(f"{p}.min_child_samples", 5, 100, log=True),
        "subsample": trial.suggest_float(f"{p}.subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float(f"{p}.colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float(f"{p}.reg_lambda", 1e-3, 10.0, log=True),
    }


_FOREST_DEFAULTS = {
    "n_estimators": 200,
    "max_depth": 12,
    "min_samples_leaf": 2,
    "max_features": 0.5,
}
_LIGHTGBM_DEFAULTS = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 20,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}
_LIGHTGBM_FIXED = {"subsample_freq": 1, "verbose": -1, "n_jobs": N_JOBS}
_TREE_FIXED = {"n_jobs": N_JOBS}

CLASSIFICATION_FAMILIES: tuple[Family, ...] = (
    Family(
        "logistic_regression",
        LogisticRegression,
        _logistic,
        {"C": 1.0},
        linear=True,
        fixed={"max_iter": 2000},
    ),
    Family("random_forest", RandomForestClassifier, _forest, _FOREST_DEFAULTS, fixed=_TREE_FIXED),
    Family("extra_trees", ExtraTreesClassifier, _forest, _FOREST_DEFAULTS, fixed=_TREE_FIXED),
    Family("lightgbm", LGBMClassifier, _lightgbm, _LIGHTGBM_DEFAULTS, fixed=_LIGHTGBM_FIXED),
)
REGRESSION_FAMILIES: tuple[Family, ...] = (
    Family("ridge", Ridge, _ridge, {"alpha": 1.0}, linear=True),
    Family(
        "elastic_net",
        ElasticNet,
        _elastic_net,
        {"alpha": 0.01, "l1_ratio": 0.5},
        linear=True,
        fixed={"max_iter": 5000},
    ),
    Family("random_forest", RandomForestRegressor, _forest, _FOREST_DEFAULTS, fixed=_TREE_FIXED),
    Family("extra_trees", ExtraTreesRegressor, _forest, _FOREST_DEFAULTS, fixed=_TREE_FIXED),
    Family("lightgbm", LGBMRegressor, _lightgbm, _LIGHTGBM_DEFAULTS, fixed=_LIGHTGBM_FIXED),
)


def families(problem_type: str) -> tuple[Family, ...]:
    return CLASSIFICATION_FAMILIES if problem_type == "classification" else REGRESSION_FAMILIES


def family_named(problem_type: str, name: str) -> Family:
    return next(f for f in families(problem_type) if f.name == name)


def preprocessor(spec: UseCaseSpec, scale: bool) -> ColumnTransformer:
    """Raw gold feature columns in, a dense numeric matrix out."""
    categorical = spec.categorical_features()
    dated = spec.datetime_features()
    encoded = {f.name for f in categorical} | set(dated)
    numeric = [c for c in spec.gold_feature_columns() if c not in encoded]

    def numeric_steps() -> list[tuple[str, Any]]:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        return [*steps, ("scale", StandardScaler())] if scale else steps

    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(("numeric", Pipeline(numeric_steps()), numeric))
    if dated:  # calendar parts, then the same imputing (and scaling) as numeric columns
        transformers.append(
            ("datetime", Pipeline([("calendar", CalendarFeatures()), *numeric_steps()]), dated)
        )
    for feature in categorical:  # one step per feature: each has its own vocabulary
        transformers.append(
            (f"categorical_{feature.name}", categorical_pipeline(feature), [feature.name])
        )
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def build_pipeline(
    spec: UseCaseSpec, family: Family, kwargs: dict[str, Any], seed: int
) -> Pipeline:
    """The estimator of ``family`` with ``kwargs``, behind the spec's preprocessing."""
    arguments = {**(family.fixed or {}), **kwargs}
    if "random_state" in family.estimator().get_params():
        arguments["random_state"] = seed
    return Pipeline(
        [
            ("preprocess", preprocessor(spec, scale=family.linear)),
            ("model", family.estimator(**arguments)),
        ]
    )


def suggest_pipeline(trial: BaseTrial, spec: UseCaseSpec, seed: int) -> tuple[Family, Pipeline]:
    """Sample a family, then that family's settings; works with FixedTrial for a refit."""
    choices = families(spec.problem_type)
    name = trial.suggest_categorical(FAMILY_PARAM, [f.name for f in choices])
    family = next(f for f in choices if f.name == name)
    return family, build_pipeline(spec, family, family.suggest(trial, family.name), seed)
