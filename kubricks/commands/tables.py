"""`kubricks tables show | optimize | vacuum`: look at a table's rows, and keep tables fast
to read and small to store (registered on the ``tables`` app in kubricks.commands.lakehouse)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kubricks.commands.options import get_settings
from kubricks.console import console, table
from kubricks.errors import KubricksError

if TYPE_CHECKING:
    import pyarrow as pa

    from kubricks.lakehouse.maintenance import Pin
    from kubricks.settings import KubricksSettings
    from kubricks.spec import UseCaseSpec


def table_uri(name: str, settings: KubricksSettings) -> str:
    """The URI of ``layer/name``, which must be an existing Delta table."""
    from kubricks.lakehouse import tables

    if name.count("/") != 1:
        raise KubricksError(f"{name!r}: expected layer/name, for example silver/churn")
    uri = tables.table_uri(settings.lakehouse_uri, *name.split("/"))
    if not tables.exists(uri, settings.storage_options()):
        raise KubricksError(f"{name}: no Delta table at {uri} (see `kubricks tables`)")
    return uri


def readable_time(epoch_ms: object) -> str:
    """Delta's commit time (epoch milliseconds) as a UTC date and time."""
    if not isinstance(epoch_ms, int | float):
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def show(
    name: Annotated[str, typer.Argument(help="layer/name, for example gold/churn_predictions")],
    version: Annotated[
        int | None, typer.Option(min=0, help="Read this version (time travel).")
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(help="A SQL filter, e.g. \"Geography = 'France' AND Age > 40\"."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 20,
    columns: Annotated[
        str | None, typer.Option(help="Comma-separated columns to show (default: all).")
    ] = None,
    output: Annotated[
        str, typer.Option("--format", help="table, csv or json (one object per line).")
    ] = "table",
) -> None:
    """Print rows of a table, for example the predictions or the row_key of an entity."""
    from kubricks.lakehouse.query import select_rows

    if output not in ("table", "csv", "json"):
        raise KubricksError(f"--format {output!r}: choose table, csv or json")
    settings = get_settings()
    uri = table_uri(name, settings)
    wanted = [c.strip() for c in (columns or "").split(",") if c.strip()]
    rows, read = select_rows(uri, name, version, where, wanted, limit, settings.storage_options())
    out = console.file  # the user's stdout, also while library output goes to the log
    if output == "json":
        for record in rows.to_pylist():
            out.write(json.dumps(record, default=_plain) + "\n")
        out.flush()
        return
    if output == "csv":
        import io

        import pyarrow.csv as pacsv

        buffer = io.BytesIO()
        pacsv.write_csv(rows, buffer)
        out.write(buffer.getvalue().decode("utf-8"))
        out.flush()
        return
    filtered = f" where {where}" if where else ""
    title = f"{name} v{read}{filtered}: {rows.num_rows} row(s)"
    print_full(table(title, rows.column_names, _cells(rows)))


def _plain(value: Any) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def _cells(rows: pa.Table) -> list[list[str]]:
    return [
        ["" if v is None else _plain(v) for v in record.values()] for record in rows.to_pylist()
    ]


def print_full(renderable: Any) -> None:
    """Print a table whole: in a pipe or a log there is no terminal to fit, so no cell is cut."""
    if console.is_terminal:
        console.print(renderable)
        return
    from rich.console import Console

    unbounded = console.options.update(max_width=100_000)
    width = max(console.width, console.measure(renderable, options=unbounded).maximum)
    Console(file=console.file, width=width, no_color=console.no_color).print(renderable)


def optimize(
    name: Annotated[
        str | None, typer.Argument(help="layer/name; default: every table in the lakehouse.")
    ] = None,
    zorder_by: Annotated[
        str | None,
        typer.Option(help="Z-order by this column (default: the use case's entity key)."),
    ] = None,
    target_mb: Annotated[
        int | None, typer.Option(min=1, help="Target file size in MB (default: Delta's).")
    ] = None,
) -> None:
    """Compact small files; Z-order by the entity key where a table spans several files."""
    from kubricks.lakehouse import maintenance

    settings = get_settings()
    options = settings.storage_options()
    names = [name] if name else _all_tables(settings)
    specs = _known_specs(settings)
    rows = []
    for each in names:
        uri = table_uri(each, settings)
        key = zorder_by or entity_key(each, specs)
        with console.status(f"Optimizing {each}…"):
            result = maintenance.optimize(
                uri, each, key, options, target_mb * 2**20 if target_mb else None
            )
        files = f"{result.before.files} → {result.files_after}"
        rows.append((each, result.how, files, f"{result.seconds:.1f}", result.why))
    print_full(table("Optimize", ["table", "action", "files", "seconds", "why"], rows))


def vacuum(
    name: Annotated[
        str | None, typer.Argument(help="layer/name; default: every table in the lakehouse.")
    ] = None,
    retain_hours: Annotated[
        int, typer.Option(min=0, help="Keep files younger than this (Delta's default: 7 days).")
    ] = 168,
    force: Annotated[bool, typer.Option(help="Allow a retention shorter than 7 days.")] = False,
    dry_run: Annotated[
        bool, typer.Option(help="List what would be deleted; delete nothing.")
    ] = False,
    ignore_pins: Annotated[
        bool,
        typer.Option(
            help="Also delete files of gold versions that aliased models were trained on."
        ),
    ] = False,
) -> None:
    """Delete files no version within the retention needs (old versions become unreadable).

    Gold versions that registered models with an alias were trained on (their monitoring
    baseline) are kept, and the output says so; --ignore-pins deletes them too.
    """
    from kubricks.lakehouse import maintenance

    settings = get_settings()
    maintenance.check_retention(retain_hours, force)  # before anything is read
    names = [name] if name else _all_tables(settings)
    pins = _pins(settings, ignore_pins) if any(n.startswith("gold/") for n in names) else {}
    rows, notes = [], []
    for each in names:
        uri = table_uri(each, settings)
        with console.status(f"Vacuuming {each}…"):
            result = maintenance.vacuum(
                uri,
                each,
                retain_hours,
                settings.storage_options(),
                pins.get(uri.rstrip("/"), []),
                force=force,
                dry_run=dry_run,
                keep_pinned=not ignore_pins,
            )
        rows.append((each, len(result.removed), result.version))
        notes += [
            f"{each}: kept {n} file(s) that {holder} was trained on"
            for holder, n in result.kept.items()
        ]
        notes += [
            f"{each}: removed {n} file(s) that {holder} was trained on: that version of"
            f" {each} can no longer be read"
            for holder, n in result.lost.items()
        ]
    verb = "would remove" if dry_run else "removed"
    title = f"Vacuum (retain {retain_hours} h{', dry run' if dry_run else ''})"
    print_full(table(title, ["table", f"files {verb}", "version"], rows))
    for note in notes:
        console.print(note, highlight=False, soft_wrap=True)


def _all_tables(settings: KubricksSettings) -> list[str]:
    from kubricks.lakehouse import tables

    root = settings.lakehouse_uri
    if "://" not in root and not Path(root).exists():
        return []
    return tables.list_tables(root, settings.storage_options())


def _known_specs(settings: KubricksSettings) -> list[UseCaseSpec]:
    """The specs a table name can belong to: those in the use-case folder."""
    from kubricks.errors import SpecError
    from kubricks.spec import BUNDLED_USECASES, load_spec

    found = []
    for path in sorted((settings.usecases_dir or BUNDLED_USECASES).glob("*.yaml")):
        try:
            found.append(load_spec(path))
        except SpecError:
            continue  # not ours to judge here; `kubricks spec` commands report it
    return found


def entity_key(name: str, specs: list[UseCaseSpec]) -> str | None:
    """The column to Z-order a table by: its use case's entity key (inference log: none)."""
    from kubricks.lakehouse.maintenance import owner, zorder_key

    usecase = owner(name, [s.name for s in specs])
    spec = next((s for s in specs if s.name == usecase), None)
    return zorder_key(name, spec.entity_key) if spec is not None else None


def _pins(settings: KubricksSettings, optional: bool) -> dict[str, list[Pin]]:
    """Per gold table URI, what registered models were trained on; ``optional``: an
    unreachable registry means no pins instead of an error."""
    from kubricks.registry.pins import gold_pins
    from kubricks.tracking import connect

    try:
        client = connect(settings)
    except KubricksError as exc:
        if optional:
            return {}
        raise KubricksError(
            f"{exc}; vacuum needs the registry to keep the gold versions models were trained"
            " on (or pass --ignore-pins)"
        ) from exc
    return gold_pins(client)
