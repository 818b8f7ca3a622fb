"""`kubricks features apply|materialize|get` end to end on churn (Typer runner, real Feast)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubricks.commands.features import app
from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings

runner = CliRunner()


def env(settings: KubricksSettings) -> dict[str, str]:
    return {
        "KUBRICKS_HOME": str(settings.home),
        "KUBRICKS_LAKEHOUSE_ROOT": str(settings.lakehouse_root),
    }


@pytest.mark.slow
def test_apply_materialize_get(churn_settings: KubricksSettings) -> None:
    applied = runner.invoke(app, ["apply", "--usecase", "churn"], env=env(churn_settings))
    assert applied.exit_code == 0, applied.output
    assert "churn_features" in applied.output and "EstimatedSalary" in applied.output
    assert "Exited" not in applied.output

    done = runner.invoke(app, ["materialize", "--usecase", "churn"], env=env(churn_settings))
    assert done.exit_code == 0, done.output
    assert "Materialized 10000 CustomerId key(s) into the sqlite online store" in done.output

    got = runner.invoke(
        app,
        ["get", "--usecase", "churn", "--key", "15634602", "--key", "15647311", "--key", "7"],
        env=env(churn_settings),
    )
    assert got.exit_code == 0, got.output
    credit = next(line for line in got.output.splitlines() if "CreditScore" in line)
    assert "619" in credit and "608" in credit  # the two customers' gold values
    assert "No online features for 7" in got.output


def test_get_without_gold_names_the_table(tmp_path: Path) -> None:
    result = runner.invoke(app, ["get", "--key", "1"], env={"KUBRICKS_HOME": str(tmp_path)})
    assert isinstance(result.exception, KubricksError)
    assert "gold/churn" in str(result.exception) and "kubricks ingest" in str(result.exception)
