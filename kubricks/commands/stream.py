"""`kubricks stream`: score files as they land in a folder, with the current champion."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kubricks.commands.options import AUTO, UseCaseOption, get_settings
from kubricks.console import console, table


def stream(
    landing: Annotated[Path, typer.Option(help="Folder where new files land (moved in whole).")],
    usecase: UseCaseOption = AUTO,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Spark checkpoint; default <home>/streams/<usecase>/checkpoint."),
    ] = None,
    available_now: Annotated[
        bool,
        typer.Option(
            "--available-now/--continuous",
            "--once",
            help="Score the files already there, then stop (default: keep watching).",
        ),
    ] = False,
    trigger_seconds: Annotated[
        float, typer.Option(min=0.1, help="Seconds between micro-batches when watching.")
    ] = 10.0,
    max_files_per_trigger: Annotated[
        int | None, typer.Option(min=1, help="At most this many files per micro-batch.")
    ] = None,
    pattern: Annotated[
        str | None, typer.Option(help="File name glob; default by the spec's source format.")
    ] = None,
) -> None:
    """Score each new file in LANDING with @champion into gold/<usecase>_predictions, once.

    Rows that break the spec's rules, and files that cannot be read, go to
    silver/<usecase>_stream_quarantine; the stream goes on. Stop with Ctrl-C; the
    checkpoint makes a restart continue where it stopped.
    """
    from kubricks.scoring import streaming
    from kubricks.spark import get_spark
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    where = (
        checkpoint or settings.home.expanduser().resolve() / "streams" / spec.name / "checkpoint"
    )
    options = streaming.StreamOptions(
        landing=str(landing),
        checkpoint=str(where),
        available_now=available_now,
        trigger_seconds=trigger_seconds,
        max_files_per_trigger=max_files_per_trigger,
        pattern=pattern,
    )

    def show(report: streaming.BatchReport) -> None:
        if report.replayed:
            console.print(f"batch {report.batch_id}: already committed (replayed after a restart)")
            return
        bad = f", {len(report.bad_files)} unreadable file(s)" if report.bad_files else ""
        loaded = " (model loaded)" if report.loaded_model else ""
        console.print(
            f"batch {report.batch_id}: {len(report.files)} file(s), {report.scored} row(s)"
            f" scored by {spec.name} v{report.model_version}{loaded}, {report.quarantined}"
            f" quarantined{bad}"
            f" ({report.seconds:.1f} s)",
            highlight=False,
        )

    mode = "files already landed" if available_now else "new files (Ctrl-C stops)"
    console.print(f"Streaming {landing} → gold/{spec.name}_predictions: {mode}")
    spark = get_spark(settings)
    result = streaming.run(spark, spec, settings, options, on_batch=show)
    console.print(
        table(
            f"Stream {result.query_id} (checkpoint {where})",
            ["batches", "files", "rows scored", "rows quarantined", "unreadable files"],
            [
                (
                    len(result.batches),
                    sum(len(b.files) for b in result.batches),
                    result.scored,
                    sum(b.quarantined for b in result.batches),
                    sum(len(b.bad_files) for b in result.batches),
                )
            ],
        )
    )
