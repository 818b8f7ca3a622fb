"""Real and seeded data sets with labels and dates of the forms users bring (none is churn).

Each helper writes a CSV and returns the spec that describes it, so tests go through
ingest, Feast, training, the gate and batch scoring exactly as a user would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_iris

from kubricks.spec import UseCaseSpec

CANCER_FEATURES = (
    "mean radius",
    "mean texture",
    "mean concavity",
    "mean concave points",
    "worst area",
    "worst smoothness",
)


def _identifier(name: str) -> str:
    return name.replace(" ", "_")


def _spec(raw: dict[str, Any]) -> UseCaseSpec:
    return UseCaseSpec.model_validate(raw)


def tumours(
    folder: Path, name: str = "tumours", benign_rows: int = 100
) -> tuple[Path, UseCaseSpec]:
    """Breast cancer (Wisconsin) with string labels; the positive class ``benign`` is kept a
    minority (about a third) and sorts FIRST, so "the last column" would be the wrong class."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=_identifier)
    frame["diagnosis"] = np.where(data.target == 1, "benign", "malignant")
    benign = frame[frame["diagnosis"] == "benign"].sample(benign_rows, random_state=3)
    frame = pd.concat([benign, frame[frame["diagnosis"] == "malignant"]]).sample(
        frac=1.0, random_state=4
    )
    frame.insert(0, "patient_id", np.arange(1, len(frame) + 1))
    features = [_identifier(f) for f in CANCER_FEATURES]
    path = folder / f"{name}.csv"
    frame[["patient_id", *features, "diagnosis"]].to_csv(path, index=False)
    spec = _spec(
        {
            "name": name,
            "columns": [
                {"name": "patient_id", "type": "long"},
                *({"name": f, "type": "double"} for f in features),
                {"name": "diagnosis", "type": "string"},
            ],
            "entity_key": "patient_id",
            "label": "diagnosis",
            "problem_type": "classification",
            "positive_class": "benign",
            "features": [{"name": f} for f in features],
            "metric": {"primary": "roc_auc", "thresholds": {"roc_auc": 0.8}},
        }
    )
    return path, spec


def irises(folder: Path, name: str = "irises") -> tuple[Path, UseCaseSpec]:
    """Iris with its species names as the label: three classes, no positive one."""
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: _identifier(c.replace(" (cm)", "")))
    frame["species"] = np.asarray(data.target_names)[data.target]
    frame = frame.drop(columns=["target"]).sample(frac=1.0, random_state=5)
    frame.insert(0, "flower_id", np.arange(1, len(frame) + 1))
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    features = [c for c in frame.columns if c not in ("flower_id", "species")]
    spec = _spec(
        {
            "name": name,
            "columns": [
                {"name": "flower_id", "type": "long"},
                *({"name": f, "type": "double"} for f in features),
                {"name": "species", "type": "string"},
            ],
            "entity_key": "flower_id",
            "label": "species",
            "problem_type": "classification",
            "features": [{"name": f} for f in features],
            "metric": {"primary": "f1", "thresholds": {"f1": 0.8}},
        }
    )
    return path, spec


WEEKDAY_EFFECT = np.array([0.0, 2.0, 4.0, 6.0, 8.0, 30.0, 40.0])  # Monday .. Sunday


def daily_sales(start: str, days: int, seed: int) -> pd.DataFrame:
    """One shop's daily sales: a strong weekly pattern (weekends sell most) plus promotions."""
    rng = np.random.default_rng(seed)
    day = pd.date_range(start, periods=days, freq="D")
    promotion = rng.integers(0, 2, days)
    sales = 100.0 + WEEKDAY_EFFECT[day.dayofweek] + 5.0 * promotion + rng.normal(0, 2.0, days)
    return pd.DataFrame(
        {
            "sale_id": (day - pd.Timestamp("2020-01-01")).days.astype(int),
            "sale_date": day.strftime("%Y-%m-%d"),
            "promotion": promotion,
            "sales": sales.round(2),
        }
    )


def sales_spec(name: str = "shop_sales") -> UseCaseSpec:
    """The daily series: the date is both the event time (``split: time``) and a feature."""
    return _spec(
        {
            "name": name,
            "columns": [
                {"name": "sale_id", "type": "long"},
                {"name": "sale_date", "type": "date"},
                {"name": "promotion", "type": "int"},
                {"name": "sales", "type": "double"},
            ],
            "entity_key": "sale_id",
            "event_timestamp": "sale_date",
            "label": "sales",
            "problem_type": "regression",
            "split": "time",
            "features": [{"name": "sale_date"}, {"name": "promotion"}],
            "metric": {"primary": "rmse", "thresholds": {"rmse": 8.0}},
        }
    )
