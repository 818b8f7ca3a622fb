"""Runs the Pulumi program once under ``pulumi.runtime.set_mocks`` and records what it sends.

The mock monitor sees every resource registration (type, name, parent, provider, inputs with
secrets still marked), which is exactly what the engine would receive. Helm releases and
kustomize directories are rendered by the provider at deploy time, so the mocks answer the
kustomize invoke with KFP's workloads from the real render (``infra/renders/``); the program's
transformation then runs on them for real.
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
# what the mocks answer for the cluster's `kubernetes` Service and its endpoint
API_SERVER_IP = "172.18.0.3"
API_SERVICE_IP = "10.96.0.1"
SIG_KEY = "4dabf18193072939515e22adb298388d"


def kfp_render(namespace: str = "kubeflow") -> list[dict[str, Any]]:
    """KFP's workloads as the real ``kustomize build`` of its 2.17.0 manifests has them.

    The provider renders them at deploy time; ``scripts/cluster-renders.sh`` renders them with
    the real kustomize and keeps what this needs in ``infra/renders/`` (the acceptance fails if
    that summary goes stale), so the program's transformation runs here on the real workloads.
    """
    from ci.renders import read
    from kubricks_infra.config import PlatformConfig

    summary = read(f"kfp-{PlatformConfig().kfp_version}.json")
    assert f"ServiceAccount/{namespace}/pipeline-runner" in summary["objects"]
    objs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "pipeline-runner", "namespace": namespace},
        },
    ]
    for w in summary["workloads"]:
        objs.append(
            {
                "apiVersion": "apps/v1",
                "kind": w["kind"],
                "metadata": {"name": w["name"], "namespace": w["namespace"]},
                "spec": {
                    "replicas": w["replicas"],
                    "selector": {"matchLabels": w["labels"]},
                    "template": {
                        "metadata": {"labels": w["labels"]},
                        "spec": {
                            "containers": [
                                {
                                    "name": c["name"],
                                    "image": c["image"],
                                    "resources": c["resources"],
                                }
                                for c in w["containers"]
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
            elif args.resource_id == "default/kubernetes":  # the API server, read at deploy
                if args.typ == "kubernetes:core/v1:Endpoints":
                    state["subsets"] = [
                        {"addresses": [{"ip": API_SERVER_IP}], "ports": [{"port": 6443}]}
                    ]
                else:
                    state["spec"] = {"clusterIP": API_SERVICE_IP, "ports": [{"port": 443}]}
            return f"{args.name}-id", state

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
            recorded.invokes.append((args.token, dict(args.args)))
            if args.token == "kubernetes:kustomize:directory":
                directory = args.args["directory"]
                if "env/platform-agnostic" in directory:
                    return {"result": kfp_render()}, []
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
