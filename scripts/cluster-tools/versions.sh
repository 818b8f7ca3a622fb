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
# Upstream artifacts rendered by the acceptance, pinned by version and checksum (the h1: hash
# the Go checksum database records for the module zip; go mod download verifies it too).
SPARK_OPERATOR_MODULE=github.com/kubeflow/spark-operator/v2
SPARK_OPERATOR_VERSION=v2.4.0
SPARK_OPERATOR_SUM=h1:Bo5rz5dlhqYEa7e/TLtUEVXDMNRotnVaQ4VLCyeLeOc=
ARGO_WORKFLOWS_MODULE=github.com/argoproj/argo-workflows/v4
ARGO_WORKFLOWS_VERSION=v4.0.5
ARGO_WORKFLOWS_SUM=h1:/1lru5oXUd+k6KEDUps6rLX5OKfi1jTfabgXTly/VFU=
# KFP publishes no Go module version for its tags: manifests/kustomize comes from a checkout
# (KUBRICKS_SRC_KFP) at the commit of tag 2.17.0, checked by that commit's tree hash.
KFP_VERSION=2.17.0
KFP_COMMIT=4a3592cb2dd0a91a4652ab93893ec8beda1f3158
KFP_MANIFESTS_TREE=d812759c2dab1742ff622e03e77a3e1d910cab19
