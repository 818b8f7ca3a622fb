"""The closed loop, run once: monitor → decide → retrain → gate → record.

:func:`run_once` asks a monitor whether the current champion is in alarm, gathers what
the policy needs (the champion's training gold version from its lineage, new labelled
rows since then, the lease, the last retrain), lets :func:`policy.decide` choose, and on
"retrain" trains a candidate with the existing AutoML code on the gold version the decision
saw and hands it to the gate, which promotes it only if it beats the champion (on the fresh
labels too). A gate alarm (a champion left below its floor) is a row here, a line in the
registry's audit trail, and :attr:`LoopOutcome.gate_alarm` for the caller to exit non-zero.
Every step is a row in ``_meta/<name>_retraining_decisions`` and the whole run is one
MLflow run (tags, params, metrics), with the AutoML search nested under it.

The monitor and the trainer are injected: the loop depends on "alarm on the current
champion: bool + reasons", not on how monitoring computes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient

from kubricks import tracking
from kubricks.errors import KubricksError
from kubricks.lakehouse import tables
from kubricks.monitoring import decisions
from kubricks.monitoring.decisions import Recorder
from kubricks.monitoring.policy import (
    Alarm,
    LoopState,
    Verdict,
    decide,
    labels_since,
    new_labelled_rows,
)
from kubricks.registry.alias_names import CHAMPION
from kubricks.registry.champion import champion as registry_champion
from kubricks.registry.errors import RegistryError
from kubricks.registry.fresh import observation_columns, trained_gold_version
from kubricks.runs.correlation import experiment_id, experiment_name
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.training.result import TrainResult

if TYPE_CHECKING:  # run.py imports Spark-free but heavy modules; only its type is needed
    from kubricks.monitoring.run import MonitorResult
    from kubricks.registry.gate import GateDecision

RUN_NAME = "retraining-loop"
TAG = "kubricks.loop."

Monitor = Callable[[UseCaseSpec, KubricksSettings, MlflowClient], Alarm]
# (spec, settings, parent MLflow run id, gold version to train on) -> the logged candidate
Trainer = Callable[[UseCaseSpec, KubricksSettings, str | None, int | None], TrainResult]


@dataclass(frozen=True)
class Champion:
    version: str
    gold_version: int | None  # the gold Delta version it was trained on, from its lineage


@dataclass(frozen=True)
class LoopOutcome:
    """What one run of the loop decided and did."""

    decision_id: str
    alarm: Alarm
    verdict: Verdict
    champion_before: str | None
    champion_after: str | None
    candidate_version: str | None = None
    gate_passed: bool | None = None
    gate_reason: str | None = None
    mlflow_run_id: str | None = None
    gate_alarm: str | None = None  # a champion left below its floor: a person must look
    pending_approval: bool = False  # passed, waiting as challenger for `kubricks models approve`

    @property
    def retrained(self) -> bool:
        return self.verdict.retrain

    @property
    def promoted(self) -> bool:
        return bool(self.gate_passed) and self.champion_after == self.candidate_version

    def summary(self) -> str:
        """One line for a terminal or a pipeline log."""
        if not self.verdict.retrain:
            return f"skipped: {self.verdict.reason}"
        gate = "passed" if self.gate_passed else "failed"
        if self.promoted:
            after = f"v{self.candidate_version} promoted to champion"
        elif self.pending_approval:
            after = (
                f"v{self.candidate_version} waits for approval as challenger"
                f" (`kubricks models approve {self.candidate_version} --reason ...`);"
                f" champion v{self.champion_after} kept"
            )
        else:
            after = f"champion v{self.champion_after} kept"
        line = (
            f"retrained: {self.verdict.reason}; candidate v{self.candidate_version} {gate}"
            f" the gate ({self.gate_reason}); {after}"
        )
        return f"{line}; ALARM: {self.gate_alarm}" if self.gate_alarm else line


# --- state -------------------------------------------------------------------------------


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def champion(client: MlflowClient, spec: UseCaseSpec) -> Champion | None:
    """The champion and the gold version in its lineage (version tags, else its run's tags);
    None only when the model has no champion alias: any other MLflow error propagates."""
    try:
        version = registry_champion(client, spec.name)
    except RegistryError:  # no such model, or its alias is unset
        return None
    return Champion(str(version.version), trained_gold_version(client, version))


def gold_labels(
    spec: UseCaseSpec, settings: KubricksSettings, version: int | None = None
) -> tuple[int, Any]:
    """(version, key/time/label frame) of a gold snapshot, read with delta-rs; by default the
    version the last recorded ingest left (see :func:`kubricks.lakehouse.gold.pinned_version`)."""
    from kubricks.lakehouse.gold import pinned_version
    from kubricks.lakehouse.ingest import layer_tables

    name, uri = layer_tables(spec, settings.lakehouse_uri)["gold"]
    options = settings.storage_options()
    if not tables.exists(uri, options):
        raise KubricksError(f"{name}: no gold table at {uri}: run `kubricks ingest`")
    if version is None:
        version = pinned_version(spec, settings)
    table = tables.open_table(uri, version, options)
    columns = [*observation_columns(spec), spec.label]
    return table.version(), table.to_pyarrow_table(columns=columns).to_pandas()


def gather_state(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    current: Champion | None,
    rows: list[dict[str, Any]],
    at: datetime,
) -> LoopState:
    """The policy's inputs: gold versions, new labels since the last use, lease, last retrain."""
    latest_version, latest = gold_labels(spec, settings)
    since = labels_since(
        current.gold_version if current else None, decisions.attempted_gold_version(rows)
    )
    if since is not None and since >= latest_version:
        fresh = 0
    else:
        previous = None
        if since is not None:
            try:
                previous = gold_labels(spec, settings, since)[1]
            except Exception:  # vacuumed or never existed: count every labelled row as new
                previous = None
        fresh = new_labelled_rows(latest, previous, observation_columns(spec), spec.label)
    last = decisions.last_retrain(rows)
    return LoopState(
        now=at,
        champion_version=current.version if current else None,
        latest_gold_version=latest_version,
        labels_since_version=since,
        new_labelled_rows=fresh,
        lease=decisions.active_lease(rows, at),
        last_retrain_at=last["at"] if last else None,
    )


# --- the injected parts ------------------------------------------------------------------


def alarm_of(result: MonitorResult) -> Alarm:
    """The loop's question answered from a finished monitoring run: the latest window's alarm
    after k-of-n persistence, why, and for which champion version its windows were scored."""
    last = result.analysis.windows.iloc[-1] if not result.analysis.windows.empty else None
    reasons = []
    if result.drifted_features:
        reasons.append(f"features drifted: {', '.join(result.drifted_features)}")
    if last is not None and bool(last.get("quality_alarm", False)):
        reasons.append("quality below the champion's holdout")
    if result.alarm and not reasons:
        reasons.append("persistent alarm over the last windows")
    return Alarm(result.alarm, tuple(reasons), result.lineage.get("model_version"))


def windowed_alarm(source: str = "gold", granularity: str | None = None) -> Monitor:
    """A monitor that runs the windowed drift/quality monitoring (tables, report) first."""

    def monitor(spec: UseCaseSpec, settings: KubricksSettings, client: MlflowClient) -> Alarm:
        from kubricks.monitoring.run import monitor as run_monitor

        return alarm_of(
            run_monitor(spec, settings, source=source, granularity=granularity, client=client)
        )

    return monitor


def given_alarm(result: MonitorResult) -> Monitor:
    """A monitor answering from a result already computed (the CLI and the pipeline step)."""
    return lambda spec, settings, client: alarm_of(result)


def automl_trainer(
    seed: int = 42, budget_minutes: float | None = None, max_trials: int | None = None
) -> Trainer:
    """The project's AutoML with the spec's retraining budget (or the pipeline's), nested
    under the loop's run, on the gold version the loop's decision saw."""

    def trainer(
        spec: UseCaseSpec,
        settings: KubricksSettings,
        parent_run_id: str | None,
        gold_version: int | None,
    ) -> TrainResult:
        from kubricks.training.automl import train

        return train(
            spec,
            settings,
            budget_minutes=budget_minutes or spec.retraining.budget_minutes,
            max_trials=max_trials or spec.retraining.max_trials,
            seed=seed,
            parent_run_id=parent_run_id,
            progress=False,
            gold_version=gold_version,
        )

    return trainer


# --- MLflow --------------------------------------------------------------------------------


def _start_run(
    client: MlflowClient, spec: UseCaseSpec, decision_id: str, parent_run_id: str | None
) -> str:
    """The loop's run: nested under a pipeline's parent run when there is one."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    tags = {"kubricks.usecase": spec.name, f"{TAG}decision_id": decision_id}
    if parent_run_id:
        experiment = client.get_run(parent_run_id).info.experiment_id
        tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    else:
        experiment = experiment_id(client, experiment_name(spec.name))
    run = client.create_run(experiment, run_name=RUN_NAME, tags=tags)
    params = {f"retraining.{k}": v for k, v in spec.retraining.model_dump().items()}
    for key, value in params.items():
        client.log_param(run.info.run_id, key, str(value))
    return run.info.run_id


def _finish_run(
    client: MlflowClient, run_id: str, outcome: LoopOutcome, state: LoopState | None
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    from kubricks.training.mlflow_logging import mlflow_timestamp

    tags = {
        "alarm": str(outcome.alarm.alarmed).lower(),
        "alarm_reasons": outcome.alarm.text()[:5000],
        "outcome": outcome.verdict.outcome.value,
        "decision": "retrain" if outcome.verdict.retrain else "skip",
        "reason": outcome.verdict.reason[:5000],
        "champion_before": outcome.champion_before or "",
        "champion_after": outcome.champion_after or "",
        "candidate_version": outcome.candidate_version or "",
        "gate": ""
        if outcome.gate_passed is None
        else ("passed" if outcome.gate_passed else "failed"),
        "gate_reason": (outcome.gate_reason or "")[:5000],
        "gate_alarm": (outcome.gate_alarm or "")[:5000],
        "promoted": str(outcome.promoted).lower(),
        "pending_approval": str(outcome.pending_approval).lower(),
    }
    params = {}
    if state is not None:
        params = {
            "latest_gold_version": state.latest_gold_version,
            "labels_since_version": state.labels_since_version,
        }
    ts = mlflow_timestamp()
    metrics = {
        "alarm": float(outcome.alarm.alarmed),
        "retrained": float(outcome.retrained),
        "promoted": float(outcome.promoted),
        "new_labelled_rows": float(state.new_labelled_rows if state else 0),
    }
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
        params=[Param(k, str(v)) for k, v in params.items()],
        tags=[RunTag(f"{TAG}{k}", v) for k, v in tags.items()],
    )
    client.set_terminated(run_id, "FINISHED")


# --- the loop --------------------------------------------------------------------------


def _skip(
    recorder: Recorder,
    alarm: Alarm,
    verdict: Verdict,
    state: LoopState | None,
    current: Champion | None,
) -> LoopOutcome:
    recorder.record(
        decisions.SKIPPED,
        verdict.reason,
        outcome=verdict.outcome.value,
        champion_version=current.version if current else None,
        gold_version=state.latest_gold_version if state else None,
        labels_since_version=state.labels_since_version if state else None,
        new_labelled_rows=state.new_labelled_rows if state else None,
    )
    version = current.version if current else None
    return LoopOutcome(
        recorder.decision_id, alarm, verdict, version, version, mlflow_run_id=recorder.mlflow_run_id
    )


def _retrain(
    client: MlflowClient,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    recorder: Recorder,
    alarm: Alarm,
    current: Champion,
    trainer: Trainer,
) -> tuple[LoopOutcome, LoopState]:
    """Take the lease, decide again on the log as it stood before it, then train and gate."""
    from kubricks.registry.gate import register_and_gate

    policy = spec.retraining
    attempt = decisions.acquire(recorder, policy.lease_minutes)
    # Another loop may have retrained between our first look and our lease request:
    # decide again on the decisions exactly as they stood before the request.
    state = gather_state(spec, settings, current, attempt.before, decisions.now())
    if not attempt.won:
        state = replace(state, lease=attempt.lease)
    verdict = decide(alarm, state, policy)
    if not verdict.retrain:
        if attempt.won:
            decisions.release(recorder, attempt.lease, f"not retraining: {verdict.reason}")
        return _skip(recorder, alarm, verdict, state, current), state
    try:
        recorder.record(
            decisions.RETRAIN_STARTED,
            verdict.reason,
            outcome=verdict.outcome.value,
            champion_version=current.version,
            gold_version=state.latest_gold_version,
            labels_since_version=state.labels_since_version,
            new_labelled_rows=state.new_labelled_rows,
            lease_id=attempt.lease.lease_id,
        )
        result = trainer(spec, settings, recorder.mlflow_run_id, state.latest_gold_version)
        gate = register_and_gate(
            spec,
            settings,
            result,
            client=client,
            reason=f"retraining loop {recorder.decision_id[:8]}",
        )
        recorder.record(
            decisions.GATE,
            gate.reason,
            outcome="passed" if gate.passed else "failed",
            champion_version=gate.champion_version,
            candidate_version=gate.version,
            gold_version=_int(result.lineage.get("gold_version")),
            detail=gate_detail(gate),
        )
        after = champion(client, spec)
        after_version = after.version if after else None
        promoted = gate.passed and after_version == gate.version
        if promoted:
            recorder.record(
                decisions.PROMOTED,
                f"v{gate.version} is the champion",
                champion_version=after_version,
                candidate_version=gate.version,
            )
        elif gate.pending_approval:
            recorder.record(
                decisions.PENDING_APPROVAL,
                f"v{gate.version} waits for approval as challenger; champion v{after_version}"
                " kept until a person approves it",
                champion_version=after_version,
                candidate_version=gate.version,
            )
        else:
            recorder.record(
                decisions.KEPT,
                f"champion v{after_version} kept; candidate v{gate.version} not promoted",
                champion_version=after_version,
                candidate_version=gate.version,
            )
        if gate.alarm:
            recorder.record(
                decisions.GATE_ALARM,
                gate.alarm,
                outcome="alarm",
                champion_version=after_version,
                candidate_version=gate.version,
            )
    except Exception as exc:
        recorder.record(decisions.FAILED, f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        decisions.release(recorder, attempt.lease, "retraining finished")
    outcome = LoopOutcome(
        recorder.decision_id,
        alarm,
        verdict,
        current.version,
        after_version,
        candidate_version=gate.version,
        gate_passed=gate.passed,
        gate_reason=gate.reason,
        mlflow_run_id=recorder.mlflow_run_id,
        gate_alarm=gate.alarm,
        pending_approval=gate.pending_approval,
    )
    return outcome, state


def gate_detail(gate: GateDecision) -> dict[str, Any]:
    """The gate's numbers for the decisions table: both models on the holdout, and on the
    fresh labels when the gate had enough of them."""
    detail: dict[str, Any] = {
        "candidate": gate.candidate_metrics,
        CHAMPION: gate.champion_metrics,
    }
    if gate.fresh is not None:
        detail["fresh"] = {
            "rows": gate.fresh.rows,
            "candidate": gate.fresh.candidate,
            CHAMPION: gate.fresh.champion,
        }
    if gate.alarm:
        detail["alarm"] = gate.alarm
    if gate.approval:
        detail["approval"] = gate.approval
    return detail


def run_once(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    *,
    client: MlflowClient | None = None,
    monitor: Monitor | None = None,
    trainer: Trainer | None = None,
    parent_run_id: str | None = None,
    before_lease: Callable[[], None] | None = None,
) -> LoopOutcome:
    """Run the loop once. Every decision is recorded; a failed retrain is recorded, then raised.

    ``parent_run_id`` nests the loop's MLflow run under a pipeline's run. ``before_lease``
    runs between the first decision and the lease request (tests use it to line two
    loops up on the same instant).
    """
    from kubricks.runs import unfinished
    from kubricks.tracking import connect

    client = client or connect(settings)
    monitor = monitor or windowed_alarm()
    trainer = trainer or automl_trainer()
    recorder = Recorder(spec, settings, uuid.uuid4().hex)
    with tracking.short_retries(settings):
        unfinished.settle_quietly(client, settings)  # runs a lost server left RUNNING
        recorder.mlflow_run_id = _start_run(client, spec, recorder.decision_id, parent_run_id)
    state: LoopState | None = None
    try:
        current = champion(client, spec)
        alarm = (
            monitor(spec, settings, client)
            if current is not None
            else Alarm(False, ("no champion to monitor",))
        )
        recorder.record(
            decisions.ALARM,
            alarm.text(),
            outcome="alarm" if alarm.alarmed else "ok",
            champion_version=alarm.champion_version or (current.version if current else None),
            detail={"reasons": list(alarm.reasons)},
        )
        at = decisions.now()
        if current is None:
            verdict = decide(alarm, LoopState(at, None, None, None, 0), spec.retraining)
            outcome = _skip(recorder, alarm, verdict, None, None)
        else:
            state = gather_state(spec, settings, current, decisions.read(spec, settings), at)
            verdict = decide(alarm, state, spec.retraining)
            if not verdict.retrain:
                outcome = _skip(recorder, alarm, verdict, state, current)
            else:
                if before_lease is not None:
                    before_lease()
                outcome, state = _retrain(client, spec, settings, recorder, alarm, current, trainer)
    except BaseException:
        from kubricks.training.mlflow_logging import end_run_quietly

        end_run_quietly(client, settings, recorder.mlflow_run_id, "FAILED")
        raise
    _finish_run(client, recorder.mlflow_run_id, outcome, state)
    return outcome
