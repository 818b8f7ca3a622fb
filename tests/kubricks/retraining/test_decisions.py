"""The decisions table and its lease, on real Delta tables: append-only, and one winner."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from kubricks.lakehouse import tables
from kubricks.retraining import decisions
from kubricks.retraining.decisions import Recorder
from kubricks.settings import KubricksSettings
from kubricks.spec import load_spec


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    return Recorder(load_spec("churn"), KubricksSettings(home=tmp_path), "run-1", "mlflow-1")


def test_events_append_with_their_identity_and_nothing_is_rewritten(recorder: Recorder) -> None:
    assert decisions.read(recorder.spec, recorder.settings) == []
    recorder.record(decisions.ALARM, "2 of 10 features drifted", champion_version="3")
    recorder.record(decisions.SKIPPED, "cooldown", outcome="cooldown", gold_version=4)
    rows = decisions.read(recorder.spec, recorder.settings)
    assert [r["event"] for r in rows] == ["alarm", "skipped"]
    assert {r["decision_id"] for r in rows} == {"run-1"}
    assert {r["mlflow_run_id"] for r in rows} == {"mlflow-1"}
    assert rows[1]["gold_version"] == 4 and rows[0]["champion_version"] == "3"
    uri = decisions.decisions_uri(recorder.spec, recorder.settings)
    assert uri.endswith("/_meta/churn_retraining_decisions")
    history = tables.history(uri)
    assert {h["operationParameters"]["mode"] for h in history if "operationParameters" in h} == {
        "Append"
    }
    assert tables.current_version(uri) == 2  # the empty table, then one commit per event


def test_an_unknown_field_is_refused(recorder: Recorder) -> None:
    with pytest.raises(Exception, match="unknown field.*colour"):
        recorder.record(decisions.ALARM, "x", colour="red")


def test_a_lease_blocks_others_until_released_or_expired(recorder: Recorder) -> None:
    first = decisions.acquire(recorder, minutes=10)
    assert first.won
    other = Recorder(recorder.spec, recorder.settings, "run-2")
    second = decisions.acquire(other, minutes=10)
    assert not second.won and second.lease.lease_id == first.lease.lease_id
    rows = decisions.read(recorder.spec, recorder.settings)
    assert decisions.active_lease(rows, decisions.now()) == first.lease  # the loser released
    decisions.release(recorder, first.lease, "done")
    assert decisions.acquire(other, minutes=10).won

    # an expired lease (a crashed loop) blocks nobody
    rows = decisions.read(recorder.spec, recorder.settings)
    later = decisions.now() + timedelta(minutes=11)
    assert decisions.active_lease(rows, decisions.now()) is not None
    assert decisions.active_lease(rows, later) is None
    assert decisions.acquire(recorder, minutes=10, at=later).won


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_requests_have_exactly_one_winner(recorder: Recorder, round_: int) -> None:
    """Eight loops request the lease on the same instant (on a table that does not exist
    yet, the hardest case: its creation races too); the Delta log orders them."""
    contenders = 8
    barrier = threading.Barrier(contenders)
    results: list[decisions.LeaseAttempt] = []
    errors: list[BaseException] = []

    def contend(i: int) -> None:
        mine = Recorder(recorder.spec, recorder.settings, f"run-{i}")
        barrier.wait()
        try:
            results.append(decisions.acquire(mine, minutes=10))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    winners = [r for r in results if r.won]
    assert len(winners) == 1
    held = decisions.active_lease(decisions.read(recorder.spec, recorder.settings), decisions.now())
    assert held == winners[0].lease


def test_last_retrain_and_attempted_gold_version(recorder: Recorder) -> None:
    recorder.record(decisions.RETRAIN_STARTED, "alarm", gold_version=3)
    recorder.record(decisions.GATE, "failed", gold_version=4)
    recorder.record(decisions.SKIPPED, "cooldown", gold_version=9)  # a skip used no data
    recorder.record(decisions.RETRAIN_STARTED, "alarm", gold_version=6)
    recorder.record(decisions.FAILED, "ServiceUnavailable: MLflow is down")  # never judged
    rows = decisions.read(recorder.spec, recorder.settings)
    assert decisions.attempted_gold_version(rows) == 4
    last = decisions.last_retrain(rows)
    assert last is not None and last["gold_version"] == 6  # the cooldown counts from it
    assert decisions.attempted_gold_version([]) is None and decisions.last_retrain([]) is None
