"""Read-only views of the registry over MLflow's REST API, for commands that only look.

Importing MLflow's Python client costs 3-7 s of CPU (it pulls in pandas, pyspark and its
GenAI modules); `kubricks models list` and `kubricks status` answer in a fraction of that by
asking the server's documented REST endpoints with httpx. Everything that changes the
registry goes through :mod:`kubricks.registry.store` and MLflow's client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from kubricks.errors import ServiceUnavailable
from kubricks.registry.errors import RegistryError
from kubricks.settings import KubricksSettings

API = "/api/2.0/mlflow"
PAGE = 200


@dataclass(frozen=True)
class Version:
    version: str
    created_ms: int
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Model:
    name: str
    aliases: dict[str, str]  # alias -> version
    versions: list[Version]  # oldest first


def _get(settings: KubricksSettings, route: str, params: dict[str, Any]) -> httpx.Response:
    uri = settings.resolved_tracking_uri.rstrip("/")
    auth = None
    if settings.tracking_username and settings.tracking_password:
        auth = (settings.tracking_username, settings.tracking_password.get_secret_value())
    try:
        return httpx.get(f"{uri}{API}/{route}", params=params, auth=auth, timeout=10)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(
            f"MLflow tracking server at {uri} is not reachable: run `kubricks up`"
            " (or set KUBRICKS_TRACKING_URI)"
        ) from exc


def _json(answer: httpx.Response, what: str) -> dict[str, Any]:
    if answer.status_code != 200:
        try:
            message = answer.json().get("message", answer.text)
        except ValueError:
            message = answer.text
        raise RegistryError(f"{what}: the tracking server answered {answer.status_code}: {message}")
    return answer.json()


def model(settings: KubricksSettings, name: str, usecase: str | None = None) -> Model:
    """A registered model with its aliases and every version; a missing one names the fix."""
    answer = _get(settings, "registered-models/get", {"name": name})
    if answer.status_code == 404:
        raise RegistryError(
            f"registered model {name!r} does not exist on {settings.resolved_tracking_uri}:"
            f" train one with `kubricks train --usecase {usecase or name}`"
        )
    found = _json(answer, f"registered model {name!r}")["registered_model"]
    aliases = {a["alias"]: str(a["version"]) for a in found.get("aliases", [])}
    versions: list[Version] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"filter": f"name = '{name}'", "max_results": PAGE}
        if token:
            params["page_token"] = token
        page = _json(_get(settings, "model-versions/search", params), f"versions of {name!r}")
        versions += [
            Version(
                version=str(v["version"]),
                created_ms=int(v.get("creation_timestamp", 0)),
                run_id=v.get("run_id", ""),
                tags={t["key"]: t.get("value", "") for t in v.get("tags", [])},
            )
            for v in page.get("model_versions", [])
        ]
        token = page.get("next_page_token")
        if not token:
            break
    return Model(name, aliases, sorted(versions, key=lambda v: int(v.version)))


def classes(settings: KubricksSettings, run_id: str) -> list[Any] | None:
    """The classes a training run's model predicts (its ``classes`` param), if any."""
    if not run_id:
        return None
    answer = _get(settings, "runs/get", {"run_id": run_id})
    if answer.status_code != 200:
        return None
    params = answer.json().get("run", {}).get("data", {}).get("params", [])
    found = next((p["value"] for p in params if p.get("key") == "classes"), None)
    try:
        return json.loads(found) if found else None
    except ValueError:
        return None
