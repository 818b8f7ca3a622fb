"""Where one served row's time goes, per AutoML family: preprocessing vs the estimator.

Each family's default pipeline is trained on raw churn (``../shared/data/churn.csv`` when
present, else the synthetic generator) and one row at a time is timed in this process, the
way a worker scores a single-row batch:

- scikit-learn's ``ColumnTransformer.transform`` against the fast form derived from it
  (kubricks/training/fast_preprocess.py), on the same one-row frame;
- the estimator alone: scikit-learn's ``predict_proba`` and ONNX Runtime's;
- end to end: the whole scikit-learn pipeline, ONNX behind scikit-learn's preprocessing
  (before), ONNX behind the fast preprocessing (after).

Medians over a few seconds per cell; the machine is shared, so read the ratios.
Run: ``nice -n 0 .venv/bin/python benchmarks/preprocess_profile.py``.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.model_selection import train_test_split

from kubricks.registry.compiled import CompiledModel, export
from kubricks.spec import load_spec
from kubricks.synthetic import generate
from kubricks.training.fast_preprocess import derive
from kubricks.training.search_space import build_pipeline, family_named

REPO = Path(__file__).resolve().parents[1]
SHARED_CHURN = REPO.parent / "shared" / "data" / "churn.csv"
FAMILIES = ("logistic_regression", "random_forest", "extra_trees", "lightgbm")
console = Console(width=160)


def median_ms(call: Any, rows: list[Any], seconds: float) -> float:
    times = []
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < seconds:
        row = rows[i % len(rows)]
        t0 = time.perf_counter()
        call(row)
        times.append(time.perf_counter() - t0)
        i += 1
    return float(np.median(times) * 1000)


def churn_frame(spec: Any) -> pd.DataFrame:
    if SHARED_CHURN.exists():
        return pd.read_csv(SHARED_CHURN)
    return generate(spec, 5000, seed=11)


def main(seconds: float = 2.0) -> None:
    spec = load_spec("churn")
    frame = churn_frame(spec)
    features = spec.gold_feature_columns()
    train, holdout = train_test_split(frame, test_size=0.2, random_state=0)
    rows = [holdout[features].iloc[[i]] for i in range(200)]
    table = Table(title="one row in process, median ms")
    columns = (
        "family",
        "sklearn preprocess",
        "fast preprocess",
        "sklearn estimator",
        "ONNX estimator",
        "sklearn pipeline",
        "ONNX + sklearn prep",
        "ONNX + fast prep",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "family" else "right")
    for name in FAMILIES:
        family = family_named("classification", name)
        model = build_pipeline(spec, family, family.defaults, seed=0)
        model.fit(train[features], train[spec.label])
        preprocess, estimator = model[:-1], model.steps[-1][1]
        fast = derive(preprocess)
        artifact = export(model)
        before = CompiledModel(model, artifact, fast_preprocess=False)
        after = CompiledModel(model, artifact)
        matrices = [preprocess.transform(r) for r in rows]
        inputs = [np.asarray(m, dtype=np.float32) for m in matrices]
        run_onnx = partial(after.session.run, [after.output])
        cells = [
            median_ms(preprocess.transform, rows, seconds),
            median_ms(fast.transform, rows, seconds),
            median_ms(estimator.predict_proba, matrices, seconds),
            median_ms(lambda x, run=run_onnx: run({"features": x}), inputs, seconds),
            median_ms(model.predict_proba, rows, seconds),
            median_ms(before.predict_proba, rows, seconds),
            median_ms(after.predict_proba, rows, seconds),
        ]
        table.add_row(name, *(f"{c:.3f}" for c in cells))
        console.print(f"{name}: done")
    console.print(table)


if __name__ == "__main__":
    main()
