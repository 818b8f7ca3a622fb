"""`kubricks train` as a user runs it: ingest a spec's synthetic rows, train, gate."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubricks.cli import app
from tests.kubricks.training.specs import regression_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _stop_spark() -> Iterator[None]:
    """`kubricks ingest` starts Spark in this process; stop it with the module."""
    yield
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


def test_train_prints_family_metrics_run_and_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: str
) -> None:
    monkeypatch.setenv("KUBRICKS_HOME", str(tmp_path / "home"))
    spec_path, _ = regression_spec(tmp_path, name="cli_houses")
    runner = CliRunner()
    ingested = runner.invoke(
        app, ["ingest", "--usecase", str(spec_path), "--source", "synthetic", "--rows", "600"]
    )
    assert ingested.exit_code == 0, ingested.output
    result = runner.invoke(
        app, ["train", "--usecase", str(spec_path), "--max-trials", "3", "--budget-minutes", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "Best of 3 trials" in result.output
    assert "rmse" in result.output and "r2" in result.output
    assert "Model: models:/" in result.output
    assert "Gate: version 1" in result.output  # the first version of cli_houses


def test_untrained_usecase_is_a_one_line_error(tmp_path: Path, mlflow_server: str) -> None:
    spec_path, _ = regression_spec(tmp_path, name="never_ingested")
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kubricks.cli import main; main()",
            "train",
            "--usecase",
            str(spec_path),
            "--max-trials",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={
            "KUBRICKS_HOME": str(tmp_path / "home"),
            "KUBRICKS_TRACKING_URI": mlflow_server,
            "PATH": "/usr/bin:/bin",
        },
    )
    assert completed.returncode == 2, completed.stderr
    assert "no gold Delta table" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
