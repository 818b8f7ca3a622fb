"""The retraining policy: every condition can stop a retrain, and the reason says which."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from kubricks.retraining.policy import (
    Alarm,
    Lease,
    LoopState,
    Outcome,
    decide,
    labels_since,
    new_labelled_rows,
)
from kubricks.spec import Retraining, load_spec

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ALARM = Alarm(True, ("3 of 10 features drifted", "Age drifted (ks p=1e-09)"), "4")
READY = LoopState(
    now=NOW,
    champion_version="4",
    latest_gold_version=7,
    labels_since_version=5,
    new_labelled_rows=120,
    lease=None,
    last_retrain_at=NOW - timedelta(hours=30),
)
POLICY = Retraining(cooldown_hours=24)


def test_retrains_when_every_condition_holds_and_says_why() -> None:
    verdict = decide(ALARM, READY, POLICY)
    assert verdict.retrain and verdict.outcome == Outcome.RETRAIN
    assert "champion v4" in verdict.reason and "Age drifted" in verdict.reason
    assert "120 new labelled row(s) in gold v7 since gold v5" in verdict.reason


@pytest.mark.parametrize(
    ("alarm", "state", "policy", "outcome", "words"),
    [
        (ALARM, READY, Retraining(enabled=False), Outcome.DISABLED, "disabled"),
        (ALARM, replace(READY, champion_version=None), POLICY, Outcome.NO_CHAMPION, "no champion"),
        (Alarm(False, (), "4"), READY, POLICY, Outcome.NO_ALARM, "no alarm on champion v4"),
        (
            Alarm(True, ("drift",), "3"),
            READY,
            POLICY,
            Outcome.STALE_ALARM,
            "concerns v3, but the champion is now v4",
        ),
        (
            ALARM,
            replace(READY, lease=Lease("abcdef123456", "ann@box:7", NOW + timedelta(minutes=5))),
            POLICY,
            Outcome.RUNNING,
            "already running (lease abcdef12 held by ann@box:7",
        ),
        (
            ALARM,
            replace(READY, last_retrain_at=NOW - timedelta(hours=2)),
            POLICY,
            Outcome.COOLDOWN,
            "2.0 h ago (cooldown 24 h)",
        ),
        (
            ALARM,
            replace(READY, new_labelled_rows=0, labels_since_version=7),
            POLICY,
            Outcome.NO_NEW_LABELS,
            "0 labelled row(s) in gold v7 since gold v7",
        ),
        (
            ALARM,
            replace(READY, new_labelled_rows=40),
            Retraining(min_new_labels=50),
            Outcome.NO_NEW_LABELS,
            "(need 50)",
        ),
    ],
)
def test_each_failed_condition_skips_with_its_reason(
    alarm: Alarm, state: LoopState, policy: Retraining, outcome: Outcome, words: str
) -> None:
    verdict = decide(alarm, state, policy)
    assert not verdict.retrain
    assert verdict.outcome == outcome
    assert words in verdict.reason


def test_an_expired_lease_and_a_finished_cooldown_do_not_block() -> None:
    stale = Lease("dead", "crashed@box:1", NOW - timedelta(seconds=1))
    state = replace(READY, lease=stale, last_retrain_at=NOW - timedelta(hours=24, seconds=1))
    assert decide(ALARM, state, POLICY).retrain


def test_labels_can_be_optional_and_cooldown_zero() -> None:
    state = replace(READY, new_labelled_rows=0, last_retrain_at=NOW)
    assert decide(ALARM, state, Retraining(require_new_labels=False, cooldown_hours=0)).retrain


def test_new_labels_count_from_the_later_of_champion_and_last_attempt() -> None:
    assert labels_since(3, 6) == 6  # a failed attempt used v6: its labels are not new
    assert labels_since(6, 3) == 6
    assert labels_since(None, 2) == 2
    assert labels_since(None, None) is None


def test_new_labelled_rows_counts_new_keys_and_changed_labels_only() -> None:
    before = pd.DataFrame({"id": [1, 2, 3], "y": [0, 1, None]})
    after = pd.DataFrame({"id": [1, 2, 3, 4, 5], "y": [0, 0, 1, 1, None]})
    # 2 changed its label, 3 got one, 4 is new; 1 is unchanged and 5 has no label yet
    assert new_labelled_rows(after, before, ["id"], "y") == 3
    assert new_labelled_rows(after, None, ["id"], "y") == 4
    assert new_labelled_rows(before, before, ["id"], "y") == 0


def test_a_new_event_of_a_known_key_is_new_data_when_time_is_part_of_the_row() -> None:
    t0, t1 = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-02-01", tz="UTC")
    before = pd.DataFrame({"id": [1], "t": [t0], "y": [1]})
    after = pd.DataFrame({"id": [1], "t": [t1], "y": [1]})
    assert new_labelled_rows(after, before, ["id", "t"], "y") == 1
    assert new_labelled_rows(after, before, ["id"], "y") == 0


def test_specs_get_retraining_defaults_and_reject_bad_values(tmp_path) -> None:
    spec = load_spec("churn")
    assert spec.retraining == Retraining()
    assert spec.retraining.cooldown_hours == 24 and spec.retraining.require_new_labels
    raw = (
        spec.model_dump(mode="json")
        | {"name": "custom"}
        | {"retraining": {"cooldown_hours": 2, "min_new_labels": 10}}
    )
    custom = type(spec).model_validate(raw)
    assert custom.retraining.cooldown_hours == 2 and custom.retraining.min_new_labels == 10
    with pytest.raises(ValueError, match="cooldown_hours"):
        type(spec).model_validate(raw | {"retraining": {"cooldown_hours": -1}})
    with pytest.raises(ValueError, match="extra"):
        type(spec).model_validate(raw | {"retraining": {"cooldown": 1}})
