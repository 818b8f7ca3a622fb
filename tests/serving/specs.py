"""Specs for scikit-learn's bundled data sets, so serving is tested beyond churn."""

from __future__ import annotations

import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from kubricks.spec import UseCaseSpec


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(
        columns=lambda c: "".join(ch if ch.isalnum() else "_" for ch in c.replace(" (cm)", ""))
    )


def dataset(name: str) -> tuple[UseCaseSpec, pd.DataFrame, pd.Series]:
    """(spec, features, label) for iris (string classes), breast cancer (0/1), diabetes."""
    loader = {"iris": load_iris, "breast_cancer": load_breast_cancer, "diabetes": load_diabetes}
    data = loader[name](as_frame=True)
    features = _clean(data.data)
    label = data.target
    problem = "regression" if name == "diabetes" else "classification"
    if name == "iris":
        label = label.map(dict(enumerate(data.target_names)))
    label_type = "string" if name == "iris" else ("double" if problem == "regression" else "int")
    spec = UseCaseSpec.model_validate(
        {
            "name": name,
            "columns": [
                {"name": "id", "type": "long"},
                *[{"name": c, "type": "double"} for c in features.columns],
                {"name": "target", "type": label_type},
            ],
            "entity_key": "id",
            "label": "target",
            "problem_type": problem,
            "features": [{"name": c} for c in features.columns],
            "metric": {"primary": "rmse" if problem == "regression" else "accuracy"},
        }
    )
    return spec, features, label
