"""An inference log after hours of serving, before and after `kubricks tables optimize`.

Run by hand: ``.venv/bin/python benchmarks/maintenance.py [--commits 10000] [--rows 4]``.
A worker's inference-log writer commits one small file every 2 s, so 10,000 single-batch
commits are what about 3 hours of one worker's serving (5.5 hours at one request per
flush) leave. The log is built with the writer's own schema and its own delta-rs append,
one commit per flush, with automatic compaction off (as it was before it existed). Then,
side by side on the same table:

- the monitoring read (``kubricks monitor --source inference-log`` reads the latest
  version whole: ``current_version`` then ``read_arrow(...).to_pandas()``),
- the number of files in the current version,
- the time of one more append (each commit loads the table's state, which grows with
  its files),

before and after :func:`kubricks.lakehouse.maintenance.optimize`, then what a vacuum of
the replaced files frees. The build is the slow part: each of the commits costs more
than the last, which is the point.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the serving package, not benchmarks/serving.py

from kubricks.lakehouse import maintenance, tables  # noqa: E402
from kubricks.settings import KubricksSettings  # noqa: E402
from kubricks.spec import load_spec  # noqa: E402
from serving.request.inference_log import log_schema, log_uri  # noqa: E402

FLUSH_SECONDS = 2.0


def flushes(schema: pa.Schema, commits: int, rows: int, seed: int = 5) -> list[pa.Table]:
    """One small Arrow table per flush, typed as the writer types its rows."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for i in range(commits):
        at = start + timedelta(seconds=FLUSH_SECONDS * i)
        columns = {}
        for field in schema:
            columns[field.name] = value_column(field, rows, rng, at, i)
        out.append(pa.table(columns, schema=schema))
    return out


def value_column(field: pa.Field, rows: int, rng: np.random.Generator, at: datetime, i: int):
    if field.name == "request_id":
        return [f"req-{i:06d}-{j}" for j in range(rows)]
    if field.name == "arm":
        return ["champion"] * rows
    if field.name in ("model_name", "model_version"):
        return ["churn" if field.name == "model_name" else "3"] * rows
    if pa.types.is_timestamp(field.type):
        return pa.array([at] * rows, field.type)
    if pa.types.is_floating(field.type):
        return rng.random(rows)
    if pa.types.is_integer(field.type):
        return rng.integers(0, 2, rows)
    if pa.types.is_boolean(field.type):
        return rng.random(rows) < 0.5
    return [str(v) for v in rng.integers(0, 1_000_000, rows)]


def monitoring_read(uri: str) -> tuple[float, int]:
    """What monitoring does with the inference log: the latest version, whole, as pandas."""
    start = time.perf_counter()
    version = tables.current_version(uri)
    frame = tables.read_arrow(uri, version).to_pandas()
    return time.perf_counter() - start, len(frame)


def median_read(uri: str, reads: int) -> tuple[float, int]:
    timings = [monitoring_read(uri) for _ in range(reads)]
    return statistics.median(t for t, _ in timings), timings[0][1]


def one_append(uri: str, batch: pa.Table) -> float:
    start = time.perf_counter()
    write_deltalake(uri, batch, mode="append")
    return time.perf_counter() - start


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=4, help="requests logged per flush")
    parser.add_argument("--reads", type=int, default=3, help="monitoring reads timed (median)")
    args = parser.parse_args()
    console = Console(width=120)
    work = Path(tempfile.mkdtemp(prefix="kubricks-maintenance-bench-"))
    try:
        spec = load_spec("churn")
        settings = KubricksSettings(home=work, auto_compact_small_files=0)
        uri = log_uri(spec, settings)
        batches = flushes(log_schema(spec), args.commits + 2, args.rows)
        build_started = time.perf_counter()
        first_commits: list[float] = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("committing flushes", total=args.commits)
            for i, batch in enumerate(batches[: args.commits]):
                seconds = one_append(uri, batch)
                if i < 100:
                    first_commits.append(seconds)
                progress.advance(task)
        build_s = time.perf_counter() - build_started
        files_before = len(DeltaTable(uri).file_uris())
        read_before, rows = median_read(uri, args.reads)
        append_before = one_append(uri, batches[args.commits])

        result = maintenance.optimize(uri, f"gold/{spec.name}_inference_log")
        files_after = len(DeltaTable(uri).file_uris())
        read_after, rows_after = median_read(uri, args.reads)
        assert rows_after == rows + args.rows, (rows_after, rows)
        append_after = one_append(uri, batches[args.commits + 1])

        stored = folder_bytes(Path(uri))
        vacuum_started = time.perf_counter()
        vacuumed = maintenance.vacuum(uri, "inference log", retain_hours=0, force=True)
        vacuum_s = time.perf_counter() - vacuum_started
        left = folder_bytes(Path(uri))

        console.print(
            f"Inference log of {args.commits:,} single-batch commits ({args.rows} rows each,"
            f" {rows:,} rows, about {args.commits * FLUSH_SECONDS / 3600:.1f} h of one worker's"
            f" flushes), built in {build_s:.0f} s; first 100 commits"
            f" {statistics.mean(first_commits) * 1000:.0f} ms each."
        )
        report = Table(title="Before and after `kubricks tables optimize` (same table, same run)")
        for column in ("", "before", "after", "ratio before/after"):
            report.add_column(column, justify="right")
        report.add_row(
            "monitoring read (s, median)",
            f"{read_before:.3f}",
            f"{read_after:.3f}",
            f"{read_before / read_after:.1f}x",
        )
        report.add_row(
            "files in the current version",
            f"{files_before:,}",
            f"{files_after:,}",
            f"{files_before / files_after:.0f}x",
        )
        report.add_row(
            "one more append (s)",
            f"{append_before:.3f}",
            f"{append_after:.3f}",
            f"{append_before / append_after:.1f}x",
        )
        console.print(report)
        console.print(
            f"optimize: {result.how} in {result.seconds:.1f} s ({result.why});"
            f" vacuum (retain 0 h, forced): {len(vacuumed.removed):,} files,"
            f" {stored / 2**20:.1f} MB -> {left / 2**20:.1f} MB of Parquet, in {vacuum_s:.1f} s."
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
