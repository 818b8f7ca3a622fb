"""Batch inference: score the gold table with the champion into gold/<name>_predictions."""

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from kubricks.settings import KubricksSettings

NAME = "batch_inference"
DESCRIPTION = "Score the gold table with the champion model (Spark), once per batch id."


def build(settings: KubricksSettings) -> GraphComponent:
    from components import batch_score
    from components.tasks import SPARK, closing_parent, configure

    @dsl.pipeline(name=NAME.replace("_", "-"), description=DESCRIPTION)
    def batch_inference(usecase: str = "churn", batch_id: str = "", parent_run_id: str = ""):
        """``batch_id``: empty for one derived from the gold and model versions."""
        with closing_parent(settings, parent_run_id):
            configure(
                batch_score.component(settings.image)(
                    usecase=usecase,
                    batch_id=batch_id,
                    parent_run_id=parent_run_id,
                ),
                settings,
                SPARK,
            ).set_display_name("batch score")

    return batch_inference
