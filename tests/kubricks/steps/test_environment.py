"""Settings travel to steps as KUBRICKS_* variables; secrets never enter the ConfigMap."""

from __future__ import annotations

import os
from pathlib import Path

import kubernetes_validate
from pydantic import SecretStr

from kubricks.settings import KubricksSettings
from kubricks.steps import environment


def test_round_trip_through_the_environment(tmp_path: Path, monkeypatch) -> None:
    settings = KubricksSettings(
        home=tmp_path / "h",
        pipeline_retries=4,
        s3_allow_http=False,
        s3_secret_access_key=SecretStr("s3cr3t"),
    )
    env = environment.settings_env(settings)
    assert env["KUBRICKS_HOME"] == str((tmp_path / "h").resolve())
    assert env["KUBRICKS_LAKEHOUSE_ROOT"] == settings.lakehouse_uri
    assert env["KUBRICKS_TRACKING_URI"] == settings.resolved_tracking_uri
    assert env["KUBRICKS_S3_ALLOW_HTTP"] == "false"
    for key in [k for k in os.environ if k.startswith("KUBRICKS_")]:
        monkeypatch.delenv(key)
    with environment.exported(env):
        again = KubricksSettings()
        assert again.home == (tmp_path / "h").resolve()
        assert again.pipeline_retries == 4 and again.s3_allow_http is False
        assert again.s3_secret_access_key.get_secret_value() == "s3cr3t"
    assert "KUBRICKS_HOME" not in os.environ


def test_secrets_stay_out_of_the_configmap(tmp_path: Path) -> None:
    settings = KubricksSettings(home=tmp_path, s3_secret_access_key=SecretStr("s3cr3t"))
    assert "s3_secret_access_key" in environment.secret_fields()
    assert "database_url" in environment.secret_fields()
    assert not set(environment.secret_fields()) & set(environment.plain_fields())
    manifest = environment.settings_configmap(settings, "kubricks")
    assert "s3cr3t" not in str(manifest)
    assert "KUBRICKS_S3_SECRET_ACCESS_KEY" not in manifest["data"]
    assert manifest["metadata"]["name"] == settings.settings_configmap
    kubernetes_validate.validate(manifest, "1.30", strict=True)
