"""The kind cluster and the project image loaded into it, both driven by pulumi-command.

No maintained kind provider exists, so the cluster is a command whose create and delete
are kind's own; its stdout is the kubeconfig, kept as a Pulumi secret.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

import pulumi
import pulumi_command as command

# What goes into the image: a change to any of these rebuilds it under a new tag.
IMAGE_INPUTS = ("Dockerfile", "requirements.lock", "pyproject.toml")
IMAGE_PACKAGES = ("kubricks", "components", "pipelines", "serving", "demo", "usecases")


def source_digest(root: Path) -> str:
    """A short hash of everything the image is built from, used as part of its tag."""
    digest = hashlib.sha256()
    files = [root / f for f in IMAGE_INPUTS]
    for package in IMAGE_PACKAGES:
        files += sorted(p for p in (root / package).rglob("*") if p.is_file())
    for path in files:
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class KindCluster(pulumi.ComponentResource):
    """A kind cluster from ``kind-config.yaml``; ``kubeconfig`` feeds the provider."""

    kubeconfig: pulumi.Output[str]
    name: str

    def __init__(
        self,
        name: str,
        cluster_name: str,
        config_path: Path,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:KindCluster", name, None, opts)
        q = shlex.quote
        create = (
            f"kind get clusters | grep -qx {q(cluster_name)} || "
            f"kind create cluster --name {q(cluster_name)} --config {q(str(config_path))}"
            " --wait 180s >&2; "
            f"kind get kubeconfig --name {q(cluster_name)}"
        )
        cmd = command.local.Command(
            "kind",
            create=create,
            delete=f"kind delete cluster --name {q(cluster_name)}",
            triggers=[cluster_name, config_path.read_text()],
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout"]),
        )
        self.name = cluster_name
        self.kubeconfig = pulumi.Output.secret(cmd.stdout)
        self.register_outputs({"kubeconfig": self.kubeconfig, "name": cluster_name})


class ProjectImage(pulumi.ComponentResource):
    """Build the project image from the repository's Dockerfile and load it into kind.

    Nothing is pushed: kind nodes get the image with ``kind load``, and workloads use
    ``imagePullPolicy: IfNotPresent`` with a tag derived from the sources, never latest.
    """

    image: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        repository: str,
        version: str,
        root: Path,
        cluster_name: str | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:ProjectImage", name, None, opts)
        tag = f"{repository}:{version}-{source_digest(root)}"
        q = shlex.quote
        build = f"docker build --tag {q(tag)} --file Dockerfile ."
        if cluster_name:
            build += f" && kind load docker-image {q(tag)} --name {q(cluster_name)}"
        cmd = command.local.Command(
            "build",
            create=build,
            update=build,
            dir=str(root),
            triggers=[tag],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.image = cmd.stdout.apply(lambda _: tag)
        self.register_outputs({"image": self.image})
