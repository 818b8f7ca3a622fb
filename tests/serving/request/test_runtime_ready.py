"""A worker reports ready only after its warm-up, and a swapped-in version takes traffic
only once warm: a readiness probe must not send requests to a cold request path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from kubricks.scoring.model import LoadedModel
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec
from kubricks.synthetic import generate
from kubricks.training.search_space import preprocessor
from serving.request import runtime as runtime_module
from serving.request.runtime import Runtime, write_target
from serving.request.traffic import Traffic


def test_ready_only_after_the_warm_up_and_swaps_publish_warm_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec("churn")
    frame = generate(spec, 300, seed=4)
    features = spec.gold_feature_columns()
    fitted = make_pipeline(preprocessor(spec, True), LogisticRegression(max_iter=300))
    fitted.fit(frame[features], frame[spec.label])
    # The registry and the BentoML store are other tests' business: versions load from here.
    monkeypatch.setattr(
        runtime_module.store,
        "load_version",
        lambda settings, spec, version: LoadedModel(spec.name, version, fitted, spec),
    )
    seen: list[tuple[bool, str | None, int]] = []
    real_log_table = runtime_module.log_table

    def watched_log_table(spec: Any, batches: Any) -> Any:  # the warm-up's last step
        seen.append((rt.ready, rt.arms.versions()["champion"], len(batches[0].jobs)))
        return real_log_table(spec, batches)

    monkeypatch.setattr(runtime_module, "log_table", watched_log_table)
    settings = KubricksSettings(home=tmp_path, serving_poll_seconds=0)
    rt = Runtime(spec, settings, {"champion": "1"}, Traffic())
    write_target(rt.target_file, champion="1")

    assert not rt.ready
    assert rt.apply_target()
    assert seen == [(False, None, 1)]  # warmed while /readyz still answered 503
    assert rt.ready and rt.arms.versions()["champion"] == "1"

    write_target(rt.target_file, champion="2")
    assert rt.apply_target()
    assert seen[1] == (True, "1", 1)  # v2 warmed while v1 still answered
    assert rt.arms.versions()["champion"] == "2"
