"""How every pipeline task is dressed: image, retries, resources, security, settings.

kfp.local ignores the Kubernetes parts (it warns and runs the step in a subprocess);
the compiled YAML carries them to the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from kubricks import pods
from kubricks.settings import KubricksSettings
from kubricks.steps.environment import env_name, plain_fields, secret_fields

if TYPE_CHECKING:
    from collections.abc import Callable

    from kfp.dsl import PipelineTask
    from kfp.dsl.python_component import PythonComponent

NON_ROOT_UID = pods.PROJECT_UID  # the project image's user
# the settings an MLflow login consists of (KubricksSettings fields)
TRACKING_LOGIN = ("tracking_username", "tracking_password")


@dataclass(frozen=True)
class Resources:
    """Container requests and limits of one step."""

    cpu_request: str = "500m"
    cpu_limit: str = "2"
    memory_request: str = "1Gi"
    memory_limit: str = "4Gi"


SMALL = Resources("250m", "1", "512Mi", "2Gi")
SPARK = Resources("1", "2", "2Gi", "6Gi")  # local-mode Spark inside the step's container
TRAINING = Resources("2", "4", "4Gi", "8Gi")


@cache
def lightweight(func: Callable, image: str) -> PythonComponent:
    """A KFP lightweight component of ``func`` running on the project image.

    Nothing is pip-installed at run time: the image (or, locally, this virtualenv)
    already holds Kubricks and its dependencies.
    """
    from kfp import dsl

    return dsl.component(func, base_image=image, install_kfp_package=False)


def configure(
    task: PipelineTask,
    settings: KubricksSettings,
    resources: Resources,
    network: bool = True,
    tracking_secret: str | None = None,
) -> PipelineTask:
    """Apply the project's conventions to one task; returns it for chaining.

    ``tracking_secret`` names a Secret whose ``KUBRICKS_TRACKING_USERNAME`` and
    ``KUBRICKS_TRACKING_PASSWORD`` this step logs in to MLflow with instead of the pipelines'
    login: the gate's own user, the only one the ``kubricks-auth`` server lets move an alias.
    """
    from kfp import kubernetes

    task.set_caching_options(False)  # steps are idempotent on their own; always re-check
    if network and settings.pipeline_retries > 0:
        task.set_retry(
            settings.pipeline_retries,
            backoff_duration=f"{settings.pipeline_retry_backoff}s",
            backoff_factor=2.0,
        )
    task.set_cpu_request(resources.cpu_request).set_cpu_limit(resources.cpu_limit)
    task.set_memory_request(resources.memory_request).set_memory_limit(resources.memory_limit)
    kubernetes.set_security_context(
        task, run_as_user=NON_ROOT_UID, run_as_group=pods.PROJECT_GID, run_as_non_root=True
    )
    login = set(TRACKING_LOGIN) if tracking_secret else set()
    kubernetes.use_config_map_as_env(
        task,
        settings.settings_configmap,
        {env_name(f): env_name(f) for f in plain_fields() if f not in login},
        optional=True,
    )
    kubernetes.use_secret_as_env(
        task,
        settings.secrets_name,
        {env_name(f): env_name(f) for f in secret_fields() if f not in login},
        optional=True,
    )
    if tracking_secret:  # required: a gate without its own login must not start
        kubernetes.use_secret_as_env(
            task, tracking_secret, {env_name(f): env_name(f) for f in TRACKING_LOGIN}
        )
    return task
