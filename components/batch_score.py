"""Batch score: the champion over gold with Spark (in-process or a SparkApplication)."""

from kfp.dsl import Dataset, Output
from kfp.dsl.python_component import PythonComponent


def batch_score(
    usecase: str,
    batch_id: str,
    gold_version: int,
    parent_run_id: str,
    predictions: Output[Dataset],
) -> str:
    """Score once per batch id (a re-run is a no-op); return the model version used.

    ``gold_version`` -1 reads the version the last recorded ingest left."""
    from kubricks.spark_k8s import score_job
    from kubricks.steps.artifacts import write_json
    from kubricks.steps.step import step

    with step("batch-score", usecase, parent_run_id) as ctx:
        result = score_job.execute(
            ctx.spec,
            ctx.settings,
            batch_id or None,
            run_id=ctx.mlflow_run_id or parent_run_id,
            gold_version=None if gold_version < 0 else gold_version,
        )
        meta = result.metadata()
        predictions.metadata.update(meta)
        write_json(predictions.path, meta)
        ctx.outputs.update(meta)
        ctx.log_params(
            {
                "batch_id": result.batch_id,
                "model_version": result.model_version,
                "gold_version": result.gold_version,
            }
        )
        ctx.log_metrics({"rows": result.rows})
        state = "already scored" if result.skipped else f"{result.rows} rows"
        print(
            f"{result.table} version {result.version}: batch {result.batch_id}, {state},"
            f" {result.model_name} v{result.model_version}"
        )
        return result.model_version


def component(image: str) -> PythonComponent:
    from components.tasks import lightweight

    return lightweight(batch_score, image)
