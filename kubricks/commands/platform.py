"""`kubricks up`, `status` and `down`: the local platform's services."""

from __future__ import annotations

from kubricks.commands.options import get_settings
from kubricks.console import console, table
from kubricks.registry.alias_names import CHALLENGER, CHAMPION


def up() -> None:
    """Start the local services in the background (a second call is a no-op)."""
    from kubricks import services

    settings = get_settings()
    before = services.mlflow_status(settings)
    with console.status("Starting the MLflow tracking server…"):
        status = services.start_mlflow(settings, timeout=settings.start_timeout_seconds)
    verb = "already running" if before.running and before.healthy else "started"
    console.print(f"MLflow tracking server {verb}: [bold]{status.url}[/] (pid {status.pid})")
    console.print(f"Lakehouse: {settings.lakehouse_uri}")


def status() -> None:
    """Report the tracking server and every model server this home started."""
    from kubricks import services
    from serving.packaging import local

    settings = get_settings()
    s = services.mlflow_status(settings)
    console.print(
        table(
            "Services",
            ["service", "url", "pid", "running", "healthy", "note"],
            [(s.name, s.url, s.pid, s.running, s.healthy, s.note)],
        )
    )
    servers = local.servers(settings)
    if not servers:
        console.print("No model server runs (start one: kubricks serve --background).")
        return
    console.print(
        table(
            "Model servers",
            ["use case", CHAMPION, CHALLENGER, "url", "pid"],
            [
                (
                    s.usecase,
                    _version(s.versions.get(CHAMPION)) if s.versions else "loading",
                    _version(s.versions.get(CHALLENGER)),
                    s.url,
                    s.pid,
                )
                for s in servers
            ],
        )
    )


def _version(value: object) -> str:
    return f"v{value}" if value else "-"


def down() -> None:
    """Stop the local services cleanly (model servers first, then the tracking server)."""
    from kubricks import services
    from serving.packaging import local

    settings = get_settings()
    for usecase in local.stop_all(settings):
        console.print(f"Model server of {usecase} stopped.")
    stopped = services.stop_mlflow(settings)
    console.print("MLflow tracking server stopped." if stopped else "No tracking server ran.")
