"""`kubricks stack settings`: turn the Pulumi stack's outputs into KUBRICKS_* settings.

After `pulumi up` in infra/, this writes an env file (mode 0600: it holds credentials) that
points the `kubricks` command on the host at the cluster: KFP, MLflow with its credentials,
and the lakehouse in the cluster's object store through the localhost ports kind maps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from kubricks.console import command_line, console
from kubricks.errors import KubricksError

app = typer.Typer(help="Settings from the cluster platform's Pulumi stack.", no_args_is_help=True)

REQUIRED = (
    "kfp_url",
    "mlflow_url",
    "s3_url",
    "serving_url",
    "namespace",
    "image",
    "settings_configmap",
    "settings_secret",
    "mlflow_admin_username",
    "mlflow_admin_password",
    "s3_access_key_id",
    "s3_secret_access_key",
)


# Every key settings_from_outputs writes (the workflow and the README rely on them).
OUTPUTS_TO_ENV_KEYS = (
    "KUBRICKS_KFP_HOST",
    "KUBRICKS_TRACKING_URI",
    "KUBRICKS_LAKEHOUSE_ROOT",
    "KUBRICKS_S3_ENDPOINT_URL",
    "KUBRICKS_S3_ALLOW_HTTP",
    "KUBRICKS_S3_ACCESS_KEY_ID",
    "KUBRICKS_S3_SECRET_ACCESS_KEY",
    "KUBRICKS_IMAGE",
    "KUBRICKS_K8S_NAMESPACE",
    "KUBRICKS_SETTINGS_CONFIGMAP",
    "KUBRICKS_SECRETS_NAME",
    "KUBRICKS_SERVING_URL",
    "KUBRICKS_TRACKING_USERNAME",
    "KUBRICKS_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)


def settings_from_outputs(outputs: Mapping[str, Any]) -> dict[str, str]:
    """The environment for using the cluster from this machine, from ``pulumi stack output``."""
    missing = [k for k in REQUIRED if outputs.get(k) in (None, "")]
    if missing:
        raise KubricksError(
            f"stack outputs lack {', '.join(missing)}: run `pulumi up` in infra/ first"
            " (and pass --show-secrets when exporting them yourself)"
        )
    if any(str(outputs[k]).startswith("[secret]") for k in REQUIRED):
        raise KubricksError("stack outputs are masked: export them with --show-secrets")
    return {
        "KUBRICKS_KFP_HOST": str(outputs["kfp_url"]),
        "KUBRICKS_TRACKING_URI": str(outputs["mlflow_url"]),
        "KUBRICKS_LAKEHOUSE_ROOT": "s3://lakehouse",
        "KUBRICKS_S3_ENDPOINT_URL": str(outputs["s3_url"]),
        "KUBRICKS_S3_ALLOW_HTTP": "true",
        "KUBRICKS_S3_ACCESS_KEY_ID": str(outputs["s3_access_key_id"]),
        "KUBRICKS_S3_SECRET_ACCESS_KEY": str(outputs["s3_secret_access_key"]),
        "KUBRICKS_IMAGE": str(outputs["image"]),
        "KUBRICKS_K8S_NAMESPACE": str(outputs["namespace"]),
        "KUBRICKS_SETTINGS_CONFIGMAP": str(outputs["settings_configmap"]),
        "KUBRICKS_SECRETS_NAME": str(outputs["settings_secret"]),
        "KUBRICKS_SERVING_URL": str(outputs["serving_url"]),
        "KUBRICKS_TRACKING_USERNAME": str(outputs["mlflow_admin_username"]),
        "KUBRICKS_TRACKING_PASSWORD": str(outputs["mlflow_admin_password"]),
        "MLFLOW_TRACKING_USERNAME": str(outputs["mlflow_admin_username"]),
        "MLFLOW_TRACKING_PASSWORD": str(outputs["mlflow_admin_password"]),
    }


def render_env(env: Mapping[str, str]) -> str:
    """Shell-sourceable and docker/pydantic-settings-readable ``KEY='value'`` lines."""
    lines = []
    for key, value in env.items():
        if "'" in value or "\n" in value:
            raise KubricksError(f"{key}: value contains a quote or newline; refusing to write it")
        lines.append(f"{key}='{value}'")
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write atomically with mode 0600, so no reader ever sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_outputs(source: str | None, stack: str | None, infra_dir: Path) -> dict[str, Any]:
    """Outputs from a JSON file, stdin (``-``), or the Pulumi CLI in ``infra_dir``."""
    if source == "-":
        text = sys.stdin.read()
    elif source:
        path = Path(source)
        if not path.is_file():
            raise KubricksError(f"{path}: no such file")
        text = path.read_text()
    else:
        command = ["pulumi", "stack", "output", "--json", "--show-secrets"]
        if stack:
            command += ["--stack", stack]
        try:
            done = subprocess.run(
                command, cwd=infra_dir, capture_output=True, text=True, check=False
            )
        except FileNotFoundError as exc:
            raise KubricksError("the Pulumi CLI is not installed (see infra/README.md)") from exc
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise KubricksError(f"pulumi stack output failed in {infra_dir}: {last}")
        text = done.stdout
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KubricksError(f"stack outputs are not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(outputs, dict):
        raise KubricksError("stack outputs are not a JSON object")
    return outputs


@app.command("settings")
def settings(
    output: Annotated[
        Path | None,
        typer.Option(
            help="The env file to write (mode 0600); default <KUBRICKS_HOME>/cluster.env."
        ),
    ] = None,
    stack: Annotated[
        str | None, typer.Option(help="Pulumi stack; default the selected one.")
    ] = None,
    from_json: Annotated[
        str | None,
        typer.Option(
            "--from-json",
            help="Read `pulumi stack output --json --show-secrets` from a file or - (stdin).",
        ),
    ] = None,
    infra_dir: Annotated[Path, typer.Option(help="The Pulumi project.")] = Path("infra"),
) -> None:
    """Write the KUBRICKS_* settings for the cluster platform to an env file."""
    from kubricks.commands.options import get_settings
    from kubricks.services import home_dir

    env = settings_from_outputs(read_outputs(from_json, stack, infra_dir))
    target = output or home_dir(get_settings()) / "cluster.env"
    write_private(target, render_env(env))
    console.print(f"Wrote {len(env)} settings to [bold]{target}[/] (mode 0600). Use them with:")
    command_line(f"set -a; . {target}; set +a")
