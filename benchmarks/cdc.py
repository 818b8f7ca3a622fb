"""Change data capture: a delta-rs MERGE of change events vs a plain overwrite of the result.

Run by hand: ``.venv/bin/python benchmarks/cdc.py [--rows 1000000] [--changes 1000000 10000]``.

A silver table of ``--rows`` keys (several files, as ingest leaves it) receives a batch of
change events: half update existing keys with a higher sequence, a twentieth delete
keys, a twentieth are late (a lower sequence: ignored), the rest insert new keys. The
CDC path is Kubricks' own commit (``tables.merge_changes``: the staged events are the
MERGE source). The baseline writes the same final table as one overwrite; computing that
result (an Arrow join in memory) is timed apart, so the ratios show what the MERGE costs
over rewriting everything, with and without it. The changed keys are either spread over
every file or confined to the newest eighth of the keys (one file). Both tables are checked
to hold the same rows.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from rich.console import Console
from rich.table import Table

from kubricks.lakehouse import tables

DELETE = "_delete"


def silver_rows(rows: int, rng: np.random.Generator) -> pa.Table:
    return pa.table(
        {
            "key": np.arange(rows, dtype=np.int64),
            "seq": np.full(rows, 10, dtype=np.int64),
            "op": np.full(rows, "I"),
            "balance": rng.normal(1000, 300, rows).round(2),
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "age": rng.integers(18, 90, rows, dtype=np.int32),
        }
    )


def change_events(
    rows: int, changes: int, rng: np.random.Generator, recent: bool = False
) -> pa.Table:
    """Updates, deletes, late events and inserts; one event per key, keys shuffled.

    ``recent``: the existing keys changed are the newest eighth (one of the eight files),
    as when recent customers change most; otherwise they are spread over every file.
    """
    updates, deletes, late = changes // 2, changes // 20, changes // 20
    inserts = changes - updates - deletes - late
    touched = updates + deletes + late
    pool = np.arange(rows - max(rows // 8, touched), rows) if recent else np.arange(rows)
    existing = rng.permutation(pool)[:touched]
    keys = np.concatenate([existing, np.arange(rows, rows + inserts)])
    seq = np.full(changes, 20, dtype=np.int64)
    seq[updates + deletes : updates + deletes + late] = 5  # older than silver's 10
    delete = np.zeros(changes, dtype=bool)
    delete[updates : updates + deletes] = True
    order = rng.permutation(changes)
    return pa.table(
        {
            "key": keys[order].astype(np.int64),
            "seq": seq[order],
            "op": np.where(delete[order], "D", "U"),
            "balance": rng.normal(1100, 300, changes).round(2),
            "region": rng.choice(["north", "south", "east", "west"], changes),
            "age": rng.integers(18, 90, changes, dtype=np.int32),
            DELETE: delete[order],
        }
    )


def applied(silver: pa.Table, events: pa.Table) -> pa.Table:
    """The table the MERGE must leave, computed in memory (the baseline's input)."""
    newer = events.filter(pc.greater(events["seq"], 10))
    touched = pa.table({"key": newer["key"]})
    kept = silver.join(touched, "key", join_type="left anti")
    upserts = newer.filter(pc.invert(newer[DELETE])).drop_columns([DELETE])
    return pa.concat_tables([kept.select(upserts.column_names), upserts])


def stage_events(uri: str, events: pa.Table) -> tables.StagedFiles:
    """The events as ingest stages them: Parquet in a sub-folder of the table, uncommitted."""
    folder = "part-bench"
    location = Path(uri) / folder
    location.mkdir(parents=True)
    pq.write_table(events, location / "part-0.parquet")
    return tables.describe(
        uri, folder, str(location), tables.filesystem(str(location)), read_version=None
    )


def canonical(uri: str) -> pa.Table:
    table = DeltaTable(uri).to_pyarrow_table().select(["key", "seq", "balance", "region", "age"])
    return table.sort_by("key")


def run(rows: int, changes: int, recent: bool, work: Path) -> tuple[float, float, float, int]:
    rng = np.random.default_rng(16)
    silver, events = silver_rows(rows, rng), change_events(rows, changes, rng, recent)
    merged_uri, overwritten_uri = str(work / "merged"), str(work / "overwritten")
    for uri in (merged_uri, overwritten_uri):  # eight files, as eight batches leave them
        for part in silver.to_batches(max_chunksize=max(rows // 8, 1)):
            write_deltalake(uri, pa.Table.from_batches([part]), mode="append")
    staged = stage_events(merged_uri, events)
    start = time.perf_counter()
    tables.merge_changes(staged, "key", "seq", DELETE, "bench", None, None)
    merge_seconds = time.perf_counter() - start

    start = time.perf_counter()
    result = applied(silver, events)
    computed = time.perf_counter()
    write_deltalake(overwritten_uri, result, mode="overwrite")
    overwrite_seconds = time.perf_counter() - computed
    compute_seconds = computed - start

    same = canonical(merged_uri).equals(canonical(overwritten_uri))
    if not same:
        raise SystemExit("the MERGE and the overwrite left different tables")
    return merge_seconds, compute_seconds, overwrite_seconds, result.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, nargs="+", default=[1_000_000, 10_000])
    args = parser.parse_args()
    console = Console(width=150)
    report = Table(title=f"CDC into a {args.rows:,}-row silver table (8 files)")
    columns = ("change events", "keys changed", "rows after", "MERGE s", "compute s")
    for column in (*columns, "overwrite s", "MERGE / overwrite", "MERGE / (compute+overwrite)"):
        report.add_column(column, justify="right")
    for changes in args.changes:
        for recent in (False, True):
            work = Path(tempfile.mkdtemp(prefix="kubricks-cdc-bench-"))
            try:
                merge_s, compute_s, overwrite_s, after = run(args.rows, changes, recent, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            report.add_row(
                f"{changes:,}",
                "newest eighth" if recent else "spread",
                f"{after:,}",
                f"{merge_s:.2f}",
                f"{compute_s:.2f}",
                f"{overwrite_s:.2f}",
                f"{merge_s / overwrite_s:.2f}x",
                f"{merge_s / (compute_s + overwrite_s):.2f}x",
            )
    console.print(report)


if __name__ == "__main__":
    main()
