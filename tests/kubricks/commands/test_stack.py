"""`kubricks stack settings`: stack outputs in, a private env file that configures kubricks out."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubricks.cli import app
from kubricks.commands import stack
from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings

OUTPUTS = {
    "kfp_url": "http://localhost:8080",
    "mlflow_url": "http://localhost:5000",
    "s3_url": "http://localhost:9000",
    "serving_url": "http://localhost:3000",
    "namespace": "kubricks",
    "kfp_namespace": "kubeflow",
    "image": "kubricks/kubricks:0.1.0-abcdef012345",
    "settings_configmap": "kubricks-settings",
    "settings_secret": "kubricks-secrets",
    "mlflow_admin_username": "admin",
    "mlflow_admin_password": "s3cr3t-admin",
    "s3_access_key_id": "AKEXAMPLE",
    "s3_secret_access_key": "secret-key-value",
    "buckets": ["lakehouse", "mlflow", "pipelines"],
}


def _parse_env(text: str) -> dict[str, str]:
    return {k: v.strip("'") for k, v in (line.split("=", 1) for line in text.splitlines())}


def test_env_file_configures_kubricks_for_the_cluster(tmp_path: Path) -> None:
    source = tmp_path / "outputs.json"
    source.write_text(json.dumps(OUTPUTS))
    target = tmp_path / "state" / "cluster.env"
    result = CliRunner().invoke(
        app, ["stack", "settings", "--from-json", str(source), "--output", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert "s3cr3t" not in result.output  # values are written, never printed
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    env = _parse_env(target.read_text())
    settings = KubricksSettings(
        **{
            k.removeprefix("KUBRICKS_").lower(): v
            for k, v in env.items()
            if k.startswith("KUBRICKS_")
        }
    )
    assert settings.kfp_host == "http://localhost:8080"
    assert settings.resolved_tracking_uri == "http://localhost:5000"
    assert settings.lakehouse_uri == "s3://lakehouse"
    assert settings.storage_options()["AWS_ENDPOINT_URL"] == "http://localhost:9000"
    assert settings.storage_options()["AWS_SECRET_ACCESS_KEY"] == "secret-key-value"
    assert settings.image == OUTPUTS["image"]
    assert env["MLFLOW_TRACKING_USERNAME"] == "admin"
    assert env["MLFLOW_TRACKING_PASSWORD"] == "s3cr3t-admin"
    assert tuple(env) == stack.OUTPUTS_TO_ENV_KEYS


def test_env_file_goes_under_the_home_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "somewhere" / "home"
    monkeypatch.setenv("KUBRICKS_HOME", str(home))
    source = tmp_path / "outputs.json"
    source.write_text(json.dumps(OUTPUTS))
    result = CliRunner().invoke(app, ["stack", "settings", "--from-json", str(source)])
    assert result.exit_code == 0, result.output
    target = home / "cluster.env"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert f"set -a; . {target.resolve()}; set +a" in result.output.splitlines()


def test_env_file_is_readable_by_a_shell(tmp_path: Path) -> None:
    target = tmp_path / "cluster.env"
    stack.write_private(target, stack.render_env(stack.settings_from_outputs(OUTPUTS)))
    shell = subprocess.run(
        [
            "sh",
            "-c",
            f"set -a; . {target}; set +a; echo $KUBRICKS_KFP_HOST $MLFLOW_TRACKING_USERNAME",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout.strip() == "http://localhost:8080 admin"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kfp_url": None}, "lack kfp_url"),
        ({"mlflow_admin_password": "[secret]"}, "--show-secrets"),
        ({"s3_secret_access_key": "it's"}, "S3_SECRET_ACCESS_KEY: value contains a quote"),
    ],
)
def test_bad_outputs_fail_with_one_clear_line(change: dict, message: str, tmp_path: Path) -> None:
    target = tmp_path / "cluster.env"
    with pytest.raises(KubricksError, match=message):
        stack.write_private(
            target, stack.render_env(stack.settings_from_outputs({**OUTPUTS, **change}))
        )
    assert not target.exists()  # nothing half-written


def test_reading_outputs_from_the_pulumi_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --from-json the Pulumi CLI is asked, in the infra directory, for the outputs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(
        f"#!/bin/sh\necho \"$PWD $*\" > {tmp_path}/called\necho '{json.dumps(OUTPUTS)}'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    infra = tmp_path / "infra"
    infra.mkdir()
    outputs = stack.read_outputs(None, "laptop", infra)
    assert outputs["kfp_url"] == OUTPUTS["kfp_url"]
    assert (tmp_path / "called").read_text().strip() == (
        f"{infra} stack output --json --show-secrets --stack laptop"
    )


def test_missing_pulumi_cli_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KubricksError, match="Pulumi CLI is not installed"):
        stack.read_outputs(None, None, tmp_path)
