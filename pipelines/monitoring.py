"""Monitoring: check drift, and retrain (the training pipeline, nested) when it is detected."""

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from kubricks.settings import KubricksSettings

NAME = "monitoring"
DESCRIPTION = "Compare gold with the champion's training data; retrain when features drift."


def build(settings: KubricksSettings) -> GraphComponent:
    from components import monitor
    from components.tasks import SMALL, closing_parent, configure
    from pipelines import training

    retrain = training.build(settings, close_parent=False)

    @dsl.pipeline(name=NAME, description=DESCRIPTION)
    def monitoring(
        usecase: str = "churn",
        p_value: float = 0.05,
        drift_share: float = 0.5,
        source: str = "",
        rows: int = 10_000,
        batch_id: str = "",
        budget_minutes: float = 2.0,
        max_trials: int = 20,
        seed: int = 42,
        thresholds: dict = {},  # noqa: B006 - KFP reads the default; {} keeps the spec's own
        parent_run_id: str = "",
    ):
        """``p_value``: per-feature test level; ``drift_share``: share of drifted features
        that triggers retraining; the rest are the training pipeline's parameters."""
        with closing_parent(settings, parent_run_id):
            checked = configure(
                monitor.component(settings.image)(
                    usecase=usecase,
                    p_value=p_value,
                    drift_share=drift_share,
                    parent_run_id=parent_run_id,
                ),
                settings,
                SMALL,
            ).set_display_name("monitor drift")
            with dsl.If(checked.outputs["Output"] == True, name="drift-detected"):  # noqa: E712
                retrain(
                    usecase=usecase,
                    source=source,
                    rows=rows,
                    batch_id=batch_id,
                    budget_minutes=budget_minutes,
                    max_trials=max_trials,
                    seed=seed,
                    thresholds=thresholds,
                    parent_run_id=parent_run_id,
                ).set_display_name("retrain")

    return monitoring
