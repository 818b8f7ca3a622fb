"""Close the run: the exit handler that ends the MLflow parent run with the pipeline's state.

:func:`closing_parent` lives here, beside the component it runs, so that ``components.tasks``
(which every component uses) never imports a component module back.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from kfp.dsl import PipelineTaskFinalStatus
from kfp.dsl.python_component import PythonComponent

from components.tasks import SMALL, configure, lightweight
from kubricks.settings import KubricksSettings


def close_parent_run(parent_run_id: str, status: PipelineTaskFinalStatus):
    """Runs after every other task, failed or not; a no-op without a parent run."""
    from kubricks.runs.correlation import close_parent
    from kubricks.settings import get_settings

    print(close_parent(get_settings(), parent_run_id, status.state, status.error_message))


def component(image: str) -> PythonComponent:
    return lightweight(close_parent_run, image)


@contextmanager
def closing_parent(
    settings: KubricksSettings, parent_run_id: object, enabled: bool = True
) -> Iterator[None]:
    """Run the tasks created inside under an exit handler that closes the MLflow parent run.

    Off for a pipeline nested in another: the outer pipeline closes the shared parent.
    """
    if not enabled:
        yield
        return
    from kfp import dsl

    closer = configure(component(settings.image)(parent_run_id=parent_run_id), settings, SMALL)
    with dsl.ExitHandler(closer.set_display_name("close MLflow run"), name="close-parent-run"):
        yield
