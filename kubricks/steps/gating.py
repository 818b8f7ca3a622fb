"""Glue between the pipeline's gate step and the registry gate: overrides and the report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubricks.errors import KubricksError
from kubricks.registry.gate import GateDecision
from kubricks.spec import UseCaseSpec


def with_thresholds(spec: UseCaseSpec, thresholds: Mapping[str, float] | None) -> UseCaseSpec:
    """The spec with pipeline-given metric thresholds laid over its own."""
    if not thresholds:
        return spec
    try:
        extra = {str(k): float(v) for k, v in thresholds.items()}
    except (TypeError, ValueError) as exc:
        raise KubricksError(f"thresholds {dict(thresholds)!r}: values must be numbers") from exc
    metric = spec.metric.model_copy(update={"thresholds": {**spec.metric.thresholds, **extra}})
    return spec.model_copy(update={"metric": metric})


def decision_metadata(model_name: str, decision: GateDecision) -> dict[str, Any]:
    """What the registered Model artifact shows about the gate's outcome."""
    return {
        "name": model_name,
        "version": decision.version,
        "uri": f"models:/{model_name}/{decision.version}",
        "passed": decision.passed,
        "reason": decision.reason,
        "champion_version": decision.champion_version or "",
        "approval": decision.approval or "",
        "alarm": decision.alarm or "",
    }
