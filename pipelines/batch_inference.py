"""Batch inference: score the gold table with the champion into gold/<name>_predictions.

It reads the gold version the last recorded ingest left (or the one given), never the
latest commit: what training and monitoring read is what is scored.
"""

from typing import Any

from kfp.dsl.graph_component import GraphComponent

from kubricks.settings import KubricksSettings
from pipelines.builder import PARENT_RUN_ID, USECASE, Param, pipeline

NAME = "batch_inference"
DESCRIPTION = "Score the gold table with the champion model (Spark), once per batch id."
PARAMETERS = (
    Param("batch_id", str, "", "Scoring batch id; empty: one from the gold and model versions."),
    Param("gold_version", int, -1, "Gold Delta version to score; -1: the last ingest's."),
)


def build(settings: KubricksSettings) -> GraphComponent:
    return pipeline(
        NAME,
        DESCRIPTION,
        [USECASE, *PARAMETERS, PARENT_RUN_ID],
        lambda args: tasks(settings, args),
    )


def tasks(settings: KubricksSettings, args: dict[str, Any]) -> None:
    from components import batch_score
    from components.finish import closing_parent
    from components.tasks import SPARK, configure

    with closing_parent(settings, args["parent_run_id"]):
        configure(
            batch_score.component(settings.image)(
                usecase=args["usecase"],
                batch_id=args["batch_id"],
                gold_version=args["gold_version"],
                parent_run_id=args["parent_run_id"],
            ),
            settings,
            SPARK,
        ).set_display_name("batch score")
