"""What one run of the loop decided and did, and the gate's numbers as the decisions table
records them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubricks.registry.alias_names import CHAMPION
from kubricks.retraining.policy import Alarm, Verdict

if TYPE_CHECKING:
    from kubricks.registry.gate import GateDecision


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
