#!/usr/bin/env bash
# The acceptance's Pulumi step, run by scripts/cluster-acceptance.sh inside its namespace:
# bad settings fail in one line, then `pulumi up` of infra/ in existing-cluster mode against the
# kwok control plane, the checks of infra/ci/acceptance.py, a second run that must change
# nothing, and `pulumi destroy`, after which no Kubricks object may be left.
#
#   bash scripts/cluster-pulumi.sh WORK     (WORK holds kubeconfig and renders/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/cluster-tools/versions.sh
. "$root/scripts/cluster-tools/versions.sh"
work=${1:?usage: cluster-pulumi.sh WORK}
tools=${KUBRICKS_CLUSTER_TOOLS:-$HOME/.cache/kubricks/cluster-tools}
py="$root/.venv/bin/python"
say() { printf '[pulumi] %s\n' "$*" >&2; }
fail() {
  say "FAILED: $*"
  exit 1
}

# Pulumi finds the language host next to itself and the providers on PATH (ambient plugins,
# whatever version the SDK asks for); nothing may be downloaded.
bin="$work/pulumi-bin"
mkdir -p "$bin"
ln -sf "$tools/pulumi-$PULUMI_VERSION/pulumi" "$bin/pulumi"
ln -sf "$tools/pulumi-language-python-$PULUMI_VERSION/pulumi-language-python" "$bin/"
ln -sf "$tools/pulumi-language-python-$PULUMI_VERSION/pulumi-language-python-exec" "$bin/"
ln -sf "$tools/pulumi-resource-kubernetes-$PULUMI_KUBERNETES_VERSION/pulumi-resource-kubernetes" "$bin/"
ln -sf "$tools/pulumi-resource-random-$PULUMI_RANDOM_VERSION/pulumi-resource-random" "$bin/"
export PATH="$bin:$root/.venv/bin:$PATH"
export PULUMI_HOME="$work/pulumi-home" PULUMI_BACKEND_URL="file://$work/pulumi-state"
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_CONFIG_PASSPHRASE=kubricks-acceptance-only
export KUBECONFIG="$work/kubeconfig"
mkdir -p "$work/pulumi-state"
config="$work/Pulumi.acceptance.yaml"
cd "$root/infra"
p() { pulumi --non-interactive --stack acceptance "$@" --config-file "$config"; }

pulumi --non-interactive stack init acceptance >/dev/null
context=$("$py" -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["current-context"])' "$KUBECONFIG")
set_config() {
  p config set kubricks:cluster existing
  p config set kubricks:kubeconfig "$KUBECONFIG"
  p config set kubricks:context "$context"
  p config set kubricks:image kubricks/kubricks:acceptance
  p config set kubricks:sparkOperatorChartPath "$work/renders/spark-operator-chart"
  p config set kubricks:kfpManifests "$work/renders/kfp"
  # no pod runs, so the operator's webhook never answers: admit SparkApplications without it
  p config set kubricks:sparkWebhookFailurePolicy Ignore
}
set_config

# bad input: one line naming the setting, before anything is created
expect_one_line() { # SETTING VALUE WANT
  local out
  p config set "$1" "$2"
  if out=$(p preview 2>&1); then fail "pulumi preview with $1=$2 succeeded"; fi
  printf '%s\n' "$out" | grep -q -- "$3" || {
    printf '%s\n' "$out" | tail -20 >&2
    fail "pulumi preview with $1=$2 did not say: $3"
  }
  say "bad $1 refused: $(printf '%s\n' "$out" | grep -m1 -- "$3" | sed 's/^ *//')"
  set_config
}
expect_one_line kubricks:context no-such-context "kubricks:context='no-such-context': not a context in"
p config rm kubricks:image
if out=$(p preview 2>&1); then fail "pulumi preview without kubricks:image succeeded"; fi
printf '%s\n' "$out" | grep -q "kubricks:image is required with kubricks:cluster existing" ||
  fail "pulumi preview without kubricks:image: $(printf '%s' "$out" | tail -5)"
say "missing kubricks:image refused: $(printf '%s\n' "$out" | grep -m1 'kubricks:image is required' | sed 's/^ *//')"
set_config

"$py" -m infra.ci.acceptance storage
# A real API server publishes its address as the Endpoints default/kubernetes, which the program
# reads for the NetworkPolicies' egress to it. This one advertises 127.0.0.1 (the namespace has
# only loopback), which the API server's reconciler never publishes and Endpoints may not hold,
# so write what it would publish for an address of its own (TEST-NET-1, routed nowhere).
if ! "$root/.venv/bin/kubectl" get endpoints kubernetes -n default >/dev/null 2>&1; then
  "$root/.venv/bin/kubectl" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Endpoints
metadata: {name: kubernetes, namespace: default}
subsets:
  - addresses: [{ip: 192.0.2.10}]
    ports: [{name: https, port: 6443, protocol: TCP}]
EOF
  say "published the API server's Endpoints (192.0.2.10:6443) as a reconciler would"
fi
start=$SECONDS
say "pulumi up (Pulumi $PULUMI_VERSION, kubernetes provider $PULUMI_KUBERNETES_VERSION, random $PULUMI_RANDOM_VERSION)"
if ! p up --yes --skip-preview >"$work/pulumi-up.log" 2>&1; then
  tail -60 "$work/pulumi-up.log" >&2
  "$py" -m infra.ci.acceptance refusals "$work/pulumi-up.log" || true
  fail "pulumi up (log: $work/pulumi-up.log)"
fi
say "pulumi up done in $((SECONDS - start)) s"
pulumi --non-interactive stack export --stack acceptance >"$work/stack.json"
"$py" -m infra.ci.acceptance stack "$work/stack.json"

start=$SECONDS
p preview --expect-no-changes >"$work/pulumi-preview.log" 2>&1 || {
  tail -40 "$work/pulumi-preview.log" >&2
  fail "a second pulumi preview wants changes (log: $work/pulumi-preview.log)"
}
say "second preview: no changes ($((SECONDS - start)) s)"

if [ -n "${KUBRICKS_ACCEPTANCE_KEEP:-}" ]; then
  say "KUBRICKS_ACCEPTANCE_KEEP: the stack stays up (PULUMI_BACKEND_URL=file://$work/pulumi-state)"
  exit 0
fi
start=$SECONDS
p destroy --yes >"$work/pulumi-destroy.log" 2>&1 || {
  tail -40 "$work/pulumi-destroy.log" >&2
  fail "pulumi destroy (log: $work/pulumi-destroy.log)"
}
say "pulumi destroy done in $((SECONDS - start)) s"
"$py" -m infra.ci.acceptance gone "$work/stack.json"
