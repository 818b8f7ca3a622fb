"""Close the run: the exit handler that ends the MLflow parent run with the pipeline's state."""

from kfp.dsl import PipelineTaskFinalStatus
from kfp.dsl.python_component import PythonComponent


def close_parent_run(parent_run_id: str, status: PipelineTaskFinalStatus):
    """Runs after every other task, failed or not; a no-op without a parent run."""
    from kubricks.runs.correlation import close_parent
    from kubricks.settings import get_settings

    print(close_parent(get_settings(), parent_run_id, status.state, status.error_message))


def component(image: str) -> PythonComponent:
    from components.tasks import lightweight

    return lightweight(close_parent_run, image)
