#!/usr/bin/env bash
# Regenerates podkit's generated files with the pinned controller-gen:
#   api/v1alpha1/zz_generated.deepcopy.go   (deepcopy)
#   config/crd/bases/*.yaml                 (CRDs, from api/...)
#   config/rbac/framework_role.yaml         (ClusterRole, from +kubebuilder:rbac in pkg/framework and pkg/kueue)
#   docs/api.md                             (API reference, from api/v1alpha1 by hack/apidocs)
#   charts/podkit/crds/*.yaml               (the CRD, copied for the Helm chart)
#   internal/toolbuild/pins/*.txt           (hack/k8s's module pins, copied for podkit dev tools)
# Never edit those files by hand; `make verify` reruns this and diffs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

# podkit dev tools builds the control plane from copies of hack/k8s embedded
# in the binary (a file named go.mod there would start a module: hence .txt).
pins=$root/internal/toolbuild/pins
cp "$root/hack/k8s/go.mod" "$pins/go.mod.txt"
cp "$root/hack/k8s/go.sum" "$pins/go.sum.txt"
cp "$root/hack/k8s/tools.go" "$pins/tools.go.txt"
cp "$root/hack/k8s/etcd/main.go" "$pins/etcd_main.go.txt"
# ... and the real node's pause and registryhint, which it builds from source.
cp "$root/hack/pause/main.go" "$pins/pause_main.go.txt"
cp "$root/hack/registryhint/main.go" "$pins/registryhint_main.go.txt"

bin=${PODKIT_K8S_BIN:-${PODKIT_CACHE:-$HOME/.cache/podkit}/k8s-v1.37.2/bin}
cg=$bin/controller-gen
if [ ! -x "$cg" ]; then
  echo "generate: $cg not found; run: make tools" >&2
  exit 1
fi

cd "$root"
"$cg" object paths=./api/...
"$cg" crd:generateEmbeddedObjectMeta=true paths=./api/... output:crd:artifacts:config=config/crd/bases
"$cg" rbac:roleName=podkit-framework-controller,fileName=framework_role.yaml paths={./pkg/framework/...,./pkg/kueue/...} \
  output:rbac:artifacts:config=config/rbac
# The Helm chart installs the same CRD (Helm applies crds/ before templates).
cp config/crd/bases/podkit.dev_frameworks.yaml charts/podkit/crds/podkit.dev_frameworks.yaml
# Core types link to the Kubernetes API reference of the k8s.io/api we build against.
go run ./hack/apidocs -pkg api/v1alpha1 -out docs/api.md \
  -kube-version "$(go list -m -f '{{.Version}}' k8s.io/api)"
