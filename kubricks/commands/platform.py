"""`kubricks up`, `status` and `down`: the local platform's services."""

from __future__ import annotations

from kubricks.console import console, table
from kubricks.settings import get_settings


def up() -> None:
    """Start the local services in the background (a second call is a no-op)."""
    from kubricks import services

    settings = get_settings()
    before = services.mlflow_status(settings)
    with console.status("Starting the MLflow tracking server…"):
        status = services.start_mlflow(settings)
    verb = "already running" if before.running and before.healthy else "started"
    console.print(f"MLflow tracking server {verb}: [bold]{status.url}[/] (pid {status.pid})")
    console.print(f"Lakehouse: {settings.lakehouse_uri}")


def status() -> None:
    """Report each local service: pid, URL and health."""
    from kubricks import services

    s = services.mlflow_status(get_settings())
    console.print(
        table(
            "Services",
            ["service", "url", "pid", "running", "healthy", "note"],
            [(s.name, s.url, s.pid, s.running, s.healthy, s.note)],
        )
    )


def down() -> None:
    """Stop the local services cleanly."""
    from kubricks import services

    stopped = services.stop_mlflow(get_settings())
    console.print("MLflow tracking server stopped." if stopped else "Nothing was running.")
