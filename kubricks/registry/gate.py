"""The validation gate: register a trained model, test it against the champion, move aliases.

:func:`decide` is the pure rule; :func:`register_and_gate` and :func:`gate_version` do the
registry I/O around it.

The rules, as code:

- the candidate must meet the spec's thresholds (the floor) on its holdout;
- with a champion, it must beat the champion's primary metric by at least
  ``min_improvement`` (a tie keeps the champion), on the labels the champion never saw
  when there are enough of them (:mod:`kubricks.registry.fresh`), else on the holdout;
- a champion below its floor on those fresh labels is an alarm; ``gate.on_degraded_champion``
  decides whether a candidate that beats it but misses the floor replaces it;
- with ``approval: required`` a passing candidate becomes ``challenger`` only, until a person
  approves it (:mod:`kubricks.registry.approval`).

A candidate that passes is also compiled (:mod:`kubricks.registry.compiled`) and the outcome
tagged on it before any alias moves, so a server swapping to it finds what it may use.

A version is tagged ``gate.status=pending`` when it is registered, so one that was
registered but never judged (a tracking server that died mid-gate) says so; the next
gate of the use case, or `kubricks models gate V`, judges it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from kubricks import tracking
from kubricks.errors import KubricksError, ServiceUnavailable
from kubricks.registry import audit
from kubricks.registry.aliases import move_alias
from kubricks.registry.champion import current_champion
from kubricks.registry.compiled import COMPILED_TAG
from kubricks.registry.compiled import record as record_compiled
from kubricks.registry.errors import RegistryError
from kubricks.registry.fresh import FreshRows, fresh_rows, trained_gold_version
from kubricks.registry.gate_tags import (  # noqa: F401 (re-exported: the gate's vocabulary)
    ALARM_TAG,
    APPROVAL_TAG,
    CANDIDATE_PREFIX,
    CHAMPION_PREFIX,
    CHAMPION_VERSION_TAG,
    FAILED,
    FRESH_CANDIDATE_PREFIX,
    FRESH_CHAMPION_PREFIX,
    FRESH_NOTE_TAG,
    FRESH_ROWS_TAG,
    PASSED,
    PENDING,
    REASON_TAG,
    RUN_TAG,
    STATUS_TAG,
    status_text,
)
from kubricks.registry.safe_load import DIGEST_TAG, load_version, record_digest
from kubricks.registry.scoring import load_holdout, scorer
from kubricks.registry.store import CHALLENGER, CHAMPION, open_registry, require_version
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from kubricks.training.metrics import is_better, meets
from kubricks.training.result import TrainResult

_TAG_LIMIT = 5000  # MLflow's maximum tag value length


@dataclass(frozen=True)
class FreshScores:
    """Both models' metrics on the labelled rows the champion never trained on."""

    rows: int
    candidate: dict[str, float]
    champion: dict[str, float]


@dataclass(frozen=True)
class Ruling:
    """What :func:`decide` rules: pass or not, why, and an alarm a person must see."""

    passed: bool
    reason: str
    alarm: str | None = None


@dataclass(frozen=True)
class GateDecision:
    version: str
    passed: bool
    reason: str
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    champion_version: str | None
    alarm: str | None = None
    fresh: FreshScores | None = None
    approval: str | None = None  # "pending" when a person must approve the promotion
    # Versions left ungated earlier and judged first, oldest first (not part of the verdict).
    resolved: tuple[GateDecision, ...] = field(default=(), compare=False)

    @property
    def pending_approval(self) -> bool:
        return self.passed and self.approval == PENDING


class GateAlarm(RegistryError):
    """The gate finished and recorded its outcome, but the champion it leaves is below its
    floor (kept, or replaced by a candidate below it): a person has to look."""


def floor_misses(thresholds: Mapping[str, float], metrics: Mapping[str, float]) -> list[str]:
    """Every threshold ``metrics`` miss, in words; empty when the floor holds."""
    misses: list[str] = []
    for metric, threshold in sorted(thresholds.items()):
        value = metrics.get(metric)
        if value is None:
            misses.append(f"{metric} was not computed (threshold {threshold:g})")
        elif not meets(metric, value, threshold):
            misses.append(f"{metric} {value:.4f} misses threshold {threshold:g}")
    return misses


def decide(
    primary: str,
    thresholds: Mapping[str, float],
    margin: float,
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    champion_version: str | None = None,
    fresh: FreshScores | None = None,
    on_degraded_champion: str = "promote",
) -> Ruling:
    """Pass when the floor holds and, with a champion, the primary metric beats it by at
    least ``margin`` (on ``fresh`` labels when given, else on the holdout). The reason lists
    every failed rule, or why it passed."""
    misses = floor_misses(thresholds, candidate)
    value = candidate.get(primary)
    if value is None:
        return Ruling(False, "; ".join([*misses, f"primary metric {primary} was not computed"]))
    if champion is None:
        if misses:
            return Ruling(False, "; ".join(misses))
        return Ruling(True, f"first champion: {primary} {value:.4f} meets the thresholds")
    label = f"{CHAMPION} v{champion_version}" if champion_version else CHAMPION
    if fresh is not None:
        mine, theirs = fresh.candidate.get(primary), fresh.champion.get(primary)
        where = f" on {fresh.rows} fresh labelled rows"
    else:
        mine, theirs, where = value, champion.get(primary), ""
    if theirs is None or mine is None:
        return Ruling(False, "; ".join([*misses, f"{label} has no {primary} to compare with"]))
    beats = is_better(primary, mine, theirs, margin)
    if beats:
        comparison = f"{primary} {mine:.4f} beats {label} ({theirs:.4f}){where}"
        comparison += f" by at least {margin:g}" if margin else ""
    else:
        comparison = f"{primary} {mine:.4f} does not beat {label} ({theirs:.4f}){where}"
        comparison += f" by {margin:g}" if margin else ""
    degraded = floor_misses(thresholds, fresh.champion) if fresh is not None else []
    if not degraded:
        if misses or not beats:
            return Ruling(False, "; ".join([*misses, *([] if beats else [comparison])]))
        return Ruling(True, comparison)
    decay = f"{label} is below its floor on fresh labels ({'; '.join(degraded)})"
    if not beats:
        return Ruling(
            False,
            "; ".join([*misses, comparison]),
            f"{decay}, and the candidate does not beat it: the champion stays",
        )
    if not misses:
        return Ruling(True, f"{comparison}; {decay}")
    below = "; ".join(misses)
    if on_degraded_champion == "promote":
        return Ruling(
            True,
            f"{comparison}; {decay}: promoted below the floor ({below})",
            f"promoted a candidate below the floor ({below}) because {decay}",
        )
    return Ruling(
        False,
        f"{below}; {comparison}; {decay}: kept (gate.on_degraded_champion: keep)",
        f"{decay}; a candidate beats it ({comparison}) but misses the floor ({below}):"
        " the champion stays (gate.on_degraded_champion: keep)",
    )


# --- tags ----------------------------------------------------------------------------------


def _metric_tags(prefix: str, metrics: Mapping[str, float]) -> dict[str, str]:
    return {f"{prefix}{k}": repr(float(v)) for k, v in metrics.items()}


def _metrics_from_tags(prefix: str, tags: Mapping[str, str]) -> dict[str, float]:
    return {
        k[len(prefix) :]: float(v)
        for k, v in tags.items()
        if k.startswith(prefix) and "." not in k[len(prefix) :]
    }


def decided(tags: Mapping[str, str]) -> bool:
    """True once the gate has judged the version (its outcome tags are complete)."""
    return tags.get(STATUS_TAG) in (PASSED, FAILED)


def _decision_from_tags(version: ModelVersion) -> GateDecision:
    """Rebuild an earlier decision (a retried pipeline step must not register twice)."""
    tags = version.tags
    champion = _metrics_from_tags(CHAMPION_PREFIX, tags)
    fresh = None
    if FRESH_ROWS_TAG in tags:
        fresh = FreshScores(
            int(tags[FRESH_ROWS_TAG]),
            _metrics_from_tags(FRESH_CANDIDATE_PREFIX, tags),
            _metrics_from_tags(FRESH_CHAMPION_PREFIX, tags),
        )
    return GateDecision(
        version=version.version,
        passed=tags[STATUS_TAG] == PASSED,
        reason=tags.get(REASON_TAG, ""),
        candidate_metrics=_metrics_from_tags(CANDIDATE_PREFIX, tags),
        champion_metrics=champion or None,
        champion_version=tags.get(CHAMPION_VERSION_TAG) or None,
        alarm=tags.get(ALARM_TAG) or None,
        fresh=fresh,
        approval=tags.get(APPROVAL_TAG) or None,
    )


def _outcome_tags(spec: UseCaseSpec, decision: GateDecision, note: str) -> dict[str, str]:
    """The gate's outcome as version tags; the status tag comes last, marking them complete."""
    tags = {
        REASON_TAG: decision.reason[:_TAG_LIMIT],
        "gate.primary_metric": spec.metric.primary,
        **_metric_tags(CANDIDATE_PREFIX, decision.candidate_metrics),
        **_metric_tags(CHAMPION_PREFIX, decision.champion_metrics or {}),
    }
    if note:
        tags[FRESH_NOTE_TAG] = note[:_TAG_LIMIT]
    if decision.fresh is not None:
        tags[FRESH_ROWS_TAG] = str(decision.fresh.rows)
        tags.update(_metric_tags(FRESH_CANDIDATE_PREFIX, decision.fresh.candidate))
        tags.update(_metric_tags(FRESH_CHAMPION_PREFIX, decision.fresh.champion))
    if decision.champion_version is not None:
        tags[CHAMPION_VERSION_TAG] = decision.champion_version
    if decision.alarm:
        tags[ALARM_TAG] = decision.alarm[:_TAG_LIMIT]
    if decision.approval:
        tags[APPROVAL_TAG] = decision.approval
    tags[STATUS_TAG] = PASSED if decision.passed else FAILED
    return tags


def _tag(client: MlflowClient, name: str, version: str, tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


# --- failures that name their cause ----------------------------------------------------------


@dataclass
class _Progress:
    """How far a gate got, so a failure can say what it left behind."""

    model: str
    version: str | None = None
    champion: str | None = None


@contextmanager
def _named_failures(settings: KubricksSettings, progress: _Progress) -> Iterator[None]:
    """A tracking server that stops answering becomes one line naming it, and the version
    it leaves ungated (tagged ``pending``, noted in the audit trail) and how to finish."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, KubricksError) and not isinstance(exc, ServiceUnavailable):
            raise
        uri = settings.resolved_tracking_uri
        if not isinstance(exc, ServiceUnavailable) and not tracking.lost(uri):
            raise
        if progress.version is None:
            if isinstance(exc, ServiceUnavailable):
                raise  # down from the start: its own line already says what to do
            left = "nothing was registered: start it (`kubricks up`) and gate again"
        else:
            left = (
                f"v{progress.version} stays registered but not gated ({STATUS_TAG}={PENDING}):"
                f" start the server (`kubricks up`), then `kubricks models gate"
                f" {progress.version}` or the next `kubricks train` judges it"
            )
            with suppress(Exception):  # the line below matters more than the note
                audit.note(
                    settings,
                    progress.model,
                    CHAMPION,
                    progress.champion,
                    "interrupted",
                    f"gate of v{progress.version} interrupted: tracking server lost",
                )
        raise ServiceUnavailable(
            f"MLflow tracking server at {uri} stopped answering while gating"
            f" {progress.model!r}; {left}"
        ) from exc


# --- the gate -------------------------------------------------------------------------------


def _register(
    client: MlflowClient,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    result: TrainResult,
    reason: str,
) -> ModelVersion:
    """The version for this run: the existing one on a retry, else a new one with lineage,
    tagged ``pending`` until the gate has judged it."""
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
        STATUS_TAG: PENDING,
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

    Versions an earlier gate left ungated are judged first, oldest first. Both models are
    scored on the candidate run's holdout (and on fresh labels, see :func:`decide`). A pass
    moves ``challenger`` then ``champion`` (both audited), or only ``challenger`` when the
    spec requires approval; a fail tags the version and leaves the champion. MLflow calls
    use the short retries of ``tracking_http_retries``, so a dead server fails in seconds.
    """
    progress = _Progress(spec.name)
    with tracking.short_retries(settings), _named_failures(settings, progress):
        client = open_registry(settings, client)
        _settle_runs(client, settings)
        version = _register(client, spec, settings, result, reason)
        progress.version = version.version
        if decided(version.tags):  # a retry: finish an interrupted promotion, decide nothing new
            decision = _decision_from_tags(version)
            if current_champion(client, spec.name) == decision.champion_version:
                _apply(client, settings, spec.name, decision, reason, alarm_note=False)
            return decision
        resolved = resolve_pending(client, spec, settings, reason, version.version, progress)
        decision = _gate(client, spec, settings, version, reason, progress)
    return replace(decision, resolved=tuple(resolved))


def gate_version(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    version: str,
    client: MlflowClient | None = None,
    reason: str = "manual gate",
) -> GateDecision:
    """Judge an already registered version now, against the current champion.

    For a version a failure left ungated, or one whose approval went stale because the
    champion changed since its gate. The champion itself cannot be gated.
    """
    progress = _Progress(spec.name, str(version))
    with tracking.short_retries(settings), _named_failures(settings, progress):
        client = open_registry(settings, client)
        _settle_runs(client, settings)
        found = require_version(client, spec.name, str(version))
        if current_champion(client, spec.name) == str(found.version):
            raise RegistryError(
                f"version {version} of {spec.name!r} is the champion: there is nothing to gate"
            )
        return _gate(client, spec, settings, found, reason, progress)


def resolve_pending(
    client: MlflowClient,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    reason: str,
    exclude: str | None = None,
    progress: _Progress | None = None,
) -> list[GateDecision]:
    """Judge every version still tagged ``pending`` (oldest first) but ``exclude``.

    One whose holdout or model cannot be read any more is failed with the reason, so a
    broken leftover never blocks the next gate. A dead server still stops everything.
    """
    found = client.search_model_versions(
        f"name = '{spec.name}' and tags.`{STATUS_TAG}` = '{PENDING}'"
    )
    out: list[GateDecision] = []
    for version in sorted(found, key=lambda v: int(v.version)):
        if version.version == exclude:
            continue
        note = f"{reason}: v{version.version} was registered but not gated"
        try:
            out.append(
                _gate(client, spec, settings, version, note, progress or _Progress(spec.name))
            )
        except RegistryError as exc:
            why = f"could not be gated: {exc}"
            failed = GateDecision(version.version, False, why, {}, None, None)
            _tag(client, spec.name, version.version, _outcome_tags(spec, failed, ""))
            out.append(failed)
    return out


def _settle_runs(client: MlflowClient, settings: KubricksSettings) -> None:
    """Close the runs an earlier failure had to leave RUNNING (see kubricks.runs.unfinished)."""
    from kubricks.runs import unfinished

    unfinished.settle_quietly(client, settings)


def _gate(
    client: MlflowClient,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    version: ModelVersion,
    reason: str,
    progress: _Progress,
) -> GateDecision:
    """Judge one registered version, record the outcome on it, move the aliases it earned."""
    progress.version = str(version.version)
    if DIGEST_TAG not in (version.tags or {}):  # before anything loads it (also after a crash)
        record_digest(client, spec.name, str(version.version))
    progress.champion = current_champion(client, spec.name)
    decision, note, judged = _judge(client, spec, settings, version, progress.champion)
    if decision.passed and COMPILED_TAG not in (version.tags or {}):
        # before the aliases move, so a server swapping to this version finds the tags
        estimator, holdout = judged
        run_id = (version.tags or {}).get(RUN_TAG) or version.run_id
        assert run_id is not None  # _judge read the holdout from this run
        features = holdout[spec.gold_feature_columns()]
        record_compiled(client, spec.name, decision.version, run_id, estimator, features)
    if decision.passed and spec.approval == "required":
        decision = replace(decision, approval=PENDING)
    tags = _outcome_tags(spec, decision, note)
    _tag(client, spec.name, decision.version, tags)
    _apply(client, settings, spec.name, decision, reason)
    return decision


def _judge(
    client: MlflowClient,
    spec: UseCaseSpec,
    settings: KubricksSettings,
    version: ModelVersion,
    champion_version: str | None,
) -> tuple[GateDecision, str, tuple[Any, pd.DataFrame]]:
    """Score candidate and champion on the candidate's holdout and on the fresh labels in
    it, then :func:`decide`; also returns what was found about fresh labels, in words, and
    the candidate model with the holdout (what compiling it is checked on)."""
    run_id = (version.tags or {}).get(RUN_TAG) or version.run_id
    holdout = load_holdout(client, run_id, spec)
    estimator = load_version(client, spec.name, str(version.version)).estimator
    judged = (estimator, holdout)
    candidate_scorer = scorer(estimator, spec)
    candidate = candidate_scorer(holdout)
    margin = spec.metric.min_improvement if settings.gate_margin is None else settings.gate_margin
    number = str(version.version)
    if champion_version is None:
        ruling = decide(spec.metric.primary, spec.metric.thresholds, margin, candidate, None)
        return GateDecision(number, ruling.passed, ruling.reason, candidate, None, None), "", judged
    champion_mv = client.get_model_version(spec.name, champion_version)
    found = fresh_rows(
        spec,
        settings,
        holdout,
        trained_gold_version(client, champion_mv),
        trained_gold_version(client, version),
    )
    try:
        champion_scorer = scorer(load_version(client, spec.name, champion_version).estimator, spec)
        champion = champion_scorer(holdout)
    except Exception as exc:  # a champion from an older spec may not fit this holdout
        if tracking.lost(client.tracking_uri):
            raise
        why = (
            f"champion v{champion_version} could not be scored on this holdout"
            f" ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__});"
            " promote by hand with `kubricks models promote`"
        )
        decision = GateDecision(number, False, why, candidate, None, champion_version)
        return decision, found.note, judged
    fresh, note = _fresh_scores(spec, found, candidate_scorer, champion_scorer)
    ruling = decide(
        spec.metric.primary,
        spec.metric.thresholds,
        margin,
        candidate,
        champion,
        champion_version,
        fresh,
        spec.gate.on_degraded_champion,
    )
    decision = GateDecision(
        number, ruling.passed, ruling.reason, candidate, champion, champion_version, ruling.alarm
    )
    return replace(decision, fresh=fresh), note, judged


def _fresh_scores(
    spec: UseCaseSpec, found: FreshRows, candidate: Any, champion: Any
) -> tuple[FreshScores | None, str]:
    """Both models on the fresh rows, when there are enough and their metrics exist."""
    rows = found.rows
    if rows is None:
        return None, found.note
    if len(rows) < spec.gate.min_fresh_rows:
        return None, f"{found.note}: fewer than gate.min_fresh_rows ({spec.gate.min_fresh_rows})"
    try:
        scores = FreshScores(len(rows), candidate(rows), champion(rows))
    except ValueError as exc:  # e.g. one class only: no ROC AUC
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return None, f"{found.note}: not scored ({first})"
    return scores, found.note


def _apply(
    client: MlflowClient,
    settings: KubricksSettings,
    model: str,
    decision: GateDecision,
    reason: str,
    alarm_note: bool = True,
) -> None:
    """Move the aliases a decision earned (audited) and put its alarm in the audit trail."""
    note = f"{reason}: {decision.reason}"
    if decision.passed:
        move_alias(client, settings, model, CHALLENGER, decision.version, "gate", note)
        if decision.approval != PENDING:
            move_alias(client, settings, model, CHAMPION, decision.version, "gate", note)
    if decision.alarm and alarm_note:
        audit.note(
            settings,
            model,
            CHAMPION,
            current_champion(client, model),
            "alarm",
            f"gate of v{decision.version}: {decision.alarm}",
        )


def alarm_line(model: str, decision: GateDecision) -> str:
    """The one line a person sees when the gate alarms."""
    return f"alarm: {model} v{decision.version}: {decision.alarm}"


def raise_on_alarm(model: str, decision: GateDecision) -> None:
    """Turn a recorded alarm into a non-zero exit (CLI, pipeline step)."""
    if decision.alarm:
        raise GateAlarm(alarm_line(model, decision))
