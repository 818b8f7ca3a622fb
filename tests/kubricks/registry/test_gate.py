"""The validation gate: the pure rule, then the real registry on a real MLflow server."""

from __future__ import annotations

import socket

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from kubricks.errors import ServiceUnavailable
from kubricks.registry import audit
from kubricks.registry.aliases import promote, rollback
from kubricks.registry.errors import RegistryError
from kubricks.registry.gate import FreshScores, GateDecision, decide, register_and_gate
from kubricks.registry.store import CHALLENGER, CHAMPION, alias_version
from kubricks.settings import KubricksSettings, get_settings
from kubricks.spec import UseCaseSpec
from kubricks.tracking import connect
from kubricks.training.result import TrainResult
from tests.registered import register_model

THRESHOLDS = {"roc_auc": 0.80}


# The rule, as a pure function.
def test_first_version_needs_only_the_thresholds() -> None:
    ruling = decide("roc_auc", THRESHOLDS, 0.0, {"roc_auc": 0.81}, None)
    assert ruling.passed and ruling.alarm is None
    assert "first champion" in ruling.reason


def test_threshold_miss_fails_even_without_a_champion() -> None:
    ruling = decide("roc_auc", THRESHOLDS, 0.0, {"roc_auc": 0.79}, None)
    assert not ruling.passed
    assert ruling.reason == "roc_auc 0.7900 misses threshold 0.8"


def test_must_beat_the_champion_by_the_margin() -> None:
    champion = {"roc_auc": 0.85}
    assert decide("roc_auc", THRESHOLDS, 0.01, {"roc_auc": 0.86}, champion, "3").passed
    ruling = decide("roc_auc", THRESHOLDS, 0.02, {"roc_auc": 0.86}, champion, "3")
    assert not ruling.passed
    assert ruling.reason == "roc_auc 0.8600 does not beat champion v3 (0.8500) by 0.02"


def test_every_failed_rule_is_reported() -> None:
    ruling = decide("roc_auc", THRESHOLDS, 0.0, {"roc_auc": 0.5}, {"roc_auc": 0.85}, "1")
    assert not ruling.passed
    assert "misses threshold" in ruling.reason
    assert "does not beat champion v1" in ruling.reason


def test_lower_is_better_metrics_flip_both_rules() -> None:
    thresholds = {"rmse": 10.0}
    assert decide("rmse", thresholds, 0.5, {"rmse": 8.0}, {"rmse": 9.0}, "1").passed
    assert not decide("rmse", thresholds, 0.0, {"rmse": 11.0}, None).passed
    assert not decide("rmse", thresholds, 0.5, {"rmse": 8.8}, {"rmse": 9.0}, "1").passed


def test_a_threshold_on_a_metric_never_computed_fails() -> None:
    ruling = decide("roc_auc", {"r2": 0.5}, 0.0, {"roc_auc": 0.9}, None)
    assert not ruling.passed
    assert "r2 was not computed" in ruling.reason


def test_a_tie_keeps_the_champion_whatever_the_margin() -> None:
    for margin in (0.0, 0.01):
        ruling = decide("f1", {}, margin, {"f1": 1.0}, {"f1": 1.0}, "1")
        assert not ruling.passed
        assert ruling.reason.startswith("f1 1.0000 does not beat champion v1 (1.0000)")
    assert not decide("rmse", {}, 0.0, {"rmse": 3.0}, {"rmse": 3.0}, "1").passed
    assert decide("f1", {}, 0.0, {"f1": 0.9001}, {"f1": 0.9}, "1").passed
    assert decide("rmse", {}, 0.0, {"rmse": 2.999}, {"rmse": 3.0}, "1").passed


FLOOR = {"roc_auc": 0.8}


def fresh(candidate: float, champion: float, rows: int = 400) -> FreshScores:
    return FreshScores(rows, {"roc_auc": candidate}, {"roc_auc": champion})


def test_fresh_labels_decide_the_comparison_and_are_named() -> None:
    # On the holdout the candidate looks worse, on the 400 fresh labels it is better.
    ruling = decide(
        "roc_auc", FLOOR, 0.0, {"roc_auc": 0.84}, {"roc_auc": 0.86}, "3", fresh(0.83, 0.81)
    )
    assert ruling.passed and ruling.alarm is None
    assert ruling.reason == "roc_auc 0.8300 beats champion v3 (0.8100) on 400 fresh labelled rows"
    ruling = decide(
        "roc_auc", FLOOR, 0.0, {"roc_auc": 0.88}, {"roc_auc": 0.86}, "3", fresh(0.81, 0.82)
    )
    assert not ruling.passed and "does not beat champion v3 (0.8200) on 400 fresh" in ruling.reason


def test_a_degraded_champion_and_a_candidate_below_the_floor_follow_the_spec() -> None:
    """The demo's month 3: the champion is at 0.50 on fresh labels, the candidate scores 0.793
    on its holdout (floor 0.80) and beats the champion on the fresh labels."""
    args = ("roc_auc", FLOOR, 0.0, {"roc_auc": 0.793}, {"roc_auc": 0.71}, "1", fresh(0.78, 0.5))
    promoted = decide(*args, on_degraded_champion="promote")
    assert promoted.passed
    assert promoted.alarm is not None
    assert "promoted a candidate below the floor (roc_auc 0.7930 misses threshold 0.8)" in (
        promoted.alarm
    )
    assert "champion v1 is below its floor on fresh labels (roc_auc 0.5000" in promoted.alarm
    kept = decide(*args, on_degraded_champion="keep")
    assert not kept.passed
    assert kept.alarm is not None and kept.alarm.endswith(
        "the champion stays (gate.on_degraded_champion: keep)"
    )
    assert "misses threshold 0.8" in kept.reason


def test_a_degraded_champion_alarms_even_when_nothing_beats_it() -> None:
    ruling = decide(
        "roc_auc", FLOOR, 0.0, {"roc_auc": 0.6}, {"roc_auc": 0.7}, "2", fresh(0.45, 0.5)
    )
    assert not ruling.passed
    assert ruling.alarm == (
        "champion v2 is below its floor on fresh labels (roc_auc 0.5000 misses threshold 0.8),"
        " and the candidate does not beat it: the champion stays"
    )


def test_a_candidate_above_the_floor_replaces_a_degraded_champion_without_alarm() -> None:
    ruling = decide(
        "roc_auc", FLOOR, 0.0, {"roc_auc": 0.9}, {"roc_auc": 0.85}, "2", fresh(0.88, 0.6)
    )
    assert ruling.passed and ruling.alarm is None
    assert "champion v2 is below its floor on fresh labels" in ruling.reason


# The gate on the real server.
@pytest.mark.slow
def test_gate_lifecycle_with_rollback_and_audit(
    spec: UseCaseSpec, settings: KubricksSettings, candidates: dict[str, TrainResult]
) -> None:
    client = connect(settings)

    first = register_and_gate(spec, settings, candidates["weak"])
    assert first.passed, first.reason
    assert first.champion_version is None
    assert first.candidate_metrics["roc_auc"] > 0.8
    assert alias_version(client, spec.name, CHAMPION) == first.version
    assert alias_version(client, spec.name, CHALLENGER) == first.version

    worse = register_and_gate(spec, settings, candidates["dummy"])
    assert not worse.passed
    assert worse.champion_version == first.version
    # Both models were scored on the same holdout: the champion's score is reproduced.
    assert worse.champion_metrics == pytest.approx(first.candidate_metrics)
    assert "misses threshold" in worse.reason
    assert "does not beat champion" in worse.reason
    tags = client.get_model_version(spec.name, worse.version).tags
    assert tags["gate.status"] == "failed"
    assert tags["gate.reason"] == worse.reason
    assert tags["kubricks.run_id"] == candidates["dummy"].run_id
    assert tags["lineage.gold_table"] == "gold/churn"
    assert alias_version(client, spec.name, CHAMPION) == first.version

    better = register_and_gate(spec, settings, candidates["strong"])
    assert better.passed, better.reason
    assert better.candidate_metrics["roc_auc"] > first.candidate_metrics["roc_auc"]
    assert alias_version(client, spec.name, CHAMPION) == better.version
    assert client.get_model_version(spec.name, better.version).tags["gate.status"] == "passed"

    # Above the thresholds but below the champion: rejected on the comparison alone.
    again = register_and_gate(spec, settings, candidates["weak_again"])
    assert not again.passed
    assert again.reason.startswith("roc_auc") and "does not beat champion" in again.reason
    assert "threshold" not in again.reason
    assert alias_version(client, spec.name, CHAMPION) == better.version

    back = rollback(settings, spec.name, reason="bad canary")
    assert (back.from_version, back.to_version) == (better.version, first.version)
    assert alias_version(client, spec.name, CHAMPION) == first.version

    trail = [
        (r.alias, r.from_version, r.to_version, r.action, r.actor)
        for r in audit.read(settings, spec.name)
    ]
    assert trail == [
        (CHALLENGER, None, first.version, "gate", "tester"),
        (CHAMPION, None, first.version, "gate", "tester"),
        (CHALLENGER, first.version, better.version, "gate", "tester"),
        (CHAMPION, first.version, better.version, "gate", "tester"),
        (CHAMPION, better.version, first.version, "rollback", "tester"),
    ]
    reasons = [r.reason for r in audit.read(settings, spec.name)]
    assert reasons[1].startswith("automl: first champion")
    assert reasons[-1] == "bad canary"

    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(settings, spec.name)


@pytest.mark.slow
def test_margin_from_settings_rejects_a_small_gain(
    spec: UseCaseSpec, settings: KubricksSettings, candidates: dict[str, TrainResult]
) -> None:
    assert register_and_gate(spec, settings, candidates["weak"]).passed
    strict = settings.model_copy(update={"gate_margin": 0.2})
    decision = register_and_gate(spec, strict, candidates["strong"])
    assert not decision.passed
    assert "by 0.2" in decision.reason


@pytest.mark.slow
def test_a_retried_gate_reuses_the_version_and_decision(
    spec: UseCaseSpec, settings: KubricksSettings, candidates: dict[str, TrainResult]
) -> None:
    first = register_and_gate(spec, settings, candidates["weak"])
    retried = register_and_gate(spec, settings, candidates["weak"])
    assert retried == first
    client = connect(settings)
    assert [v.version for v in client.search_model_versions(f"name = '{spec.name}'")] == ["1"]
    assert len(audit.read(settings, spec.name)) == 2  # challenger + champion, once

    # A crash after the outcome was tagged but before the aliases moved: the retry finishes.
    for alias in (CHAMPION, CHALLENGER):
        client.delete_registered_model_alias(spec.name, alias)
    assert register_and_gate(spec, settings, candidates["weak"]) == first
    assert alias_version(client, spec.name, CHAMPION) == first.version


@pytest.mark.slow
def test_a_champion_that_cannot_score_the_holdout_fails_the_gate(
    spec: UseCaseSpec, settings: KubricksSettings, candidates: dict[str, TrainResult]
) -> None:
    sample = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    legacy = LogisticRegression().fit(sample, [0, 0, 1, 1])
    register_model(legacy, sample, spec.name, settings.resolved_tracking_uri, alias=None)
    promote(settings, spec.name, "1", reason="legacy model from an older spec")

    decision = register_and_gate(spec, settings, candidates["weak"])
    assert not decision.passed
    assert decision.reason.startswith("champion v1 could not be scored on this holdout")
    assert "kubricks models promote" in decision.reason
    client = connect(settings)
    assert alias_version(client, spec.name, CHAMPION) == "1"


@pytest.mark.slow
def test_a_run_without_holdout_is_named(
    spec: UseCaseSpec, settings: KubricksSettings, candidates: dict[str, TrainResult]
) -> None:
    result = candidates["no_holdout"]
    with pytest.raises(RegistryError, match=f"run {result.run_id} has no holdout/holdout.parquet"):
        register_and_gate(spec, settings, result)


def test_server_down_asks_for_kubricks_up(spec: UseCaseSpec, tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = get_settings(home=tmp_path, tracking_uri=f"http://127.0.0.1:{port}")
    result = TrainResult("churn", "run", "runs:/run/model", "weak", {})
    with pytest.raises(ServiceUnavailable, match="run `kubricks up`"):
        register_and_gate(spec, settings, result)


def test_gate_decision_is_a_plain_record() -> None:
    decision = GateDecision("1", True, "ok", {"roc_auc": 0.9}, None, None)
    assert decision.version == "1" and decision.champion_metrics is None
