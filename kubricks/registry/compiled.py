"""A compiled predictor for a gated model: the final estimator as ONNX, run by ONNX Runtime.

A random forest answers one row in milliseconds through scikit-learn (a Python call per
tree) and in tens of microseconds through ONNX Runtime's tree ensemble kernel. The model
is split at its last step: the fitted preprocessing (imputing, scaling, the vocabulary
and one-hot/ordinal steps of :mod:`kubricks.training.encoding`, calendar parts) keeps
running in scikit-learn, and only the estimator it feeds is converted. A full conversion
would need ONNX converters for ``CategoryText`` (raw values of any type normalised to
text) and ``CalendarFeatures`` (date parsing, which ONNX has no operator for); splitting
keeps one implementation of both, so they cannot drift apart between the two paths.

The gate converts a model it passes, scores the candidate's holdout both ways and keeps
the compiled form only when every probability (or prediction) agrees within
:data:`TOLERANCE`. It records the outcome on the version (:data:`COMPILED_TAG`, the largest
difference, the artifact's sha256) and logs the ONNX file, a protobuf (data, not code), as
an artifact of the training run. Serving uses it only when the tags say it agreed and the
file hashes to the recorded digest; otherwise it scores with scikit-learn and says why.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kubricks.errors import KubricksError

logger = logging.getLogger(__name__)

COMPILED_TAG = "kubricks.compiled"  # "onnx" when the compiled form agreed, else "none"
DIFF_TAG = "kubricks.compiled.max_abs_diff"
SHA_TAG = "kubricks.compiled_sha256"
URI_TAG = "kubricks.compiled.artifact"  # runs:/<run>/compiled/model.onnx
REASON_TAG = "kubricks.compiled.reason"
ONNX, NONE = "onnx", "none"
ARTIFACT_DIR = "compiled"
FILE_NAME = "model.onnx"
TOLERANCE = 1e-5  # absolute, on probabilities; relative to the value for regression
INPUT = "features"


class CompileFailed(KubricksError):
    """The model cannot be compiled, or its compiled form does not agree with it."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split(model: Any) -> tuple[Any | None, Any]:
    """(the preprocessing steps or None, the final estimator) of a fitted model."""
    steps = getattr(model, "steps", None)
    if steps:
        return (model[:-1] if len(steps) > 1 else None), steps[-1][1]
    return None, model


def _is_classifier(estimator: Any) -> bool:
    return hasattr(estimator, "classes_") and hasattr(estimator, "predict_proba")


def export(model: Any) -> bytes:
    """The final estimator of ``model`` as a serialized ONNX graph (float32 input).

    scikit-learn's trees compare features as float32 already, so float input changes no
    split of a forest; LightGBM and linear models are checked by :func:`agreement`.
    """
    _, estimator = split(model)
    width = getattr(estimator, "n_features_in_", None)
    if width is None:
        raise CompileFailed(f"{type(estimator).__name__} does not say how many inputs it takes")
    try:
        if type(estimator).__module__.startswith("lightgbm"):
            from onnxmltools import convert_lightgbm
            from onnxmltools.convert.common.data_types import FloatTensorType

            graph = convert_lightgbm(
                estimator, initial_types=[(INPUT, FloatTensorType([None, width]))], zipmap=False
            )
        else:
            from skl2onnx import convert_sklearn
            from skl2onnx.common.data_types import FloatTensorType

            options = {id(estimator): {"zipmap": False}} if _is_classifier(estimator) else None
            graph = convert_sklearn(
                estimator,
                initial_types=[(INPUT, FloatTensorType([None, width]))],
                options=options,
            )
    except Exception as exc:  # the converters raise anything from RuntimeError to KeyError
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CompileFailed(
            f"{type(estimator).__name__} cannot be converted to ONNX: {first}"
        ) from exc
    return graph.SerializeToString()


class CompiledModel:
    """The scikit-learn preprocessing, then the ONNX estimator: quacks like the pipeline
    (``predict_proba``, ``predict``, ``classes_``) for :class:`LoadedModel`."""

    def __init__(self, model: Any, onnx_bytes: bytes, fast_preprocess: bool = True) -> None:
        import onnxruntime

        from kubricks.training.fast_preprocess import FastPreprocess, for_pipeline

        self.preprocess, estimator = split(model)
        # The fitted preprocessing as array lookups when every step is one it reproduces
        # exactly (kubricks/training/fast_preprocess.py); else scikit-learn's transform.
        self.preprocessing_note = "scikit-learn"
        if fast_preprocess and self.preprocess is not None:
            fast, self.preprocessing_note = for_pipeline(model)
            if fast is not None:
                self.preprocess = fast
        # The fast form also reads columns as arrays by name (fast_preprocess.Columns).
        self.takes_columns = isinstance(self.preprocess, FastPreprocess)
        self.classification = _is_classifier(estimator)
        if self.classification:
            self.classes_ = estimator.classes_
        options = onnxruntime.SessionOptions()
        # Batches are small and the machine is shared: one thread avoids a pool that spins.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # LightGBM's label output warns about its shape
        try:
            self.session = onnxruntime.InferenceSession(
                onnx_bytes, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise CompileFailed(f"ONNX Runtime refuses the compiled model: {exc}") from exc
        names = [o.name for o in self.session.get_outputs()]
        self.output = "probabilities" if self.classification else names[0]
        if self.output not in names:
            raise CompileFailed(f"the compiled model has no {self.output!r} output ({names})")

    def inputs(self, frame: Any) -> np.ndarray:
        values = frame if self.preprocess is None else self.preprocess.transform(frame)
        return np.ascontiguousarray(np.asarray(values, dtype=np.float32))

    def run(self, frame: Any) -> np.ndarray:
        (out,) = self.session.run([self.output], {INPUT: self.inputs(frame)})
        return np.asarray(out, dtype=float)

    def predict_proba(self, frame: Any) -> np.ndarray:
        return self.run(frame)

    def predict(self, frame: Any) -> np.ndarray:
        out = self.run(frame)
        if self.classification:
            return np.asarray(self.classes_)[out.argmax(axis=1)]
        return out.reshape(len(out), -1)[:, 0]


def outputs(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """What the agreement compares: class probabilities, or predictions as one column."""
    if _is_classifier(split(model)[1]):
        return np.asarray(model.predict_proba(frame), dtype=float)
    return np.asarray(model.predict(frame), dtype=float).reshape(len(frame), -1)


def difference(model: Any, compiled: CompiledModel, frame: pd.DataFrame) -> float:
    """The largest disagreement on ``frame``: absolute for probabilities, relative to the
    value (when above 1) for regression outputs, whose scale is the label's."""
    expected = outputs(model, frame)
    found = outputs(compiled, frame)
    if expected.shape != found.shape:
        raise CompileFailed(f"compiled outputs {found.shape}, scikit-learn {expected.shape}")
    gap = np.abs(found - expected)
    if not compiled.classification:
        gap = gap / np.maximum(1.0, np.abs(expected))
    return float(gap.max()) if gap.size else 0.0


@dataclass(frozen=True)
class Compilation:
    """The gate's verdict on compiling one model, and the artifact when it agreed."""

    status: str  # ONNX or NONE
    reason: str
    max_abs_diff: float | None = None
    artifact: bytes | None = None

    def tags(self, uri: str | None = None) -> dict[str, str]:
        tags = {COMPILED_TAG: self.status, REASON_TAG: self.reason[:5000]}
        if self.max_abs_diff is not None:
            tags[DIFF_TAG] = repr(self.max_abs_diff)
        if self.artifact is not None and uri is not None:
            tags[SHA_TAG] = sha256(self.artifact)
            tags[URI_TAG] = uri
        return tags


def compile_model(model: Any, holdout: pd.DataFrame, tolerance: float = TOLERANCE) -> Compilation:
    """Convert ``model`` and keep the result only if it agrees on every holdout row (scored
    end to end the way serving scores: fast preprocessing, then ONNX Runtime)."""
    try:
        artifact = export(model)
        gap = difference(model, CompiledModel(model, artifact), holdout)
    except CompileFailed as exc:
        return Compilation(NONE, str(exc))
    except Exception as exc:  # e.g. preprocessing output that is not numeric
        return Compilation(NONE, f"the compiled model could not score the holdout: {exc}")
    if not np.isfinite(gap) or gap > tolerance:
        return Compilation(
            NONE,
            f"compiled outputs differ from scikit-learn by {gap:.3g} on the holdout"
            f" (tolerance {tolerance:g}): scored with scikit-learn",
            gap,
        )
    return Compilation(
        ONNX, f"agrees within {tolerance:g} on {len(holdout)} holdout rows", gap, artifact
    )


def record(
    client: Any, name: str, version: str, run_id: str, model: Any, holdout: pd.DataFrame
) -> dict[str, str]:
    """Compile a passed version, log the ONNX file to its training run when it agrees, and
    tag the version with the outcome; returns the tags. Never raises for the model's sake
    (a model that cannot be compiled is served by scikit-learn), only for a lost server."""
    from kubricks import tracking

    result = compile_model(model, holdout)
    tags = result.tags()
    if result.artifact is not None:
        try:
            with tempfile.TemporaryDirectory(prefix="kubricks-compiled-") as tmp:
                path = Path(tmp) / FILE_NAME
                path.write_bytes(result.artifact)
                client.log_artifact(run_id, str(path), ARTIFACT_DIR)
            tags = result.tags(f"runs:/{run_id}/{ARTIFACT_DIR}/{FILE_NAME}")
        except Exception as exc:
            if tracking.lost(client.tracking_uri):
                raise
            why = f"the compiled model could not be logged to run {run_id}: {exc}"
            tags = replace(result, status=NONE, reason=why, artifact=None).tags()
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, value)
    return tags


def verified_bytes(path: Path, expected: str, what: str) -> bytes:
    """The compiled file's bytes if they hash to the digest the gate recorded."""
    from kubricks.registry.safe_load import UntrustedModel

    data = path.read_bytes()
    found = sha256(data)
    if found != expected:
        raise UntrustedModel(
            f"{what}: the compiled artifact changed after the gate recorded it"
            f" (sha256 {found[:12]}…, recorded {expected[:12]}…)"
        )
    return data


def agreed(tags: Mapping[str, str]) -> bool:
    """True when the gate recorded a compiled form that agreed, with its digest."""
    return tags.get(COMPILED_TAG) == ONNX and bool(tags.get(SHA_TAG)) and bool(tags.get(URI_TAG))
