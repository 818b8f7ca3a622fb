"""Ingest: a source batch into bronze, silver and gold (Spark in-process or a SparkApplication)."""

from kfp.dsl import Dataset, Output
from kfp.dsl.python_component import PythonComponent


def ingest(
    usecase: str,
    source: str,
    rows: int,
    batch_id: str,
    parent_run_id: str,
    gold: Output[Dataset],
) -> str:
    """Ingest one batch; the gold Dataset carries the table URI and its Delta version."""
    from kubricks.spark_k8s import ingest_job
    from kubricks.steps.artifacts import write_json
    from kubricks.steps.step import step

    with step("ingest", usecase, parent_run_id) as ctx:
        ref = ingest_job.execute(
            ctx.spec,
            ctx.settings,
            source,
            rows,
            batch_id,
            run_id=ctx.mlflow_run_id or parent_run_id,
        )
        gold.metadata.update(ref.metadata())
        write_json(gold.path, ref.metadata())
        ctx.outputs.update(ref.metadata())
        ctx.log_params(
            {
                "source": source or "(spec default)",
                "batch_id": ref.batch_id,
                "spark_mode": ctx.settings.spark_mode,
            }
        )
        ctx.set_tags({"gold.table": ref.table, "gold.version": ref.version})
        print(f"{ref.table} version {ref.version} (batch {ref.batch_id})")
        return ref.batch_id


def component(image: str) -> PythonComponent:
    from components.tasks import lightweight

    return lightweight(ingest, image)
