"""The baseline a user writes from BentoML's docs: pyfunc called once per request.

Served by benchmarks/serving.py with ``bentoml serve benchmarks.naive_bento:Naive``;
``NAIVE_MODEL_URI`` names the MLflow model (``models:/<name>/<version>``).
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import mlflow.pyfunc
import pandas as pd


@bentoml.service(name="naive_pyfunc", workers=1, logging={"access": {"enabled": False}})
class Naive:
    def __init__(self) -> None:
        self.model = mlflow.pyfunc.load_model(os.environ["NAIVE_MODEL_URI"])

    @bentoml.api(route="/predict")
    def predict(self, rows: list[dict[str, Any]]) -> list[Any]:
        return pd.DataFrame(self.model.predict(pd.DataFrame(rows))).to_numpy().tolist()
