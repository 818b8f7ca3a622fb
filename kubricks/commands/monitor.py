"""`kubricks monitor`: drift, quality and alarms of the champion's windows, with a report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kubricks.commands.options import AUTO, UseCaseOption, get_settings
from kubricks.console import console, table

if TYPE_CHECKING:
    import pandas as pd

MAX_WINDOWS_SHOWN = 12  # more than this: the alarmed windows and the latest; the rest in the report
ALARM_COLUMNS = ("alarm", "drift_alarm", "quality_alarm")


def _drift(row: pd.Series) -> str:
    """A window's drift verdict, with the drifted features when there are any."""
    if row.get("drift_verdict") == "drifted":
        return "drifted: " + ", ".join(row["drifted_features"])
    return str(row.get("drift_verdict", ""))


def _quality_cell(row: pd.Series) -> str:
    """The window's primary metric (realized, else estimated) and the quality verdict."""
    import pandas as pd

    verdict = str(row.get("quality_verdict", ""))
    for kind, prefix in (("realized", ""), ("estimated", "est. ")):
        value = row.get(kind)
        if value is not None and pd.notna(value):
            return f"{prefix}{value:.3f} {verdict}"
    return verdict


def _window(value: object, granularity: str) -> str:
    import pandas as pd

    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    fine = granularity in ("hour", "snapshot")
    return stamp.strftime("%Y-%m-%d %H:%M" if fine else "%Y-%m-%d")


def shown_windows(windows: pd.DataFrame, limit: int = MAX_WINDOWS_SHOWN) -> pd.DataFrame:
    """The windows worth a line: all of them when few, else those that alarmed and the
    latest one (a person reads the summary; the report keeps every window)."""
    import pandas as pd

    if len(windows) <= limit:
        return windows
    keep = pd.Series(False, index=windows.index)
    for flag in (c for c in ALARM_COLUMNS if c in windows.columns):
        keep |= windows[flag].fillna(False).astype(bool)
    keep.iloc[-1] = True
    return windows[keep]


def window_rows(result, windows: pd.DataFrame | None = None) -> list[list[str]]:
    """One short row per window (all of ``windows``, default every window): when, how many
    rows, drift, quality, alarm (after persistence); narrow enough for an 80-column
    terminal or a log file."""
    analysis = result.analysis
    windows = analysis.windows if windows is None else windows
    return [
        [
            _window(row["window_start"], analysis.granularity),
            f"{int(row['count']):,}",
            _drift(row),
            _quality_cell(row),
            "ALARM" if row["alarm"] else "-",
        ]
        for _, row in windows.iterrows()
    ]


def _latest(result) -> str:
    """The verdict on the latest window, in one line."""
    analysis = result.analysis
    drifted = ", ".join(result.drifted_features) or "none"
    if result.alarm:
        return f"Latest window: [red]ALARM[/] (drifted features: {drifted})"
    last = analysis.windows.iloc[-1] if not analysis.windows.empty else None
    if last is not None and not analysis.judged:
        return (
            f"Latest window: [yellow]{last['drift_verdict']}[/]: {int(last['count']):,} row(s),"
            " too few for drift to be judged"
        )
    return f"Latest window: [green]no alarm[/] (drifted features: {drifted})"


def _quality(result) -> str | None:
    import pandas as pd

    windows = result.analysis.windows
    if windows.empty or "reference_value" not in windows or result.analysis.quality.empty:
        return None
    last = windows.iloc[-1]
    primary = result.analysis.quality["primary_metric"].iloc[0]
    value = last["realized"] if pd.notna(last["realized"]) else last["estimated"]
    kind = "realized" if pd.notna(last["realized"]) else "estimated"
    if pd.isna(last["reference_value"]) or pd.isna(value):
        return f"Quality ({primary}): {last['quality_verdict']}"
    return (
        f"Quality ({primary}): {kind} {value:.4f} against {last['reference_value']:.4f} on the"
        f" champion's holdout: {last['quality_verdict']}"
    )


def print_result(result) -> None:
    """What was compared, the window table, the verdict and where the report is."""
    from kubricks.monitoring.dashboard import source_notes

    if result.source is not None:
        for note in source_notes(result.source, result.analysis):
            console.print(note, highlight=False)
    columns = ["window", "rows", "drift", "quality", "alarm"]
    windows = result.analysis.windows
    shown = shown_windows(windows)
    title = "Monitoring windows"
    if len(shown) < len(windows):
        title += f": the {len(shown) - 1} that alarmed and the latest, of {len(windows)}"
    console.print(table(title, columns, window_rows(result, shown)))
    if len(shown) < len(windows):
        console.print(f"Every window is in the report ({len(windows)} rows).")
    console.print(_latest(result), highlight=False)
    quality = _quality(result)
    if quality:
        console.print(quality, highlight=False)
    for kind, uri in result.tables.items():
        console.print(f"{kind} metrics: {uri}", highlight=False)
    if result.report_error:
        console.print(
            f"Report: [red]failed[/] ({result.report_error}); a plain page is at"
            f" {result.report_path}",
            highlight=False,
        )
    else:
        console.print(f"Report: {result.report_path}", highlight=False)


def monitor(
    usecase: UseCaseOption = AUTO,
    source: Annotated[
        str,
        typer.Option(
            help="'inference-log' (default), 'gold', a Delta table, or a CSV, Parquet or JSON"
            " file; a source with no time column is one snapshot window."
        ),
    ] = "inference-log",
    granularity: Annotated[
        str | None,
        typer.Option(help="auto, hour, day, week, month or year; default the spec's (auto)."),
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
        from kubricks.retraining.loop import run_once
        from kubricks.retraining.parts import given_alarm

        outcome = run_once(spec, settings, monitor=given_alarm(result))
        console.print(f"Loop: {outcome.summary()}")
        if outcome.gate_alarm:  # recorded in the decisions table and the audit trail
            from kubricks.registry.gate import GateAlarm

            raise GateAlarm(f"alarm: {spec.name}: {outcome.gate_alarm}")
