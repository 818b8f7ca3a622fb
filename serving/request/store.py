"""Registry versions imported into the BentoML model store, so serving never needs MLflow.

A version is downloaded once (``models:/<name>/<version>``) into a store model tagged
``kubricks-<usecase>:v<version>``; importing again is a no-op. A file lock keeps two
workers that swap at the same moment from importing the same version twice.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from kubricks.registry import compiled as compiled_tags
from kubricks.scoring.model import with_fast_preprocessing
from kubricks.settings import KubricksSettings, resolved_bentoml_home
from kubricks.spec import UseCaseSpec
from serving.request.model import MLFLOW_SUBDIR, LoadedModel, load_mlflow_dir, with_compiled

logger = logging.getLogger(__name__)
DIGEST_METADATA = "model_sha256"
COMPILED_METADATA = "compiled_sha256"  # set when the gate recorded a compiled form that agreed
COMPILED_NOTE_METADATA = "compiled_note"


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
    travels in the store model's metadata and is checked again at every load). The
    compiled form comes along when the gate recorded one that agreed
    (:mod:`kubricks.registry.compiled`), under the same rule with its own digest.
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
            tags = client.get_model_version(spec.name, str(version)).tags or {}
            compiled, note = _download_compiled(tags, Path(tmp), label(spec.name, version))
            metadata = {
                "registered_model": spec.name,
                "model_version": str(version),
                DIGEST_METADATA: digest,
                COMPILED_NOTE_METADATA: note,
            }
            if compiled is not None:
                metadata[COMPILED_METADATA] = tags[compiled_tags.SHA_TAG]
            with bentoml.models.create(
                tag,
                labels={"usecase": spec.name, "model_version": str(version)},
                metadata=metadata,
                _model_store=model_store(settings),
            ) as target:
                shutil.copytree(local, Path(target.path) / MLFLOW_SUBDIR)
                if compiled is not None:
                    shutil.copyfile(compiled, Path(target.path) / compiled_tags.FILE_NAME)
    return tag


def _download_compiled(tags: dict[str, str], folder: Path, what: str) -> tuple[Path | None, str]:
    """The version's compiled file, verified against the gate's digest; else None and why."""
    import mlflow

    if not compiled_tags.agreed(tags):
        return None, tags.get(compiled_tags.REASON_TAG) or "the gate recorded no compiled form"
    try:
        path = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=tags[compiled_tags.URI_TAG], dst_path=str(folder / "compiled")
            )
        )
        compiled_tags.verified_bytes(path, tags[compiled_tags.SHA_TAG], what)
    except Exception as exc:  # scikit-learn still serves; the note says why
        logger.warning("%s: not using the compiled form: %s", what, exc)
        return None, f"compiled form refused: {exc}"
    return path, "verified"


def load_version(settings: KubricksSettings, spec: UseCaseSpec, version: str) -> LoadedModel:
    """Load a version from the store, importing it from the registry first if absent."""
    import bentoml

    tag = import_version(settings, spec, version)
    stored = bentoml.models.get(tag, _model_store=model_store(settings))
    metadata = stored.info.metadata
    digest = str(metadata.get(DIGEST_METADATA, ""))
    loaded = load_mlflow_dir(
        Path(stored.path) / MLFLOW_SUBDIR, spec, spec.name, str(version), digest
    )
    note = str(metadata.get(COMPILED_NOTE_METADATA) or "no compiled form")
    expected = metadata.get(COMPILED_METADATA)
    fast = settings.serving_fast_preprocessing
    if expected and settings.serving_compiled:
        path = Path(stored.path) / compiled_tags.FILE_NAME
        compiled = with_compiled(loaded, path, str(expected), fast)
        if compiled.compiled is not None or not fast:
            return compiled
        loaded, note = compiled, compiled.backend_note
    elif expected:
        note = "compiled form disabled (KUBRICKS_SERVING_COMPILED=false)"
    loaded = with_fast_preprocessing(loaded) if fast else loaded
    return replace(loaded, backend_note=note)
