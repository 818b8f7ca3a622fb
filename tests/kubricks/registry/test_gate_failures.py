"""A tracking server killed (SIGKILL) in the middle of the gate, on a server of this test's own.

The gate must fail in seconds with one line that names the dead server and the version it
leaves ungated, never a missing holdout; the version stays tagged ``pending``, the audit
trail notes the interruption, a run the failure could not close is closed as FAILED once
the server is back, and the next gate (or `kubricks models gate V`) judges the leftover.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from kubricks import services
from kubricks.errors import ServiceUnavailable
from kubricks.registry import audit
from kubricks.registry import gate as gate_module
from kubricks.registry.gate import PENDING, STATUS_TAG, gate_version, register_and_gate
from kubricks.registry.store import CHAMPION, alias_version
from kubricks.runs import unfinished
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec, load_spec
from kubricks.tracking import use_server
from kubricks.training.mlflow_logging import end_run_quietly
from kubricks.training.result import MODEL_ARTIFACT, TrainResult
from tests.conftest import free_port
from tests.kubricks.registry.conftest import log_candidate

pytestmark = pytest.mark.slow


@dataclass
class Server:
    settings: KubricksSettings
    url: str

    def kill(self) -> None:
        """SIGKILL the server's whole process group, as an OOM kill or a node loss would."""
        pid = services.mlflow_status(self.settings).pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)

    def restart(self) -> None:
        services.start_mlflow(self.settings, timeout=300)
        use_server(self.url)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    settings = KubricksSettings(
        home=tmp_path,
        mlflow_port=port,
        tracking_uri=f"http://127.0.0.1:{port}",  # not the session server's, from the env
        registry_actor="tester",
    )
    status = services.start_mlflow(settings, timeout=300)
    use_server(status.url)
    try:
        yield Server(settings, status.url)
    finally:
        services.stop_mlflow(settings)


def test_a_server_killed_mid_gate_is_named_and_leaves_the_version_marked(
    server: Server,
    churn_split: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec: UseCaseSpec = load_spec("churn").model_copy(update={"name": "churn_killed"})
    settings = server.settings
    train, holdout = churn_split

    def candidate(kind: str) -> TrainResult:
        return log_candidate(kind, train, holdout, tmp_path / kind / str(time.time_ns()))

    first = register_and_gate(spec, settings, candidate("weak"))
    assert first.passed and first.version == "1"
    strong = candidate("strong")
    # A step's run that is open when the server dies (an AutoML search, a pipeline step).
    client = MlflowClient(server.url)
    open_run = client.create_run(client.get_run(strong.run_id).info.experiment_id).info.run_id

    real = gate_module.load_holdout

    def killed_first(*args: object) -> pd.DataFrame:
        server.kill()  # registered by now: the gate is judging v2
        return real(*args)

    monkeypatch.setattr(gate_module, "load_holdout", killed_first)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as lost:
        register_and_gate(spec, settings, strong)
    seconds = time.monotonic() - started
    end_run_quietly(client, settings, open_run, "FAILED")  # what AutoML does on the way out
    monkeypatch.undo()

    message = str(lost.value)
    assert seconds < 30, f"the gate took {seconds:.0f} s to give up"
    assert "\n" not in message
    assert message.startswith(f"MLflow tracking server at {server.url} stopped answering")
    assert "v2 stays registered but not gated (gate.status=pending)" in message
    assert "kubricks models gate 2" in message
    assert "holdout" not in message  # the artifact is there; the server is not
    interrupted = audit.read(settings, spec.name)[-1]
    assert (interrupted.action, interrupted.from_version) == ("interrupted", "1")
    assert unfinished.pending(settings) == {open_run: "FAILED"}

    server.restart()
    version = client.get_model_version(spec.name, "2")
    assert version.tags[STATUS_TAG] == PENDING
    assert alias_version(client, spec.name, CHAMPION) == "1"
    assert client.get_run(open_run).info.status == "RUNNING"

    # `kubricks models gate 2` judges the leftover (and closes the run left RUNNING).
    resolved = gate_version(spec, settings, "2")
    assert resolved.passed and "beats champion v1" in resolved.reason
    assert alias_version(client, spec.name, CHAMPION) == "2"
    assert client.get_run(open_run).info.status == "FAILED"
    assert unfinished.pending(settings) == {}

    # Another leftover (registered, never judged) is judged by the next train's gate first.
    leftover = candidate("weak")
    mlflow.register_model(
        f"runs:/{leftover.run_id}/{MODEL_ARTIFACT}",
        spec.name,
        tags={STATUS_TAG: PENDING, gate_module.RUN_TAG: leftover.run_id},
    )
    latest = register_and_gate(spec, settings, candidate("dummy"))
    assert [(d.version, d.passed) for d in latest.resolved] == [("3", False)]
    assert "does not beat champion v2" in latest.resolved[0].reason
    assert client.get_model_version(spec.name, "3").tags[STATUS_TAG] == "failed"
    assert latest.version == "4" and not latest.passed
    assert alias_version(client, spec.name, CHAMPION) == "2"
