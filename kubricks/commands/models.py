"""`kubricks models`: the governed registry from the shell (list, promote, rollback, history)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from kubricks.commands.options import AUTO, UseCaseOption, get_settings
from kubricks.console import console, table

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
            v.tags.get("gate.status", "not gated"),
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
    """Make a version the champion by hand (bypasses the gate; audited)."""
    from kubricks.registry.aliases import promote as run_promote

    name = _model_name(usecase)
    record = run_promote(get_settings(), name, version, reason)
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
