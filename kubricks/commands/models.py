"""`kubricks models`: the governed registry from the shell (list, gate, approve, reject, promote,
rollback, history)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from kubricks.commands.options import AUTO, UseCaseOption, get_settings
from kubricks.console import console, table

if TYPE_CHECKING:  # the registry imports MLflow; commands load it only when they run
    from kubricks.registry.gate import GateDecision

app = typer.Typer(
    help="Registered model versions, aliases and their audit trail.", no_args_is_help=True
)

UseCase = UseCaseOption  # every command here: `usecase: UseCase = AUTO`


def _model_name(usecase: str) -> str:
    from kubricks.spec import load_spec

    return load_spec(usecase, get_settings().usecases_dir).name


@app.command("list")
def list_versions(usecase: UseCase = AUTO) -> None:
    """Versions with their aliases, gate status, primary metric and creation time."""
    from kubricks.registry import listing
    from kubricks.registry.gate_tags import status_text
    from kubricks.spec import load_spec
    from kubricks.usecase import short

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    model = listing.model(settings, spec.name, usecase=short(usecase, settings))
    classes = listing.classes(settings, model.versions[-1].run_id) if model.versions else None
    by_version: dict[str, list[str]] = {}
    for alias, version in model.aliases.items():
        by_version.setdefault(version, []).append(alias)
    primary = spec.metric.primary
    rows = [
        (
            v.version,
            ", ".join(sorted(by_version.get(v.version, []))),
            status_text(v.tags),
            _fmt(v.tags.get(f"gate.candidate.{primary}")),
            datetime.fromtimestamp(v.created_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            v.tags.get("kubricks.run_id", v.run_id),
        )
        for v in model.versions
    ]
    console.print(
        table(
            f"Registered model {spec.name}",
            ["version", "aliases", "gate", metric_title(primary, classes), "created (UTC)", "run"],
            rows,
        )
    )


def metric_title(metric: str, classes: list | None) -> str:
    """A metric's name as printed: multiclass F1, precision, recall and ROC AUC are macro
    averages over the classes, and say so."""
    macro = classes is not None and len(classes) > 2 and metric not in ("accuracy", "log_loss")
    return f"{metric} (macro)" if macro else metric


def _fmt(value: str | None) -> str | None:
    return None if value is None else f"{float(value):.4f}"


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to make champion.")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")],
    usecase: UseCase = AUTO,
) -> None:
    """Make a version the champion by hand (bypasses the gate; audited). Refused when the
    spec requires approval: use `kubricks models gate` and `kubricks models approve`."""
    from kubricks.registry.aliases import promote as run_promote
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    name = spec.name
    record = run_promote(
        settings, name, version, reason, approval_required=spec.approval == "required"
    )
    if record is None:
        console.print(f"Version {version} of {name} is already the champion; nothing changed.")
    else:
        console.print(f"{name}: champion {record.from_version or 'none'} -> {record.to_version}")


@app.command()
def rollback(
    usecase: UseCase = AUTO,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "rollback",
) -> None:
    """Give the champion alias back to the previous champion (per the audit trail)."""
    from kubricks.registry.aliases import rollback as run_rollback

    name = _model_name(usecase)
    record = run_rollback(get_settings(), name, reason)
    console.print(f"{name}: champion {record.from_version} -> {record.to_version} (rolled back)")


@app.command()
def history(usecase: UseCase = AUTO) -> None:
    """Every alias change: when, who, which alias, from and to which version, and why."""
    from kubricks.registry import audit
    from kubricks.registry.errors import RegistryError

    settings = get_settings()
    name = _model_name(usecase)
    records = audit.read(settings, name)
    if not records:
        raise RegistryError(
            f"no alias changes of registered model {name!r} in {audit.audit_uri(settings)}"
        )
    rows = [
        (
            r.at.strftime("%Y-%m-%d %H:%M:%S"),
            r.actor,
            r.alias,
            r.from_version,
            r.to_version,
            r.action,
            r.reason,
        )
        for r in records
    ]
    console.print(
        table(
            f"Alias history of {name}",
            ["at (UTC)", "who", "alias", "from", "to", "action", "why"],
            rows,
        )
    )


@app.command()
def gate(
    version: Annotated[str, typer.Argument(help="The registered version to judge now.")],
    usecase: UseCase = AUTO,
) -> None:
    """Judge a registered version against the current champion (one a failure left ungated,
    or one whose approval went stale). Exits non-zero when the gate raises an alarm."""
    from kubricks.registry.gate import gate_version, raise_on_alarm
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    decision = gate_version(spec, settings, version)
    print_decision(spec.name, decision)
    raise_on_alarm(spec.name, decision)


def print_decision(model: str, decision: GateDecision) -> None:
    """The gate's verdict on a version in one line, then what fresh labels showed."""
    if decision.pending_approval:
        verdict = "[yellow]passed, waiting for approval[/]"
    elif decision.passed:
        verdict = "[green]passed[/]"
    else:
        verdict = "[red]did not pass[/]"
    console.print(f"Gate: version {decision.version} of {model} {verdict}: {decision.reason}")
    if decision.pending_approval:
        console.print(
            f"Approve with `kubricks models approve {decision.version} --reason ...`"
            f" (or `kubricks models reject {decision.version} --reason ...`)."
        )


@app.command()
def approve(
    version: Annotated[str, typer.Argument(help="The version waiting for approval.")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")],
    usecase: UseCase = AUTO,
) -> None:
    """Make a version that passed the gate and waits for approval the champion (audited)."""
    from kubricks.registry.approval import approve as run_approve

    name = _model_name(usecase)
    record = run_approve(get_settings(), name, version, reason)
    if record is None:
        console.print(f"Version {version} of {name} is already the champion; approval recorded.")
    else:
        console.print(
            f"{name}: champion {record.from_version or 'none'} -> {record.to_version}"
            f" (approved by {record.actor})"
        )


@app.command()
def reject(
    version: Annotated[str, typer.Argument(help="The version waiting for approval.")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")],
    usecase: UseCase = AUTO,
) -> None:
    """Refuse a version waiting for approval: it stays registered, never champion (audited)."""
    from kubricks.registry.approval import reject as run_reject

    name = _model_name(usecase)
    record = run_reject(get_settings(), name, version, reason)
    console.print(f"{name}: v{version} rejected by {record.actor}; the champion is unchanged.")
