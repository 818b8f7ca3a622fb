"""Monitor: windowed drift and quality of the champion, then the closed loop once."""

from kfp.dsl import HTML, Metrics, Model, Output
from kfp.dsl.python_component import PythonComponent


def monitor(
    usecase: str,
    monitor_source: str,
    granularity: str,
    retrain: bool,
    budget_minutes: float,
    max_trials: int,
    seed: int,
    thresholds: dict,
    parent_run_id: str,
    report: Output[HTML],
    metrics: Output[Metrics],
    model: Output[Model],
) -> bool:
    """Monitor, then let the retraining policy decide; return whether a new champion was
    promoted. The single boolean output is what the pipeline's ``dsl.If`` tests. A gate
    alarm (a champion left below its floor) fails the step once everything is recorded."""
    from pathlib import Path

    from kubricks.monitoring.run import monitor as run_monitor
    from kubricks.registry.alias_names import CHAMPION
    from kubricks.registry.gate import GateAlarm
    from kubricks.retraining.loop import run_once
    from kubricks.retraining.parts import automl_trainer, given_alarm
    from kubricks.steps.gating import with_thresholds
    from kubricks.steps.step import step

    with step("monitor", usecase, parent_run_id) as ctx:
        result = run_monitor(
            ctx.spec,
            ctx.settings,
            source=monitor_source,
            granularity=granularity or None,
            client=ctx.client(),
        )
        Path(report.path).write_text(result.html)
        summary = result.summary()
        for name, value in summary.items():
            metrics.log_metric(name, float(value))
        ctx.outputs.update({**summary, "drifted": ", ".join(result.drifted_features)})
        print(f"monitor: alarm={result.alarm}, drifted: {result.drifted_features or 'none'}")
        if not retrain:
            return False
        outcome = run_once(
            with_thresholds(ctx.spec, thresholds),
            ctx.settings,
            client=ctx.client(),
            monitor=given_alarm(result),
            trainer=automl_trainer(seed, budget_minutes, max_trials),
            parent_run_id=ctx.mlflow_run_id or parent_run_id or None,
        )
        ctx.outputs.update({"loop": outcome.summary(), "promoted": outcome.promoted})
        model.metadata["version"] = outcome.candidate_version or ""
        model.metadata[CHAMPION] = outcome.champion_after or ""
        print(f"loop: {outcome.summary()}")
        if outcome.gate_alarm:  # recorded everywhere; now the step fails so a person sees it
            raise GateAlarm(f"alarm: {ctx.spec.name}: {outcome.gate_alarm}")
        return bool(outcome.promoted)


def component(image: str) -> PythonComponent:
    from components.tasks import lightweight

    return lightweight(monitor, image)
