"""`kubricks demo`: the whole local lifecycle on synthetic data, in one command."""

from __future__ import annotations

from typing import Annotated

import typer

from kubricks.console import console


def demo(
    usecase: Annotated[str, typer.Option(help="Use case to run.")] = "churn",
    rows: Annotated[int, typer.Option(help="Synthetic rows to generate.")] = 10_000,
) -> None:
    """Ingest synthetic data into the lakehouse and show what was written."""
    from kubricks.commands.lakehouse import ingest, print_tables

    console.rule(f"Kubricks demo: {usecase}")
    ingest(usecase=usecase, source="synthetic", rows=rows, batch_id=None)
    print_tables()
