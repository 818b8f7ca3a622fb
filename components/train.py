"""Train: an AutoML search whose best model becomes the candidate."""

from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output
from kfp.dsl.python_component import PythonComponent


def train(
    usecase: str,
    gold: Input[Dataset],
    budget_minutes: float,
    max_trials: int,
    seed: int,
    parent_run_id: str,
    model: Output[Model],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
):
    """Search on the gold version ingest wrote, under this step's MLflow run; publish the
    best model's holdout view. The budget counts from here and keeps time for the gate."""
    from kubricks.training.budget import Budget

    budget = Budget.minutes(budget_minutes)
    from kubricks.registry.errors import RegistryError
    from kubricks.registry.safe_load import load_logged
    from kubricks.registry.scoring import holdout_classes, holdout_scores, load_holdout
    from kubricks.steps import artifacts
    from kubricks.steps.step import step
    from kubricks.training.automl import train as search

    with step("train", usecase, parent_run_id) as ctx:
        result = search(
            ctx.spec,
            ctx.settings,
            budget_minutes=budget_minutes,
            max_trials=max_trials,
            seed=seed,
            parent_run_id=ctx.mlflow_run_id or parent_run_id or None,
            progress=False,
            gold_version=artifacts.pinned_version(gold.metadata),
            budget=budget,
        )
        read_version = int(result.lineage["gold_version"])
        artifacts.write_json(model.path, artifacts.result_to_json(result))
        model.metadata.update(artifacts.model_metadata(result))
        model.metadata["gold_table"] = gold.metadata.get("table")
        model.metadata["gold_version"] = read_version
        for name, value in result.metrics.items():
            metrics.log_metric(name, float(value))
        if ctx.spec.problem_type == "classification":
            holdout = load_holdout(ctx.client(), result.run_id, ctx.spec)
            estimator = load_logged(result.model_uri)
            try:  # binary: ROC and confusion for the spec's positive class
                truth, scores = holdout_scores(estimator, holdout, ctx.spec)
                classification.log_roc_curve(*artifacts.roc_points(truth, scores))
                classification.log_confusion_matrix(*artifacts.confusion(truth, scores))
            except RegistryError:  # multiclass: no single positive class, no ROC curve
                actual, predicted = holdout_classes(estimator, holdout, ctx.spec)
                classification.log_confusion_matrix(*artifacts.class_confusion(actual, predicted))
        ctx.outputs.update(
            {
                "model_uri": result.model_uri,
                "family": result.family,
                "trials": result.n_trials,
                "gold_version": read_version,
                "entity_rows": int(result.lineage.get("entity_rows", 0)),
                **result.metrics,
            }
        )
        ctx.log_metrics(result.metrics)
        for note in result.notes:
            print(note)
        print(f"best {result.family} after {result.n_trials} trials: {result.metrics}")


def component(image: str) -> PythonComponent:
    from components.tasks import lightweight

    return lightweight(train, image)
