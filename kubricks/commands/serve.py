"""`kubricks serve`, `kubricks predict` and `kubricks bento build`: real-time serving."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from kubricks.console import console
from kubricks.errors import KubricksError
from kubricks.settings import get_settings, resolved_bentoml_home

bento_app = typer.Typer(help="Bentos: the champion packaged for a container.", no_args_is_help=True)
UseCase = Annotated[str, typer.Option(help="Use-case name or path to a spec YAML.")]


def serve(
    usecase: UseCase = "churn",
    port: Annotated[int | None, typer.Option(help="Port (default KUBRICKS_SERVING_PORT).")] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Bind address (0.0.0.0 in a pod)."),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="BentoML worker processes.")] = None,
    background: Annotated[bool, typer.Option(help="Return once ready; keep serving.")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop a background server.")] = False,
) -> None:
    """Serve the champion locally; it hot-swaps when the champion alias moves."""
    from kubricks.spec import load_spec
    from serving import build, local

    overrides: dict[str, object] = {}
    if port is not None:
        overrides["serving_port"] = port
    if host is not None:
        overrides["serving_host"] = host
    if workers is not None:
        overrides["serving_workers"] = workers
    settings = get_settings(**overrides)
    spec = load_spec(usecase, settings.usecases_dir)
    if stop:
        stopped = local.stop(settings, spec.name)
        console.print("stopped" if stopped else f"no background server for {spec.name}")
        return
    runtime = build.prepare(settings, spec)
    console.print(
        f"Serving {spec.name} v{runtime.champion}"
        + (f" (challenger v{runtime.challenger})" if runtime.challenger else "")
        + f" at {local.url(settings)}"
    )
    if not settings.registry_webhook_secret:
        console.print(
            "Hot swap by webhook is off (KUBRICKS_REGISTRY_WEBHOOK_SECRET unset); the alias"
            f" poll still swaps every {settings.serving_poll_seconds:.0f} s."
        )
    if background:
        server = local.start(settings, runtime)
        console.print(f"ready (pid {server.pid}, log {server.log})")
        return
    command = local.command(settings, settings.serving_port)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C stops the server: not an error
        subprocess.run(
            command, env=build.server_env(settings, runtime), cwd=build.REPO, check=False
        )


def predict(
    usecase: UseCase = "churn",
    key: Annotated[list[str] | None, typer.Option(help="Entity key(s) to look up.")] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="A JSON file: a list of rows, or {rows: [...]}.")
    ] = None,
    url: Annotated[str | None, typer.Option(help="Service URL (default the local one).")] = None,
) -> None:
    """Ask a running service: by key (features from the online store) or with rows."""
    from kubricks.features.online import parse_key
    from kubricks.spec import load_spec
    from serving import client, local

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    base = url or local.url(settings)
    if bool(key) == bool(json_file):
        raise KubricksError("predict: give --key (one or more) or --json, not both")
    if key:
        answer = client.predict_keys(base, [parse_key(spec, k) for k in key])
    else:
        assert json_file is not None
        try:
            data = json.loads(json_file.read_text())
        except (OSError, ValueError) as exc:
            raise KubricksError(f"{json_file}: not a readable JSON file: {exc}") from exc
        rows = data.get("rows") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise KubricksError(f"{json_file}: expected a list of rows or {{'rows': [...]}}")
        answer = client.predict_rows(base, rows)
    console.print_json(json.dumps(answer))


@bento_app.command("build")
def bento_build(usecase: UseCase = "churn") -> None:
    """Build the Bento (code, spec, champion model); containerize it where Docker runs."""
    from kubricks.spec import load_spec
    from serving import build

    settings = get_settings()
    spec = load_spec(usecase, settings.usecases_dir)
    runtime = build.prepare(settings, spec)
    bento = build.build_bento(settings, runtime)
    console.print(f"built {bento.tag} (champion v{runtime.champion}) in {bento.path}")
    console.print(
        f"Containerize (needs Docker): BENTOML_HOME={resolved_bentoml_home(settings)}"
        f" bentoml containerize {bento.tag}"
    )
