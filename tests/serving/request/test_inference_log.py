"""The inference log under maintenance: thousands of small commits compacted and vacuumed
while the writer goes on, and the writer compacting its own log."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from kubricks.lakehouse import maintenance, tables
from kubricks.settings import KubricksSettings
from serving.request import inference_log
from serving.request.batch import Batch, Job
from tests.serving.request.test_units import CHURN, churn_batch

COMMITS = 2_000


def request(scored: Batch, request_id: str) -> Batch:
    """The same scored row as a new request: what one flush of a quiet worker commits."""
    job = Job(request_id, inference_log.now(), [1], scored.jobs[0].rows, "champion")
    return Batch(scored.model, [job], scored.columns, scored.outputs)


def log_rows(uri: str, version: int | None = None) -> list[tuple]:
    """(request_id, requested_at, prediction) of every row, in the order a reader gets them."""
    data = tables.read_arrow(uri, version)
    return list(
        zip(
            data["request_id"].to_pylist(),
            data["requested_at"].to_pylist(),
            data["prediction"].to_pylist(),
            strict=True,
        )
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)  # each commit reloads a table of ever more files: ~2 min unloaded
def test_maintenance_on_an_inference_log_with_thousands_of_small_commits(tmp_path: Path) -> None:
    settings = KubricksSettings(home=tmp_path, auto_compact_small_files=0)  # by hand here
    writer = inference_log.InferenceLogWriter(CHURN, settings)  # flushed by hand: one commit each
    batch = churn_batch("r", 15565701)
    for i in range(COMMITS):
        writer.put(request(batch, f"r{i:05d}"))
        assert writer.flush() == 1
    uri = writer.uri
    before = sorted(log_rows(uri))
    assert len(DeltaTable(uri).file_uris()) == COMMITS
    assert [r[0] for r in before] == [f"r{i:05d}" for i in range(COMMITS)]

    # serving goes on while the log is compacted: the appends and the compaction both land
    stop = threading.Event()
    appended: list[str] = []

    def keep_serving() -> None:
        while not stop.is_set() or not appended:
            late = f"late{len(appended):03d}"
            writer.put(request(batch, late))
            if writer.flush():
                appended.append(late)
            time.sleep(0.05)

    serving = threading.Thread(target=keep_serving)
    serving.start()
    try:
        result = maintenance.optimize(uri, "gold/churn_inference_log")
    finally:
        stop.set()
        serving.join(60)
    assert result.how == "compact" and result.before.files == COMMITS
    after = sorted(log_rows(uri))
    assert [r[0] for r in after if r[0].startswith("late")] == appended  # none lost
    assert [r for r in after if r[0].startswith("r")] == before  # every row, unchanged
    files = len(DeltaTable(uri).file_uris())
    assert files <= 1 + len(appended)  # one compacted file, plus the appends during it

    # vacuum: the replaced small files go, the current rows stay, the old versions are gone
    with pytest.raises(maintenance.MaintenanceError, match="shorter than Delta's 168 h"):
        maintenance.vacuum(uri, "gold/churn_inference_log", retain_hours=0)
    vacuumed = maintenance.vacuum(uri, "gold/churn_inference_log", retain_hours=0, force=True)
    assert len(vacuumed.removed) >= COMMITS
    assert sorted(log_rows(uri)) == after
    with pytest.raises(Exception):  # noqa: B017 - delta-rs or pyarrow: the file is gone
        log_rows(uri, 5)


def test_the_writer_compacts_its_log_once_small_files_pile_up(tmp_path: Path) -> None:
    settings = KubricksSettings(home=tmp_path, auto_compact_small_files=5)
    writer = inference_log.InferenceLogWriter(CHURN, settings)  # flushed by hand
    batch = churn_batch("r", 1)
    for i in range(23):
        writer.put(request(batch, f"r{i}"))
        assert writer.flush() == 1
        if writer._compaction is not None:
            writer._compaction.join(30)  # one at a time; the test waits so counts are exact
    table = DeltaTable(writer.uri)
    assert table.to_pyarrow_table().num_rows == 23  # nothing lost to compaction
    assert writer.compactions >= 4
    assert len(table.file_uris()) < 5
    operations = [h["operation"] for h in table.history()]
    assert operations.count("OPTIMIZE") == writer.compactions


def test_compaction_off_leaves_every_commit_a_file(tmp_path: Path) -> None:
    settings = KubricksSettings(home=tmp_path, auto_compact_small_files=0)
    writer = inference_log.InferenceLogWriter(CHURN, settings)
    for _ in range(6):
        writer.put(churn_batch("r", 1))
        writer.flush()
    time.sleep(0.1)
    assert writer.compactions == 0 and len(DeltaTable(writer.uri).file_uris()) == 6
