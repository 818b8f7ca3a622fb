"""Settings as ``KUBRICKS_*`` environment variables, the one channel to every step.

Locally, kfp.local starts each step as a child process that inherits the environment,
so the runner exports the settings there. On the cluster, the same variables come
from a ConfigMap (plain values) and a Secret (the ``SecretStr`` fields), wired into
each task with kfp-kubernetes. Steps read them back with ``KubricksSettings()``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from kubricks.settings import KubricksSettings

PREFIX = "KUBRICKS_"


def env_name(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


def secret_fields() -> list[str]:
    """Fields typed ``SecretStr``: they travel in a Secret, never in the ConfigMap."""
    fields = KubricksSettings.model_fields
    return sorted(n for n, f in fields.items() if SecretStr in _types(f.annotation))


def plain_fields() -> list[str]:
    secrets = set(secret_fields())
    return sorted(n for n in KubricksSettings.model_fields if n not in secrets)


def _types(annotation: object) -> tuple[object, ...]:
    args = getattr(annotation, "__args__", None)
    return tuple(args) if args else (annotation,)


def _text(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path):
        return str(value.expanduser().resolve())
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def settings_env(settings: KubricksSettings, secrets: bool = True) -> dict[str, str]:
    """Every set field as ``KUBRICKS_<NAME>``, with derived paths made absolute.

    The lakehouse root and tracking URI are exported resolved, so a step started in
    another directory reads the same tables and server.
    """
    names = plain_fields() + (secret_fields() if secrets else [])
    env = {env_name(n): _text(v) for n in names if (v := getattr(settings, n)) is not None}
    env[env_name("lakehouse_root")] = settings.lakehouse_uri
    env[env_name("tracking_uri")] = settings.resolved_tracking_uri
    return env


@contextmanager
def exported(env: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a local run, then restore them."""
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def settings_configmap(settings: KubricksSettings, namespace: str) -> dict:
    """The ConfigMap manifest holding the plain settings the cluster steps read."""
    data = settings_env(settings, secrets=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": settings.settings_configmap,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "kubricks"},
        },
        "data": data,
    }
