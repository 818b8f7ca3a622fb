"""Manual promotion and rollback on the real server: audited, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubricks.registry import audit
from kubricks.registry.aliases import move_alias, promote, rollback
from kubricks.registry.errors import RegistryError
from kubricks.registry.gate import register_and_gate
from kubricks.registry.store import CHAMPION, alias_version
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.tracking import connect
from kubricks.training.result import TrainResult

pytestmark = pytest.mark.slow


def test_manual_promotion_overrides_a_failed_gate_and_is_audited(
    spec: UseCaseSpec, settings: KubricksSettings, candidates: dict[str, TrainResult]
) -> None:
    first = register_and_gate(spec, settings, candidates["strong"])
    failed = register_and_gate(spec, settings, candidates["weak"])
    assert not failed.passed

    record = promote(settings, spec.name, failed.version, reason="hotfix: newer data")
    assert record is not None
    assert (record.from_version, record.to_version) == (first.version, failed.version)
    assert alias_version(connect(settings), spec.name, CHAMPION) == (failed.version)
    last = audit.read(settings, spec.name)[-1]
    assert (last.action, last.reason, last.actor) == ("promote", "hotfix: newer data", "tester")

    assert promote(settings, spec.name, failed.version, reason="again") is None  # no-op
    assert len(audit.read(settings, spec.name)) == 3

    back = rollback(settings, spec.name)
    assert back.to_version == first.version


def test_missing_model_version_and_previous_champion_are_named(
    spec: UseCaseSpec, settings: KubricksSettings, candidates: dict[str, TrainResult]
) -> None:
    with pytest.raises(RegistryError, match=f"registered model '{spec.name}' does not exist"):
        promote(settings, spec.name, "1", reason="x")
    with pytest.raises(RegistryError, match=f"registered model '{spec.name}' does not exist"):
        rollback(settings, spec.name)

    register_and_gate(spec, settings, candidates["weak"])
    with pytest.raises(RegistryError, match=r"version 7 of registered model .* \(versions: 1\)"):
        promote(settings, spec.name, "7", reason="x")
    with pytest.raises(RegistryError, match="no previous champion.*current champion: 1"):
        rollback(settings, spec.name)


def test_an_alias_move_that_cannot_be_audited_is_undone(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    candidates: dict[str, TrainResult],
    tmp_path: Path,
) -> None:
    first = register_and_gate(spec, settings, candidates["strong"])
    second = register_and_gate(spec, settings, candidates["weak"])
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the lakehouse should be")
    broken = settings.model_copy(update={"lakehouse_root": str(blocker)})
    client = connect(settings)

    with pytest.raises(Exception):  # noqa: B017 - whatever delta-rs raises for a bad path
        move_alias(client, broken, spec.name, CHAMPION, second.version, "promote", "x")
    assert alias_version(client, spec.name, CHAMPION) == first.version
