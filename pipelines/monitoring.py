"""Monitoring: windowed drift and quality against the champion's training data, then the
closed loop (retrain only when the policy allows, gate, promote), then deploy if promoted;
meanwhile the use case's tables are compacted and vacuumed (``maintain``), so the schedule
that runs monitoring in the cluster also keeps the lakehouse fast and small.

The retraining takes the training pipeline's search parameters (``training.SEARCH_PARAMETERS``),
passed through by name, so the two cannot drift apart. Retraining runs inside the monitor step
(``kubricks.retraining.loop.run_once``) because the decision, its lease against concurrent
runs and the record of the gate's outcome belong to one transaction-like unit.
"""

from typing import Any

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from kubricks.settings import KubricksSettings
from pipelines import training
from pipelines.builder import PARENT_RUN_ID, USECASE, Param, pipeline, values

NAME = "monitoring"
DESCRIPTION = (
    "Windowed drift and quality against the champion's training data; retrain when the policy"
    " allows; deploy a promoted model."
)
MONITOR_PARAMETERS = (
    Param("monitor_source", str, "gold", "What is monitored: gold, inference-log, or a path."),
    Param("granularity", str, "", "Window size: hour, day, week or month; empty: the spec's."),
    Param("retrain", bool, True, "Run the closed loop after monitoring (policy decides)."),
)
MAINTENANCE_PARAMETERS = (
    Param("maintain", bool, True, "Then compact the use case's tables and vacuum old files."),
    Param("retain_hours", int, 168, "Vacuum keeps files younger than this (Delta: 7 days)."),
)
PARAMETERS = (*MONITOR_PARAMETERS, *MAINTENANCE_PARAMETERS)


def build(settings: KubricksSettings) -> GraphComponent:
    return pipeline(
        NAME,
        DESCRIPTION,
        [USECASE, *PARAMETERS, *training.SEARCH_PARAMETERS, PARENT_RUN_ID],
        lambda args: tasks(settings, args),
    )


def tasks(settings: KubricksSettings, args: dict[str, Any]) -> None:
    from components import deploy, maintain, monitor
    from components.finish import closing_parent
    from components.tasks import SMALL, TRAINING, configure

    with closing_parent(settings, args["parent_run_id"]):
        checked = configure(
            monitor.component(settings.image)(
                **values(
                    args, [USECASE, *MONITOR_PARAMETERS, *training.SEARCH_PARAMETERS, PARENT_RUN_ID]
                )
            ),
            settings,
            TRAINING,
            network=False,
            # the closed loop gates inside this step, so it logs in as the gate
            tracking_secret=settings.gate_secrets_name,
        ).set_display_name("monitor and retrain")
        with dsl.If(args["maintain"] == True, name="maintain"):  # noqa: E712
            configure(
                maintain.component(settings.image)(
                    usecase=args["usecase"],
                    retain_hours=args["retain_hours"],
                    parent_run_id=args["parent_run_id"],
                ),
                settings,
                SMALL,
            ).set_display_name("compact and vacuum").after(checked)
        with dsl.If(checked.outputs["Output"] == True, name="promoted"):  # noqa: E712
            configure(
                deploy.component(settings.image)(
                    usecase=args["usecase"],
                    registered=checked.outputs["model"],
                    parent_run_id=args["parent_run_id"],
                ),
                settings,
                SMALL,
            ).set_display_name("deploy")
