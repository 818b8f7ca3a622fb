"""Categorical encoding inside the model: raw values in, unknown and missing handled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io

from kubricks.spec import Feature, UseCaseSpec
from kubricks.training.encoding import (
    MISSING,
    UNKNOWN,
    CategoryText,
    as_text,
    categorical_pipeline,
    category_steps,
)
from kubricks.training.search_space import build_pipeline, families


def test_values_become_vocabulary_text() -> None:
    step = CategoryText(["France", "Spain"]).fit(pd.DataFrame({"g": ["France"]}))
    out = step.transform(pd.DataFrame({"g": ["France", "Italy", None, " ", np.nan, " Spain "]}))
    assert out[:, 0].tolist() == ["France", UNKNOWN, MISSING, MISSING, MISSING, "Spain"]
    assert step.unknown(["France", "Italy", None, "Peru"]) == 2


def test_learned_vocabulary_and_numbers_as_text() -> None:
    step = CategoryText().fit(pd.DataFrame({"n": [1.0, 2.0, np.nan, 2.0]}))
    assert step.categories_ == ["1", "2"]
    assert step.transform(pd.DataFrame({"n": [2, 3.0, None]}))[:, 0].tolist() == [
        "2",
        UNKNOWN,
        MISSING,
    ]
    assert as_text(np.int64(4)) == "4" and as_text(True) == "True" and as_text("") is None


@pytest.mark.parametrize("encoding", ["one_hot", "ordinal"])
def test_unknown_and_missing_categories_score_without_error(encoding: str) -> None:
    feature = Feature(name="g", kind="categorical", encoding=encoding)
    pipe = categorical_pipeline(feature).fit(pd.DataFrame({"g": ["a", "b", "a", None]}))
    out = pipe.transform(pd.DataFrame({"g": ["a", "zzz", None]}))
    assert out.shape[0] == 3 and np.isfinite(np.asarray(out, dtype=float)).all()
    if encoding == "ordinal":  # never seen in training: the unknown code
        assert out[1, 0] == -1
    else:
        assert not np.asarray(out[1]).any()


def spec(declared: list[str] | None) -> UseCaseSpec:
    return UseCaseSpec.model_validate(
        {
            "name": "shops",
            "columns": [
                {"name": "id", "type": "long"},
                {"name": "city", "type": "string", "required": False},
                {"name": "size", "type": "double", "required": False},
                {"name": "opened", "type": "date"},
                {"name": "sold", "type": "string"},
            ],
            "entity_key": "id",
            "label": "sold",
            "problem_type": "classification",
            "positive_class": "yes",
            "features": [
                {"name": "city", "kind": "categorical", "categories": declared},
                {"name": "size"},
                {"name": "opened"},
            ],
            "metric": {"primary": "roc_auc"},
        }
    )


def frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    city = rng.choice(["north", "south", "east", None], rows)
    size = rng.normal(10, 3, rows)
    size[rng.random(rows) < 0.1] = np.nan
    opened = pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 400, rows), "D")
    x = pd.DataFrame({"city": city, "size": size, "opened": opened})
    y = np.where((city == "north") | (np.nan_to_num(size) > 11), "yes", "no")
    return x, y


@pytest.mark.parametrize("declared", [None, ["north", "south", "east"]])
def test_every_family_takes_raw_rows_with_gaps_and_unseen_values(declared) -> None:
    use = spec(declared)
    x, y = frame()
    for family in families("classification"):
        model = build_pipeline(use, family, family.defaults, seed=0).fit(x, y)
        unseen = x.head(5).assign(city=["west", None, "north", "", "south"])
        proba = model.predict_proba(unseen)
        assert proba.shape == (5, 2) and np.isfinite(proba).all(), family.name
        steps = category_steps(model)
        assert list(steps) == ["city"]
        assert steps["city"].categories_ == (declared or ["east", "north", "south"])


def test_the_encoding_survives_a_skops_round_trip() -> None:
    use = spec(["north", "south", "east"])
    x, y = frame()
    family = families("classification")[1]  # a random forest
    model = build_pipeline(use, family, family.defaults, seed=0).fit(x, y)
    types = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    loaded = skops.io.loads(skops.io.dumps(model), trusted=types)
    probe = x.head(20).assign(city=["west"] * 10 + ["north"] * 10)
    np.testing.assert_array_equal(loaded.predict_proba(probe), model.predict_proba(probe))
