"""`kubricks ingest` and `kubricks tables` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubricks.cli import app

pytestmark = pytest.mark.slow


def test_ingest_then_tables_then_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBRICKS_HOME", str(tmp_path))
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", "--source", "synthetic", "--rows", "300"])
    assert result.exit_code == 0, result.output
    assert "bronze/churn" in result.output and "gold/churn" in result.output
    assert "300" in result.output

    again = runner.invoke(app, ["ingest", "--source", "synthetic", "--rows", "300"])
    assert "already ingested; no table changed" in again.output

    listing = runner.invoke(app, ["tables"])
    assert listing.exit_code == 0
    assert "silver/churn_quarantine" in listing.output

    history = runner.invoke(app, ["tables", "history", "gold/churn"])
    assert history.exit_code == 0
    assert "CREATE TABLE" in history.output


def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kubricks.cli import main; main()",
            "ingest",
            "--source",
            str(tmp_path / "nope.csv"),
        ],
        capture_output=True,
        text=True,
        env={"KUBRICKS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert completed.returncode == 2
    assert "nope.csv: no such file" in completed.stderr
    assert "Traceback" not in completed.stderr
