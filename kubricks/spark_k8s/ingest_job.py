"""The ingest PySpark job: ``python -m kubricks.spark_k8s.ingest_job --usecase churn``.

The pipeline's ingest step runs it in-process (local mode) or as a SparkApplication
whose driver executes this very file, so both paths share one code path.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings, get_settings
from kubricks.spec import UseCaseSpec, load_spec


@dataclass(frozen=True)
class GoldRef:
    """Where the gold table of a batch is: what the next steps and a person need."""

    table: str
    uri: str
    version: int
    batch_id: str
    skipped: bool

    def metadata(self) -> dict[str, object]:
        """Every field, for KFP artifact metadata and step outputs."""
        return asdict(self)


def run(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    source: str | None,
    rows: int,
    batch_id: str | None,
) -> GoldRef:
    """Ingest one batch with a Spark session in this process; return the gold version."""
    from kubricks.lakehouse.ingest import ingest, layer_tables, resolve_source
    from kubricks.lakehouse.sources import check_file
    from kubricks.spark import get_spark

    path = resolve_source(spec, source or None, settings, rows)
    check_file(path, spec.source.format)  # fail in a second, before Spark starts
    result = ingest(get_spark(settings), spec, path, settings, batch_id or None)
    table, uri = layer_tables(spec, settings.lakehouse_uri)["gold"]
    version = result.tables["gold"].version
    if version is None:
        raise KubricksError(f"{table}: no gold table after ingesting {path}")
    return GoldRef(table, uri, version, result.batch_id, result.skipped)


def latest(spec: UseCaseSpec, settings: KubricksSettings) -> GoldRef:
    """The gold table as the last ingest left it (after a SparkApplication ran the job)."""
    import json

    from kubricks.lakehouse.ingest import ingest_runs, layer_tables

    table, uri = layer_tables(spec, settings.lakehouse_uri)["gold"]
    runs = [
        r
        for r in ingest_runs(settings.lakehouse_uri, settings.storage_options())
        if r["usecase"] == spec.name
    ]
    if not runs:
        raise KubricksError(f"{table}: the ingest job recorded no run for {spec.name!r}")
    last = max(runs, key=lambda r: r["finished_at"])
    version = json.loads(last["versions"])["gold"]
    return GoldRef(table, uri, int(version), last["batch_id"], skipped=False)


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
        spec = load_spec(args.usecase, settings.usecases_dir)
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
    """Run this job as a SparkApplication in the same image, then read the gold version."""
    import pyspark

    from kubricks.spark_k8s import sparkapp

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
        read_log=_log_reader(settings.k8s_namespace) if api is None else None,
    )
    return latest(spec, settings)


def _log_reader(namespace: str):
    from kubernetes import client

    core = client.CoreV1Api()
    return lambda pod: core.read_namespaced_pod_log(pod, namespace, tail_lines=200)


if __name__ == "__main__":
    sys.exit(main())
