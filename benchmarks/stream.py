"""Streaming scoring throughput (rows/s), side by side with batch ingest + batch scoring.

Run by hand: ``.venv/bin/python benchmarks/stream.py [--rows 200000] [--files 20]
[--files-per-batch 5]``. Synthetic churn rows are split into CSV files in a landing
folder; ``kubricks stream``'s code path (``availableNow``) reads, types, checks, scores
with the champion and commits each micro-batch to Delta exactly once. In the same run
the same files go through ``kubricks ingest`` (bronze → silver → gold) and batch
scoring of gold, the path a user would otherwise take. A throwaway MLflow server is
started under a temporary home unless KUBRICKS_TRACKING_URI names one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from kubricks import services
from kubricks.lakehouse.ingest import ingest
from kubricks.scoring import streaming
from kubricks.scoring.batch import score_gold
from kubricks.settings import KubricksSettings
from kubricks.spark import get_spark
from kubricks.spec import UseCaseSpec, load_spec
from kubricks.synthetic import generate
from kubricks.training.search_space import build_pipeline, family_named
from tests.registered import register_model


def register_champion(spec: UseCaseSpec, frame: pd.DataFrame, tracking_uri: str) -> str:
    """A logistic regression on the raw gold columns (the model encodes), made champion."""
    family = family_named("classification", "logistic_regression")
    model = build_pipeline(spec, family, family.defaults, seed=0)
    x = frame[spec.gold_feature_columns()]
    model.fit(x, frame[spec.label])
    return register_model(model, x, spec.name, tracking_uri)


def land(frame: pd.DataFrame, folder: Path, files: int) -> None:
    folder.mkdir(parents=True)
    size = -(-len(frame) // files)
    for i in range(files):
        frame.iloc[i * size : (i + 1) * size].to_csv(folder / f"part-{i:04d}.csv", index=False)


def stream_once(spark, spec, settings, landing: Path, checkpoint: Path, per_batch: int):
    options = streaming.StreamOptions(
        landing=str(landing),
        checkpoint=str(checkpoint),
        available_now=True,
        max_files_per_trigger=per_batch,
    )
    start = time.perf_counter()
    result = streaming.run(spark, spec, settings, options)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--files-per-batch", type=int, default=5)
    args = parser.parse_args()
    console = Console(width=140)
    work = Path(tempfile.mkdtemp(prefix="kubricks-stream-bench-"))
    server = KubricksSettings(home=work / "mlflow", mlflow_port=5077)
    own_server = not os.environ.get("KUBRICKS_TRACKING_URI")
    try:
        tracking = (
            services.start_mlflow(server, timeout=300).url
            if own_server
            else os.environ["KUBRICKS_TRACKING_URI"]
        )
        spec = load_spec("churn").model_copy(update={"name": "churn_stream_bench"})
        frame = generate(spec, args.rows, seed=11)
        version = register_champion(spec, frame.head(20_000), tracking)
        settings = KubricksSettings(home=work / "home", tracking_uri=tracking)
        spark = get_spark(settings)

        warm = work / "warm"
        land(frame.head(2_000), warm / "landing", 2)
        stream_once(spark, spec, settings, warm / "landing", warm / "checkpoint", 1)
        shutil.rmtree(work / "home" / "lakehouse", ignore_errors=True)

        landing = work / "landing"
        land(frame, landing, args.files)
        console.print(
            f"{args.rows:,} rows in {args.files} CSV files, {args.files_per_batch} per"
            f" micro-batch, champion v{version}"
        )
        stream_s, result = stream_once(
            spark, spec, settings, landing, work / "checkpoint", args.files_per_batch
        )
        assert result.scored == args.rows, (result.scored, args.rows)

        batch_settings = KubricksSettings(home=work / "batch", tracking_uri=tracking)
        start = time.perf_counter()
        ingest(spark, spec, landing, batch_settings, batch_id="bench")
        ingest_s = time.perf_counter() - start
        start = time.perf_counter()
        scored = score_gold(spark, spec, batch_settings)
        score_s = time.perf_counter() - start
        assert scored.rows == args.rows, (scored.rows, args.rows)

        report = Table(title="Streaming vs batch scoring of the same files (same run)")
        for column in ("path", "seconds", "rows/s", "stream throughput / this"):
            report.add_column(column, justify="right")
        batch_s = ingest_s + score_s
        report.add_row(
            "stream (read+check+score+commit)",
            f"{stream_s:.1f}",
            f"{args.rows / stream_s:,.0f}",
            "1.00",
        )
        report.add_row(
            "batch ingest (bronze/silver/gold)",
            f"{ingest_s:.1f}",
            f"{args.rows / ingest_s:,.0f}",
            "",
        )
        report.add_row("batch scoring of gold", f"{score_s:.1f}", f"{args.rows / score_s:,.0f}", "")
        report.add_row(
            "batch ingest + scoring",
            f"{batch_s:.1f}",
            f"{args.rows / batch_s:,.0f}",
            f"{batch_s / stream_s:.2f}",
        )
        console.print(report)
        per_batch = [b.seconds for b in result.batches]
        loads = sum(b.loaded_model for b in result.batches)
        console.print(
            f"{len(per_batch)} micro-batches, {min(per_batch):.1f}-{max(per_batch):.1f} s each"
            f" (mean {sum(per_batch) / len(per_batch):.1f} s), the model loaded {loads} time(s);"
            f" stream rows/s = {args.rows:,} / wall time including query start."
        )
        ratio = (args.rows / stream_s) / (args.rows / batch_s)
        console.print(
            f"Streaming throughput = {ratio:.2f}x batch ingest + batch scoring of the same files"
            " (target: at least 0.9x)."
        )
    finally:
        if own_server:
            services.stop_mlflow(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
