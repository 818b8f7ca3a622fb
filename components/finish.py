"""Close the run: the exit handler that ends the MLflow parent run with the pipeline's state.

:func:`components.tasks.closing_parent` wraps it as a component (tasks imports this module,
never the other way round)."""

from kfp.dsl import PipelineTaskFinalStatus


def close_parent_run(parent_run_id: str, status: PipelineTaskFinalStatus):
    """Runs after every other task, failed or not; a no-op without a parent run."""
    from kubricks.runs.correlation import close_parent
    from kubricks.settings import get_settings

    print(close_parent(get_settings(), parent_run_id, status.state, status.error_message))
