"""Shared pieces of the cluster acceptance: the error it reports, the API clients, and the
objects a Pulumi stack export holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class AcceptanceError(Exception):
    """A check that failed; the message is the one line the script prints."""


def clients() -> Any:
    from kubernetes import client, config

    config.load_kube_config()
    return client


def stack_objects(stack_json: Path) -> list[dict[str, Any]]:
    """The Kubernetes objects a `pulumi stack export` holds and owns: kind, apiVersion, name,
    namespace."""
    import json

    resources = json.loads(stack_json.read_text())["deployment"].get("resources", [])
    out = []
    for res in resources:
        if not res.get("custom") or not res["type"].startswith("kubernetes:"):
            continue
        if res["type"].startswith("kubernetes:helm.sh") or res["type"].startswith("pulumi:"):
            continue
        if res.get("external"):  # read with .get() (the API server's Service), not the stack's
            continue
        outputs = res.get("outputs", {})
        meta = outputs.get("metadata") or {}
        if "kind" in outputs and meta.get("name"):
            out.append(
                {
                    "apiVersion": outputs["apiVersion"],
                    "kind": outputs["kind"],
                    "name": meta["name"],
                    "namespace": meta.get("namespace"),
                    "urn": res["urn"],
                }
            )
    return out


def _dynamic() -> Any:
    from kubernetes import dynamic
    from kubernetes.client import api_client

    clients()
    return dynamic.DynamicClient(api_client.ApiClient())


def _get(dyn: Any, obj: dict[str, Any]) -> Any:
    api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    if obj.get("namespace"):
        return api.get(name=obj["name"], namespace=obj["namespace"])
    return api.get(name=obj["name"])


def releases(stack_json: Path) -> list[dict[str, Any]]:
    import json

    resources = json.loads(stack_json.read_text())["deployment"].get("resources", [])
    return [r for r in resources if r["type"] == "kubernetes:helm.sh/v3:Release"]
