"""Monitoring: check drift, and retrain (the training pipeline, nested) when it is detected.

Its retraining parameters are the training pipeline's own (``training.PARAMETERS``),
passed through by name, so the two cannot drift apart.
"""

from typing import Any

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from kubricks.settings import KubricksSettings
from pipelines import training
from pipelines.builder import PARENT_RUN_ID, USECASE, Param, pipeline, values

NAME = "monitoring"
DESCRIPTION = "Compare gold with the champion's training data; retrain when features drift."
PARAMETERS = (
    Param("p_value", float, 0.05, "Per-feature test level."),
    Param("drift_share", float, 0.5, "Share of drifted features that triggers retraining."),
)


def build(settings: KubricksSettings) -> GraphComponent:
    retrain = training.build(settings, close_parent=False)
    return pipeline(
        NAME,
        DESCRIPTION,
        [USECASE, *PARAMETERS, *training.PARAMETERS, PARENT_RUN_ID],
        lambda args: tasks(settings, retrain, args),
    )


def tasks(settings: KubricksSettings, retrain: GraphComponent, args: dict[str, Any]) -> None:
    from components import monitor
    from components.tasks import SMALL, closing_parent, configure

    with closing_parent(settings, args["parent_run_id"]):
        checked = configure(
            monitor.component(settings.image)(
                usecase=args["usecase"],
                p_value=args["p_value"],
                drift_share=args["drift_share"],
                parent_run_id=args["parent_run_id"],
            ),
            settings,
            SMALL,
        ).set_display_name("monitor drift")
        with dsl.If(checked.outputs["Output"] == True, name="drift-detected"):  # noqa: E712
            retrain(
                **values(args, [USECASE, *training.PARAMETERS, PARENT_RUN_ID])
            ).set_display_name("retrain")
