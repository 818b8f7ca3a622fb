"""The monitoring report: one self-contained HTML page, drifted features first.

Each feature gets a bar chart of its frozen-bin shares, baseline against the latest
window (matplotlib, embedded as PNG), next to its drift metrics; then the window
timeline with alarms and, when there are labels or probabilities, quality per window.
Labels on the plots are plain text (``plain_text`` escapes matplotlib's ``$`` mathtext),
and a plot that still fails leaves a note in its place rather than no report.
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
from kubricks.monitoring.sources import Source
from kubricks.training.plots import plain_text

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left;font-size:.9rem}
.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}.unjudged{color:#8a6d00;font-weight:600}
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
    ax.set_xticks(x, [plain_text(label) for label in labels], rotation=45, ha="right", fontsize=6)
    ax.set_title(plain_text(title), fontsize=9)
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


def source_notes(source: Source, analysis: Analysis) -> list[str]:
    """What was compared, in sentences: the source, the windows, the checks."""
    notes = [f"Source: {source.name}"]
    if analysis.snapshot:
        notes.append(
            "Snapshot: the source has no time column, so all its rows are one window"
            " (stamped when they were read), judged on its own."
        )
    else:
        notes.append(f"Windows: by {analysis.granularity}.")
    if source.untimed:
        notes.append(f"{source.untimed:,} row(s) have no time and are left out.")
    if source.checks:
        broken = ", ".join(f"{rule} {n:,}" for rule, n in sorted(source.checks.items()))
        notes.append(
            f"Checked as silver: rows breaking a check ({broken}) are still compared;"
            " values that do not parse count as missing."
        )
    elif source.checks is not None:
        notes.append("Checked as silver: every row passes every check.")
    return notes


def _verdict(row) -> tuple[str, str]:
    """(css class, text) of one feature's verdict in the latest window."""
    verdict = row.verdict if isinstance(row.verdict, str) else "stable"
    if verdict == "drifted":
        return "bad", "DRIFTED"
    if verdict.startswith("not judged"):
        return "unjudged", f"{verdict}; {int(row.count):,} row(s) in the window"
    return "ok", verdict


def _feature(row, reference: Reference, latest_fine: dict[str, np.ndarray]) -> str:
    frozen = reference.bins[row.column_name]
    try:
        base = fractions(frozen.coarse(reference.sketches[row.column_name].fine[0]))
        window = fractions(frozen.coarse(latest_fine[row.column_name]))
        png = _plot(frozen.coarse_labels, base, window, row.column_name)
        image = f"<img src='data:image/png;base64,{png}'>"
    except Exception as exc:  # one plot must not cost the report
        image = f"<p>(no plot: {escape(type(exc).__name__)})</p>"
    css, verdict = _verdict(row)
    facts = (
        f"<b class='{css}'>{escape(row.column_name)}: {escape(verdict)}</b><br>"
        f"{escape(str(row.alarm_metric))} {row.alarm_value:.4f} (threshold {row.threshold:.4f},"
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
    return f"<div class='feature'>{image}<p>{facts}</p></div>"


SHOWN = (
    "window_start", "window_end", "count", "drift_verdict", "drifted_features", "drift_alarm",
    "label_coverage", "realized", "estimated", "reference_value", "quality_verdict",
    "quality_alarm", "alarm",
)  # fmt: skip


def _headline(analysis: Analysis) -> tuple[str, str]:
    """(css class, text) of the verdict on the latest window."""
    windows = analysis.windows
    if windows.empty:
        return "unjudged", "no windows"
    last = windows.iloc[-1]
    if analysis.alarm:
        return "bad", "ALARM"
    if not analysis.judged and not bool(last.get("quality_alarm", False)):
        return (
            "unjudged",
            f"{last['drift_verdict']}: {int(last['count']):,} row(s), no alarm can fire",
        )
    return "ok", "no alarm"


def _page(usecase: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Monitoring: {escape(usecase)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Monitoring: {escape(usecase)}</h1>{body}</body></html>"
    )


def _intro(analysis: Analysis, lineage: dict[str, str], notes: list[str]) -> str:
    windows = analysis.windows
    latest = windows["window_start"].max() if not windows.empty else None
    css, verdict = _headline(analysis)
    lineage_text = "<br>".join(f"{escape(k)}: {escape(v)}" for k, v in lineage.items())
    notes_text = "".join(f"<p>{escape(n)}</p>" for n in notes)
    return (
        f"<p class='{css}'>Latest window {escape(_fmt(latest))}: {escape(verdict)}"
        f" (drifted: {escape(', '.join(analysis.drifted_features) or 'none')})</p>"
        f"{notes_text}"
        f"<p>{lineage_text}<br>Generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC</p>"
    )


def render(
    analysis: Analysis,
    reference: Reference,
    usecase: str,
    lineage: dict[str, str],
    notes: list[str] | None = None,
) -> str:
    """The page: verdict, source and lineage, the window timeline, one plot per column."""
    windows = analysis.windows
    latest = windows["window_start"].max() if not windows.empty else None
    drift = analysis.drift
    last = drift[
        (drift["drift_type"] == "BASELINE")
        & drift["slice_key"].isna()
        & (drift["window_start"] == latest)
    ].sort_values(["drifted", "alarm_value"], ascending=[False, False])
    sections = [_feature(row, reference, analysis.latest_fine) for row in last.itertuples()]
    shown = [c for c in SHOWN if c in windows.columns]
    return _page(
        usecase,
        _intro(analysis, lineage, notes or [])
        + f"<h2>Windows</h2>{_table(windows[shown])}"
        + f"<h2>Columns, latest window against the baseline</h2>{''.join(sections)}",
    )


def fallback(
    analysis: Analysis, usecase: str, lineage: dict[str, str], notes: list[str], error: str
) -> str:
    """A plain page for when the report itself failed: the verdict and why, no plots."""
    try:
        body = _intro(analysis, lineage, notes)
    except Exception:  # the page that explains a failure must not fail itself
        body = ""
    return _page(usecase, f"<p class='bad'>The full report failed: {escape(error)}</p>{body}")
