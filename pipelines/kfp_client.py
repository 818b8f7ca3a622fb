"""Cluster execution through ``kfp.Client``: submit a run, create a recurring run."""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubricks.errors import KubricksError, ServiceUnavailable
from kubricks.settings import KubricksSettings
from pipelines import catalog
from pipelines.compile import compile_pipeline

EXPERIMENT = "kubricks"


@dataclass(frozen=True)
class Submitted:
    pipeline: str
    kfp_run_id: str
    host: str
    url: str


def client(host: str, settings: KubricksSettings):
    """A KFP API client; fails with the host named when it cannot be reached."""
    import kfp

    try:
        with warnings.catch_warnings():  # "only works with KFP v2.0.0-beta.2 and later"
            warnings.simplefilter("ignore", FutureWarning)
            return kfp.Client(host=host, namespace=settings.kfp_namespace)
    except Exception as exc:
        raise ServiceUnavailable(f"Kubeflow Pipelines at {host} is not reachable: {exc}") from exc


def remote_root(settings: KubricksSettings) -> str | None:
    """An object-store pipeline root (s3://, minio://, gs://); None keeps the KFP default."""
    root = settings.pipeline_root
    return root if root and "://" in root else None


def cron_expression(cron: str) -> str:
    """KFP wants six fields (seconds first); accept the usual five and prefix ``0``."""
    fields = cron.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return cron
    raise KubricksError(
        f"--cron {cron!r}: expected 5 fields (minute hour day month weekday), e.g. '0 3 * * *'"
    )


def submit(
    name: str,
    arguments: dict[str, Any],
    settings: KubricksSettings,
    host: str,
    run_name: str,
    api: Any | None = None,
) -> Submitted:
    """Compile ``name`` with these settings and start one run on the cluster."""
    key = catalog.canonical(name)
    api = api or client(host, settings)
    with tempfile.TemporaryDirectory() as tmp:
        package = compile_pipeline(key, settings, Path(tmp))
        result = api.create_run_from_pipeline_package(
            str(package),
            arguments=arguments,
            run_name=run_name,
            experiment_name=EXPERIMENT,
            namespace=settings.kfp_namespace,
            pipeline_root=remote_root(settings),
            enable_caching=False,
        )
    run_id = result.run_id
    return Submitted(key, run_id, host, f"{host.rstrip('/')}/#/runs/details/{run_id}")


def schedule(
    name: str,
    cron: str,
    arguments: dict[str, Any],
    settings: KubricksSettings,
    host: str,
    api: Any | None = None,
) -> str:
    """Create a recurring run of ``name``; return its id."""
    key = catalog.canonical(name)
    expression = cron_expression(cron)
    api = api or client(host, settings)
    experiment = api.create_experiment(EXPERIMENT, namespace=settings.kfp_namespace)
    with tempfile.TemporaryDirectory() as tmp:
        package = compile_pipeline(key, settings, Path(tmp))
        job = api.create_recurring_run(
            experiment_id=experiment.experiment_id,
            job_name=f"kubricks-{key.replace('_', '-')}",
            description=f"kubricks {key} on cron {cron}",
            cron_expression=expression,
            max_concurrency=1,
            no_catchup=True,
            pipeline_package_path=str(package),
            params=arguments,
            pipeline_root=remote_root(settings),
            enable_caching=False,
        )
    return job.recurring_run_id
