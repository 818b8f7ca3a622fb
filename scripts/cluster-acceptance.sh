#!/usr/bin/env bash
# The cluster acceptance: a real Kubernetes control plane (etcd, kube-apiserver with RBAC and
# admission, controller-manager, scheduler, and kwok standing in for kubelets), the real Spark
# operator chart and KFP manifests, a real `pulumi up` of infra/, and Spark's s3a path against
# SeaweedFS. Everything it starts runs in a network namespace that has only loopback.
#
#   bash scripts/cluster-acceptance.sh [all|control-plane|renders|policies|pulumi|s3a]...
#
#   KUBRICKS_ACCEPTANCE_KEEP=1   leave the cluster running and print how to reach it
#   KUBRICKS_ACCEPTANCE_DIR      work folder (default /tmp/kubricks-acceptance)
#   KUBRICKS_CLUSTER_TOOLS       tool cache (default ~/.cache/kubricks/cluster-tools)
#
# The first run builds the tools (scripts/cluster-tools.sh, most of an hour on 2 cores); later
# runs take them from the cache. Needs root (network namespaces).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/cluster-tools/versions.sh
. "$root/scripts/cluster-tools/versions.sh"
tools=${KUBRICKS_CLUSTER_TOOLS:-$HOME/.cache/kubricks/cluster-tools}
work=${KUBRICKS_ACCEPTANCE_DIR:-/tmp/kubricks-acceptance}
netns=${KUBRICKS_ACCEPTANCE_NETNS:-kubricks-acceptance}
cluster=kubricks-acceptance
py="$root/.venv/bin/python"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(all)

say() { printf '[acceptance] %s\n' "$*" >&2; }
fail() {
  say "FAILED: $*"
  exit 1
}
wants() {
  local s
  for s in "${steps[@]}"; do
    [ "$s" = all ] || [ "$s" = "$1" ] && return 0
  done
  return 1
}

bin() { printf '%s/%s-%s/%s' "$tools" "$1" "$2" "$3"; }
export_tool_paths() {
  export KWOK_KUBE_APISERVER_BINARY KWOK_KUBE_CONTROLLER_MANAGER_BINARY KWOK_KUBE_SCHEDULER_BINARY \
    KWOK_ETCD_BINARY KWOK_CONTROLLER_BINARY KWOK_KUBECTL_BINARY KWOKCTL HELM KUSTOMIZE \
    PULUMI_BIN_DIR
  KWOK_KUBE_APISERVER_BINARY=$(bin kubernetes "$KUBERNETES_VERSION" kube-apiserver)
  KWOK_KUBE_CONTROLLER_MANAGER_BINARY=$(bin kubernetes "$KUBERNETES_VERSION" kube-controller-manager)
  KWOK_KUBE_SCHEDULER_BINARY=$(bin kubernetes "$KUBERNETES_VERSION" kube-scheduler)
  KWOK_ETCD_BINARY=$(bin etcd "$ETCD_VERSION" etcd)
  KWOK_CONTROLLER_BINARY=$(bin kwok "$KWOK_VERSION" kwok)
  KWOK_KUBECTL_BINARY="$root/.venv/bin/kubectl"
  KWOKCTL=$(bin kwok "$KWOK_VERSION" kwokctl)
  HELM=$(bin helm "$HELM_VERSION" helm)
  KUSTOMIZE=$(bin kustomize "$KUSTOMIZE_VERSION" kustomize)
  PULUMI_BIN_DIR="$work/pulumi-bin"
  export KWOK_KUBE_VERSION=$KUBERNETES_VERSION KWOK_RUNTIME=binary KWOK_WORKDIR="$work/kwok"
}

# ---------------------------------------------------------------- outside the namespace
outer() {
  local start=$SECONDS
  [ "$(id -u)" -eq 0 ] || fail "needs root for a network namespace (ip netns add)"
  [ -x "$py" ] || fail "no .venv: run bash scripts/bootstrap.sh first"
  say "tools: building what is not cached in $tools"
  if wants pulumi; then
    bash "$root/scripts/cluster-tools.sh" all
  else
    bash "$root/scripts/cluster-tools.sh" control-plane
  fi
  say "tools ready after $((SECONDS - start)) s"
  if ip netns list | grep -qw "$netns"; then
    say "removing the namespace $netns left by an earlier run"
    cleanup_netns
  fi
  rm -rf "$work"
  mkdir -p "$work"
  # what comes from a registry is fetched here, before anything starts in the namespace
  if wants renders || wants pulumi || wants policies; then
    HELM=$(bin helm "$HELM_VERSION" helm) bash "$root/scripts/cluster-renders.sh" "$work/renders"
  fi
  if wants s3a; then
    bash "$root/scripts/cluster-s3a.sh" fetch "$tools/s3a-jars"
  fi
  ip netns add "$netns"
  ip netns exec "$netns" ip link set lo up
  local status=0
  KUBRICKS_ACCEPTANCE_INNER=1 ip netns exec "$netns" bash "$0" "${steps[@]}" || status=$?
  if [ -n "${KUBRICKS_ACCEPTANCE_KEEP:-}" ]; then
    say "kept: the cluster runs in network namespace $netns"
    say "  kubeconfig: $work/kubeconfig"
    say "  look around: ip netns exec $netns $root/.venv/bin/kubectl --kubeconfig $work/kubeconfig get pods -A"
    say "  stop it:     KUBRICKS_ACCEPTANCE_NETNS=$netns bash $0 stop"
  else
    cleanup_netns
  fi
  say "finished in $((SECONDS - start)) s (status $status)"
  return "$status"
}

cleanup_netns() {
  export_tool_paths
  if [ -x "$KWOKCTL" ]; then
    ip netns exec "$netns" "$KWOKCTL" delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
  # anything still inside (a pulumi or weed left by a failed step) is ours: end it by pid
  local pid
  for pid in $(ip netns pids "$netns" 2>/dev/null); do
    kill "$pid" 2>/dev/null || true
  done
  sleep 1
  for pid in $(ip netns pids "$netns" 2>/dev/null); do
    kill -9 "$pid" 2>/dev/null || true
  done
  ip netns delete "$netns" 2>/dev/null || true
}

# ---------------------------------------------------------------- inside the namespace
control_plane() {
  local start=$SECONDS
  say "control plane: kwokctl create cluster (Kubernetes $KUBERNETES_VERSION, RBAC and admission on)"
  # the namespace has no default route, from which the API server would pick its address
  cat >"$work/kwokctl.yaml" <<'YAML'
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
componentsPatches:
  - name: kube-apiserver
    extraArgs:
      - key: advertise-address
        value: 127.0.0.1
YAML
  "$KWOKCTL" create cluster --name "$cluster" --runtime binary --config "$work/kwokctl.yaml" \
    --kube-authorization --kube-admission --wait 120s \
    --kubeconfig "$work/kubeconfig" >"$work/kwokctl-create.log" 2>&1 ||
    {
      tail -20 "$work/kwokctl-create.log" >&2
      fail "kwokctl create cluster (log: $work/kwokctl-create.log)"
    }
  export KUBECONFIG="$work/kubeconfig"
  # one fake node the size of the laptop profile's kind worker: the scheduler places every
  # pod against these numbers, so requests that do not fit stay Pending and the checks see it
  "$py" -m infra.ci.acceptance node --cpu 4 --memory 8Gi --name kwok-worker
  say "control plane up in $((SECONDS - start)) s: $("$KWOK_KUBECTL_BINARY" version -o json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"
}

inner() {
  export_tool_paths
  export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
  cd "$root"
  "$py" -m infra.ci.acceptance no-egress
  if wants control-plane || wants pulumi || wants policies; then
    control_plane
  fi
  if wants policies; then
    # the program's RBAC and admission policies, applied directly and checked by
    # impersonation (the same checks run again after `pulumi up`)
    say "policies: the program's Roles and admission policies, checked as the runner and Spark"
    "$py" -m infra.ci.acceptance policies "$work/renders"
  fi
  if wants pulumi; then
    bash "$root/scripts/cluster-pulumi.sh" "$work"
  fi
  if wants s3a; then
    bash "$root/scripts/cluster-s3a.sh" run "$tools/s3a-jars"
  fi
  say "all requested steps passed: ${steps[*]}"
}

if [ "${1:-}" = stop ]; then
  cleanup_netns
  exit 0
fi
if [ -n "${KUBRICKS_ACCEPTANCE_INNER:-}" ]; then
  inner
else
  outer
fi
