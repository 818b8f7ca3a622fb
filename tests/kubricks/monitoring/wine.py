"""scikit-learn's wine data as a user brings it: cultivar names, a tasting date per row,
a few missing values, and the spec `kubricks spec infer` writes for it (three classes,
macro F1 as the primary metric, the date as event time and as a feature)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kubricks.spec import UseCaseSpec

CULTIVARS = np.array(["barolo", "grignolino", "barbera"])


def wine_frame(missing: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """178 tastings, one a day from 2024-01-01, ``missing`` of two columns left empty."""
    data = load_wine(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace("/", "_"))
    frame["cultivar"] = CULTIVARS[data.target]
    frame = frame.drop(columns="target").sample(frac=1.0, random_state=seed)
    frame = frame.reset_index(drop=True)
    frame.insert(0, "tasted_on", pd.date_range("2024-01-01", periods=len(frame), freq="D"))
    rng = np.random.default_rng(seed)
    for column in ("color_intensity", "magnesium"):
        frame.loc[rng.random(len(frame)) < missing, column] = np.nan
    return frame


def numeric_features(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ("tasted_on", "cultivar", "row_key")]


def wine_spec(name: str = "wine", frame: pd.DataFrame | None = None) -> UseCaseSpec:
    frame = wine_frame() if frame is None else frame
    features = numeric_features(frame)
    return UseCaseSpec.model_validate(
        {
            "name": name,
            "columns": [
                {"name": "row_key", "type": "string", "generated": "row_hash"},
                {"name": "tasted_on", "type": "date"},
                *({"name": f, "type": "double", "required": False} for f in features),
                {"name": "cultivar", "type": "string"},
            ],
            "entity_key": "row_key",
            "event_timestamp": "tasted_on",
            "label": "cultivar",
            "problem_type": "classification",
            "features": [{"name": "tasted_on"}, *({"name": f} for f in features)],
            "metric": {"primary": "f1"},
        }
    )


def wine_model(frame: pd.DataFrame, spec: UseCaseSpec):
    """A champion for the wine spec: imputes, scales, ignores the date, logistic regression.
    It takes the columns gold holds (``spec.gold_feature_columns()``), as AutoML's do."""
    prep = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric_features(frame))],
        remainder="drop",
    )
    model = make_pipeline(prep, LogisticRegression(max_iter=1000))
    return model.fit(frame[spec.gold_feature_columns()], frame[spec.label])
