"""The validation gate: register a trained model, test it against the champion, move aliases.

:func:`decide` is the pure rule; :func:`register_and_gate` does the registry I/O around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from kubricks.registry import audit
from kubricks.registry.aliases import move_alias
from kubricks.registry.champion import current_champion
from kubricks.registry.safe_load import DIGEST_TAG, load_version, record_digest
from kubricks.registry.scoring import load_holdout, score
from kubricks.registry.store import CHALLENGER, CHAMPION, open_registry
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.training.metrics import is_better, meets
from kubricks.training.result import TrainResult

RUN_TAG = "kubricks.run_id"
STATUS_TAG = "gate.status"
REASON_TAG = "gate.reason"
CANDIDATE_PREFIX = "gate.candidate."
CHAMPION_PREFIX = "gate.champion."
CHAMPION_VERSION_TAG = "gate.champion_version"
_TAG_LIMIT = 5000  # MLflow's maximum tag value length


@dataclass(frozen=True)
class GateDecision:
    version: str
    passed: bool
    reason: str
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    champion_version: str | None


def decide(
    primary: str,
    thresholds: Mapping[str, float],
    margin: float,
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    champion_version: str | None = None,
) -> tuple[bool, str]:
    """Pass when every threshold holds and, if a champion exists, the primary metric beats it
    by ``margin``; the reason lists every failed rule, or why it passed."""
    failures: list[str] = []
    for metric, threshold in sorted(thresholds.items()):
        value = candidate.get(metric)
        if value is None:
            failures.append(f"{metric} was not computed (threshold {threshold:g})")
        elif not meets(metric, value, threshold):
            failures.append(f"{metric} {value:.4f} misses threshold {threshold:g}")
    value = candidate.get(primary)
    if value is None:
        failures.append(f"primary metric {primary} was not computed")
    elif champion is not None:
        reference = champion.get(primary)
        label = f"champion v{champion_version}" if champion_version else "champion"
        if reference is None:
            failures.append(f"{label} has no {primary} to compare with")
        elif not is_better(primary, value, reference, margin):
            failures.append(
                f"{primary} {value:.4f} does not beat {label} ({reference:.4f}) by {margin:g}"
            )
    if failures:
        return False, "; ".join(failures)
    if champion is None:
        return True, f"first champion: {primary} {value:.4f} meets the thresholds"
    return True, (
        f"{primary} {value:.4f} beats champion v{champion_version}"
        f" ({champion[primary]:.4f}) by at least {margin:g}"
    )


def _metric_tags(prefix: str, metrics: Mapping[str, float]) -> dict[str, str]:
    return {f"{prefix}{k}": repr(float(v)) for k, v in metrics.items()}


def _metrics_from_tags(prefix: str, tags: Mapping[str, str]) -> dict[str, float]:
    return {k[len(prefix) :]: float(v) for k, v in tags.items() if k.startswith(prefix)}


def _decision_from_tags(version: ModelVersion) -> GateDecision:
    """Rebuild an earlier decision (a retried pipeline step must not register twice)."""
    tags = version.tags
    champion = _metrics_from_tags(CHAMPION_PREFIX, tags)
    return GateDecision(
        version=version.version,
        passed=tags[STATUS_TAG] == "passed",
        reason=tags.get(REASON_TAG, ""),
        candidate_metrics=_metrics_from_tags(CANDIDATE_PREFIX, tags),
        champion_metrics=champion or None,
        champion_version=tags.get(CHAMPION_VERSION_TAG) or None,
    )


def _register(
    client: MlflowClient,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    result: TrainResult,
    reason: str,
) -> ModelVersion:
    """The version for this run: the existing one on a retry, else a new one with lineage."""
    found = client.search_model_versions(
        f"name = '{spec.name}' and tags.`{RUN_TAG}` = '{result.run_id}'"
    )
    if found:
        return min(found, key=lambda v: int(v.version))
    tags = {
        RUN_TAG: result.run_id,
        "kubricks.usecase": result.usecase,
        "kubricks.family": result.family,
        "kubricks.registered_by": audit.current_actor(settings),
        "kubricks.register_reason": reason,
        **{f"lineage.{k}": str(v) for k, v in result.lineage.items()},
    }
    return mlflow.register_model(result.model_uri, spec.name, tags=tags)


def register_and_gate(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    result: TrainResult,
    client: MlflowClient | None = None,
    reason: str = "automl",
) -> GateDecision:
    """Register ``result`` as a version of ``spec.name`` and promote it only if it earns it.

    Both models are scored on the candidate run's holdout. A pass moves ``challenger``
    then ``champion`` (both audited); a fail tags the version and leaves the champion.
    """
    client = open_registry(settings, client)
    version = _register(client, spec, settings, result, reason)
    if DIGEST_TAG not in version.tags:  # before anything loads it (also after a crash here)
        record_digest(client, spec.name, version.version)
    if STATUS_TAG in version.tags:  # a retry: finish an interrupted promotion, decide nothing new
        decision = _decision_from_tags(version)
        if decision.passed and current_champion(client, spec.name) == (decision.champion_version):
            _promote(client, settings, spec.name, decision, reason)
        return decision

    decision = _judge(client, spec, settings, result.run_id, version.version)
    _tag(client, spec.name, version.version, _outcome_tags(spec, decision))
    if decision.passed:
        _promote(client, settings, spec.name, decision, reason)
    return decision


def _judge(
    client: MlflowClient,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    run_id: str,
    version: str,
) -> GateDecision:
    """Score the candidate and the champion on the candidate's holdout, then :func:`decide`."""
    holdout = load_holdout(client, run_id, spec)
    candidate = score(load_version(client, spec.name, version).estimator, holdout, spec)
    champion_version = current_champion(client, spec.name)
    champion: dict[str, float] | None = None
    if champion_version is not None:
        try:
            loaded = load_version(client, spec.name, champion_version)
            champion = score(loaded.estimator, holdout, spec)
        except Exception as exc:  # a champion from an older spec may not fit this holdout
            why = (
                f"champion v{champion_version} could not be scored on this holdout"
                f" ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__});"
                " promote by hand with `kubricks models promote`"
            )
            return GateDecision(version, False, why, candidate, None, champion_version)
    margin = spec.metric.min_improvement if settings.gate_margin is None else settings.gate_margin
    passed, why = decide(
        spec.metric.primary, spec.metric.thresholds, margin, candidate, champion, champion_version
    )
    return GateDecision(version, passed, why, candidate, champion, champion_version)


def _outcome_tags(spec: UseCaseSpec, decision: GateDecision) -> dict[str, str]:
    """The gate's outcome as version tags; the status tag comes last, marking them complete."""
    tags = {
        REASON_TAG: decision.reason[:_TAG_LIMIT],
        "gate.primary_metric": spec.metric.primary,
        **_metric_tags(CANDIDATE_PREFIX, decision.candidate_metrics),
        **_metric_tags(CHAMPION_PREFIX, decision.champion_metrics or {}),
    }
    if decision.champion_version is not None:
        tags[CHAMPION_VERSION_TAG] = decision.champion_version
    tags[STATUS_TAG] = "passed" if decision.passed else "failed"
    return tags


def _promote(
    client: MlflowClient,
    settings: KubricksSettings,
    model: str,
    decision: GateDecision,
    reason: str,
) -> None:
    note = f"{reason}: {decision.reason}"
    move_alias(client, settings, model, CHALLENGER, decision.version, "gate", note)
    move_alias(client, settings, model, CHAMPION, decision.version, "gate", note)


def _tag(client: MlflowClient, name: str, version: str, tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
