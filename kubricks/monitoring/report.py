"""The drift report as one self-contained HTML page (the monitor step's HTML artifact)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from kubricks.monitoring.drift import DriftResult

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}
td,th{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}
.drift{color:#b00020;font-weight:600}.ok{color:#1b5e20}
"""


def render(result: DriftResult, usecase: str, baseline: str, current: str) -> str:
    """A page with the verdict, what was compared, and one row per feature test."""
    verdict = "Drift detected" if result.drift_detected else "No drift"
    css = "drift" if result.drift_detected else "ok"
    rows = "".join(
        f"<tr><td>{escape(f.feature)}</td><td>{f.kind}</td><td>{f.test}</td>"
        f"<td>{f.statistic:.4f}</td><td>{f.p_value:.4g}</td>"
        f"<td class='{'drift' if f.drifted else 'ok'}'>{'yes' if f.drifted else 'no'}</td></tr>"
        for f in result.features
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Drift report: {escape(usecase)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Drift report: {escape(usecase)}</h1>"
        f"<p class='{css}'>{verdict}: {len(result.drifted)} of {len(result.features)} features"
        f" drifted (share {result.drift_share:.2f}; threshold"
        f" {result.drift_share_threshold:.2f}; p-value below {result.p_value:g}).</p>"
        f"<p>Baseline: {escape(baseline)}<br>Current: {escape(current)}<br>"
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC</p>"
        "<table><tr><th>feature</th><th>kind</th><th>test</th><th>statistic</th>"
        f"<th>p-value</th><th>drifted</th></tr>{rows}</table></body></html>"
    )
