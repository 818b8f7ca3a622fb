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

INFRA = Path(__file__).resolve().parents[1]
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))

from ci.kube import AcceptanceError, clients  # noqa: E402


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


def prepare_storage(count: int = 10, size: str = "20Gi") -> None:
    """A default StorageClass and pre-made volumes: no provisioner runs under kwok, and kind's
    local-path provisioner is what the program's claims get there."""
    client = clients()
    client.StorageV1Api().create_storage_class(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": "standard",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
        }
    )
    core = client.CoreV1Api()
    for i in range(count):
        core.create_persistent_volume(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"acceptance-pv-{i}"},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "standard",
                    "persistentVolumeReclaimPolicy": "Delete",
                    "hostPath": {"path": f"/tmp/kubricks-acceptance-pv-{i}"},
                },
            }
        )
    print(f"storage: default StorageClass and {count} volumes of {size}")


def refusals(log: str) -> list[str]:
    """The API server's refusals in a `pulumi up` log: the object and the server's reason."""
    out = []
    current = ""
    for line in log.splitlines():
        text = line.strip()
        if text.startswith("kubernetes:") and "(" in text:
            current = text.rstrip(":")
        elif text.startswith("error:") and current:
            out.append(f"refused: {current}: {text.removeprefix('error:').strip()}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("no-egress")
    node = sub.add_parser("node")
    node.add_argument("--name", default="kwok-worker")
    node.add_argument("--cpu", default="4")
    node.add_argument("--memory", default="8Gi")
    sub.add_parser("storage")
    sub.add_parser("policies").add_argument("renders", type=Path)
    for name in ("stack", "gone"):
        sub.add_parser(name).add_argument("stack_json", type=Path)
    sub.add_parser("refusals").add_argument("log", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "no-egress":
            no_egress()
        elif args.cmd == "node":
            make_node(args.name, args.cpu, args.memory)
        elif args.cmd == "storage":
            prepare_storage()
        elif args.cmd == "policies":
            from ci import cluster_checks as c

            for line in [
                *c.apply_objects(c.program_objects(args.renders)),
                *c.check_runner_rbac(),
                *c.check_apply_as_runner(),
                *c.check_secret_policies(),
                *c.delete_objects(c.program_objects(args.renders)),
            ]:
                print(f"  ok: {line}")
        elif args.cmd == "stack":
            from ci import cluster_checks as c

            for line in [
                *c.check_objects(args.stack_json),
                *c.check_available(["kubricks", "kubeflow", "spark-operator"]),
                *c.check_restricted(),
                *c.check_release(args.stack_json),
                *c.check_kfp_requests(),
                *c.check_runner_rbac(),
                *c.check_apply_as_runner(),
                *c.check_secret_policies(),
            ]:
                print(f"  ok: {line}")
        elif args.cmd == "gone":
            from ci import cluster_checks as c

            for line in c.check_gone(args.stack_json):
                print(f"  ok: {line}")
        elif args.cmd == "refusals":
            for line in refusals(args.log.read_text()):
                print(line, file=sys.stderr)
    except AcceptanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
