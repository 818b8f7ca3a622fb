"""kind-config.yaml: the ports the program's NodePorts use, published on localhost only."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_kind_config_maps_every_ui_to_localhost() -> None:
    from kubricks_infra.config import KIND_NODE_IMAGE, PlatformConfig

    cfg = PlatformConfig()
    kind = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    assert kind["kind"] == "Cluster" and kind["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert kind["name"] == cfg.cluster_name
    assert kind["networking"]["podSubnet"] == cfg.pod_subnet
    (control,) = [n for n in kind["nodes"] if n["role"] == "control-plane"]
    mappings = {m["containerPort"]: m for m in control["extraPortMappings"]}
    for part, node_port in vars(cfg.ports).items():
        mapping = mappings[node_port]
        assert mapping["hostPort"] == cfg.localhost_ports[part], part
        assert mapping["listenAddress"] == "127.0.0.1", part  # not the LAN
    for node in kind["nodes"]:
        assert node["image"] == KIND_NODE_IMAGE  # the Kubernetes version manifests are checked for
    assert KIND_NODE_IMAGE.startswith("kindest/node:v1.33.")
