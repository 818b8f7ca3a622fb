"""The Bento's Deployment, Service (NodePort, mapped to localhost) and HPA, rendered by
``serving.packaging.kubernetes.bento_manifests`` (the same objects the deploy step applies)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from kubricks_infra import k8s as m
from kubricks_infra.config import PlatformConfig
from serving.packaging.kubernetes import bento_manifests, serve_args, serving_name

PORT = 3000


class Serving(pulumi.ComponentResource):
    """The serving endpoint; ``url`` is where the host sends predictions."""

    url: str
    name: str

    def __init__(
        self,
        name: str,
        cfg: PlatformConfig,
        image: pulumi.Output[str],
        configmap: str,
        secret: str,
        provider: k8s.Provider,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kubricks:platform:Serving", name, None, opts)
        self.name = serving_name(cfg.usecase)
        self.url = cfg.external_url("serving", f"http://{m.fqdn(self.name, cfg.namespace)}:{PORT}")
        # Rendered with a placeholder image, then the built tag is put in: the manifest's
        # structure is known (and validated) before the image exists.
        manifests = bento_manifests(
            name=self.name,
            image="kubricks/kubricks:pending",
            namespace=cfg.namespace,
            port=PORT,
            replicas=cfg.serving_replicas,
            max_replicas=cfg.serving_max_replicas,
            resources=cfg.resources("serving").as_k8s(),
            configmap=configmap,
            secret=secret,
            service_type="NodePort" if cfg.node_ports else "ClusterIP",
            node_port=cfg.ports.serving if cfg.node_ports else None,
            args=serve_args(cfg.usecase, PORT),
        )
        for manifest in manifests:
            if manifest["kind"] == "Deployment":
                manifest["spec"]["template"]["spec"]["containers"][0]["image"] = image
            # No champion exists on a fresh platform, so the Bento only becomes ready after
            # the first training run: do not hold `pulumi up` on its readiness.
            manifest["metadata"].setdefault("annotations", {})["pulumi.com/skipAwait"] = "true"
            # Pulumi creates the Bento's objects; afterwards the pipeline's deploy step owns
            # the rollout (image, settings, replicas), so Pulumi does not undo it.
            owned_by_deploy = (
                ["spec.template", "spec.replicas"] if manifest["kind"] == "Deployment" else []
            )
            m.apply(manifest, self, provider, depends_on, ignore_changes=owned_by_deploy)
        self.register_outputs({"url": self.url, "name": self.name})
