"""Search space: every family builds a pipeline over raw gold columns, and Optuna drives it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import FixedTrial
from sklearn.preprocessing import StandardScaler

from kubricks.spec import UseCaseSpec
from kubricks.training import search_space as ss
from tests.kubricks.training.specs import classification_spec, gold_frame, regression_spec


@pytest.fixture(params=["classification", "regression"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> UseCaseSpec:
    if request.param == "classification":
        return classification_spec(tmp_path)
    return regression_spec(tmp_path)[1]


def test_families_cover_linear_forest_and_boosting(spec: UseCaseSpec) -> None:
    names = {f.name for f in ss.families(spec.problem_type)}
    assert {"random_forest", "extra_trees", "lightgbm"} <= names
    assert names & {"logistic_regression", "ridge", "elastic_net"}


def test_each_default_configuration_fits_raw_gold_columns(spec: UseCaseSpec) -> None:
    frame = gold_frame(spec, rows=150)
    x, y = frame[spec.gold_feature_columns()], frame[spec.label]
    for family in ss.families(spec.problem_type):
        chosen, pipeline = ss.suggest_pipeline(FixedTrial(family.enqueued()), spec, seed=1)
        assert chosen.name == family.name
        pipeline.fit(x, y)
        out = (
            pipeline.predict_proba(x)
            if spec.problem_type == "classification"
            else (pipeline.predict(x))
        )
        assert len(out) == len(x) and np.isfinite(out).all()


def test_passthrough_categories_are_one_hot_encoded_and_unknowns_ignored(tmp_path: Path) -> None:
    spec = classification_spec(tmp_path)
    frame = gold_frame(spec, rows=60)
    pre = ss.preprocessor(spec, scale=True).fit(frame)
    names = list(pre.get_feature_names_out())
    assert {"City_east", "City_north", "City_south"} <= set(names)
    unseen = frame.head(2).assign(City="atlantis")
    row = pre.transform(unseen)[0]
    assert row[[names.index(n) for n in names if n.startswith("City_")]].sum() == 0


def test_only_linear_families_scale(spec: UseCaseSpec) -> None:
    for family in ss.families(spec.problem_type):
        pipeline = ss.build_pipeline(spec, family, {}, seed=0)
        numeric = pipeline.named_steps["preprocess"].transformers[0][1]
        scaled = any(isinstance(step, StandardScaler) for _, step in numeric.steps)
        assert scaled == family.linear, family.name


def test_parameters_are_prefixed_by_family_and_seeded(spec: UseCaseSpec) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(12):
        trial = study.ask()
        family, pipeline = ss.suggest_pipeline(trial, spec, seed=7)
        others = [k for k in trial.params if k != ss.FAMILY_PARAM]
        assert all(k.startswith(f"{family.name}.") for k in others)
        assert pipeline.named_steps["model"].get_params()["random_state"] == 7
        study.tell(trial, 0.0)
    assert len({t.params[ss.FAMILY_PARAM] for t in study.trials}) > 1


def test_fixed_trial_rebuilds_the_same_configuration(spec: UseCaseSpec) -> None:
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5)).ask()
    _, sampled = ss.suggest_pipeline(trial, spec, seed=0)
    _, rebuilt = ss.suggest_pipeline(FixedTrial(trial.params), spec, seed=0)
    assert sampled.named_steps["model"].get_params() == rebuilt.named_steps["model"].get_params()
