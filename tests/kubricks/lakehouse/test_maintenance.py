"""Compaction, Z-order and vacuum on real Delta tables (delta-rs), and when each is chosen."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from kubricks.lakehouse import maintenance
from kubricks.lakehouse.maintenance import FileStats, MaintenanceError, Pin

MB = 2**20


def customers(seed: int, rows: int = 2_000) -> pa.Table:
    """Rows keyed by a shuffled customer id, as an append of scored customers looks."""
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "CustomerId": rng.permutation(1_000_000)[:rows] + 15_000_000,
            "Geography": rng.choice(["France", "Spain", "Germany"], rows),
            "probability": rng.random(rows),
        }
    )


def appended(path: Path, commits: int) -> str:
    uri = str(path)
    for i in range(commits):
        write_deltalake(uri, customers(i), mode="append")
    return uri


def key_ranges(uri: str) -> list[tuple[int, int]]:
    actions = pa.table(DeltaTable(uri).get_add_actions(flatten=True))
    return sorted(
        zip(
            actions["min.CustomerId"].to_pylist(),
            actions["max.CustomerId"].to_pylist(),
            strict=True,
        )
    )


def overlapping(ranges: list[tuple[int, int]]) -> int:
    return sum(1 for (_, high), (low, _) in itertools.pairwise(ranges) if low <= high)


def test_plan_says_what_it_does_and_why() -> None:
    small = FileStats(files=40, small_files=40, total_bytes=3 * MB, target_bytes=100 * MB)
    how, why = maintenance.plan(small, ["CustomerId"], "CustomerId")
    assert how == "compact"
    assert (
        "fit in one file" in why and "Z-order by CustomerId would let a reader skip nothing" in why
    )
    big = FileStats(files=40, small_files=40, total_bytes=450 * MB, target_bytes=100 * MB)
    how, why = maintenance.plan(big, ["CustomerId"], "CustomerId")
    assert how == "zorder" and "about 5 files" in why
    assert maintenance.plan(big, ["request_id"], "CustomerId")[0] == "compact"  # no such column
    assert maintenance.plan(big, ["CustomerId"], None)[0] == "compact"
    done = FileStats(files=5, small_files=1, total_bytes=450 * MB, target_bytes=100 * MB)
    assert maintenance.plan(done, ["CustomerId"], "CustomerId") == (
        "skipped",
        "already compact (5 file(s))",
    )


def rows(uri: str) -> list[tuple]:
    return sorted(tuple(r.values()) for r in DeltaTable(uri).to_pyarrow_table().to_pylist())


def test_compaction_rewrites_small_files_without_changing_a_row(tmp_path: Path) -> None:
    uri = appended(tmp_path / "log", 30)
    before = rows(uri)
    result = maintenance.optimize(uri, "gold/log", key=None)
    assert (result.how, result.before.files, result.files_after) == ("compact", 30, 1)
    assert rows(uri) == before
    assert DeltaTable(uri).history(1)[0]["operation"] == "OPTIMIZE"
    again = maintenance.optimize(uri, "gold/log", key=None)
    assert again.how == "skipped" and again.version == result.version  # nothing committed


def test_zorder_by_the_key_where_the_table_spans_several_files(tmp_path: Path) -> None:
    uri = appended(tmp_path / "predictions", 12)
    assert overlapping(key_ranges(uri)) == 11  # every append covers the whole key range
    before = rows(uri)
    result = maintenance.optimize(uri, "gold/predictions", "CustomerId", target_size=100_000)
    assert result.how == "zorder", result.why
    ranges = key_ranges(uri)
    assert len(ranges) > 2
    assert overlapping(ranges) == 0  # each file holds its own key range: a key filter skips
    assert rows(uri) == before


def test_compact_if_fragmented_waits_for_the_limit(tmp_path: Path) -> None:
    uri = appended(tmp_path / "log", 4)
    assert maintenance.compact_if_fragmented(uri, "gold/log", 5) is None
    assert maintenance.compact_if_fragmented(uri, "gold/log", 0) is None  # off
    write_deltalake(uri, customers(99), mode="append")
    done = maintenance.compact_if_fragmented(uri, "gold/log", 5)
    assert done is not None and done.files_after == 1
    assert maintenance.compact_if_fragmented(str(tmp_path / "none"), "gold/none", 5) is None


def gold_with_overwrites(path: Path) -> str:
    """Versions 0, 1, 2: each ingest overwrites gold, so older files are only in old versions."""
    uri = str(path)
    for seed in range(3):
        write_deltalake(uri, customers(seed, 100), mode="overwrite" if seed else "error")
    return uri


def test_vacuum_refuses_a_short_retention_unless_forced(tmp_path: Path) -> None:
    uri = gold_with_overwrites(tmp_path / "gold")
    with pytest.raises(MaintenanceError, match="--retain-hours 24 is shorter than Delta's 168 h"):
        maintenance.vacuum(uri, "gold/churn", retain_hours=24)
    nothing = maintenance.vacuum(uri, "gold/churn", retain_hours=168)
    assert nothing.removed == []  # every replaced file is younger than a week
    assert DeltaTable(uri, version=0).to_pyarrow_table().num_rows == 100


def test_vacuum_keeps_the_version_a_champion_was_trained_on_and_says_so(tmp_path: Path) -> None:
    uri = gold_with_overwrites(tmp_path / "gold")
    (tmp_path / "gold" / "orphan-of-a-crashed-run.parquet").write_bytes(b"PAR1")
    pins = [Pin(1, "churn v4 (champion)", True), Pin(0, "churn v2 (no alias)", False)]
    dry = maintenance.vacuum(uri, "gold/churn", 0, pins=pins, force=True, dry_run=True)
    assert "orphan-of-a-crashed-run.parquet" in dry.removed
    assert DeltaTable(uri, version=0).to_pyarrow_table().num_rows == 100  # dry: nothing gone

    result = maintenance.vacuum(uri, "gold/churn", 0, pins=pins, force=True)
    assert result.kept == {"churn v4 (champion)": 1}
    assert result.lost == {"churn v2 (no alias)": 1}
    assert not (tmp_path / "gold" / "orphan-of-a-crashed-run.parquet").exists()
    assert DeltaTable(uri, version=1).to_pyarrow_table().num_rows == 100  # the baseline reads
    with pytest.raises(Exception):  # noqa: B017 - delta-rs reports the missing file
        DeltaTable(uri, version=0).to_pyarrow_table()
    assert DeltaTable(uri).to_pyarrow_table().num_rows == 100


def test_vacuum_can_be_told_to_drop_pinned_versions(tmp_path: Path) -> None:
    uri = gold_with_overwrites(tmp_path / "gold")
    pins = [Pin(1, "churn v4 (champion)", True)]
    result = maintenance.vacuum(uri, "gold/churn", 0, pins=pins, force=True, keep_pinned=False)
    assert result.kept == {} and result.lost == {"churn v4 (champion)": 1}
    with pytest.raises(Exception):  # noqa: B017
        DeltaTable(uri, version=1).to_pyarrow_table()
