"""What the pipeline's ``deploy`` step calls: hot-swap a local server, or apply to a cluster.

``deploy_local`` sends the running server the same signed alias event MLflow's webhook
would (so a server that missed the webhook still swaps now) and waits until it serves the
version. ``deploy_cluster`` renders the Deployment, Service and HPA
(``serving.packaging.kubernetes``; see docs/architecture.md, "The Kubernetes renderer"),
validates them and applies them with the kubernetes client.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from kubricks.registry.alias_names import CHAMPION
from kubricks.settings import KubricksSettings
from kubricks.spec import UseCaseSpec
from serving.packaging import local
from serving.request import webhook


def alias_payload(model: str, alias: str, version: str) -> bytes:
    """The body MLflow sends for ``model_version_alias.created``."""
    return json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": {"name": model, "alias": alias, "version": str(version)},
        }
    ).encode()


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": webhook.sign(secret, delivery, stamp, body),
    }


def served_versions(base: str, timeout: float = 5.0) -> dict[str, Any] | None:
    try:
        answer = httpx.get(f"{base}/admin/model", timeout=timeout)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


def deploy_local(
    settings: KubricksSettings,
    spec: UseCaseSpec,
    version: str,
    alias: str = CHAMPION,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Hot-swap the local server of ``spec`` to ``version``; reports when none runs."""
    base = local.url(settings)
    info = served_versions(base)
    if info is None:
        return {"deployed": False, "reason": f"no Kubricks server answers at {base}", "url": base}
    if info.get("usecase") != spec.name:
        return {
            "deployed": False,
            "reason": f"{base} serves {info.get('usecase')!r}, not {spec.name!r}",
            "url": base,
        }
    secret = settings.registry_webhook_secret
    if secret is None:
        return {
            "deployed": False,
            "reason": "KUBRICKS_REGISTRY_WEBHOOK_SECRET is unset: the server accepts no swap",
            "url": base,
        }
    body = alias_payload(spec.name, alias, version)
    answer = httpx.post(
        f"{base}/admin/hooks/mlflow",
        content=body,
        headers=signed_headers(secret.get_secret_value(), body),
        timeout=30,
    )
    if answer.status_code != 202:
        return {"deployed": False, "reason": f"{answer.status_code}: {answer.text}", "url": base}
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        info = served_versions(base) or {}
        if (info.get("versions") or {}).get(alias) == str(version):
            return {
                "deployed": True,
                "url": base,
                "alias": alias,
                "version": str(version),
                "seconds": round(time.monotonic() - started, 2),
            }
        if info.get("load_error"):
            return {"deployed": False, "reason": info["load_error"], "url": base}
        time.sleep(0.2)
    return {"deployed": False, "reason": f"still not serving v{version} after {timeout}s"}


def deploy_cluster(
    settings: KubricksSettings,
    spec: UseCaseSpec,
    version: str,
    image: str,
    api_client: Any | None = None,
    replicas: int = 1,
    max_replicas: int = 3,
) -> dict[str, Any]:
    """Render and validate the serving objects, then apply them when a client is given.

    The Bento image carries the champion (``kubricks bento build`` + ``bentoml
    containerize``); a new champion in a running cluster is hot-swapped by the webhook and
    the poll, so re-applying is only needed for a new image.
    """
    from serving.packaging import (
        kubernetes as k8s,  # docs/architecture.md, "The Kubernetes renderer"
    )

    manifests = k8s.bento_manifests(
        name=k8s.serving_name(spec.name),
        image=image,
        namespace=settings.k8s_namespace,
        replicas=replicas,
        max_replicas=max_replicas,
        configmap=settings.settings_configmap,
        secret=settings.serving_secrets_name,
        service_type="NodePort" if settings.serving_node_port else "ClusterIP",
        node_port=settings.serving_node_port or None,
        args=k8s.serve_args(spec.name),
    )
    k8s.validate_manifests(manifests)
    applied = k8s.apply_manifests(api_client, manifests) if api_client is not None else []
    return {
        "version": str(version),
        "image": image,
        "objects": [f"{m['kind']}/{m['metadata']['name']}" for m in manifests],
        "applied": applied,
    }
