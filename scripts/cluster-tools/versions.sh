# Versions of the cluster acceptance's tools (sourced by scripts/cluster-tools.sh and
# scripts/cluster-acceptance.sh). Changing one means `bash scripts/cluster-tools.sh pin NAME`.
KUBERNETES_VERSION=v1.36.3
ETCD_VERSION=v3.6.17
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.21.4
KUSTOMIZE_VERSION=v5.8.1
# Pulumi: the newest CLI release whose pkg/v3 module this machine's Go proxy serves next to the
# Python language host's source; golang.org/x/text as sdk/v3's own go.mod pins it.
PULUMI_VERSION=v3.260.0
PULUMI_X_TEXT=v0.39.0
# The kubernetes provider module is published only as pseudo-versions; this one is tag v4.25.0.
PULUMI_KUBERNETES_VERSION=v4.25.0
PULUMI_KUBERNETES_MODULE=v4.0.0-20260115033456-f47bc2d6f199
# Published nowhere this machine's Go proxy reaches: built from a git checkout of the upstream
# repository at these commits (KUBRICKS_SRC_PULUMI, KUBRICKS_SRC_PULUMI_RANDOM point at the checkouts).
PULUMI_LANGUAGE_PYTHON_COMMIT=1b5949891b3cefcb9974752b24a5ecef0acc86c8
PULUMI_RANDOM_VERSION=v4.21.1
PULUMI_RANDOM_COMMIT=f2d8b029d0f708bd14bad9479e016560de9c0b6d
