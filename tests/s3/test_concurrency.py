"""Two writers racing for the same Delta version on S3: exactly one wins, the other fails cleanly.

Commits go through delta-rs's conditional put (``If-None-Match: *`` on the log entry),
so the loser's log entry is refused by the server instead of overwriting the winner's.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kubricks import storage
from kubricks.lakehouse import tables
from kubricks.settings import KubricksSettings
from tests.s3.conftest import S3Server


def stage_rows(
    uri: str, folder: str, rows: pa.Table, options: dict[str, str]
) -> tables.StagedFiles:
    """What a writer does before committing: note the version it saw, upload its files."""
    seen = tables.current_version(uri, options)
    fs = storage.filesystem(options)
    location = f"{storage.fs_path(uri)}/{folder}"
    pq.write_table(rows, f"{location}/part-0.parquet", filesystem=fs)
    return tables.describe(uri, folder, f"{uri}/{folder}", (fs, location), read_version=seen)


def race(commits: dict[str, callable]) -> dict[str, object]:
    """Run the commits at the same instant; each outcome is a version or the exception."""
    barrier = threading.Barrier(len(commits))
    outcomes: dict[str, object] = {}

    def run(name: str) -> None:
        barrier.wait()
        try:
            outcomes[name] = commits[name]()
        except Exception as exc:  # the test inspects it
            outcomes[name] = exc

    threads = [threading.Thread(target=run, args=(name,)) for name in commits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.fixture
def settings(s3_server: S3Server, tmp_path: Path) -> KubricksSettings:
    return s3_server.settings(tmp_path)


def log_entries(s3_server: S3Server, uri: str) -> list[str]:
    _, key = storage.split(uri)
    return sorted(
        k.rsplit("/", 1)[-1] for k in s3_server.keys(f"{key}/_delta_log/") if k.endswith(".json")
    )


def test_the_same_batch_committed_twice_at_once_lands_once(
    s3_server: S3Server, settings: KubricksSettings
) -> None:
    options = settings.storage_options()
    assert options["aws_conditional_put"] == "etag"
    assert not any("UNSAFE_RENAME" in k.upper() for k in options)
    uri = tables.table_uri(settings.lakehouse_uri, "bronze", "events")
    tables.commit(
        stage_rows(uri, "part-init", pa.table({"x": [0]}), options), "append", "b0", None, options
    )

    # Two ingests of batch b1 (say a retried step and its original) commit at once.
    first = stage_rows(uri, "part-a", pa.table({"x": [1, 1]}), options)
    second = stage_rows(uri, "part-b", pa.table({"x": [1, 1]}), options)
    outcomes = race(
        {
            "a": lambda: tables.commit(first, "append", "b1", None, options),
            "b": lambda: tables.commit(second, "append", "b1", None, options),
        }
    )

    won = [v for v in outcomes.values() if isinstance(v, int)]
    lost = [v for v in outcomes.values() if isinstance(v, Exception)]
    assert won == [1] and len(lost) == 1, outcomes
    assert isinstance(lost[0], tables.ConcurrentCommit)
    message = str(lost[0])
    assert "\n" not in message and uri in message and "'b1'" in message
    assert tables.read_arrow(uri, storage_options=options)["x"].to_pylist().count(1) == 2
    assert log_entries(s3_server, uri) == [f"{v:020d}.json" for v in (0, 1)]

    # The loser's retry is what a re-run does: the batch is already there, so it is skipped.
    assert tables.has_batch(uri, "b1", options)
    assert tables.current_version(uri, options) == 1


def test_two_overwrites_of_one_version_keep_exactly_the_winner(
    s3_server: S3Server, settings: KubricksSettings
) -> None:
    options = settings.storage_options()
    uri = tables.table_uri(settings.lakehouse_uri, "gold", "scores")
    tables.commit(
        stage_rows(uri, "part-v0", pa.table({"x": [0, 0]}), options),
        "overwrite",
        "g0",
        None,
        options,
    )

    mine = stage_rows(uri, "part-mine", pa.table({"x": [1, 1, 1]}), options)
    theirs = stage_rows(uri, "part-theirs", pa.table({"x": [2]}), options)
    outcomes = race(
        {
            "mine": lambda: tables.commit(mine, "overwrite", "g-mine", None, options),
            "theirs": lambda: tables.commit(theirs, "overwrite", "g-theirs", None, options),
        }
    )

    winners = [name for name, v in outcomes.items() if v == 1]
    losers = [name for name, v in outcomes.items() if isinstance(v, tables.ConcurrentCommit)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    expected = {"mine": [1, 1, 1], "theirs": [2]}[winners[0]]
    assert tables.read_arrow(uri, storage_options=options)["x"].to_pylist() == expected
    assert log_entries(s3_server, uri) == [f"{v:020d}.json" for v in (0, 1)]
    assert not tables.has_batch(uri, f"g-{losers[0]}", options)

    # The loser retries from the new snapshot and lands as the next version, whole.
    retry = stage_rows(uri, "part-retry", pa.table({"x": [3]}), options)
    assert tables.commit(retry, "overwrite", f"g-{losers[0]}", None, options) == 2
    assert tables.read_arrow(uri, storage_options=options)["x"].to_pylist() == [3]
    assert tables.read_arrow(uri, version=1, storage_options=options)["x"].to_pylist() == expected
