"""Local services: start once, no-op when running, stale pid files cleaned, clean stop."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kubricks import services
from kubricks.errors import ServiceUnavailable
from kubricks.settings import KubricksSettings
from kubricks.tracking import connect
from tests.conftest import free_port


def test_webhook_key_is_created_once_and_private(tmp_path: Path) -> None:
    settings = KubricksSettings(home=tmp_path)
    key = services.webhook_key(settings)
    assert services.webhook_key(settings) == key
    mode = stat.S_IMODE(os.stat(services.run_dir(settings) / "webhook-secret.key").st_mode)
    assert mode == 0o600


def test_backend_is_sqlite_by_default_and_postgres_when_set_never_on_argv(tmp_path: Path) -> None:
    local = KubricksSettings(home=tmp_path)
    command = services.mlflow_command(local)
    assert "--serve-artifacts" in command
    sqlite = f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert services.mlflow_environment(local)[services.BACKEND_STORE_ENV] == sqlite
    assert "--backend-store-uri" not in command and sqlite not in command
    remote = KubricksSettings(home=tmp_path, database_url="postgresql://u:s3cret@db/mlflow")
    assert "s3cret" not in " ".join(services.mlflow_command(remote))
    env = services.mlflow_environment(remote)
    assert env[services.BACKEND_STORE_ENV] == "postgresql://u:s3cret@db/mlflow"


def test_dead_server_gives_an_actionable_error(tmp_path: Path) -> None:
    settings = KubricksSettings(home=tmp_path, tracking_uri=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServiceUnavailable, match="run `kubricks up`"):
        connect(settings)


@pytest.mark.slow
def test_up_is_idempotent_cleans_stale_pid_and_stops(tmp_path: Path) -> None:
    settings = KubricksSettings(home=tmp_path, mlflow_port=free_port())
    services.run_dir(settings).joinpath("mlflow.pid").write_text("999999")  # a crashed run
    assert services.mlflow_status(settings).note == "stale pid file"
    try:
        first = services.start_mlflow(settings)
        assert first.healthy and first.pid != 999999
        second = services.start_mlflow(settings)
        assert second.pid == first.pid  # a second `up` starts nothing
    finally:
        assert services.stop_mlflow(settings)
    after = services.mlflow_status(settings)
    assert not after.running and not after.healthy
    assert not services.stop_mlflow(settings)


def command_lines() -> dict[int, str]:
    """Every process's command line, as `ps` shows it to any local user."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
    return {pid: line.decode(errors="replace") for pid, line in found.items()}


@pytest.mark.slow
def test_up_keeps_the_database_url_off_every_command_line_and_the_home_private(
    tmp_path: Path,
) -> None:
    """The URL's secret part (here a marker in a SQLite path: the scheme does not change
    where Kubricks puts it) must never be in argv, from `kubricks up` to the last worker."""
    import subprocess
    import sys
    import threading

    secret = "s3cret-dbpass-7f3a"
    database = tmp_path / secret / "mlflow.db"
    database.parent.mkdir()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "KUBRICKS_HOME": str(home),
        "KUBRICKS_MLFLOW_PORT": str(free_port()),
        "KUBRICKS_DATABASE_URL": f"sqlite:///{database}",
        "KUBRICKS_START_TIMEOUT_SECONDS": "600",
    }
    env.pop("KUBRICKS_TRACKING_URI", None)
    kubricks = str(Path(sys.executable).with_name("kubricks"))
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.02):
            seen.extend(line for line in command_lines().values() if secret in line)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        up = subprocess.run([kubricks, "up"], env=env, capture_output=True, text=True)
        assert up.returncode == 0, up.stdout + up.stderr
        settings = KubricksSettings(home=home, mlflow_port=int(env["KUBRICKS_MLFLOW_PORT"]))
        server = services.mlflow_status(settings)
        assert server.healthy and server.pid is not None
        done.set()
        watcher.join()
        assert seen == []
        servers = [
            pid for pid, line in command_lines().items() if "mlflow" in line and str(home) in line
        ]
        assert server.pid in servers
        environ = Path(f"/proc/{server.pid}/environ").read_bytes()  # readable by its owner only
        assert f"sqlite:///{database}".encode() in environ
        assert database.is_file()  # MLflow did use the URL it was handed
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        for path in (
            home / "run" / "mlflow.pid",
            home / "run" / "mlflow.log",
            home / "logs" / "up.log",
        ):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
    finally:
        done.set()
        watcher.join()
        subprocess.run([kubricks, "down"], env=env, capture_output=True, text=True)
