"""AutoML on churn: trials per minute, time to 0.85 ROC AUC, and the cost of tracking a trial.

Run by hand: ``.venv/bin/python benchmarks/train.py [--budget-minutes 3] [--max-trials 25]``.
It starts its own MLflow server (SQLite) under a temporary home, ingests
``../shared/data/churn.csv``, runs ``kubricks.training.automl.train``, then refits every
completed trial's configuration with plain scikit-learn/LightGBM on the same split
(no Optuna, no MLflow). The overhead ratio is tracked time over plain time; target <= 1.5x.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.trial import FixedTrial
from rich.console import Console
from rich.table import Table

from kubricks import services
from kubricks.lakehouse.ingest import ingest
from kubricks.settings import KubricksSettings
from kubricks.spark import get_spark
from kubricks.spec import UseCaseSpec, load_spec
from kubricks.training import data
from kubricks.training.automl import make_splits, predict_scores, train
from kubricks.training.search_space import suggest_pipeline

REPO = Path(__file__).resolve().parent.parent
CHURN_CSV = REPO.parent / "shared" / "data" / "churn.csv"
TARGET_AUC = 0.85


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse(value: str) -> object:
    """MLflow stores params as text; Optuna's FixedTrial needs the typed values back."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def plain_seconds(
    spec: UseCaseSpec, splits, params: dict[str, object], seed: int, repeats: int
) -> float:
    """Median time of what a trial computes (fit + validation scores), untracked."""
    x_fit, y_fit = data.features(splits.fit, spec), data.labels(splits.fit, spec)
    x_val = data.features(splits.validation, spec)
    times = []
    for _ in range(repeats):
        _, pipeline = suggest_pipeline(FixedTrial(params), spec, seed)
        started = time.perf_counter()
        pipeline.fit(x_fit, y_fit)
        predict_scores(pipeline, x_val, spec.problem_type)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget-minutes", type=float, default=3.0)
    parser.add_argument("--max-trials", type=int, default=25)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3, help="plain fits of the best config")
    args = parser.parse_args()
    if not CHURN_CSV.exists():
        sys.exit(f"{CHURN_CSV} is absent: the shared data folder must sit beside the repo")

    console = Console()
    with tempfile.TemporaryDirectory(prefix="kubricks-bench-train-") as home:
        settings = KubricksSettings(home=Path(home), mlflow_port=free_port())
        status = services.start_mlflow(settings)
        try:
            settings = settings.model_copy(update={"tracking_uri": status.url})
            spec = load_spec("churn")
            spark = get_spark(settings)
            ingest(spark, spec, CHURN_CSV, settings)
            spark.stop()

            called = time.time()
            result = train(
                spec, settings, args.budget_minutes, args.max_trials, args.seed, progress=True
            )
            total = time.time() - called

            client = MlflowClient(status.url)
            parent = client.get_run(result.run_id)
            trials = sorted(
                client.search_runs(
                    [parent.info.experiment_id],
                    f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{result.run_id}'",
                ),
                key=lambda r: r.info.start_time,
            )
            trials = [t for t in trials if t.info.status == "FINISHED"]
            search_seconds = (trials[-1].info.end_time - trials[0].info.start_time) / 1000
            reached = next((t for t in trials if t.data.metrics["roc_auc"] >= TARGET_AUC), None)

            frame = data.check_frame(data.load_training_set(spec, settings).frame, spec, "gold")
            splits = make_splits(frame, spec, args.seed)
            tracked, plain = [], []
            for run in trials:  # every configuration the search tried, refitted untracked
                params = {k: parse(v) for k, v in run.data.params.items()}
                tracked.append((run.info.end_time - run.info.start_time) / 1000)
                plain.append(plain_seconds(spec, splits, params, args.seed, repeats=1))
            best_params = dict(result.params)
            best_plain = plain_seconds(spec, splits, best_params, args.seed, args.repeats)
            best_run = client.get_run(parent.data.tags["kubricks.best_trial_run_id"])
            best_tracked = (best_run.info.end_time - best_run.info.start_time) / 1000
        finally:
            services.stop_mlflow(settings)

    table = Table(
        title="AutoML on churn (10,000 rows; trials scored on a validation split)",
        title_justify="left",
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("trials completed", f"{len(trials)}"),
        ("search wall time", f"{search_seconds:.1f} s"),
        ("trials per minute", f"{len(trials) / (search_seconds / 60):.1f}"),
        ("train() wall time (load, search, refit, artifacts, model)", f"{total:.1f} s"),
        (
            f"time to validation ROC AUC >= {TARGET_AUC} from the train() call",
            f"{(reached.info.end_time / 1000 - called):.1f} s (trial"
            f" {reached.info.run_name}, {reached.data.params['family']})"
            if reached
            else "never",
        ),
        ("best family / holdout ROC AUC", f"{result.family} / {result.metrics['roc_auc']:.4f}"),
        ("best config: tracked trial (fit+score+MLflow)", f"{best_tracked:.3f} s"),
        ("best config: plain fit+score, median", f"{best_plain:.3f} s"),
        ("best config overhead ratio", f"{best_tracked / best_plain:.2f}x"),
        (
            "all trials: tracked / plain",
            f"{sum(tracked):.1f} s / {sum(plain):.1f} s = {sum(tracked) / sum(plain):.2f}x",
        ),
        (
            "search wall per trial / plain per trial",
            f"{search_seconds / sum(plain):.2f}x (adds Optuna sampling and run creation)",
        ),
        ("mean tracking cost per trial", f"{(sum(tracked) - sum(plain)) / len(trials):.3f} s"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
