"""The closed loop, run once: monitor → decide → retrain → gate → record.

:func:`run_once` asks a monitor whether the current champion is in alarm, gathers what
the policy needs (:mod:`kubricks.retraining.state`), lets :func:`policy.decide` choose, and
on "retrain" takes the lease, trains a candidate on the gold version the decision saw and
hands it to the gate, which promotes it only if it beats the champion (on the fresh labels
too). A gate alarm (a champion left below its floor) is a row here, a line in the
registry's audit trail, and :attr:`LoopOutcome.gate_alarm` for the caller to exit non-zero.
Every step is a row in ``_meta/<name>_retraining_decisions`` and the whole run is one
MLflow run (:mod:`kubricks.retraining.mlflow_run`), with the AutoML search nested under it.

The monitor and the trainer are injected (:mod:`kubricks.retraining.parts`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from mlflow import MlflowClient

from kubricks import tracking
from kubricks.retraining import decisions
from kubricks.retraining.decisions import Recorder
from kubricks.retraining.mlflow_run import finish_run, start_run
from kubricks.retraining.outcome import LoopOutcome, gate_detail
from kubricks.retraining.parts import Monitor, Trainer, automl_trainer, windowed_alarm
from kubricks.retraining.policy import Alarm, LoopState, Verdict, decide
from kubricks.retraining.state import Champion, champion, gather_state
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec

if TYPE_CHECKING:
    from kubricks.registry.gate import GateDecision


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


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


def _record_candidate(recorder: Recorder, gate: GateDecision, after_version: str | None) -> None:
    """What became of the gated candidate: promoted, waiting for approval or not promoted;
    and a gate alarm (a champion left below its floor) as a row of its own."""
    versions = {"champion_version": after_version, "candidate_version": gate.version}
    if gate.passed and after_version == gate.version:
        recorder.record(decisions.PROMOTED, f"v{gate.version} is the champion", **versions)
    elif gate.pending_approval:
        waits = (
            f"v{gate.version} waits for approval as challenger; champion v{after_version}"
            " kept until a person approves it"
        )
        recorder.record(decisions.PENDING_APPROVAL, waits, **versions)
    else:
        kept = f"champion v{after_version} kept; candidate v{gate.version} not promoted"
        recorder.record(decisions.KEPT, kept, **versions)
    if gate.alarm:
        recorder.record(decisions.GATE_ALARM, gate.alarm, outcome="alarm", **versions)


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
        _record_candidate(recorder, gate, after_version)
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
        recorder.mlflow_run_id = start_run(client, spec, recorder.decision_id, parent_run_id)
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
    finish_run(client, recorder.mlflow_run_id, outcome, state)
    return outcome
