"""`kubricks forget`: delete entities from every table and the online store, audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from kubricks.commands.options import AUTO, UseCaseOption, get_settings
from kubricks.console import console, err_console, table

if TYPE_CHECKING:
    from kubricks.settings import KubricksSettings
    from kubricks.spec import UseCaseSpec


def forget(
    key: Annotated[
        list[str], typer.Option("--key", help="Entity key to forget; repeat for several.")
    ],
    reason: Annotated[str, typer.Option(help="Why (for example a request id): audited.")],
    usecase: UseCaseOption = AUTO,
    vacuum: Annotated[
        bool,
        typer.Option(
            help="Also remove the files older versions still reference, so the rows leave"
            " storage (older versions become unreadable). Run it while nothing writes.",
        ),
    ] = False,
) -> None:
    """Delete the entities from bronze, silver, quarantine, gold, predictions, the inference
    log and the online store, in one audited operation that is safe to re-run."""
    from kubricks.errors import KubricksError
    from kubricks.features.online import forget_keys, parse_key
    from kubricks.lakehouse import audit
    from kubricks.lakehouse.forget import forget as run_forget
    from kubricks.lakehouse.forget import models_trained_on, typed_keys
    from kubricks.lakehouse.forget import vacuum as run_vacuum
    from kubricks.spark import get_spark
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    if not reason.strip():
        raise KubricksError("forget: --reason is required (it goes to the audit trail)")
    keys = [parse_key(spec, k) for k in key]  # a wrong type fails here: nothing deleted
    typed_keys(spec, keys)
    models = _models(spec, settings, keys, models_trained_on)  # before: old gold is readable
    with console.status("Forgetting…") as status:
        result = run_forget(
            get_spark(settings),
            spec,
            settings,
            keys,
            reason,
            progress=lambda t: status.update(f"Forgetting in {t}…"),
        )
        online = forget_keys(spec, settings, keys)
        if vacuum:
            status.update("Vacuuming…")
            run_vacuum(spec, settings, result)
    audit.record(
        settings,
        usecase=spec.name,
        action="forget",
        operation_id=result.operation_id,
        touched=result.versions,
        detail={
            "keys_sha256": [audit.key_digest(k) for k in result.keys],
            "deleted": result.deleted,
            "online_store": online,
            "vacuumed": result.vacuumed,
            "models": models,
        },
        reason=reason,
    )
    console.print(
        table(
            f"Forgot {len(keys)} key(s) of {spec.name} (operation {result.operation_id})",
            ["table", "rows deleted", "version", "files vacuumed"],
            [
                (t, n, result.versions[t]["to"], result.vacuumed.get(t, "-"))
                for t, n in result.deleted.items()
            ]
            + [("online store", online, "-", "-")],
        )
    )
    if not vacuum:
        console.print(
            "Older table versions still hold the rows: re-run with --vacuum to remove them"
            " from storage."
        )
    elif result.vacuumed:
        console.print(
            "Vacuumed: older versions of these tables are unreadable now (time travel,"
            " restores, and models pinned to an older gold version, monitoring baselines"
            " included)."
        )
    if models is None:
        return
    if models:
        console.print("Models trained on the forgotten rows (retrain or retire them):")
        for model in models:
            console.print(f"  {model}")
    else:
        console.print("No registered model was trained on the forgotten rows.")


def _models(
    spec: UseCaseSpec,
    settings: KubricksSettings,
    keys: list,
    trained_on: Callable[..., list[str]],
) -> list[str] | None:
    """Registered versions trained on gold holding the keys; None when MLflow is unreachable."""
    from kubricks.errors import KubricksError
    from kubricks.tracking import connect

    try:
        client = connect(settings)
        versions = client.search_model_versions(f"name = '{spec.name}'")
    except KubricksError as exc:
        err_console.print(f"warning: cannot list models trained on these rows: {exc}")
        return None
    found = []
    for version in versions:
        gold = version.tags.get("lineage.gold_version")
        found.append((version.name, str(version.version), int(gold) if gold else None))
    return trained_on(spec, settings, keys, found)
