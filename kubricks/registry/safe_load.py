"""Models are data, never code: the one way Kubricks loads a registered model.

``mlflow.sklearn.load_model`` honours whatever serialization the artifact's own ``MLmodel``
file declares, and MLflow allows pickle by default, so anyone who can write to the
registry could make every loader run their code. Here a model is loaded only if:

- its ``MLmodel`` names the sklearn flavor serialized with skops (what
  :func:`kubricks.training.mlflow_logging.log_model` writes), nothing else;
- the ``MLmodel`` and model files hash to the digest the gate recorded on the version when
  it registered it (``kubricks.model_sha256``), so an artifact changed afterwards is
  refused;
- every type the skops file needs beyond skops' own safe defaults is in
  :data:`TRUSTED_TYPES`, a list kept in this code (a list read from the artifact, as MLflow
  does, would protect nothing).

Serving, batch and streaming scoring, monitoring, the gate and the demo all load here.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubricks.errors import KubricksError
from kubricks.tracking import forbid_pickle

DIGEST_TAG = "kubricks.model_sha256"
MLMODEL = "MLmodel"
# The types Kubricks' model families and transforms put in a skops file beyond skops' own
# trusted defaults (tests/kubricks/registry/test_safe_load.py checks every family against it).
TRUSTED_TYPES: tuple[str, ...] = (
    "collections.OrderedDict",
    "kubricks.training.calendar_features.CalendarFeatures",
    "kubricks.training.encoding.CategoryText",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
)


class UntrustedModel(KubricksError):
    """A model version is not in the one format Kubricks loads, or changed after the gate."""


@dataclass(frozen=True)
class LoadedVersion:
    name: str
    version: str
    estimator: Any
    digest: str


def label(name: str, version: str) -> str:
    return f"model {name!r} v{version}"


def skops_file(model_dir: Path, what: str) -> Path:
    """The skops file an MLflow model folder declares; refuse any other flavor or format."""
    try:
        mlmodel = yaml.safe_load((model_dir / MLMODEL).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UntrustedModel(f"{what}: no readable {MLMODEL} file ({exc})") from exc
    flavors = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
    sklearn = flavors.get("sklearn") if isinstance(flavors, dict) else None
    if not isinstance(sklearn, dict):
        found = ", ".join(sorted(flavors)) if isinstance(flavors, dict) else "none"
        raise UntrustedModel(
            f"{what}: flavor {found} is not allowed; Kubricks loads only scikit-learn models"
            " saved with skops"
        )
    fmt = sklearn.get("serialization_format")
    if fmt != "skops":
        raise UntrustedModel(
            f"{what}: serialization {fmt!r} is not allowed; Kubricks loads only skops models"
            " (a pickle can run code)"
        )
    name = str(sklearn.get("pickled_model", ""))
    path = (model_dir / name).resolve()
    if not name or model_dir.resolve() not in path.parents or not path.is_file():
        raise UntrustedModel(f"{what}: the skops file {name!r} is missing from the artifact")
    return path


def model_digest(model_dir: Path, what: str = "model") -> str:
    """sha256 over the ``MLmodel`` file and the skops file: what decides what gets loaded."""
    digest = hashlib.sha256()
    for path in (model_dir / MLMODEL, skops_file(model_dir, what)):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def load_dir(model_dir: Path, what: str, expected_digest: str | None) -> tuple[Any, str]:
    """The estimator in an MLflow model folder, if it is the artifact the gate recorded.

    ``expected_digest`` None is only for a model its own step has just logged and not yet
    registered (see :func:`load_logged`); the format and type checks still apply.
    """
    import skops.io

    forbid_pickle()
    digest = model_digest(model_dir, what)
    if expected_digest is not None and digest != expected_digest:
        raise UntrustedModel(
            f"{what}: the artifact changed after the gate registered it"
            f" (sha256 {digest[:12]}…, recorded {expected_digest[:12]}…)"
        )
    path = skops_file(model_dir, what)
    untrusted = set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
    if untrusted:
        raise UntrustedModel(
            f"{what}: the skops file needs type(s) Kubricks does not trust:"
            f" {', '.join(sorted(untrusted))}"
        )
    return skops.io.load(path, trusted=list(TRUSTED_TYPES)), digest


def recorded_digest(client: Any, name: str, version: str) -> str:
    """The digest the gate recorded on a version; a version without one is refused."""
    tags = client.get_model_version(name, str(version)).tags or {}
    digest = tags.get(DIGEST_TAG)
    if not digest:
        raise UntrustedModel(
            f"{label(name, version)} has no recorded digest: it was not registered by the"
            f" gate. Gate it with `kubricks models gate {version} --usecase {name}`"
        )
    return str(digest)


def download(name: str, version: str, destination: Path) -> Path:
    """The registry version's MLflow model folder, downloaded under ``destination``."""
    import mlflow

    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{name}/{version}", dst_path=str(destination)
    )
    return Path(local)


def load_version(client: Any, name: str, version: str) -> LoadedVersion:
    """Download, verify and load one registered version (see the module docstring)."""
    expected = recorded_digest(client, name, version)
    with tempfile.TemporaryDirectory(prefix="kubricks-model-") as tmp:
        folder = download(name, version, Path(tmp))
        estimator, digest = load_dir(folder, label(name, version), expected)
    return LoadedVersion(name, str(version), estimator, digest)


def load_logged(model_uri: str) -> Any:
    """A model the calling step logged moments ago (``runs:/…``), before the gate registers
    it and records its digest: skops only and trusted types only, but nothing to compare
    the digest with yet. Registered versions go through :func:`load_version`."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="kubricks-model-") as tmp:
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        estimator, _ = load_dir(folder, f"model {model_uri}", None)
    return estimator


def record_digest(client: Any, name: str, version: str) -> str:
    """Check a freshly registered version's format and record its digest on it.

    The gate calls this right after registering, before anything loads the version; from
    then on every loader compares the artifact with this digest.
    """
    with tempfile.TemporaryDirectory(prefix="kubricks-model-") as tmp:
        folder = download(name, version, Path(tmp))
        digest = model_digest(folder, label(name, version))
    client.set_model_version_tag(name, str(version), DIGEST_TAG, digest)
    return digest
