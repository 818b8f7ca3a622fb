"""The gate compiles the models it passes and records what serving may use."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from kubricks.registry import compiled
from kubricks.registry.gate import register_and_gate
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.tracking import connect
from kubricks.training.result import TrainResult


@pytest.mark.slow
def test_a_passed_model_gets_its_checked_onnx_form_logged_and_recorded(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    candidates: dict[str, TrainResult],
    tmp_path: Path,
) -> None:
    decision = register_and_gate(spec, settings, candidates["strong"])
    assert decision.passed

    tags = connect(settings).get_model_version(spec.name, decision.version).tags
    assert tags[compiled.COMPILED_TAG] == compiled.ONNX, tags.get(compiled.REASON_TAG)
    assert float(tags[compiled.DIFF_TAG]) <= compiled.TOLERANCE
    uri = tags[compiled.URI_TAG]
    assert uri == f"runs:/{candidates['strong'].run_id}/compiled/model.onnx"
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path)))
    assert compiled.sha256(local.read_bytes()) == tags[compiled.SHA_TAG]
    assert compiled.agreed(tags)


@pytest.mark.slow
def test_a_model_that_cannot_be_compiled_passes_the_gate_and_says_why(
    spec: UseCaseSpec, settings: KubricksSettings, candidates: dict[str, TrainResult]
) -> None:
    lenient = spec.model_copy(update={"metric": spec.metric.model_copy(update={"thresholds": {}})})
    decision = register_and_gate(lenient, settings, candidates["dummy"])
    assert decision.passed

    tags = connect(settings).get_model_version(spec.name, decision.version).tags
    assert tags[compiled.COMPILED_TAG] == compiled.NONE
    assert "DummyClassifier cannot be converted" in tags[compiled.REASON_TAG]
    assert compiled.SHA_TAG not in tags and not compiled.agreed(tags)


@pytest.mark.slow
def test_a_failed_candidate_is_not_compiled(
    spec: UseCaseSpec, settings: KubricksSettings, candidates: dict[str, TrainResult]
) -> None:
    decision = register_and_gate(spec, settings, candidates["dummy"])  # misses roc_auc 0.8
    assert not decision.passed

    tags = connect(settings).get_model_version(spec.name, decision.version).tags
    assert compiled.COMPILED_TAG not in tags
