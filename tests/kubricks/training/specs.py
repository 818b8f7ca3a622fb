"""Small specs and frames for the training tests (no churn column names in kubricks/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from kubricks.spec import UseCaseSpec, load_spec

REGRESSION_YAML = """
name: {name}
description: Synthetic house prices, a regression use case for tests.
columns:
  - {{name: HouseId, type: long}}
  - {{name: Size, type: double}}
  - {{name: Rooms, type: int}}
  - {{name: City, type: string}}
  - {{name: Age, type: double}}
  - {{name: Price, type: double}}
entity_key: HouseId
label: Price
problem_type: regression
features:
  - {{name: Size}}
  - {{name: Rooms}}
  - {{name: City, kind: categorical}}
  - {{name: Age}}
metric:
  primary: rmse
  thresholds: {{rmse: 2.0}}
synthetic:
  HouseId: {{dist: sequence, start: 1}}
  Size: {{dist: normal, mean: 100, std: 30, min: 20}}
  Rooms: {{dist: choice, values: [1, 2, 3, 4, 5]}}
  City: {{dist: choice, values: [north, south, east]}}
  Age: {{dist: uniform, min: 0, max: 80, decimals: 1}}
  Price:
    dist: label
    intercept: 3.0
    weights: {{Size: 1.5, Rooms: 0.5, Age: -0.4}}
    category_effects: {{City: {{north: 1.0, south: -0.5}}}}
    noise: 0.3
"""


def regression_spec(folder: Path, name: str = "houses") -> tuple[Path, UseCaseSpec]:
    """Write the regression spec YAML under ``folder``; return its path and the loaded spec."""
    path = folder / f"{name}.yaml"
    path.write_text(REGRESSION_YAML.format(name=name))
    return path, load_spec(path)


def classification_spec(folder: Path, name: str = "buyers") -> UseCaseSpec:
    """The same columns with a binary label: will the house sell within a month?"""
    raw = yaml.safe_load(REGRESSION_YAML.format(name=name))
    raw["columns"][-1] = {"name": "Sold", "type": "int"}
    raw["label"] = "Sold"
    raw["problem_type"] = "classification"
    raw["metric"] = {"primary": "roc_auc", "thresholds": {"roc_auc": 0.6}}
    raw["synthetic"].pop("Price")
    raw["synthetic"]["Sold"] = {"dist": "label", "weights": {"Size": -1.0, "Age": 0.5}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path)


def gold_frame(spec: UseCaseSpec, rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """A gold-shaped frame in memory: key, numeric and string features, a learnable label."""
    rng = np.random.default_rng(seed)
    categorical = {f.name for f in spec.categorical_features()}
    frame = pd.DataFrame({spec.entity_key: np.arange(rows)})
    for column in spec.gold_feature_columns():
        frame[column] = (
            rng.choice(["north", "south", "east"], rows)
            if column in categorical
            else rng.normal(10.0, 3.0, rows)
        )
    signal = frame[spec.gold_feature_columns()[0]] + rng.normal(0, 1.0, rows)
    if spec.problem_type == "classification":
        frame[spec.label] = (signal > signal.median()).astype(int)
    else:
        frame[spec.label] = signal
    return frame
