"""The batch-scoring PySpark job: ``python -m kubricks.spark_k8s.score_job --usecase churn``.

The pipeline's batch-score step runs it in-process (Spark in local mode) or, with
``KUBRICKS_SPARK_MODE=kubernetes``, as a SparkApplication whose driver executes this very
file, so both paths share one code path (``kubricks.scoring.batch.score_gold``). Past a
few million rows the executors share the scoring (README, "The lifecycle at scale").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow.compute as pc

from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.scoring.batch import ScoreResult, default_batch_id, predictions_table
from kubricks.settings import KubricksSettings, get_settings
from kubricks.spec import UseCaseSpec, load_spec


def run(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    batch_id: str | None,
    gold_version: int | None = None,
) -> ScoreResult:
    """Score gold with the champion, with a Spark session in this process."""
    from kubricks.scoring.batch import score_gold
    from kubricks.spark import get_spark

    return score_gold(
        get_spark(settings), spec, settings, batch_id or None, gold_version=gold_version
    )


def batch_of(spec: UseCaseSpec, settings: KubricksSettings, gold_version: int | None) -> str:
    """The batch id the job will use (gold version and champion version), fixed before it
    starts so its result can be found whatever else lands meanwhile."""
    from kubricks.lakehouse import gold
    from kubricks.registry.champion import champion_version
    from kubricks.tracking import connect

    version = champion_version(connect(settings), spec.name)
    if gold_version is None:
        gold_version = gold.pinned_version(spec, settings)
    return default_batch_id(gold.gold_version(spec, settings, gold_version), version)


def result_of(spec: UseCaseSpec, settings: KubricksSettings, batch_id: str) -> ScoreResult:
    """What the job committed for ``batch_id``, read back from the predictions table."""
    options = settings.storage_options()
    table, uri = predictions_table(spec, settings.lakehouse_uri)
    commits = [
        entry
        for entry in (tables.history(uri, options) if tables.exists(uri, options) else [])
        if entry.get("kubricks.batch_id") == batch_id
    ]
    if not commits:
        raise KubricksError(f"{table}: the scoring job committed nothing for batch {batch_id!r}")
    entry = commits[0]
    version = int(entry["version"])
    rows = tables.read_arrow(uri, version, options).select(["batch_id"])
    return ScoreResult(
        table,
        uri,
        version,
        batch_id,
        int(pc.sum(pc.equal(rows["batch_id"], batch_id)).as_py() or 0),
        spec.name,
        str(entry.get("kubricks.model_version", "")),
        int(entry.get("kubricks.gold_version", -1)),
        skipped=False,
    )


def execute(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    batch_id: str | None,
    run_id: str | None = None,
    gold_version: int | None = None,
) -> ScoreResult:
    """The batch-score step: in this process, or as a SparkApplication when spark_mode says so.

    ``gold_version`` pins the snapshot scored; None reads the one the last ingest recorded."""
    if settings.spark_mode == "kubernetes":
        return run_on_kubernetes(spec, settings, batch_id, run_id, gold_version=gold_version)
    return run(spec, settings, batch_id, gold_version)


def run_on_kubernetes(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    batch_id: str | None,
    run_id: str | None = None,
    api: object | None = None,
    gold_version: int | None = None,
) -> ScoreResult:
    """Run this job as a SparkApplication in the same image; its result is found by batch id."""
    import pyspark

    from kubricks.spark_k8s import sparkapp

    batch_id = batch_id or batch_of(spec, settings, gold_version)
    _, uri = predictions_table(spec, settings.lakehouse_uri)
    if tables.has_batch(uri, batch_id, settings.storage_options()):
        return _skipped(spec, settings, batch_id)
    manifest = sparkapp.render_spark_application(
        sparkapp.application_name(f"score-{spec.name}", run_id),
        settings,
        main_file=f"local://{Path(__file__).resolve()}",
        arguments=[
            "--usecase",
            spec.name,
            "--batch-id",
            batch_id,
            *([] if gold_version is None else ["--gold-version", str(gold_version)]),
        ],
        spark_version=pyspark.__version__,
        labels={"kubricks/usecase": spec.name},
    )
    sparkapp.validate_spark_application(manifest)
    sparkapp.run_spark_application(
        manifest,
        api or sparkapp.kubernetes_api(),
        timeout_seconds=settings.spark_timeout_seconds,
        read_log=sparkapp.pod_log_reader(settings.k8s_namespace) if api is None else None,
    )
    return result_of(spec, settings, batch_id)


def _skipped(spec: UseCaseSpec, settings: KubricksSettings, batch_id: str) -> ScoreResult:
    found = result_of(spec, settings, batch_id)
    return ScoreResult(
        found.table,
        found.uri,
        tables.current_version(found.uri, settings.storage_options()) or found.version,
        batch_id,
        0,
        found.model_name,
        found.model_version,
        found.gold_version,
        skipped=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubricks.spark_k8s.score_job")
    parser.add_argument("--usecase", required=True)
    parser.add_argument("--batch-id")
    parser.add_argument("--gold-version", type=int)
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        spec = load_spec(args.usecase, settings.usecases_dir)
        result = run(spec, settings, args.batch_id, args.gold_version)
    except KubricksError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    state = "already scored" if result.skipped else f"{result.rows} rows"
    print(f"{result.table} version {result.version}: batch {result.batch_id}, {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
