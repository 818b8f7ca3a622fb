"""Monitor: compare current gold feature distributions with the champion's training data."""

from kfp.dsl import HTML, Metrics, Output
from kfp.dsl.python_component import PythonComponent


def monitor(
    usecase: str,
    p_value: float,
    drift_share: float,
    parent_run_id: str,
    report: Output[HTML],
    metrics: Output[Metrics],
) -> bool:
    """Run the drift tests; return whether the share of drifted features reaches the threshold.

    The single boolean output is what the monitoring pipeline's ``dsl.If`` tests.
    """
    from pathlib import Path

    from kubricks.monitoring.check import check_drift
    from kubricks.steps.step import step

    with step("monitor", usecase, parent_run_id) as ctx:
        result = check_drift(ctx.spec, ctx.settings, p_value=p_value, drift_share=drift_share)
        Path(report.path).write_text(result.html)
        summary = result.drift.summary()
        for name, value in summary.items():
            metrics.log_metric(name, float(value))
        ctx.outputs.update({**summary, "baseline": result.baseline})
        ctx.log_metrics(summary)
        verdict = "drift detected" if result.drift.drift_detected else "no drift"
        print(
            f"{verdict}: {summary['drifted_features']:.0f} of {summary['features']:.0f}"
            f" features drifted (share {summary['drift_share']:.2f})"
        )
        return bool(result.drift.drift_detected)


def component(image: str) -> PythonComponent:
    from components.tasks import lightweight

    return lightweight(monitor, image)
