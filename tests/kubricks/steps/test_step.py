"""A component body's failure becomes one line naming the step, and exit code 1; a run the
step could not close is recorded and closed as FAILED once the server answers again."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from kubricks.errors import SourceError
from kubricks.runs import unfinished
from kubricks.settings import KubricksSettings
from kubricks.spec import BUNDLED_USECASES
from kubricks.steps.step import one_line, step
from tests.conftest import free_port


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBRICKS_HOME", str(tmp_path))


def test_user_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info, step("ingest", "churn") as ctx:
        assert ctx.spec.name == "churn" and ctx.mlflow_run_id is None
        raise SourceError("/data/x.csv: no such file")
    assert info.value.code == 1
    assert capsys.readouterr().err.strip() == "error: step ingest: /data/x.csv: no such file"


def test_a_bug_keeps_its_traceback_in_the_log_and_ends_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit), step("train", "churn"):
        {}["missing"]
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("Traceback")
    assert err[-1] == "error: step train: KeyError: 'missing'"


def test_unknown_use_case_names_the_spec(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit), step("monitor", "nope"):
        pass
    assert "no such use-case spec" in capsys.readouterr().err


def test_a_path_is_refused_where_only_use_case_names_are_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tmp_path / "mine.yaml"
    own.write_text((BUNDLED_USECASES / "churn.yaml").read_text())
    with step("ingest", str(own)) as ctx:  # locally a path is the user's own choice
        assert ctx.spec.name == "churn"
    monkeypatch.setenv("KUBRICKS_STEP_USECASE_PATHS", "false")  # as the cluster sets it
    for usecase in (str(own), "../../tmp/mine", "churn.yaml"):
        with pytest.raises(SystemExit), step("ingest", usecase):
            pass
        err = capsys.readouterr().err.strip()
        assert err == (
            f"error: step ingest: usecase {usecase!r}: only use-case names from"
            f" {BUNDLED_USECASES} are accepted here, not paths (KUBRICKS_STEP_USECASE_PATHS"
            " is false)"
        )
    with step("ingest", "churn") as ctx:  # a name from the configured folder still works
        assert ctx.spec.name == "churn"


def test_success_runs_the_body_once() -> None:
    calls = []
    with step("deploy", "churn") as ctx:
        calls.append(ctx.name)
    assert calls == ["deploy"]


def test_one_line_takes_the_first_line() -> None:
    assert one_line(ValueError("a\nb")) == "ValueError: a"
    assert one_line(SourceError("f.csv: empty\nmore")) == "f.csv: empty"


@pytest.mark.slow
def test_a_run_the_lost_server_could_not_close_is_closed_as_failed_later(
    mlflow_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(mlflow_server)
    parent = client.create_run(client.create_experiment(f"steps-{tmp_path.name}")).info.run_id
    with pytest.raises(SystemExit), step("deploy", "churn", parent) as ctx:
        opened = ctx.mlflow_run_id
        # The server is gone by the time the step ends (a port nothing listens on).
        ctx.settings = ctx.settings.model_copy(
            update={"tracking_uri": f"http://127.0.0.1:{free_port()}"}
        )
    assert "error: step deploy: MLflow tracking server at" in capsys.readouterr().err
    assert opened is not None and client.get_run(opened).info.status == "RUNNING"
    settings = KubricksSettings(home=tmp_path, tracking_uri=mlflow_server)
    assert unfinished.pending(settings) == {opened: "FAILED"}

    assert unfinished.settle(client, settings) == [opened]
    assert client.get_run(opened).info.status == "FAILED"
    assert unfinished.pending(settings) == {}
    assert unfinished.settle(client, settings) == []  # settled once
