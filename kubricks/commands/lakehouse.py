"""`kubricks ingest` and `kubricks tables`: the medallion lakehouse from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kubricks.commands import tables as table_commands
from kubricks.commands.options import AUTO, UseCaseOption, get_settings
from kubricks.console import command_line, console, table

tables_app = typer.Typer(help="List Delta tables and their history.", invoke_without_command=True)


def ingest(
    usecase: UseCaseOption = AUTO,
    source: Annotated[
        str | None, typer.Option(help="File or folder to ingest, or 'synthetic'.")
    ] = None,
    rows: Annotated[int, typer.Option(help="Rows to generate with --source synthetic.")] = 10_000,
    batch_id: Annotated[
        str | None, typer.Option(help="Batch id; default: a hash of the source content.")
    ] = None,
) -> None:
    """Ingest a batch into bronze, silver (plus quarantine) and gold Delta tables."""
    from kubricks.lakehouse.ingest import ingest as run_ingest
    from kubricks.lakehouse.ingest import resolve_source
    from kubricks.lakehouse.sources import check_file
    from kubricks.spark import get_spark
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    path = resolve_source(spec, source, settings, rows)
    check_file(path, spec.source.format)  # fail fast, before Spark starts
    with console.status(f"Ingesting {path} into the lakehouse…"):
        spark = get_spark(settings)
        result = run_ingest(spark, spec, path, settings, batch_id)
    state = "already ingested; no table changed" if result.skipped else "committed"
    if result.recovered:
        state += " (its run record was missing and is recovered from the gold commit)"
    console.print(f"Batch [bold]{result.batch_id}[/] from {result.source}: {state}")
    console.print(
        table(
            "Tables",
            ["table", "rows written", "version", "committed"],
            [
                (t.table, t.rows, t.version, "yes" if t.committed else "no")
                for t in result.tables.values()
            ],
        )
    )
    if result.changes:
        c = result.changes
        console.print(
            f"Change feed: {c['events']} valid event(s): {c['upserted']} upserted,"
            f" {c['deleted']} deleted, {c['ignored']} ignored (superseded, late or duplicate)"
        )
    if result.quarantined or result.warnings:
        console.print(
            table(
                "Expectations",
                ["rule", "rows", "action"],
                [
                    (r, n, "warn" if r in result.warnings else "quarantine")
                    for r, n in sorted({**result.quarantined, **result.warnings}.items())
                ],
            )
        )
    else:
        console.print("No row broke an expectation.")


@tables_app.callback()
def tables_list(ctx: typer.Context) -> None:
    """List every table with its current version and row count."""
    if not ctx.invoked_subcommand:
        print_tables()


def print_tables() -> None:
    from kubricks.lakehouse import tables

    settings = get_settings()
    root, options = settings.lakehouse_uri, settings.storage_options()
    names = tables.list_tables(root, options) if Path(root).exists() or "://" in root else []
    rows = []
    for name in names:
        dt = tables.open_table(tables.table_uri(root, *name.split("/")), storage_options=options)
        count = sum(int(n) for n in dt.get_add_actions(flatten=True)["num_records"].to_pylist())
        rows.append((name, dt.version(), count))
    if not rows:
        console.print(f"No tables under {root} yet. Ingest a file with:")
        command_line("kubricks ingest --usecase NAME --source PATH")
        return
    console.print(table(f"Tables under {root}", ["table", "version", "rows"], rows))


@tables_app.command("history")
def tables_history(
    name: Annotated[str, typer.Argument(help="layer/name, for example silver/churn")],
) -> None:
    """Show a table's commits: version, time, operation and batch id."""
    from kubricks.errors import KubricksError
    from kubricks.lakehouse import tables

    settings = get_settings()
    if name.count("/") != 1:
        raise KubricksError(f"{name!r}: expected layer/name, for example silver/churn")
    uri = tables.table_uri(settings.lakehouse_uri, *name.split("/"))
    options = settings.storage_options()
    if not tables.exists(uri, options):
        raise KubricksError(f"{name}: no Delta table at {uri} (see `kubricks tables`)")
    rows = [
        (
            h.get("version"),
            table_commands.readable_time(h.get("timestamp")),
            h.get("operation"),
            h.get("kubricks.batch_id"),
        )
        for h in tables.history(uri, options)
    ]
    console.print(table(f"History of {name}", ["version", "time", "operation", "batch"], rows))


@tables_app.command("restore")
def tables_restore(
    name: Annotated[str, typer.Argument(help="layer/name, for example silver/churn")],
    reason: Annotated[str, typer.Option(help="Why: recorded in the audit trail.")],
    version: Annotated[int | None, typer.Option(min=0, help="The version to restore.")] = None,
    timestamp: Annotated[
        str | None,
        typer.Option(help="Restore the version current at this ISO 8601 time instead."),
    ] = None,
    with_gold: Annotated[
        bool | None,
        typer.Option(
            "--with-gold/--no-gold",
            help="Restoring silver: also restore the gold version computed from it"
            " (default: ask when interactive).",
        ),
    ] = None,
) -> None:
    """Restore a table to an earlier version, committed as a new version and audited."""
    import sys
    from datetime import datetime

    from kubricks.errors import KubricksError
    from kubricks.lakehouse.restore import matching_version, restore

    settings = get_settings()
    when = None
    if timestamp is not None:
        try:
            when = datetime.fromisoformat(timestamp)
        except ValueError as exc:
            raise KubricksError(f"--timestamp {timestamp!r}: not an ISO 8601 time") from exc
    done = restore(settings, name, version=version, timestamp=when, reason=reason)
    _print_restored(done)
    match = matching_version(settings, name, done.target)
    if match is None:
        return
    gold, gold_version = match
    if with_gold is None and sys.stdin.isatty():
        with_gold = typer.confirm(
            f"{gold} version {gold_version} was computed from {name} version {done.target}."
            " Restore it too?"
        )
    if with_gold:
        _print_restored(
            restore(
                settings,
                gold,
                version=gold_version,
                reason=f"{reason} (matches {name} version {done.target})",
            )
        )
    else:
        console.print(
            f"{gold} version {gold_version} was computed from {name} version {done.target};"
            f" restore it too with `kubricks tables restore {gold} --version {gold_version}"
            " --reason ...`"
        )


def _print_restored(done: object) -> None:
    from kubricks.lakehouse.restore import Restored

    assert isinstance(done, Restored)
    if not done.changed:
        console.print(f"{done.table} already holds version {done.target}'s content: no commit.")
        return
    console.print(
        f"{done.table}: version {done.version} holds version {done.target}'s content"
        f" (was version {done.from_version}); recorded in the lakehouse audit trail."
    )


@tables_app.command("rebuild")
def tables_rebuild(
    usecase: UseCaseOption = AUTO,
    from_version: Annotated[
        int | None,
        typer.Option(min=0, help="Bronze version to rebuild from; default: the latest."),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why: recorded in the audit trail.")] = "",
) -> None:
    """Recompute silver, quarantine and gold from bronze with the current spec (new versions)."""
    from kubricks.lakehouse.rebuild import rebuild
    from kubricks.spark import get_spark
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    with console.status(f"Rebuilding {spec.name} from bronze…"):
        result = rebuild(get_spark(settings), spec, settings, from_version, reason)
    if result.skipped:
        console.print(
            f"Already rebuilt from bronze version {result.bronze_version} with this spec:"
            " no table changed."
        )
    else:
        console.print(
            f"Rebuilt from bronze version {result.bronze_version} ({result.bronze_rows} rows),"
            f" operation {result.operation_id}"
        )
    console.print(
        table(
            "Tables",
            ["table", "rows written", "version", "committed"],
            [
                (t.table, t.rows, t.version, "yes" if t.committed else "no")
                for t in result.tables.values()
            ],
        )
    )
    if result.quarantined:
        console.print(table("Quarantined", ["rule", "rows"], sorted(result.quarantined.items())))


# Looking at rows, and maintenance: kubricks.commands.tables
tables_app.command("show")(table_commands.show)
tables_app.command("optimize")(table_commands.optimize)
tables_app.command("vacuum")(table_commands.vacuum)
