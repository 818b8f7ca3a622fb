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
from serving.model import MLFLOW_SUBDIR, LoadedModel, load_mlflow_dir

DIGEST_METADATA = "model_sha256"


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
    """Copy registry version ``version`` of ``spec.name`` into the store; returns its tag.

    Only an artifact that matches the digest the gate recorded is imported (the digest
    travels in the store model's metadata and is checked again at every load).
    """
    import bentoml

    from kubricks.registry.safe_load import download, label, model_digest, recorded_digest
    from kubricks.tracking import connect

    tag = tag_for(spec, version)
    lock = resolved_bentoml_home(settings) / f".{store_name(spec)}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with _locked(lock):
        if has_version(settings, spec, version):
            return tag
        client = connect(settings)
        expected = recorded_digest(client, spec.name, version)
        with tempfile.TemporaryDirectory() as tmp:
            local = download(spec.name, version, Path(tmp))
            digest = model_digest(local, label(spec.name, version))
            if digest != expected:
                from kubricks.registry.safe_load import UntrustedModel

                raise UntrustedModel(
                    f"{label(spec.name, version)}: the artifact changed after the gate"
                    " registered it; not imported"
                )
            with bentoml.models.create(
                tag,
                labels={"usecase": spec.name, "model_version": str(version)},
                metadata={
                    "registered_model": spec.name,
                    "model_version": str(version),
                    DIGEST_METADATA: digest,
                },
                _model_store=model_store(settings),
            ) as target:
                shutil.copytree(local, Path(target.path) / MLFLOW_SUBDIR)
    return tag


def load_version(settings: KubricksSettings, spec: UseCaseSpec, version: str) -> LoadedModel:
    """Load a version from the store, importing it from the registry first if absent."""
    import bentoml

    tag = import_version(settings, spec, version)
    stored = bentoml.models.get(tag, _model_store=model_store(settings))
    digest = str(stored.info.metadata.get(DIGEST_METADATA, ""))
    return load_mlflow_dir(Path(stored.path) / MLFLOW_SUBDIR, spec, spec.name, str(version), digest)
