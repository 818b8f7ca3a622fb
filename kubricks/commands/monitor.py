"""`kubricks monitor`: drift, quality and alarms of the champion's windows, with a report."""

from __future__ import annotations

import math
from typing import Annotated

import typer

from kubricks.commands.options import AUTO, UseCaseOption, get_settings
from kubricks.console import console, table

MAX_WINDOWS_SHOWN = 12  # more than this: the alarmed windows and the latest; the rest in the report
ALARM_COLUMNS = ("alarm", "drift_alarm", "quality_alarm")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(value) or "-"
    return str(value)


def shown_windows(windows, limit: int = MAX_WINDOWS_SHOWN):
    """The windows worth a line: all of them when few, else those that alarmed and the
    latest one (a person reads the summary; the report keeps every window)."""
    import pandas as pd

    if len(windows) <= limit:
        return windows
    flags = [c for c in ALARM_COLUMNS if c in windows.columns]
    keep = pd.Series(False, index=windows.index)
    for flag in flags:
        keep |= windows[flag].fillna(False).astype(bool)
    keep.iloc[-1] = True
    return windows[keep]


def print_result(result) -> None:
    """The windows (summarized when many), the verdict and where the report is."""
    windows = result.analysis.windows
    columns = [
        c
        for c in ("window_start", "count", "drifted_features", "drift_alarm", "label_coverage",
                  "realized", "estimated", "quality_raw", "quality_alarm", "alarm")
        if c in windows.columns
    ]  # fmt: skip
    shown = shown_windows(windows)
    rows = [[_fmt(row[c]) for c in columns] for _, row in shown.iterrows()]
    title = "Monitoring windows"
    if len(shown) < len(windows):
        title += f": the {len(shown) - 1} that alarmed and the latest, of {len(windows)}"
    console.print(table(title, columns, rows))
    if len(shown) < len(windows):
        console.print(f"Every window is in the report ({len(windows)} rows).")
    verdict = "[red]ALARM[/]" if result.alarm else "[green]no alarm[/]"
    drifted = ", ".join(result.drifted_features) or "none"
    console.print(f"Latest window: {verdict} (drifted features: {drifted})")
    for kind, uri in result.tables.items():
        console.print(f"{kind} metrics: {uri}")
    console.print(f"Report: {result.report_path}")


def monitor(
    usecase: UseCaseOption = AUTO,
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
