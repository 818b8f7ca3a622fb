"""Build features: register the Feast definitions and materialize the online store."""

from kfp.dsl import Dataset, Input
from kfp.dsl.python_component import PythonComponent


def build_features(usecase: str, gold: Input[Dataset], parent_run_id: str) -> int:
    """Materialize the feature view from the gold version ingest wrote; return the keys written."""
    from kubricks.features.online import materialize
    from kubricks.steps.artifacts import pinned_version
    from kubricks.steps.step import step

    with step("build-features", usecase, parent_run_id) as ctx:
        version = pinned_version(gold.metadata)
        rows = materialize(ctx.spec, ctx.settings, version=version)
        ctx.outputs.update({"materialized_rows": rows, "gold_version": version})
        ctx.log_metrics({"materialized_rows": rows})
        print(f"materialized {rows} rows from gold version {version}")
        return rows


def component(image: str) -> PythonComponent:
    from components.tasks import lightweight

    return lightweight(build_features, image)
