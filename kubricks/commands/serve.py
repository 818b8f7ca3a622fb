"""`kubricks serve`, `kubricks predict` and `kubricks bento build`: real-time serving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from kubricks.commands.options import (
    AUTO,
    USECASE_HELP,
    UseCaseOption,
    get_settings,
    resolved_usecase,
)
from kubricks.console import command_line, console
from kubricks.errors import KubricksError

bento_app = typer.Typer(help="Bentos: the champion packaged for a container.", no_args_is_help=True)
UseCase = UseCaseOption  # every command here: `usecase: UseCase = AUTO`


def serve(
    usecase: Annotated[
        str | None,
        typer.Option(help=f"{USECASE_HELP} With --stop and none: every background server."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default KUBRICKS_SERVING_PORT).")] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Bind address (0.0.0.0 in a pod)."),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="BentoML worker processes.")] = None,
    background: Annotated[bool, typer.Option(help="Return once ready; keep serving.")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop a background server.")] = False,
) -> None:
    """Serve the champion locally; it hot-swaps when the champion alias moves.

    In the foreground this process becomes the server: SIGTERM or Ctrl+C drains it (no new
    connections, requests in flight answered, the inference log committed) and it exits 0.
    """
    from kubricks.spec import load_spec
    from serving.packaging import build, local

    overrides: dict[str, object] = {}
    if port is not None:
        overrides["serving_port"] = port
    if host is not None:
        overrides["serving_host"] = host
    if workers is not None:
        overrides["serving_workers"] = workers
    settings = get_settings(**overrides)
    if stop:
        _stop(settings, usecase)
        return
    spec = load_spec(resolved_usecase(usecase), settings.usecases_dir)
    runtime = build.prepare(settings, spec)
    other = runtime.challenger not in (None, runtime.champion)  # the gate moves both to a pass
    challenger = f", challenger v{runtime.challenger}" if other else ""
    console.print(
        f"Serving {spec.name}: champion v{runtime.champion}{challenger}, at {local.url(settings)}",
        highlight=False,
    )
    if not settings.registry_webhook_secret:
        poll = settings.serving_poll_seconds
        swap = (
            f"the alias poll still swaps every {poll:g} s"
            if poll > 0
            else "the alias poll is off too: a new champion is served after a restart"
        )
        console.print(
            f"Hot swap by webhook is off (KUBRICKS_REGISTRY_WEBHOOK_SECRET unset); {swap}."
        )
    if background:
        server = local.start(settings, runtime, timeout=settings.start_timeout_seconds)
        console.print(f"Ready (pid {server.pid}, log {server.log}). Stop it with:")
        command_line(f"kubricks serve --stop --usecase {spec.name}")
        return
    from kubricks.console import release

    release()  # the server's own log lines belong on this terminal, not in a log file
    local.exec_foreground(settings, runtime, settings.serving_port)


def _stop(settings, usecase: str | None) -> None:
    from kubricks.spec import load_spec
    from serving.packaging import local

    if usecase:
        name = load_spec(resolved_usecase(usecase), settings.usecases_dir).name
        stopped = [name] if local.stop(settings, name) else []
        if not stopped:
            console.print(f"No background server of {name} runs (`kubricks status` lists them).")
            return
    else:
        stopped = local.stop_all(settings)
        if not stopped:
            console.print("No background server runs.")
            return
    for name in stopped:
        console.print(f"Stopped the server of {name}.")


def predict(
    usecase: UseCase = AUTO,
    key: Annotated[list[str] | None, typer.Option(help="Entity key(s) to look up.")] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="A JSON file: a list of rows, or {rows: [...]}.")
    ] = None,
    url: Annotated[str | None, typer.Option(help="Service URL (default the local one).")] = None,
) -> None:
    """Ask a running service: by key (features from the online store) or with rows."""
    from kubricks.spec import load_spec, parse_key
    from kubricks.usecase import short
    from serving.packaging import client
    from serving.packaging.local import url as local_url

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    base = url or local_url(settings)
    if bool(key) == bool(json_file):
        raise KubricksError("predict: give --key (one or more) or --json, not both")
    name = short(usecase, settings)
    try:
        if key:
            answer = client.predict_keys(base, [parse_key(spec, k) for k in key])
        else:
            assert json_file is not None
            answer = client.predict_rows(base, _rows(json_file))
    except client.NotServing as exc:
        hint = f"start it with `kubricks serve --usecase {name} --background`"
        raise KubricksError(f"{exc}: {hint}") from exc
    except client.NoFeatures as exc:
        raise KubricksError(
            f"{exc}: load the features with `kubricks features apply --usecase {name}` and"
            f" `kubricks features materialize --usecase {name}`"
        ) from exc
    console.print_json(json.dumps(answer))


def _rows(json_file: Path) -> list:
    try:
        data = json.loads(json_file.read_text())
    except (OSError, ValueError) as exc:
        raise KubricksError(f"{json_file}: not a readable JSON file: {exc}") from exc
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise KubricksError(f"{json_file}: expected a list of rows or {{'rows': [...]}}")
    return rows


@bento_app.command("build")
def bento_build(usecase: UseCase = AUTO) -> None:
    """Build the Bento (code, spec, champion model); containerize it where Docker runs."""
    from kubricks.settings import resolved_bentoml_home
    from kubricks.spec import load_spec
    from serving.packaging import build

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    runtime = build.prepare(settings, spec)
    bento = build.build_bento(settings, runtime)
    console.print(f"Built {bento.tag} (champion v{runtime.champion}) in {bento.path}")
    console.print("Containerize it (needs Docker):")
    command_line(f"BENTOML_HOME={resolved_bentoml_home(settings)} bentoml containerize {bento.tag}")
