"""Training: ingest → build features → train (AutoML) → validate and promote → deploy if passed."""

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from kubricks.settings import KubricksSettings

NAME = "training"
DESCRIPTION = "Ingest a batch, build features, run AutoML, gate the candidate, deploy the champion."


def build(settings: KubricksSettings, close_parent: bool = True) -> GraphComponent:
    """The training pipeline for these settings (image, retries, settings wiring).

    ``close_parent=False`` builds it for nesting: the outer pipeline closes the MLflow run.
    """
    from components import deploy, features, gate, ingest, train
    from components.tasks import SMALL, SPARK, TRAINING, closing_parent, configure

    image = settings.image

    @dsl.pipeline(name=NAME, description=DESCRIPTION)
    def training(
        usecase: str = "churn",
        source: str = "",
        rows: int = 10_000,
        batch_id: str = "",
        budget_minutes: float = 2.0,
        max_trials: int = 20,
        seed: int = 42,
        thresholds: dict = {},  # noqa: B006 - KFP reads the default; {} keeps the spec's own
        parent_run_id: str = "",
    ):
        """``source``: a file, a folder or 'synthetic' (``rows`` rows); empty for the spec's.
        ``thresholds``: metric minimums laid over the spec's, e.g. {"roc_auc": 0.8}."""
        with closing_parent(settings, parent_run_id, close_parent):
            ingested = configure(
                ingest.component(image)(
                    usecase=usecase,
                    source=source,
                    rows=rows,
                    batch_id=batch_id,
                    parent_run_id=parent_run_id,
                ),
                settings,
                SPARK,
            ).set_display_name("ingest")
            built = configure(
                features.component(image)(
                    usecase=usecase,
                    gold=ingested.outputs["gold"],
                    parent_run_id=parent_run_id,
                ),
                settings,
                SMALL,
            ).set_display_name("build features")
            trained = configure(
                train.component(image)(
                    usecase=usecase,
                    gold=ingested.outputs["gold"],
                    budget_minutes=budget_minutes,
                    max_trials=max_trials,
                    seed=seed,
                    parent_run_id=parent_run_id,
                ),
                settings,
                TRAINING,
                network=False,
            ).set_display_name("train (AutoML)")
            trained.after(built)
            gated = configure(
                gate.component(image)(
                    usecase=usecase,
                    model=trained.outputs["model"],
                    thresholds=thresholds,
                    parent_run_id=parent_run_id,
                ),
                settings,
                SMALL,
            ).set_display_name("validate and promote")
            with dsl.If(gated.outputs["Output"] == True, name="gate-passed"):  # noqa: E712
                configure(
                    deploy.component(image)(
                        usecase=usecase,
                        registered=gated.outputs["registered"],
                        parent_run_id=parent_run_id,
                    ),
                    settings,
                    SMALL,
                ).set_display_name("deploy")

    return training
