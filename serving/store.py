"""Registry versions imported into the BentoML model store, so serving never needs MLflow.

A version is downloaded once (``models:/<name>/<version>``) into a store model tagged
``kubricks-<usecase>:v<version>``; importing again is a no-op. A file lock keeps two
workers that swap at the same moment from importing the same version twice.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubricks.settings import KubricksSettings, resolved_bentoml_home
from kubricks.spec import UseCaseSpec
from kubricks.tracking import use_server
from serving.model import MLFLOW_SUBDIR, LoadedModel, load_mlflow_dir


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock across the worker processes of one machine."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def model_store(settings: KubricksSettings):  # -> bentoml ModelStore
    from bentoml._internal.models.model import ModelStore

    root = resolved_bentoml_home(settings) / "models"
    root.mkdir(parents=True, exist_ok=True)
    return ModelStore(str(root))


def store_name(spec: UseCaseSpec) -> str:
    return f"kubricks-{spec.name.lower()}"


def tag_for(spec: UseCaseSpec, version: str) -> str:
    return f"{store_name(spec)}:v{version}"


def has_version(settings: KubricksSettings, spec: UseCaseSpec, version: str) -> bool:
    import bentoml

    try:
        bentoml.models.get(tag_for(spec, version), _model_store=model_store(settings))
    except bentoml.exceptions.NotFound:
        return False
    return True


def import_version(settings: KubricksSettings, spec: UseCaseSpec, version: str) -> str:
    """Copy registry version ``version`` of ``spec.name`` into the store; returns its tag."""
    import bentoml
    import mlflow

    tag = tag_for(spec, version)
    lock = resolved_bentoml_home(settings) / f".{store_name(spec)}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with _locked(lock):
        if has_version(settings, spec, version):
            return tag
        use_server(settings.resolved_tracking_uri)
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{spec.name}/{version}", dst_path=tmp
            )
            with bentoml.models.create(
                tag,
                labels={"usecase": spec.name, "model_version": str(version)},
                metadata={"registered_model": spec.name, "model_version": str(version)},
                _model_store=model_store(settings),
            ) as target:
                shutil.copytree(local, Path(target.path) / MLFLOW_SUBDIR)
    return tag


def load_version(settings: KubricksSettings, spec: UseCaseSpec, version: str) -> LoadedModel:
    """Load a version from the store, importing it from the registry first if absent."""
    import bentoml

    tag = import_version(settings, spec, version)
    stored = bentoml.models.get(tag, _model_store=model_store(settings))
    return load_mlflow_dir(Path(stored.path) / MLFLOW_SUBDIR, spec, spec.name, str(version))
