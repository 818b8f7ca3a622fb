"""`kubricks monitor`: drift, quality and alarms of the champion's windows, with a report."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import typer

from kubricks.console import console, table
from kubricks.settings import get_settings


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(value) or "-"
    return str(value)


def print_result(result) -> None:
    """The window table, the verdict and where the report is."""
    windows = result.analysis.windows
    columns = [
        c
        for c in ("window_start", "count", "drifted_features", "drift_alarm", "label_coverage",
                  "realized", "estimated", "quality_raw", "quality_alarm", "alarm")
        if c in windows.columns
    ]  # fmt: skip
    rows = [[_fmt(row[c]) for c in columns] for _, row in windows.iterrows()]
    console.print(table("Monitoring windows", columns, rows))
    verdict = "[red]ALARM[/]" if result.alarm else "[green]no alarm[/]"
    drifted = ", ".join(result.drifted_features) or "none"
    console.print(f"Latest window: {verdict} (drifted features: {drifted})")
    for kind, uri in result.tables.items():
        console.print(f"{kind} metrics: {uri}")
    console.print(f"Report: {result.report_path}")


def monitor(
    usecase: Annotated[str, typer.Option(help="Use-case name or path to a spec YAML.")] = "churn",
    source: Annotated[
        str,
        typer.Option(help="'inference-log' (default), 'gold', or a Delta/Parquet/CSV path."),
    ] = "inference-log",
    granularity: Annotated[
        str | None, typer.Option(help="hour, day, week or month; default the spec's.")
    ] = None,
    retrain: Annotated[
        bool, typer.Option(help="Run the closed loop once (retrain if the policy says so).")
    ] = False,
) -> None:
    """Compare the monitored windows with the champion's training data; print a summary."""
    from kubricks.monitoring.run import monitor as run_monitor
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    result = run_monitor(spec, settings, source=source, granularity=granularity)
    print_result(result)
    if retrain:
        from kubricks.monitoring import loop

        outcome = loop.run_once(spec, settings, monitor=loop.given_alarm(result))
        console.print(f"Loop: {outcome.summary()}")
        if outcome.gate_alarm:  # recorded in the decisions table and the audit trail
            from kubricks.registry.gate import GateAlarm

            raise GateAlarm(f"alarm: {spec.name}: {outcome.gate_alarm}")
