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
