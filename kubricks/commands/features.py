"""`kubricks features`: apply the Feast repository, materialize, and look features up."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import typer

from kubricks.commands.options import AUTO, UseCaseOption, get_settings
from kubricks.console import command_line, console, table

if TYPE_CHECKING:
    from feast import FileSource

app = typer.Typer(help="The Feast feature store over the gold tables.", no_args_is_help=True)


@app.command("apply")
def apply(usecase: UseCaseOption = AUTO) -> None:
    """Generate the use case's Feast repository and register its definitions."""
    from kubricks.features.store import feature_store, feature_view_name, repo_path
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    with console.status("Applying the feature repository…"):
        store = feature_store(spec, settings)
    view = store.get_feature_view(feature_view_name(spec))
    source = cast("FileSource", view.batch_source)  # features/definitions.py makes a FileSource
    console.print(f"Feast project [bold]{store.project}[/] at {repo_path(spec, settings)}")
    console.print(
        table(
            f"Feature view {view.name} (entity {spec.entity_key}, source {source.path})",
            ["feature", "type"],
            [(f.name, f.dtype) for f in view.features],
        )
    )


@app.command("materialize")
def materialize(
    usecase: UseCaseOption = AUTO,
    end: Annotated[
        datetime | None, typer.Option(help="Materialize rows up to this time (UTC); default now.")
    ] = None,
) -> None:
    """Load the latest feature values per key into the online store."""
    from datetime import UTC

    from kubricks.features.online import materialize as run_materialize
    from kubricks.spec import load_spec

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    end_utc = end.replace(tzinfo=UTC) if end and end.tzinfo is None else end
    keys = run_materialize(spec, settings, end_utc)
    store = settings.feast_online_store
    console.print(f"Materialized {keys} {spec.entity_key} key(s) into the {store} online store.")


@app.command("get")
def get(
    key: Annotated[list[str], typer.Option(help="Entity key to look up; repeat for several.")],
    usecase: UseCaseOption = AUTO,
) -> None:
    """Print the online features of one or more keys (one column per key)."""
    from kubricks.features.online import online_features
    from kubricks.spec import load_spec
    from kubricks.usecase import short

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    rows = online_features(spec, settings, key)
    console.print(
        table(
            f"Online features of {spec.name}",
            ["feature", *(str(r[spec.entity_key]) for r in rows)],
            [(name, *(r[name] for r in rows)) for name in spec.gold_feature_columns()],
        )
    )
    missing = [
        str(r[spec.entity_key])
        for r in rows
        if all(r[c] is None for c in spec.gold_feature_columns())
    ]
    if missing:
        console.print(f"No online features for {', '.join(missing)}: an unknown key, or run")
        command_line(f"kubricks features materialize --usecase {short(usecase, settings)}")
