"""A small evaluator of Kubernetes NetworkPolicy semantics, for checking rendered policies.

A connection from pod A to pod B on a port is allowed when B's namespace has no Ingress
policy selecting B or one of those admits A on that port, and likewise for A's Egress
policies. "Outside" endpoints (the host, the API server) have no namespace or labels and
are matched only by ``ipBlock`` peers; every pod IP is inside the pod subnet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    name: str
    namespace: str | None  # None: not a pod
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str = "10.244.1.10"
    ports: tuple[int, ...] = ()

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
    return True


def _peer_matches(peer: Mapping[str, Any], ep: Endpoint, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        addr = ipaddress.ip_address(ep.ip)
        if addr not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(addr in ipaddress.ip_network(c) for c in block.get("except", []))
    if not ep.is_pod:
        return False
    if "namespaceSelector" in peer:
        ns_labels = {"kubernetes.io/metadata.name": ep.namespace}
        if not selector_matches(peer["namespaceSelector"], ns_labels):
            return False
    elif ep.namespace != policy_ns:
        return False
    if "podSelector" in peer:
        return selector_matches(peer["podSelector"], ep.labels)
    return True


def _ports_match(ports: list[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports)


def _direction_allows(
    policies: Iterable[Mapping[str, Any]],
    subject: Endpoint,
    peer: Endpoint,
    port: int,
    protocol: str,
    direction: str,
) -> bool:
    if not subject.is_pod:
        return True  # nothing outside the cluster's pods is governed by NetworkPolicy
    kind = "Ingress" if direction == "ingress" else "Egress"
    peers_key = "from" if direction == "ingress" else "to"
    relevant = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and kind in p["spec"].get("policyTypes", ["Ingress"])
        and selector_matches(p["spec"]["podSelector"], subject.labels)
    ]
    if not relevant:
        return True
    for policy in relevant:
        for rule in policy["spec"].get(direction, []) or []:
            peers = rule.get(peers_key)
            ns = policy["metadata"]["namespace"]
            if (not peers or any(_peer_matches(x, peer, ns) for x in peers)) and _ports_match(
                rule.get("ports"), port, protocol
            ):
                return True
    return False


def allowed(
    policies: list[Mapping[str, Any]],
    src: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: str = "TCP",
) -> bool:
    return _direction_allows(policies, dst, src, port, protocol, "ingress") and _direction_allows(
        policies, src, dst, port, protocol, "egress"
    )
