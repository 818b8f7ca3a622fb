"""The loop's gate on fresh labels, on a data set other than churn (scikit-learn's breast cancer).

The demo's month 3 in miniature: the champion learned 300 patients; 269 more arrive whose
diagnosis relates to ``mean radius`` the other way round above its median (concept drift).
On those fresh labels the champion is a coin flip (ROC AUC about 0.49); the retrained
random forest beats it there but scores about 0.77 on its holdout, under the spec's 0.80
floor. ``gate.on_degraded_champion`` decides; either way the outcome is an alarm in the
decisions table, the registry's audit trail and `kubricks models history`.

Real Delta gold (delta-rs), the real gate and a real MLflow server; the trainer is injected
so the candidate is the same forest every time (AutoML is exercised by the loop's own tests).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from kubricks.cli import app
from kubricks.registry import audit
from kubricks.registry.gate import GateAlarm, raise_on_alarm, register_and_gate
from kubricks.registry.safe_load import load_version
from kubricks.registry.scoring import score
from kubricks.retraining import decisions
from kubricks.retraining.loop import run_once
from kubricks.retraining.outcome import LoopOutcome
from kubricks.retraining.policy import Alarm
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.tracking import use_server
from kubricks.training.result import HOLDOUT_ARTIFACT, TrainResult
from tests.kubricks.retraining.cancer import KEY, LABEL, World, cancer_spec

pytestmark = pytest.mark.slow

KNOWN = 300  # patients the champion was trained on


def gate_spec(on_degraded_champion: str) -> UseCaseSpec:
    return cancer_spec(
        f"cancer_gate_{uuid.uuid4().hex[:8]}",
        metric={"primary": "roc_auc", "thresholds": {"roc_auc": 0.8}},
        retraining={"cooldown_hours": 0},
        gate={"on_degraded_champion": on_degraded_champion},
    )


def drifted(cancer: pd.DataFrame) -> pd.DataFrame:
    """Every patient, the new ones with the diagnosis flipped above the median radius."""
    out = cancer.copy()
    flip = (out[KEY] >= KNOWN) & (out["mean_radius"] > cancer["mean_radius"].median())
    out.loc[flip, LABEL] = 1 - out.loc[flip, LABEL]
    return out


@dataclass
class Month3:
    world: World
    outcome: LoopOutcome
    candidate: TrainResult
    trained_on: list[int | None]


def month3(on_degraded: str, cancer: pd.DataFrame, home: Path, mlflow_server: str) -> Month3:
    """A champion on the first 300 patients, the drifted delivery, one run of the loop."""
    use_server(mlflow_server)
    settings = KubricksSettings(home=home, tracking_uri=mlflow_server, registry_actor="tester")
    world = World(gate_spec(on_degraded), settings, MlflowClient(mlflow_server), home)
    first = cancer[cancer[KEY] < KNOWN]
    champion = world.log(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        first,
        world.deliver(first),
    )
    assert register_and_gate(world.spec, settings, champion, client=world.client).passed
    gold = drifted(cancer)
    version = world.deliver(gold)
    candidate = world.log(RandomForestClassifier(n_estimators=100, random_state=0), gold, version)
    trained_on: list[int | None] = []

    def trainer(
        spec: UseCaseSpec, settings: KubricksSettings, parent: str | None, gold_version: int | None
    ) -> TrainResult:
        trained_on.append(gold_version)
        return candidate

    def quality_alarm(spec: UseCaseSpec, settings: KubricksSettings, client: MlflowClient) -> Alarm:
        return Alarm(True, ("quality below the champion's holdout",), "1")

    outcome = run_once(
        world.spec, settings, client=world.client, monitor=quality_alarm, trainer=trainer
    )
    return Month3(world, outcome, candidate, trained_on)


@pytest.fixture(scope="module")
def promoted(
    cancer: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory, mlflow_server: str
) -> Month3:
    return month3("promote", cancer, tmp_path_factory.mktemp("promote"), mlflow_server)


@pytest.fixture(scope="module")
def kept(
    cancer: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory, mlflow_server: str
) -> Month3:
    return month3("keep", cancer, tmp_path_factory.mktemp("keep"), mlflow_server)


def fresh_holdout(run: Month3) -> pd.DataFrame:
    """The candidate's holdout rows the champion never saw, computed here independently."""
    client = run.world.client
    path = client.download_artifacts(run.candidate.run_id, HOLDOUT_ARTIFACT, str(run.world.folder))
    holdout = pd.read_parquet(path)
    return holdout[holdout[KEY] >= KNOWN]


def test_the_candidate_trains_on_the_gold_version_the_decision_saw(promoted: Month3) -> None:
    started = next(
        r
        for r in decisions.read(promoted.world.spec, promoted.world.settings)
        if r["event"] == decisions.RETRAIN_STARTED
    )
    assert promoted.trained_on == [started["gold_version"]] == [1]


def test_both_models_are_scored_on_the_fresh_labels_and_both_scores_recorded(
    promoted: Month3,
) -> None:
    world, outcome = promoted.world, promoted.outcome
    version = world.client.get_model_version(world.spec.name, outcome.candidate_version)
    fresh = fresh_holdout(promoted)
    assert int(version.tags["gate.fresh_rows"]) == len(fresh) > 30
    champion_model = load_version(world.client, world.spec.name, "1").estimator
    candidate_model = load_version(world.client, world.spec.name, version.version).estimator
    champion_fresh = score(champion_model, fresh, world.spec)["roc_auc"]
    candidate_fresh = score(candidate_model, fresh, world.spec)["roc_auc"]
    assert float(version.tags["gate.fresh.champion.roc_auc"]) == pytest.approx(champion_fresh)
    assert float(version.tags["gate.fresh.candidate.roc_auc"]) == pytest.approx(candidate_fresh)
    assert champion_fresh < 0.6 < candidate_fresh  # a coin flip against a model that learned
    assert 0.6 < float(version.tags["gate.candidate.roc_auc"]) < 0.8  # under the floor
    assert "gate.champion.roc_auc" in version.tags  # the holdout comparison, kept beside it
    gate_row = next(
        r for r in decisions.read(world.spec, world.settings) if r["event"] == decisions.GATE
    )
    detail = json.loads(gate_row["detail"])
    assert detail["fresh"]["rows"] == len(fresh)
    assert detail["fresh"]["champion"]["roc_auc"] == pytest.approx(champion_fresh)
    assert detail["champion"]["roc_auc"] == pytest.approx(
        float(version.tags["gate.champion.roc_auc"])
    )


def test_promote_replaces_the_coin_flip_champion_and_alarms(promoted: Month3) -> None:
    world, outcome = promoted.world, promoted.outcome
    assert outcome.promoted and world.champion() == outcome.candidate_version == "2"
    assert outcome.gate_alarm is not None
    assert outcome.gate_alarm.startswith("promoted a candidate below the floor (roc_auc 0.7")
    assert "champion v1 is below its floor on fresh labels" in outcome.gate_alarm
    assert "ALARM: promoted a candidate below the floor" in outcome.summary()
    events = [r["event"] for r in decisions.read(world.spec, world.settings)]
    assert events[-4:] == ["gate", "promoted", "gate_alarm", "lease_released"]
    last = audit.read(world.settings, world.spec.name)[-1]
    assert (last.action, last.from_version, last.to_version) == ("alarm", "2", "2")
    with pytest.raises(GateAlarm, match="alarm: .* v2: promoted a candidate below the floor"):
        raise_on_alarm(
            world.spec.name, register_and_gate(world.spec, world.settings, promoted.candidate)
        )


def test_keep_leaves_the_champion_and_alarms(kept: Month3) -> None:
    world, outcome = kept.world, kept.outcome
    assert outcome.gate_passed is False and not outcome.promoted
    assert world.champion() == "1"
    assert outcome.gate_alarm is not None
    assert "a candidate beats it" in outcome.gate_alarm
    assert outcome.gate_alarm.endswith("the champion stays (gate.on_degraded_champion: keep)")
    rows = decisions.read(world.spec, world.settings)
    alarm = next(r for r in rows if r["event"] == decisions.GATE_ALARM)
    assert alarm["reason"] == outcome.gate_alarm and alarm["champion_version"] == "1"
    tags = world.client.get_model_version(world.spec.name, "2").tags
    assert tags["gate.status"] == "failed" and tags["gate.alarm"] == outcome.gate_alarm


def test_models_history_and_list_show_the_alarm(kept: Month3, tmp_path: Path) -> None:
    world = kept.world
    spec_file = tmp_path / f"{world.spec.name}.yaml"
    spec_file.write_text(yaml.safe_dump(world.spec.model_dump(mode="json")))
    runner = CliRunner(
        env={
            "KUBRICKS_HOME": str(world.settings.home),
            "KUBRICKS_TRACKING_URI": world.settings.resolved_tracking_uri,
            "COLUMNS": "400",
        }
    )
    history = runner.invoke(app, ["models", "history", "--usecase", str(spec_file)])
    assert history.exit_code == 0, history.output
    alarm_lines = [line for line in history.output.splitlines() if "│ alarm" in line]
    assert len(alarm_lines) == 1 and "gate of v2: champion v1 is below its floor" in alarm_lines[0]
    listed = runner.invoke(app, ["models", "list", "--usecase", str(spec_file)])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.split()[1:2] == ["2"])
    assert "failed (alarm)" in row
