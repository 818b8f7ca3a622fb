"""`kubricks spec infer`: a first use-case spec from a data file, and why each choice was made."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kubricks.console import command_line, console, table

app = typer.Typer(
    help="Write a use-case spec from a data file, and check one against its data.",
    no_args_is_help=True,
)


@app.command("infer")
def infer(
    source: Annotated[Path, typer.Option(help="CSV, Parquet or JSON Lines file (or folder).")],
    label: Annotated[str, typer.Option(help="The column to predict.")],
    name: Annotated[
        str | None, typer.Option(help="Use-case name; default: from the file name.")
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Entity key column; default: a unique column, or generated.")
    ] = None,
    positive_class: Annotated[
        str | None,
        typer.Option(help="Binary labels other than 0/1: the value that counts as positive."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the YAML; default: <KUBRICKS_HOME>/usecases/<name>.yaml, where"
            " --usecase NAME finds it."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output file.")] = False,
) -> None:
    """Read a sample of SOURCE and write a spec that ingests and trains without edits."""
    from kubricks.commands.options import get_settings
    from kubricks.errors import KubricksError
    from kubricks.spec import load_spec
    from kubricks.spec_infer import infer_spec, read_sample, source_format, usecase_name
    from kubricks.usecase import own_dir, remember, short

    settings = get_settings()
    path = source.expanduser().resolve()
    fmt = source_format(path)
    spec_name = name or usecase_name(path)
    target = output or own_dir(settings) / f"{spec_name}.yaml"
    if target.exists() and not force:
        raise KubricksError(f"{target}: already exists; pass --force to overwrite it")
    with console.status(f"Reading {path}…"):
        frame, truncated = read_sample(path, fmt)
    inference = infer_spec(
        frame,
        label=label,
        where=str(path),
        source_path=str(path),
        fmt=fmt,
        name=spec_name,
        key=key,
        positive_class=positive_class,
        truncated=truncated,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(inference.yaml())
    load_spec(partial.rename(target))  # the file on disk is a valid spec, or an error names it
    console.print(
        table(
            f"Spec {spec_name!r} from {path.name}",
            ["decision", "choice", "why"],
            [(d.subject, d.choice, d.why) for d in inference.decisions],
        )
    )
    by_choice: dict[str, list[str]] = {}
    for decision in inference.columns:
        by_choice.setdefault(decision.choice, []).append(decision.subject)
    for choice in ("numeric", "categorical", "datetime"):
        names = by_choice.get(choice, [])
        if names:
            shown = ", ".join(names[:8]) + (f", … ({len(names)} in all)" if len(names) > 8 else "")
            console.print(f"[bold]{choice} features[/]: {shown}")
    for decision in inference.columns:
        if decision.choice == "left out":
            console.print(f"[yellow]left out[/] {decision.subject}: {decision.why}")
    remember(target.resolve(), settings)
    ref = short(str(target.resolve()), settings)
    console.print(
        f"Wrote [bold]{target}[/]. Next, check it against the data, then ingest and train:"
    )
    command_line(f"kubricks spec check {ref}")
    command_line(f"kubricks ingest --usecase {ref} && kubricks train --usecase {ref}")
    console.print("or the whole lifecycle on it:")
    command_line(f"kubricks demo --usecase {ref}")


@app.command("check")
def check(
    spec_file: Annotated[str, typer.Argument(metavar="SPEC", help="A spec's name or YAML path.")],
    source: Annotated[
        Path | None, typer.Option(help="The data to check it against; default the spec's source.")
    ] = None,
) -> None:
    """Check a spec against its data: columns, types, labels, expectations; one line each.

    Exits non-zero when ingest or training would fail on the data as it is.
    """
    from kubricks.commands.options import get_settings
    from kubricks.errors import KubricksError
    from kubricks.spark import get_spark
    from kubricks.spec import load_spec
    from kubricks.spec_check import check as run_check
    from kubricks.spec_check import source_of
    from kubricks.usecase import find

    settings = get_settings()
    path = find(spec_file, settings)
    spec = load_spec(path)
    data = source_of(spec, str(source) if source else None)
    with console.status(f"Reading {data} as ingest would…"):
        findings, rows = run_check(lambda: get_spark(settings), spec, data)
    read = f" ({rows} rows)" if rows else ""
    console.print(f"Spec {path.name} against {data}{read}:", highlight=False)
    for finding in findings:
        console.print(finding.line(), highlight=False, markup=False)
    errors = sum(f.level == "error" for f in findings)
    if errors:
        raise KubricksError(f"{path.name}: {errors} problem(s) would stop ingest or training")
    if not findings:
        console.print("No problem found.")
