"""Validate and promote: register the candidate and move ``champion`` only if it earns it."""

from kfp.dsl import Input, Metrics, Model, Output
from kfp.dsl.python_component import PythonComponent


def validate_and_promote(
    usecase: str,
    model: Input[Model],
    thresholds: dict,
    parent_run_id: str,
    comparison: Output[Metrics],
    registered: Output[Model],
) -> bool:
    """Gate the candidate against the thresholds and the champion; return whether it became
    the champion (a pass waiting for approval does not). The single boolean output is what
    the pipeline's ``dsl.If`` tests. An alarm (a champion left below its floor) fails the
    step after the outcome is recorded, so a person sees it.
    """
    from kubricks.registry.gate import alarm_line, raise_on_alarm, register_and_gate
    from kubricks.steps import artifacts
    from kubricks.steps.gating import decision_metadata, with_thresholds
    from kubricks.steps.step import step

    with step("validate-and-promote", usecase, parent_run_id) as ctx:
        spec = with_thresholds(ctx.spec, thresholds)
        decision = register_and_gate(spec, ctx.settings, artifacts.result_from_json(model.path))
        for name, value in decision.candidate_metrics.items():
            comparison.log_metric(f"candidate_{name}", float(value))
        for name, value in (decision.champion_metrics or {}).items():
            comparison.log_metric(f"champion_{name}", float(value))
        meta = decision_metadata(spec.name, decision)
        registered.metadata.update(meta)
        artifacts.write_json(registered.path, meta)
        ctx.outputs.update(meta)
        ctx.set_tags({"gate.version": decision.version, "gate.passed": decision.passed})
        verdict = "passed" if decision.passed else "failed"
        if decision.pending_approval:
            verdict += " (waiting for approval: `kubricks models approve`)"
        print(f"{spec.name} v{decision.version} {verdict} the gate: {decision.reason}")
        if decision.alarm:
            print(alarm_line(spec.name, decision))
        raise_on_alarm(spec.name, decision)
        return bool(decision.passed and not decision.pending_approval)


def component(image: str) -> PythonComponent:
    from components.tasks import lightweight

    return lightweight(validate_and_promote, image)
