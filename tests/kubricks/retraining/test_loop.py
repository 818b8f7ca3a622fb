"""The closed loop end to end on a data set other than churn (scikit-learn's breast cancer).

Real Delta gold tables (each delivery a new version, as ingest leaves them), real Feast
training sets, real AutoML, the real gate and a real MLflow server. The story:

1. the first champion is deliberately bad: its labels were shuffled upstream;
2. corrected data arrives in other units (drift): two loops run at once, only one
   retrains, and the retrained model beats the bad champion and is promoted;
3. more patients arrive, malignant ones over-represented (covariate drift the good
   champion copes with); the cooldown holds the first loop back, then with no cooldown
   the loop retrains once, the candidate does not beat the champion by the required
   margin so the champion stays, and the drift that persists with no new labels does
   not retrain again (no storm).

Gold is written with delta-rs rather than by a Spark ingest: the loop reads only gold
versions, and this keeps the module within its time budget (no Spark session). Every
alarm comes from the production monitoring (``run.monitor`` over gold, windowed, with its
tables and report): handed to the loop as a finished result, as the CLI and the pipeline
step do, or run by the loop itself through ``windowed_alarm``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kubricks.errors import ServiceUnavailable
from kubricks.lakehouse import tables
from kubricks.monitoring.run import monitor as run_monitor
from kubricks.registry.gate import register_and_gate
from kubricks.retraining import decisions
from kubricks.retraining.loop import run_once
from kubricks.retraining.outcome import LoopOutcome
from kubricks.retraining.parts import given_alarm, windowed_alarm
from kubricks.retraining.policy import Outcome
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.tracking import use_server
from kubricks.training.result import TrainResult
from tests.kubricks.retraining.cancer import KEY, LABEL, NAMES, World, cancer_spec

pytestmark = pytest.mark.slow

TRIALS = 2  # logistic regression and random forest defaults: enough for this data


def bad_champion(world: World, gold: pd.DataFrame, version: int) -> None:
    """A model fitted on shuffled labels, logged like AutoML logs one, made champion."""
    model = make_pipeline(StandardScaler(), LogisticRegression())
    result = world.log(model, gold, version, run_name="shuffled-labels")
    decision = register_and_gate(world.spec, world.settings, result, client=world.client)
    assert decision.passed and decision.reason.startswith("first champion")
    assert decision.candidate_metrics["roc_auc"] < 0.7  # it learned noise


@pytest.fixture(scope="module")
def world(
    mlflow_server: str, cancer: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> World:
    """Gold holds 400 patients with shuffled labels; the champion learned those."""
    home = tmp_path_factory.mktemp("loop-home")
    settings = KubricksSettings(home=home, tracking_uri=mlflow_server)
    retraining = {"budget_minutes": 0.5, "max_trials": TRIALS}
    spec = cancer_spec("cancer_loop", retraining=retraining)
    world = World(spec, settings, MlflowClient(mlflow_server), home)
    use_server(mlflow_server)
    shuffled = cancer.iloc[:400].copy()
    shuffled[LABEL] = np.random.default_rng(0).permutation(shuffled[LABEL].to_numpy())
    bad_champion(world, shuffled, world.deliver(shuffled))
    return world


@dataclass
class Concurrent:
    champion_before: str
    outcomes: list[LoopOutcome]


@pytest.fixture(scope="module")
def concurrent(world: World, cancer: pd.DataFrame) -> Concurrent:
    """Corrected labels arrive in other units (x1.8 + 32); two loops start together."""
    before = world.champion()
    corrected = cancer.iloc[:400].copy()
    corrected[NAMES] = corrected[NAMES] * 1.8 + 32
    world.deliver(corrected)
    # one monitoring pass, then two loops act on its result (as `kubricks monitor --retrain`
    # and the pipeline's monitor step hand theirs over)
    monitored = run_monitor(world.spec, world.settings, source="gold", client=world.client)
    barrier = threading.Barrier(2)
    outcomes: list[LoopOutcome] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            outcomes.append(
                run_once(
                    world.spec,
                    world.settings,
                    client=world.client,
                    monitor=given_alarm(monitored),
                    before_lease=lambda: barrier.wait(timeout=60),
                )
            )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return Concurrent(before, outcomes)


def test_only_one_of_two_concurrent_loops_retrains(concurrent: Concurrent, world: World) -> None:
    retrained = [o for o in concurrent.outcomes if o.retrained]
    skipped = [o for o in concurrent.outcomes if not o.retrained]
    assert len(retrained) == 1 and len(skipped) == 1
    assert skipped[0].verdict.outcome == Outcome.RUNNING
    assert "retraining already running" in skipped[0].verdict.reason
    events = [r["event"] for r in world.rows()]
    assert events.count(decisions.RETRAIN_STARTED) == 1
    assert events.count(decisions.LEASE) == 2 and events.count(decisions.LEASE_RELEASED) == 2


def test_a_model_that_beats_the_degraded_champion_is_promoted(
    concurrent: Concurrent, world: World
) -> None:
    (outcome,) = [o for o in concurrent.outcomes if o.retrained]
    assert outcome.alarm.alarmed
    assert outcome.alarm.reasons[0] == f"features drifted: {', '.join(sorted(NAMES))}"
    assert outcome.gate_passed and outcome.promoted
    assert f"v{outcome.candidate_version} promoted to champion" in outcome.summary()
    assert outcome.champion_before == concurrent.champion_before
    assert world.champion() == outcome.candidate_version != concurrent.champion_before
    mine = [r for r in world.rows() if r["decision_id"] == outcome.decision_id]
    assert [r["event"] for r in mine] == [
        "alarm",
        "lease",
        "retrain_started",
        "gate",
        "promoted",
        "lease_released",
    ]
    started = next(r for r in mine if r["event"] == "retrain_started")
    assert started["new_labelled_rows"] > 100  # about half the shuffled labels were wrong
    gate = next(r for r in mine if r["event"] == "gate")
    assert gate["outcome"] == "passed" and "beats champion" in gate["reason"]


def test_every_decision_is_an_mlflow_run(concurrent: Concurrent, world: World) -> None:
    for outcome in concurrent.outcomes:
        assert outcome.mlflow_run_id is not None
        run = world.client.get_run(outcome.mlflow_run_id)
        tags = run.data.tags
        assert run.info.status == "FINISHED" and run.info.run_name == "retraining-loop"
        assert tags["kubricks.loop.decision_id"] == outcome.decision_id
        assert tags["kubricks.loop.alarm"] == "true"
        assert tags["kubricks.loop.reason"] == outcome.verdict.reason
        assert run.data.params["retraining.cooldown_hours"] == "24.0"
        if outcome.retrained:
            assert (
                tags["kubricks.loop.gate"] == "passed" and tags["kubricks.loop.promoted"] == "true"
            )
            assert run.data.metrics["promoted"] == 1.0
            assert tags["kubricks.loop.candidate_version"] == outcome.candidate_version
        else:
            assert tags["kubricks.loop.decision"] == "skip" and "kubricks.loop.gate" in tags


@dataclass
class Storm:
    cooled: LoopOutcome
    runs: list[LoopOutcome]
    champion_before: str
    new_rows: int


@pytest.fixture(scope="module")
def storm(world: World, concurrent: Concurrent, cancer: pd.DataFrame) -> Storm:
    """169 new patients arrive, and every malignant patient twice more under new keys.

    The features' relation to the label is unchanged, so the good champion copes; the
    gate margin (KUBRICKS_GATE_MARGIN) of 0.2 asks a candidate for an AUC above the
    champion's plus 0.2, more than 1, so no candidate can be promoted.
    """
    before = world.champion()
    everyone = cancer.copy()
    malignant = cancer[cancer[LABEL] == 0]
    extra = [malignant.assign(**{KEY: malignant[KEY] + offset}) for offset in (100_000, 200_000)]
    drifted = pd.concat([everyone, *extra], ignore_index=True)
    drifted[NAMES] = drifted[NAMES] * 1.8 + 32
    world.deliver(drifted)
    monitor = windowed_alarm(source="gold")
    cooled = run_once(world.spec, world.settings, client=world.client, monitor=monitor)
    no_cooldown = world.spec.model_copy(
        update={"retraining": world.spec.retraining.model_copy(update={"cooldown_hours": 0})}
    )
    strict = world.settings.model_copy(update={"gate_margin": 0.2})
    runs = [run_once(no_cooldown, strict, client=world.client, monitor=monitor) for _ in range(3)]
    return Storm(cooled, runs, before, len(drifted) - 400)


def test_the_cooldown_holds_back_a_retrain_right_after_the_last(storm: Storm) -> None:
    assert storm.cooled.alarm.alarmed
    assert not storm.cooled.retrained and storm.cooled.verdict.outcome == Outcome.COOLDOWN


def test_a_candidate_that_does_not_beat_the_champion_is_not_promoted(
    storm: Storm, world: World
) -> None:
    first = storm.runs[0]
    assert first.retrained and first.gate_passed is False and not first.promoted
    assert "does not beat champion" in (first.gate_reason or "")
    assert f"champion v{storm.champion_before} kept" in first.summary()
    assert world.champion() == storm.champion_before == first.champion_after
    kept = [r for r in world.rows() if r["decision_id"] == first.decision_id]
    assert [r["event"] for r in kept][-2:] == ["kept", "lease_released"]


def test_persistent_drift_without_new_labels_retrains_once_not_every_run(
    storm: Storm, world: World
) -> None:
    assert all(o.alarm.alarmed for o in storm.runs)  # the drift is still there
    assert [o.retrained for o in storm.runs] == [True, False, False]
    for later in storm.runs[1:]:
        assert later.verdict.outcome == Outcome.NO_NEW_LABELS
        assert "0 labelled row(s)" in later.verdict.reason
        assert later.summary().startswith("skipped: no new labelled data")
    decided = {o.decision_id for o in storm.runs}
    started = [
        r
        for r in world.rows()
        if r["decision_id"] in decided and r["event"] == decisions.RETRAIN_STARTED
    ]
    assert len(started) == 1 and started[0]["new_labelled_rows"] == storm.new_rows


def test_a_failed_retrain_is_recorded_releases_the_lease_and_raises(
    storm: Storm, world: World, cancer: pd.DataFrame
) -> None:
    gold = tables.read_arrow(world.gold_uri).to_pandas()[[KEY, *NAMES, LABEL]]
    newcomers = gold.head(20).assign(**{KEY: gold[KEY].head(20) + 300_000})
    world.deliver(pd.concat([gold, newcomers], ignore_index=True))
    no_cooldown = world.spec.model_copy(
        update={"retraining": world.spec.retraining.model_copy(update={"cooldown_hours": 0})}
    )

    def server_gone(
        spec: UseCaseSpec, settings: KubricksSettings, parent: str | None, gold: int | None
    ) -> TrainResult:
        raise ServiceUnavailable("MLflow tracking server stopped answering")

    experiment = world.client.get_experiment_by_name(world.spec.name).experiment_id
    pipeline = world.client.create_run(experiment, run_name="monitoring-pipeline").info.run_id
    with pytest.raises(ServiceUnavailable, match="stopped answering"):
        run_once(
            no_cooldown,
            world.settings,
            client=world.client,
            monitor=windowed_alarm(source="gold"),
            trainer=server_gone,
            parent_run_id=pipeline,
        )
    rows = world.rows()
    failed = next(r for r in rows if r["event"] == decisions.FAILED)
    mine = [r["event"] for r in rows if r["decision_id"] == failed["decision_id"]]
    assert mine[-3:] == ["retrain_started", "retrain_failed", "lease_released"]
    assert "ServiceUnavailable: MLflow tracking server stopped answering" in failed["reason"]
    assert decisions.active_lease(rows, decisions.now()) is None
    run = world.client.get_run(failed["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["mlflow.parentRunId"] == pipeline  # nested under the pipeline's run
    assert world.champion() == storm.champion_before
