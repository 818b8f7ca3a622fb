"""The retraining policy: a pure decision, retrain or skip, with the reason in words.

Retraining on every alarm storms: drift that persists keeps alarming, and a model
retrained on the same labels learns nothing new. So a retrain needs all four of

- an alarm on the *current* champion's own windows (after the monitor's persistence rule),
- labelled rows that neither the champion nor an earlier retraining attempt trained on,
- no retraining already running (a lease, see :mod:`kubricks.retraining.decisions`),
- the cooldown since the last retrain to have passed.

Everything here is values in, a value out: the loop gathers the state, this decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import pandas as pd

from kubricks.spec import Retraining


class Outcome(StrEnum):
    RETRAIN = "retrain"
    DISABLED = "disabled"
    NO_CHAMPION = "no_champion"
    NO_ALARM = "no_alarm"
    STALE_ALARM = "stale_alarm"
    RUNNING = "retraining_running"
    COOLDOWN = "cooldown"
    NO_NEW_LABELS = "no_new_labels"


@dataclass(frozen=True)
class Alarm:
    """What monitoring says about one champion: alarmed (after persistence) and why."""

    alarmed: bool
    reasons: tuple[str, ...] = ()
    champion_version: str | None = None  # the version whose windows raised it

    def text(self) -> str:
        return "; ".join(self.reasons) if self.reasons else ("alarm" if self.alarmed else "none")


@dataclass(frozen=True)
class Lease:
    """A retraining in progress, held by one loop until it releases it or it expires."""

    lease_id: str
    holder: str
    expires_at: datetime

    def active(self, now: datetime) -> bool:
        return self.expires_at > now


@dataclass(frozen=True)
class LoopState:
    """Everything the policy needs to know, gathered by the loop at one instant."""

    now: datetime
    champion_version: str | None
    latest_gold_version: int | None
    # The gold version new labels are counted from: the later of the champion's training
    # version and the version the last retraining attempt used.
    labels_since_version: int | None
    new_labelled_rows: int
    lease: Lease | None = None
    last_retrain_at: datetime | None = None
    notes: tuple[str, ...] = field(default=())  # how the numbers were obtained, for the reason


@dataclass(frozen=True)
class Verdict:
    retrain: bool
    outcome: Outcome
    reason: str


def _ago(now: datetime, then: datetime) -> str:
    hours = (now - then).total_seconds() / 3600
    return f"{hours:.1f} h ago"


def decide(alarm: Alarm, state: LoopState, policy: Retraining) -> Verdict:
    """Retrain only when every condition holds; otherwise name the first one that fails."""
    if not policy.enabled:
        return Verdict(False, Outcome.DISABLED, "retraining is disabled in the spec")
    champion = state.champion_version
    if champion is None:
        return Verdict(
            False, Outcome.NO_CHAMPION, "no champion to retrain: train and promote one first"
        )
    if not alarm.alarmed:
        return Verdict(False, Outcome.NO_ALARM, f"no alarm on champion v{champion}")
    if alarm.champion_version is not None and alarm.champion_version != champion:
        return Verdict(
            False,
            Outcome.STALE_ALARM,
            f"the alarm concerns v{alarm.champion_version}, but the champion is now v{champion}",
        )
    if state.lease is not None and state.lease.active(state.now):
        lease = state.lease
        return Verdict(
            False,
            Outcome.RUNNING,
            f"retraining already running (lease {lease.lease_id[:8]} held by {lease.holder}"
            f" until {lease.expires_at:%Y-%m-%d %H:%M:%S} UTC)",
        )
    cooldown = timedelta(hours=policy.cooldown_hours)
    if state.last_retrain_at is not None and state.now - state.last_retrain_at < cooldown:
        return Verdict(
            False,
            Outcome.COOLDOWN,
            f"cooldown: the last retrain started {_ago(state.now, state.last_retrain_at)}"
            f" (cooldown {policy.cooldown_hours:g} h)",
        )
    since = (
        f"gold v{state.labels_since_version}"
        if state.labels_since_version is not None
        else "the beginning (the champion records no training gold version)"
    )
    if policy.require_new_labels and state.new_labelled_rows < policy.min_new_labels:
        return Verdict(
            False,
            Outcome.NO_NEW_LABELS,
            f"no new labelled data: {state.new_labelled_rows} labelled row(s) in gold"
            f" v{state.latest_gold_version} since {since} (need {policy.min_new_labels})",
        )
    return Verdict(
        True,
        Outcome.RETRAIN,
        f"alarm on champion v{champion} ({alarm.text()}); {state.new_labelled_rows} new"
        f" labelled row(s) in gold v{state.latest_gold_version} since {since}",
    )


def labels_since(
    champion_gold_version: int | None, attempted_gold_version: int | None
) -> int | None:
    """New labels count from the later of the champion's and the last attempt's gold version.

    Counting from the champion alone would retrain again and again after a candidate
    failed the gate: the champion stays, so the same labels look new on every run.
    """
    known = [v for v in (champion_gold_version, attempted_gold_version) if v is not None]
    return max(known) if known else None


def new_labelled_rows(
    latest: pd.DataFrame, previous: pd.DataFrame | None, on: list[str], label: str
) -> int:
    """Labelled rows of ``latest`` that ``previous`` does not hold with the same label.

    ``on`` identifies an observation (the key, plus the event time when the spec has a
    real one); a changed label counts as new, a row without a label does not.
    """
    from kubricks.registry.fresh import unseen_labelled

    return len(unseen_labelled(latest, previous, on, label))
