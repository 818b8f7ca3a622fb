"""`kubricks models` through Typer's test runner, against the real MLflow server."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubricks.cli import app
from kubricks.registry import audit
from kubricks.registry.errors import RegistryError
from kubricks.registry.gate import register_and_gate
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.training.result import TrainResult
from tests.kubricks.registry.conftest import cli_runner, write_spec

pytestmark = pytest.mark.slow


@pytest.fixture
def spec_file(spec: UseCaseSpec, tmp_path: Path) -> Path:
    return write_spec(spec, tmp_path)


@pytest.fixture
def runner(settings: KubricksSettings) -> CliRunner:
    return cli_runner(settings, actor="cli-user")


def test_list_promote_history_rollback(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    candidates: dict[str, TrainResult],
    spec_file: Path,
    runner: CliRunner,
) -> None:
    first = register_and_gate(spec, settings, candidates["strong"])
    failed = register_and_gate(spec, settings, candidates["dummy"])

    listed = runner.invoke(app, ["models", "list", "--usecase", str(spec_file)])
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[1]: line for line in listed.output.splitlines() if "│ " in line}
    assert "champion" in rows[first.version] and "passed" in rows[first.version]
    assert f"{first.candidate_metrics['roc_auc']:.4f}" in rows[first.version]
    assert "failed" in rows[failed.version] and "champion" not in rows[failed.version]

    promoted = runner.invoke(
        app,
        [
            "models",
            "promote",
            failed.version,
            "--usecase",
            str(spec_file),
            "--reason",
            "demo override",
        ],
    )
    assert promoted.exit_code == 0, promoted.output
    assert f"champion {first.version} -> {failed.version}" in promoted.output
    last = audit.read(settings, spec.name)[-1]
    assert (last.actor, last.reason, last.action) == ("cli-user", "demo override", "promote")

    history = runner.invoke(app, ["models", "history", "--usecase", str(spec_file)])
    assert history.exit_code == 0, history.output
    assert "demo override" in history.output and "cli-user" in history.output

    rolled = runner.invoke(app, ["models", "rollback", "--usecase", str(spec_file)])
    assert rolled.exit_code == 0, rolled.output
    assert f"champion {failed.version} -> {first.version}" in rolled.output


def test_errors_name_the_model_or_version(
    spec: UseCaseSpec, spec_file: Path, runner: CliRunner
) -> None:
    for args in (["list"], ["history"], ["rollback"], ["promote", "3", "--reason", "x"]):
        result = runner.invoke(app, ["models", *args, "--usecase", str(spec_file)])
        assert result.exit_code != 0
        assert isinstance(result.exception, RegistryError), result.output
        assert spec.name in str(result.exception)
    missing_reason = runner.invoke(app, ["models", "promote", "1", "--usecase", str(spec_file)])
    assert missing_reason.exit_code == 2
    assert "--reason" in missing_reason.output
