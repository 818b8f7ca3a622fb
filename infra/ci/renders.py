"""The real renders of the Spark operator chart and KFP's manifests, reduced to what the
footprint test needs, and kept in ``infra/renders/`` so the regular test suite computes the
footprint from them without helm, kustomize or the upstream sources.

``scripts/cluster-renders.sh`` renders with the real tools and calls ``summarize``: a summary
that differs from the committed one fails the acceptance until it is rewritten on purpose.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

INFRA = Path(__file__).resolve().parents[1]
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))

RENDERS = INFRA / "renders"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
ARGO_REMOTE = re.compile(
    r"https://github\.com/argoproj/argo-workflows/(?P<path>manifests/[^?\s]+)\?ref=(?P<ref>[^&\s]+)\S*"
)


def _plain(value: Any) -> Any:
    """Values as JSON has them; Pulumi's wire format turns every integer into a float."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def values_digest(values: dict[str, Any]) -> str:
    """A stable hash of chart values: a summary is valid only for the values it was made with."""
    return hashlib.sha256(json.dumps(_plain(values), sort_keys=True).encode()).hexdigest()[:16]


def operator_values() -> dict[str, Any]:
    from kubricks_infra.config import PlatformConfig
    from kubricks_infra.spark import operator_values as values

    return values(PlatformConfig())


def localize(kfp: Path, ref: str) -> list[Path]:
    """Point KFP's remote Argo bases at the local copy in third-party/argo/upstream/."""
    upstream = kfp / "third-party" / "argo" / "upstream"
    changed = []
    for path in sorted(kfp.rglob("kustomization.yaml")):
        text = path.read_text()

        def local(match: re.Match[str], path: Path = path) -> str:
            if match.group("ref") != ref:
                raise SystemExit(f"{path}: Argo base at {match.group('ref')}, pinned {ref}")
            return os.path.relpath(upstream / match.group("path"), path.parent)

        new = ARGO_REMOTE.sub(local, text)
        if new != text:
            path.write_text(new)
            changed.append(path)
    if not changed:
        raise SystemExit(f"{kfp}: no remote Argo base found; has the layout changed?")
    return changed


def workloads(documents: list[dict[str, Any]], namespace: str = "default") -> list[dict[str, Any]]:
    """Deployments and StatefulSets: replicas, pod labels, each container's image and resources."""
    rows = []
    for obj in documents:
        if not obj or obj.get("kind") not in WORKLOAD_KINDS:
            continue
        template = obj["spec"]["template"]
        rows.append(
            {
                "kind": obj["kind"],
                "namespace": obj["metadata"].get("namespace", namespace),
                "name": obj["metadata"]["name"],
                "replicas": int(obj["spec"].get("replicas", 1)),
                "labels": template.get("metadata", {}).get("labels", {}),
                "containers": [
                    {"name": c["name"], "image": c["image"], "resources": c.get("resources", {})}
                    for c in template["spec"].get("containers", [])
                ],
            }
        )
    return sorted(rows, key=lambda r: (r["namespace"], r["name"]))


def inventory(documents: list[dict[str, Any]], namespace: str = "default") -> list[str]:
    """Every object of a render as kind/namespace/name (cluster-scoped: kind//name)."""
    scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    scoped |= {"PriorityClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    return sorted(
        f"{d['kind']}/{'' if d['kind'] in scoped else d['metadata'].get('namespace', namespace)}"
        f"/{d['metadata']['name']}"
        for d in documents
    )


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def summaries(out: Path) -> dict[str, dict[str, Any]]:
    from kubricks_infra.config import PlatformConfig

    cfg = PlatformConfig()
    values = json.loads((out / "spark-operator-values.json").read_text())
    spark = load(out / "spark-operator.yaml")
    kfp = load(out / "kfp.yaml")
    kfp_cluster = load(out / "kfp-cluster-scoped.yaml")
    return {
        f"spark-operator-{cfg.spark_operator_chart}.json": {
            "source": f"helm template of the Spark operator chart {cfg.spark_operator_chart}",
            "values_digest": values_digest(values),
            "workloads": workloads(spark, "spark-operator"),
            "objects": inventory(spark, "spark-operator"),
        },
        f"kfp-{cfg.kfp_version}.json": {
            "source": f"kustomize build of KFP {cfg.kfp_version} env/platform-agnostic",
            "workloads": workloads(kfp, cfg.kfp_namespace),
            "objects": inventory(kfp, cfg.kfp_namespace) + inventory(kfp_cluster),
        },
    }


def summarize(out: Path, update: bool) -> None:
    RENDERS.mkdir(exist_ok=True)
    stale = []
    for name, summary in summaries(out).items():
        text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
        path = RENDERS / name
        if update:
            path.write_text(text)
        elif not path.is_file() or path.read_text() != text:
            stale.append(str(path.relative_to(INFRA.parent)))
        for w in summary["workloads"]:
            count = len(w["containers"])
            print(f"  {w['namespace']}/{w['name']}: x{w['replicas']}, {count} container(s)")
    if stale:
        raise SystemExit(
            f"{', '.join(stale)} differ from the real renders: check the change, then re-run with "
            "KUBRICKS_RENDERS_UPDATE=1"
        )


def read(name: str) -> dict[str, Any]:
    """A committed summary, for the tests."""
    return json.loads((RENDERS / name).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("values")
    loc = sub.add_parser("localize")
    loc.add_argument("kfp", type=Path)
    loc.add_argument("ref")
    summ = sub.add_parser("summarize")
    summ.add_argument("out", type=Path)
    summ.add_argument("--update", action="store_true")
    args = parser.parse_args(argv)
    if args.cmd == "values":
        print(json.dumps(operator_values(), indent=2, sort_keys=True))
    elif args.cmd == "localize":
        for path in localize(args.kfp, args.ref):
            print(f"  local Argo base: {path.relative_to(args.kfp)}", file=sys.stderr)
    else:
        summarize(args.out, args.update)
    return 0


if __name__ == "__main__":
    sys.exit(main())
