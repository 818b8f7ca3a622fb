"""Human approval (``approval: required``) on the real MLflow server, by API and by CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from kubricks.cli import app
from kubricks.registry import audit
from kubricks.registry.aliases import promote
from kubricks.registry.approval import approve, reject
from kubricks.registry.errors import RegistryError
from kubricks.registry.gate import register_and_gate
from kubricks.registry.store import CHALLENGER, CHAMPION, alias_version
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.training.result import TrainResult
from tests.kubricks.registry.conftest import cli_runner, write_spec

pytestmark = pytest.mark.slow


@pytest.fixture
def governed(spec: UseCaseSpec) -> UseCaseSpec:
    return spec.model_copy(update={"approval": "required"})


@pytest.fixture
def runner(settings: KubricksSettings) -> CliRunner:
    return cli_runner(settings, actor="reviewer")


@pytest.fixture
def spec_file(governed: UseCaseSpec, tmp_path: Path) -> Path:
    return write_spec(governed, tmp_path)


def test_a_passing_candidate_waits_as_challenger_until_a_person_approves(
    governed: UseCaseSpec, settings: KubricksSettings, candidates: dict[str, TrainResult]
) -> None:
    client = MlflowClient(settings.resolved_tracking_uri)
    name = governed.name
    first = register_and_gate(governed, settings, candidates["weak"])
    assert first.passed and first.pending_approval
    assert alias_version(client, name, CHALLENGER) == first.version
    assert alias_version(client, name, CHAMPION) is None  # even the first one waits

    record = approve(settings, name, first.version, "reviewed the holdout plots")
    assert record is not None and (record.action, record.actor) == ("approve", "tester")
    assert alias_version(client, name, CHAMPION) == first.version
    tags = client.get_model_version(name, first.version).tags
    assert tags["gate.approval"] == "approved" and tags["gate.approval_by"] == "tester"
    assert tags["gate.approval_reason"] == "reviewed the holdout plots"
    with pytest.raises(RegistryError, match="is not waiting for approval"):
        reject(settings, name, first.version, "too late")

    better = register_and_gate(governed, settings, candidates["strong"])
    assert better.pending_approval and better.champion_version == first.version
    assert alias_version(client, name, CHALLENGER) == better.version
    assert alias_version(client, name, CHAMPION) == first.version  # the gate alone never moves it
    with pytest.raises(RegistryError, match="requires approval"):
        promote(settings, name, better.version, "skip the review", approval_required=True)

    failed = register_and_gate(governed, settings, candidates["dummy"])
    assert not failed.passed and failed.approval is None
    client.set_registered_model_alias(name, CHAMPION, failed.version)  # moved behind our back
    with pytest.raises(RegistryError, match=f"the champion is now v{failed.version}"):
        approve(settings, name, better.version, "looks fine")
    client.set_registered_model_alias(name, CHAMPION, first.version)

    refused = reject(settings, name, better.version, "fails on the new branch's customers")
    assert (refused.alias, refused.from_version, refused.to_version) == (
        CHALLENGER,
        better.version,
        None,
    )
    assert alias_version(client, name, CHALLENGER) is None
    assert client.get_model_version(name, better.version).tags["gate.approval"] == "rejected"
    with pytest.raises(RegistryError, match="is not waiting for approval"):
        approve(settings, name, better.version, "changed my mind")
    trail = [(r.alias, r.action, r.to_version) for r in audit.read(settings, name)]
    assert trail == [
        (CHALLENGER, "gate", first.version),
        (CHAMPION, "approve", first.version),
        (CHALLENGER, "gate", better.version),
        (CHALLENGER, "reject", None),
    ]


def test_the_cli_gates_approves_and_rejects(
    governed: UseCaseSpec,
    settings: KubricksSettings,
    candidates: dict[str, TrainResult],
    spec_file: Path,
    runner: CliRunner,
) -> None:
    first = register_and_gate(governed, settings, candidates["weak"])
    usecase = ["--usecase", str(spec_file)]
    listed = runner.invoke(app, ["models", "list", *usecase])
    assert listed.exit_code == 0, listed.output
    assert "passed, approval pending" in listed.output

    promoted = runner.invoke(app, ["models", "promote", first.version, "--reason", "x", *usecase])
    assert promoted.exit_code != 0 and "requires approval" in str(promoted.exception)

    approved = runner.invoke(
        app, ["models", "approve", first.version, "--reason", "signed off", *usecase]
    )
    assert approved.exit_code == 0, approved.output
    assert f"champion none -> {first.version} (approved by reviewer)" in approved.output
    history = runner.invoke(app, ["models", "history", *usecase])
    assert "reviewer" in history.output and "signed off" in history.output

    strong = register_and_gate(governed, settings, candidates["strong"])
    regated = runner.invoke(app, ["models", "gate", strong.version, *usecase])
    assert regated.exit_code == 0, regated.output
    assert "waiting for approval" in regated.output
    assert f"kubricks models approve {strong.version}" in regated.output
    rejected = runner.invoke(
        app, ["models", "reject", strong.version, "--reason", "not now", *usecase]
    )
    assert rejected.exit_code == 0, rejected.output
    assert "rejected by reviewer" in rejected.output
    champion = runner.invoke(app, ["models", "gate", first.version, *usecase])
    assert champion.exit_code != 0 and "is the champion" in str(champion.exception)
