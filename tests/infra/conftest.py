"""Runs the Pulumi program once under ``pulumi.runtime.set_mocks`` and records what it sends.

The mock monitor sees every resource registration (type, name, parent, provider, inputs with
secrets still marked), which is exactly what the engine would receive. Helm releases and
kustomize directories are rendered by the provider at deploy time, so the mocks answer the
kustomize invoke with a stand-in of KFP's workloads; the program's transformation then runs
on them for real.
"""

from __future__ import annotations

import runpy
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "infra") not in sys.path:
    sys.path.insert(0, str(REPO / "infra"))

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"

# What KFP's platform-agnostic manifests contain, in shape: the real ones are fetched by the
# provider at deploy time. Upstream requests are deliberately generous so a missing patch shows.
KFP_WORKLOADS = [
    ("Deployment", "ml-pipeline", 1),
    ("Deployment", "ml-pipeline-ui", 1),
    ("Deployment", "ml-pipeline-persistenceagent", 1),
    ("Deployment", "ml-pipeline-scheduledworkflow", 1),
    ("Deployment", "ml-pipeline-viewer-crd", 1),
    ("Deployment", "ml-pipeline-visualizationserver", 1),
    ("Deployment", "metadata-grpc-deployment", 2),
    ("Deployment", "metadata-envoy-deployment", 1),
    ("Deployment", "metadata-writer", 1),
    ("Deployment", "cache-server", 1),
    ("Deployment", "workflow-controller", 1),
    ("Deployment", "mysql", 1),
    ("Deployment", "seaweedfs", 1),
]


def kfp_stand_in(namespace: str = "kubeflow") -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "pipeline-runner", "namespace": namespace},
        },
    ]
    for kind, name, containers in KFP_WORKLOADS:
        objs.append(
            {
                "apiVersion": "apps/v1",
                "kind": kind,
                "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {
                            "containers": [
                                {
                                    "name": f"{name}-{i}",
                                    "image": f"ghcr.io/kubeflow/{name}:2.17.0",
                                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                                }
                                for i in range(containers)
                            ]
                        },
                    },
                },
            }
        )
    return objs


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    provider: str
    custom: bool
    inputs: dict[str, Any]
    dependencies: set[str] = field(default_factory=set)  # URNs it waits for


@dataclass
class Recorded:
    registrations: list[Registration] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)  # every random secret value handed out
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    invokes: list[tuple[str, dict]] = field(default_factory=list)
    platform: Any = None

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def k8s_objects(self) -> list[Registration]:
        return [r for r in self.registrations if r.type.startswith("kubernetes:") and r.custom]


def unwrap(value: Any) -> Any:
    """Inputs with the secret markers removed (the plain values the cluster receives)."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return unwrap(value.get("value"))
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _run_program(
    recorded: Recorded, stack_config: dict[str, str] | None = None, **config: Any
) -> None:
    import pulumi
    from pulumi.runtime import mocks

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
            state = dict(args.inputs)
            if args.typ == "random:index/randomPassword:RandomPassword":
                value = f"pw{secrets.token_hex(12)}"
                recorded.secrets.add(value)
                state["result"] = value
            elif args.typ == "random:index/randomId:RandomId":
                value = secrets.token_urlsafe(32).rstrip("=")
                recorded.secrets.add(value)
                state["b64_url"] = value
            elif args.typ == "command:local:Command":
                state["stdout"] = "apiVersion: v1\nkind: Config\nclusters: []\n"
            elif args.typ == "kubernetes:helm.sh/v3:Release":
                state["name"] = args.inputs.get("name", args.name)
            return f"{args.name}-id", state

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
            recorded.invokes.append((args.token, dict(args.args)))
            if args.token == "kubernetes:kustomize:directory":
                directory = args.args["directory"]
                if "env/platform-agnostic" in directory:
                    return {"result": kfp_stand_in()}, []
                return {"result": []}, []
            return {}, []

    class Monitor(mocks.MockMonitor):
        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            from pulumi.runtime import rpc

            recorded.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    provider=request.provider,
                    custom=bool(request.custom),
                    inputs=rpc.deserialize_properties(request.object),
                    dependencies=set(request.dependencies)
                    | {u for deps in request.propertyDependencies.values() for u in deps.urns},
                )
            )
            return response

    m = Mocks()
    pulumi.runtime.set_mocks(m, project="kubricks", stack="test", preview=False, monitor=Monitor(m))

    from kubricks_infra.config import PlatformConfig
    from kubricks_infra.platform import Platform

    @pulumi.runtime.test
    def build() -> pulumi.Output:
        if stack_config is not None:
            # the real entry point, reading the stack's kubricks:* settings
            pulumi.runtime.set_all_config(stack_config)
            platform = runpy.run_path(str(REPO / "infra" / "__main__.py"))["platform"]
        else:
            platform = Platform("kubricks", PlatformConfig(**config))
        recorded.platform = platform
        keys = list(platform.outputs)

        def keep(values: list[Any]) -> None:
            recorded.outputs.update(zip(keys, values, strict=True))

        async def secret_flags() -> None:
            for key, value in platform.outputs.items():
                if isinstance(value, pulumi.Output) and await value.is_secret():
                    recorded.secret_outputs.add(key)

        return (
            pulumi.Output.all(*platform.outputs.values())
            .apply(keep)
            .apply(lambda _: pulumi.Output.from_input(secret_flags()))
        )

    build()


def run_program(stack_config: dict[str, str] | None = None, **config: Any) -> Recorded:
    """Build the platform under mocks and return the record: from ``PlatformConfig(**config)``,
    or through ``infra/__main__.py`` with ``stack_config`` as the stack's settings."""
    recorded = Recorded()
    _run_program(recorded, stack_config, **config)
    return recorded


@pytest.fixture(scope="session")
def program() -> Iterator[Recorded]:
    """The default stack: the laptop profile with SeaweedFS on kind."""
    yield run_program()
