"""The loop tests' world: scikit-learn's breast cancer data as Delta gold, and models logged
the way AutoML logs them, on a real MLflow server.

Gold is written with delta-rs rather than by a Spark ingest: the loop reads only gold
versions, and this keeps the modules within their time budget (no Spark session).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import write_deltalake
from mlflow import MlflowClient
from sklearn.datasets import load_breast_cancer

from kubricks.lakehouse import tables
from kubricks.lakehouse.ingest import layer_tables
from kubricks.registry.alias_names import CHAMPION
from kubricks.retraining import decisions
from kubricks.settings import KubricksSettings
from kubricks.spec import EVENT_TIME_COLUMN, UseCaseSpec
from kubricks.training import data
from kubricks.training.result import HOLDOUT_ARTIFACT, MODEL_ARTIFACT, TrainResult

FEATURES = [
    "mean radius",
    "mean texture",
    "mean perimeter",
    "mean area",
    "mean smoothness",
    "mean compactness",
    "mean concavity",
    "mean concave points",
    "mean symmetry",
    "mean fractal dimension",
]
NAMES = [f.replace(" ", "_") for f in FEATURES]
KEY, LABEL = "patient_id", "benign"


def cancer_frame() -> pd.DataFrame:
    """Every patient: a long key, ten numeric features (names without spaces), the label."""
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame[FEATURES].set_axis(NAMES, axis=1)
    frame.insert(0, KEY, np.arange(len(frame), dtype=np.int64))
    frame[LABEL] = bunch.target.to_numpy()
    return frame


def cancer_spec(name: str, **sections: Any) -> UseCaseSpec:
    """A classification spec over the cancer columns; ``sections`` add or replace top-level
    sections (metric, retraining, gate)."""
    return UseCaseSpec.model_validate(
        {
            "name": name,
            "columns": [
                {"name": KEY, "type": "long"},
                *({"name": n, "type": "double"} for n in NAMES),
                {"name": LABEL, "type": "int"},
            ],
            "entity_key": KEY,
            "label": LABEL,
            "problem_type": "classification",
            "features": [{"name": n} for n in NAMES],
            "metric": {"primary": "roc_auc"},
            **sections,
        }
    )


@dataclass
class World:
    spec: UseCaseSpec
    settings: KubricksSettings
    client: MlflowClient
    folder: Path

    @property
    def gold_uri(self) -> str:
        return layer_tables(self.spec, self.settings.lakehouse_uri)["gold"][1]

    def deliver(self, frame: pd.DataFrame) -> int:
        """Overwrite gold with this snapshot, as an ingest does; return the new version."""
        gold = frame.copy()
        gold.insert(1, EVENT_TIME_COLUMN, pd.Timestamp(datetime.now(UTC)))
        gold[LABEL] = gold[LABEL].astype("int32")
        table = pa.Table.from_pandas(gold, preserve_index=False)
        table = table.set_column(
            1, EVENT_TIME_COLUMN, table[EVENT_TIME_COLUMN].cast(pa.timestamp("us", tz="UTC"))
        )
        write_deltalake(self.gold_uri, table, mode="overwrite")
        version = tables.current_version(self.gold_uri)
        assert version is not None
        return version

    def log(
        self, model: object, gold: pd.DataFrame, gold_version: int, run_name: str | None = None
    ) -> TrainResult:
        """Fit ``model`` on gold's training part and log it with its keyed holdout, as AutoML."""
        train_part, holdout = data.holdout_split(gold, self.spec)
        model.fit(train_part[NAMES], train_part[LABEL])  # type: ignore[attr-defined]
        mlflow.set_experiment(self.spec.name)
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.sklearn.log_model(
                model,
                name=MODEL_ARTIFACT,
                pyfunc_predict_fn="predict_proba",
                serialization_format="skops",
                skops_trusted_types=["sklearn.tree._tree.Tree"],
                pip_requirements=["scikit-learn"],
            )
            path = self.folder / run.info.run_id / Path(HOLDOUT_ARTIFACT).name
            path.parent.mkdir(parents=True)
            holdout[[KEY, *NAMES, LABEL]].to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=str(Path(HOLDOUT_ARTIFACT).parent))
        return TrainResult(
            usecase=self.spec.name,
            run_id=run.info.run_id,
            model_uri=f"runs:/{run.info.run_id}/{MODEL_ARTIFACT}",
            family=type(model).__name__,
            metrics={},
            lineage={"gold_table": self.gold_uri, "gold_version": str(gold_version)},
        )

    def champion(self) -> str:
        return str(self.client.get_model_version_by_alias(self.spec.name, CHAMPION).version)

    def rows(self) -> list[dict]:
        return decisions.read(self.spec, self.settings)
