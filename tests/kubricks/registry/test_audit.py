"""The audit trail: its replay rule (pure) and the append-only Delta table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from deltalake import DeltaTable

from kubricks.registry import audit
from kubricks.registry.audit import AuditRecord
from kubricks.settings import get_settings

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def rec(
    i: int,
    src: str | None,
    dst: str,
    action: str = "gate",
    alias: str = "champion",
    model: str = "m",
) -> AuditRecord:
    return AuditRecord(T0 + timedelta(minutes=i), "ann", model, alias, src, dst, action, f"r{i}")


def test_lineage_pushes_moves_and_pops_rollbacks() -> None:
    records = [
        rec(0, None, "1"),
        rec(1, None, "1", alias="challenger"),  # other aliases are ignored
        rec(2, "1", "2"),
        rec(3, "2", "3", action="promote"),
        rec(4, "3", "2", action="rollback"),
    ]
    assert audit.champion_lineage(records, "champion") == ["1", "2"]
    assert audit.previous_version(records, "champion", "2") == "1"


def test_repeated_rollbacks_walk_back_instead_of_undoing_themselves() -> None:
    records = [rec(0, None, "1"), rec(1, "1", "2"), rec(2, "2", "3"), rec(3, "3", "2", "rollback")]
    assert audit.previous_version(records, "champion", "2") == "1"
    records.append(rec(4, "2", "1", "rollback"))
    assert audit.previous_version(records, "champion", "1") is None


def test_promoting_an_old_version_makes_the_replaced_one_previous() -> None:
    records = [rec(0, None, "1"), rec(1, "1", "2"), rec(2, "2", "1", "promote")]
    assert audit.previous_version(records, "champion", "1") == "2"


def test_an_alias_moved_outside_kubricks_still_finds_the_last_recorded() -> None:
    records = [rec(0, None, "1"), rec(1, "1", "2")]
    assert audit.previous_version(records, "champion", "5") == "2"
    assert audit.previous_version([], "champion", "5") is None


def test_records_append_as_delta_versions_and_read_back_per_model(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path)
    assert audit.read(settings, "m") == []
    written = [rec(2, "1", "2"), rec(0, None, "1"), rec(1, None, "9", model="other")]
    for record in written:
        audit.append(settings, record)
    assert audit.read(settings, "m") == [written[1], written[0]]  # oldest first
    assert audit.read(settings, "other") == [written[2]]
    # A fresh reader (as after a restart) sees one append-only commit per change.
    table = DeltaTable(audit.audit_uri(settings))
    assert table.version() == 2
    history = table.history()
    assert len(history) == 3
    assert {(h["operation"], h["operationParameters"]["mode"]) for h in history} == {
        ("WRITE", "Append")
    }
    assert audit.audit_uri(settings).endswith("lakehouse/_meta/registry_audit")


def test_actor_comes_from_settings_else_the_os_user(tmp_path: Path) -> None:
    assert audit.current_actor(get_settings(home=tmp_path, registry_actor="ci-bot")) == "ci-bot"
    assert audit.current_actor(get_settings(home=tmp_path, registry_actor=None)) not in ("", None)
