"""`kubricks models`: the governed registry from the shell (list, promote, rollback, history)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from kubricks.console import console, table
from kubricks.settings import get_settings

app = typer.Typer(
    help="Registered model versions, aliases and their audit trail.", no_args_is_help=True
)

UseCase = Annotated[str, typer.Option(help="Use-case name or path to a spec YAML.")]


def _model_name(usecase: str) -> str:
    from kubricks.spec import load_spec

    return load_spec(usecase, get_settings().usecases_dir).name


@app.command("list")
def list_versions(usecase: UseCase = "churn") -> None:
    """Versions with their aliases, gate status, primary metric and creation time."""
    from kubricks.registry.store import list_versions as versions
    from kubricks.registry.store import open_registry, require_model
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    client = open_registry(settings)
    model = require_model(client, spec.name)
    by_version: dict[str, list[str]] = {}
    for alias, version in model.aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    primary = spec.metric.primary
    rows = [
        (
            v.version,
            ", ".join(sorted(by_version.get(v.version, []))),
            v.tags.get("gate.status", "not gated"),
            _fmt(v.tags.get(f"gate.candidate.{primary}")),
            datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            v.tags.get("kubricks.run_id", v.run_id),
        )
        for v in versions(client, spec.name)
    ]
    console.print(
        table(
            f"Registered model {spec.name}",
            ["version", "aliases", "gate", primary, "created (UTC)", "run"],
            rows,
        )
    )


def _fmt(value: str | None) -> str | None:
    return None if value is None else f"{float(value):.4f}"


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to make champion.")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")],
    usecase: UseCase = "churn",
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
    usecase: UseCase = "churn",
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "rollback",
) -> None:
    """Give the champion alias back to the previous champion (per the audit trail)."""
    from kubricks.registry.aliases import rollback as run_rollback

    name = _model_name(usecase)
    record = run_rollback(get_settings(), name, reason)
    console.print(f"{name}: champion {record.from_version} -> {record.to_version} (rolled back)")


@app.command()
def history(usecase: UseCase = "churn") -> None:
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
