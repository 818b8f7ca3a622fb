"""The cluster acceptance's checks against a real API server (scripts/cluster-acceptance.sh).

Each subcommand is one step the script runs inside its loopback-only network namespace; a
failed check prints what was refused or missing and exits non-zero.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parents[1]
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))


class AcceptanceError(Exception):
    """A check that failed; the message is the one line the script prints."""


def no_egress() -> None:
    """Refuse to run anywhere but in a namespace whose only interface is loopback."""
    interfaces = sorted(p.name for p in Path("/sys/class/net").iterdir())
    if interfaces != ["lo"]:
        raise AcceptanceError(f"network interfaces {interfaces}: expected only lo (ip netns exec)")
    with socket.socket() as s:
        s.settimeout(2)
        try:
            s.connect(("10.0.0.1", 443))
        except OSError:
            return
    raise AcceptanceError("a connection to 10.0.0.1 succeeded: this namespace is not isolated")


def clients() -> Any:
    from kubernetes import client, config

    config.load_kube_config()
    return client


def make_node(name: str, cpu: str, memory: str) -> None:
    """A kwok-managed fake node with the capacity of the kind worker the profile targets."""
    client = clients()
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
        },
    }
    core = client.CoreV1Api()
    core.create_node(node)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = core.read_node(name).status
        if any(c.type == "Ready" and c.status == "True" for c in status.conditions or []):
            print(f"node {name}: Ready ({cpu} CPU, {memory})")
            return
        time.sleep(1)
    raise AcceptanceError(f"node {name} did not become Ready within 60 s (is kwok running?)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("no-egress")
    node = sub.add_parser("node")
    node.add_argument("--name", default="kwok-worker")
    node.add_argument("--cpu", default="4")
    node.add_argument("--memory", default="8Gi")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "no-egress":
            no_egress()
        elif args.cmd == "node":
            make_node(args.name, args.cpu, args.memory)
    except AcceptanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
