"""The ingest PySpark job: ``python -m kubricks.spark_k8s.ingest_job --usecase churn``.

The pipeline's ingest step runs it in-process (local mode) or as a SparkApplication
whose driver executes this very file, so both paths share one code path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubricks.errors import KubricksError
from kubricks.lakehouse.gold import GoldRef, gold_location, gold_version, ingested
from kubricks.settings import KubricksSettings, get_settings
from kubricks.spec import UseCaseSpec, load_spec


def run(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    source: str | None,
    rows: int,
    batch_id: str | None,
) -> GoldRef:
    """Ingest one batch with a Spark session in this process; return the gold version."""
    from kubricks.lakehouse.ingest import ingest, resolve_source
    from kubricks.lakehouse.sources import check_file
    from kubricks.spark import get_spark

    path = resolve_source(spec, source or None, settings, rows)
    check_file(path, spec.source.format)  # fail in a second, before Spark starts
    result = ingest(get_spark(settings), spec, path, settings, batch_id or None)
    table, uri = gold_location(spec, settings)
    version = result.tables["gold"].version
    if version is None:
        raise KubricksError(f"{table}: no gold table after ingesting {path}")
    return GoldRef(table, uri, version, result.batch_id, result.skipped)


def batch_of(spec: UseCaseSpec, settings: KubricksSettings, source: str | None, rows: int) -> str:
    """The batch id the job will use: known before it starts, so its result can be found."""
    from kubricks.lakehouse.ingest import resolve_source
    from kubricks.lakehouse.sources import check_file, content_hash

    path = resolve_source(spec, source or None, settings, rows)
    check_file(path, spec.source.format)
    return content_hash(path)


def result_of(
    spec: UseCaseSpec, settings: KubricksSettings, batch_id: str, runs_before: int
) -> GoldRef:
    """What the job did with ``batch_id``: the version it committed, or ``skipped``.

    A run that found the batch already in place records nothing, so no new run row
    for the batch means the job skipped it; the gold table is then read as it stands.
    """
    if _runs_of(spec, settings, batch_id) > runs_before:
        return ingested(spec, settings, batch_id)
    table, uri = gold_location(spec, settings)
    return GoldRef(table, uri, gold_version(spec, settings), batch_id, skipped=True)


def _runs_of(spec: UseCaseSpec, settings: KubricksSettings, batch_id: str) -> int:
    from kubricks.lakehouse.ingest import ingest_runs

    runs = ingest_runs(settings.lakehouse_uri, settings.storage_options())
    return sum(1 for r in runs if r["usecase"] == spec.name and r["batch_id"] == batch_id)


def arguments(usecase: str, source: str | None, rows: int, batch_id: str | None) -> list[str]:
    """The command-line arguments of this job, for a SparkApplication."""
    args = ["--usecase", usecase, "--rows", str(rows)]
    if source:
        args += ["--source", source]
    if batch_id:
        args += ["--batch-id", batch_id]
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubricks.spark_k8s.ingest_job")
    parser.add_argument("--usecase", required=True)
    parser.add_argument("--source")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch-id")
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        spec = load_spec(args.usecase, settings.usecases_dir, settings.step_usecase_paths)
        ref = run(spec, settings, args.source, args.rows, args.batch_id)
    except KubricksError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    state = "already ingested" if ref.skipped else "committed"
    print(f"{ref.table} version {ref.version} (batch {ref.batch_id}, {state})")
    return 0


def execute(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    source: str | None,
    rows: int,
    batch_id: str | None,
    run_id: str | None = None,
) -> GoldRef:
    """The ingest step: in this process, or as a SparkApplication when spark_mode says so."""
    if settings.spark_mode == "kubernetes":
        return run_on_kubernetes(spec, settings, source, rows, batch_id, run_id)
    return run(spec, settings, source, rows, batch_id)


def run_on_kubernetes(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    source: str | None,
    rows: int,
    batch_id: str | None,
    run_id: str | None = None,
    api: object | None = None,
) -> GoldRef:
    """Run this job as a SparkApplication in the same image; its result is found by batch id."""
    import pyspark

    from kubricks.spark_k8s import sparkapp

    batch_id = batch_id or batch_of(spec, settings, source, rows)
    runs_before = _runs_of(spec, settings, batch_id)

    manifest = sparkapp.render_spark_application(
        sparkapp.application_name(f"ingest-{spec.name}", run_id),
        settings,
        main_file=f"local://{Path(__file__).resolve()}",
        arguments=arguments(spec.name, source, rows, batch_id),
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
    return result_of(spec, settings, batch_id, runs_before)


if __name__ == "__main__":
    sys.exit(main())
