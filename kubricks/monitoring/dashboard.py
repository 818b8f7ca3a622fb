"""The monitoring report: one self-contained HTML page, drifted features first.

Each feature gets a bar chart of its frozen-bin shares, baseline against the latest
window (matplotlib, embedded as PNG), next to its drift metrics; then the window
timeline with alarms and, when there are labels or probabilities, quality per window.
"""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from html import escape

import numpy as np
import pandas as pd

from kubricks.monitoring.analysis import Analysis, Reference
from kubricks.monitoring.metrics import fractions

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left;font-size:.9rem}
.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}
.feature{display:flex;gap:1rem;align-items:center;border-top:1px solid #eee;padding:.5rem 0}
"""


def _plot(labels: list[str], base: np.ndarray, window: np.ndarray, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keep = (base > 0) | (window > 0)
    labels = [lab for lab, k in zip(labels, keep, strict=True) if k][:40]
    base, window = base[keep][:40], window[keep][:40]
    fig, ax = plt.subplots(figsize=(6, 2.4), dpi=80)
    x = np.arange(len(labels))
    ax.bar(x - 0.2, base, 0.4, label="baseline", color="#8da0cb")
    ax.bar(x + 0.2, window, 0.4, label="latest window", color="#fc8d62")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=6)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return "" if value is None or value is pd.NaT else str(value)


def render(
    analysis: Analysis,
    reference: Reference,
    usecase: str,
    lineage: dict[str, str],
) -> str:
    """The page: verdict, lineage, the window timeline, then one plot per feature."""
    latest_fine = analysis.latest_fine
    windows = analysis.windows
    alarm = analysis.alarm
    latest = windows["window_start"].max() if not windows.empty else None
    drift = analysis.drift
    last = drift[
        (drift["drift_type"] == "BASELINE")
        & drift["slice_key"].isna()
        & (drift["window_start"] == latest)
    ].sort_values(["drifted", "alarm_value"], ascending=[False, False])
    sections = []
    for row in last.itertuples(index=False):
        frozen = reference.bins[row.column_name]
        base = fractions(frozen.coarse(reference.sketches[row.column_name].fine[0]))
        window = fractions(frozen.coarse(latest_fine[row.column_name]))
        image = _plot(frozen.coarse_labels, base, window, row.column_name)
        css = "bad" if row.drifted else "ok"
        facts = (
            f"<b class='{css}'>{escape(row.column_name)}: "
            f"{'DRIFTED' if row.drifted else 'stable'}</b><br>"
            f"{row.alarm_metric} {row.alarm_value:.4f} (threshold {row.threshold:.4f},"
            f" null p {row.null_pvalue:.4f})<br>"
            f"JS {row.js_distance:.4f} · PSI {row.psi:.4f} · TV {row.tv_distance:.4f}"
            + (
                f" · KS {row.ks_statistic:.4f} · Wasserstein/sd {row.wasserstein_distance:.4f}"
                if row.data_type == "numeric"
                else f"<br>new: {escape(row.new_categories or '-')}"
                f" · missing: {escape(row.missing_categories or '-')}"
            )
            + f"<br>null share change {row.percent_null_delta:+.2f} pp"
        )
        sections.append(
            f"<div class='feature'><img src='data:image/png;base64,{image}'><p>{facts}</p></div>"
        )
    shown = [
        c
        for c in (
            "window_start", "window_end", "count", "drifted_features", "drift_raw", "drift_alarm",
            "label_coverage", "realized", "estimated", "estimate_gap", "quality_raw",
            "quality_alarm", "alarm",
        )
        if c in windows.columns
    ]  # fmt: skip
    verdict = "ALARM" if alarm else "no alarm"
    lineage_text = "<br>".join(f"{escape(k)}: {escape(v)}" for k, v in lineage.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Monitoring: {escape(usecase)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Monitoring: {escape(usecase)}</h1>"
        f"<p class='{'bad' if alarm else 'ok'}'>Latest window {escape(_fmt(latest))}: {verdict}"
        f" (drifted: {escape(', '.join(analysis.drifted_features) or 'none')})</p>"
        f"<p>{lineage_text}<br>Generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC</p>"
        f"<h2>Windows</h2>{_table(windows[shown])}"
        f"<h2>Features, latest window against the baseline</h2>{''.join(sections)}"
        "</body></html>"
    )
