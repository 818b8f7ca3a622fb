"""Output a person reads whole in a log: wide tables, summaries, names that say what they are."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from rich.console import Console
from sklearn.datasets import load_wine

from kubricks import console as output
from kubricks.commands.models import metric_title
from kubricks.commands.monitor import print_result, shown_windows


def windows(count: int, alarmed: set[int]) -> pd.DataFrame:
    starts = pd.date_range("2026-01-01", periods=count, freq="D")
    return pd.DataFrame(
        {
            "window_start": starts,
            "count": [60] * count,
            "drifted_features": [["x"] if i in alarmed else [] for i in range(count)],
            "drift_verdict": ["drifted" if i in alarmed else "stable" for i in range(count)],
            "drift_alarm": [i in alarmed for i in range(count)],
            "alarm": [i in alarmed for i in range(count)],
        }
    )


def test_many_windows_show_the_alarms_and_the_latest_only() -> None:
    frame = windows(40, {3, 17})
    shown = shown_windows(frame)
    assert list(shown.index) == [3, 17, 39]
    assert shown_windows(windows(12, {3})).shape[0] == 12  # few: all of them


def test_monitor_summary_points_to_the_report() -> None:
    result = SimpleNamespace(
        analysis=SimpleNamespace(
            windows=windows(40, {3, 17}), granularity="day", judged=True, quality=pd.DataFrame()
        ),
        source=None,
        report_error=None,
        alarm=True,
        drifted_features=["x"],
        tables={"drift": "/lake/monitoring/wine_drift_metrics"},
        report_path="/home/reports/wine.html",
    )
    with output.console.capture() as captured:
        print_result(result)
    text = captured.get()
    assert "Monitoring windows: the 2 that alarmed and the latest, of 40" in text
    assert "Every window is in the report (40 rows)." in text
    assert "Report: /home/reports/wine.html" in text
    assert text.count("2026-") == 3 and "2026-02-09" in text  # the latest window


def test_multiclass_scores_say_they_are_macro_averages() -> None:
    three = ["barolo", "barbera", "grignolino"]
    assert metric_title("f1", three) == "f1 (macro)"
    assert metric_title("roc_auc", three) == "roc_auc (macro)"
    assert metric_title("accuracy", three) == "accuracy"
    assert metric_title("f1", [0, 1]) == "f1"
    assert metric_title("rmse", None) == "rmse"


def test_a_long_table_title_stays_on_one_line_in_a_log() -> None:
    out = io.StringIO()
    log = Console(file=out, width=output.LOG_WIDTH)
    title = "Feature view wine_features (entity lot_id, source /a/very/long/path/to/gold/wine)"
    log.print(output.table(title, ["feature", "type"], [("alcohol", "Float64")]))
    assert title in out.getvalue().splitlines()


def test_piped_spec_infer_prints_whole_cells_and_copyable_commands(tmp_path: Path) -> None:
    data = load_wine(as_frame=True)
    source = tmp_path / "wine.csv"
    data.frame.assign(target=data.target.map(dict(enumerate(data.target_names)))).to_csv(
        source, index=False
    )
    kubricks = str(Path(sys.executable).with_name("kubricks"))
    done = subprocess.run(
        [kubricks, "spec", "infer", "--source", str(source), "--label", "target"],
        env={**os.environ, "KUBRICKS_HOME": str(tmp_path / "home"), "COLUMNS": "60"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "\x1b" not in text and "\r" not in text
    cells = [line for line in text.splitlines() if "│" in line]
    assert cells and not [line for line in cells if "…" in line]
    assert any("macro average over the 3 classes" in line for line in cells)
    assert "kubricks ingest --usecase wine && kubricks train --usecase wine" in text.splitlines()
    assert (tmp_path / "home" / "logs" / "spec-infer.log").is_file()


def test_every_error_is_one_line_with_one_prefix(tmp_path: Path) -> None:
    kubricks = str(Path(sys.executable).with_name("kubricks"))
    env = {**os.environ, "KUBRICKS_HOME": str(tmp_path / "home")}
    cases = [
        (["train", "--nope"], {}, "error: No such option: --nope (see `kubricks train --help`)"),
        (["status"], {"KUBRICKS_MLFLOW_PORT": "abc"}, "error: KUBRICKS_MLFLOW_PORT='abc': "),
        (["tables", "history", "gold"], {}, "error: 'gold': expected layer/name"),
        (["spec", "check", "nope"], {}, "error: no use case named 'nope'"),
    ]
    for args, extra, start in cases:
        done = subprocess.run(
            [kubricks, *args], env={**env, **extra}, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith(start), (args, done.stderr)
        assert done.stderr.count("\n") == 1, (args, done.stderr)
