#!/usr/bin/env bash
# Builds podkit's pinned control plane from Go modules into
# ${PODKIT_CACHE:-~/.cache/podkit}/k8s-<version>/bin, and the real dev node's
# runtime (containerd, its runc shim, ctr, runc, the pause and registryhint
# binaries) into
# .../node-containerd-<version>-runc-<version>/bin, and helm (chart tests and
# make release) into .../helm-<version>/bin, and Kueue's manager and CRDs
# (pkg/kueue) into .../kueue-<version>/{bin,crd}. A binary already there is
# skipped, so a warm cache makes this a no-op. Nothing is downloaded but modules.
# runc needs cgo and libseccomp (Debian: libseccomp-dev pkg-config); without
# them the node runtime is skipped with a message and the kwok cluster still works.
set -euo pipefail

K8S_VERSION=v1.37.2
KWOK_VERSION=v0.8.0
CONTROLLER_GEN_VERSION=v0.23.0
ETCD_VERSION=v3.7.0
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.4.0
HELM_VERSION=v3.22.0
KUEUE_VERSION=v0.17.0

here=$(cd "$(dirname "$0")" && pwd)
cache=${PODKIT_CACHE:-$HOME/.cache/podkit}
bin=$cache/k8s-$K8S_VERSION/bin
nodebin=$cache/node-containerd-$CONTAINERD_VERSION-runc-$RUNC_VERSION/bin
helmbin=$cache/helm-$HELM_VERSION/bin
kueuedir=$cache/kueue-$KUEUE_VERSION
mkdir -p "$bin" "$nodebin" "$helmbin" "$kueuedir/bin"

# Two cores: keep the compiler from running more jobs than that.
export GOFLAGS="${GOFLAGS:-} -p=2"
export CGO_ENABLED=0

build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
version_pkg=k8s.io/component-base/version
k8s_ldflags="-s -w \
 -X $version_pkg.gitVersion=$K8S_VERSION \
 -X $version_pkg.gitMajor=1 \
 -X $version_pkg.gitMinor=$minor \
 -X $version_pkg.gitTreeState=clean \
 -X $version_pkg.buildDate=$build_date \
 -X $version_pkg/verflag.programName=kubernetes"
# client-go carries its own copy of the version for the User-Agent.
k8s_ldflags="$k8s_ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"

step() { # name, then the command that builds it into $bin/name
  local name=$1; shift
  local bin=${STEP_BIN:-$bin}
  if [ -x "$bin/$name" ] && [ -z "${STEP_ALWAYS:-}" ]; then
    printf '  %-26s cached\n' "$name"
    return
  fi
  local start=$SECONDS tmp="$bin/.$name.tmp"
  rm -f "$tmp"
  if ! "$@" "$tmp"; then
    rm -f "$tmp"
    echo "tools: building $name failed" >&2
    exit 1
  fi
  mv "$tmp" "$bin/$name"
  printf '  %-26s built in %ds\n' "$name" $((SECONDS - start))
}

k8s_build() { # package, output
  (cd "$here/k8s" && go build -trimpath -ldflags "$k8s_ldflags" -o "$2" "$1")
}
etcd_build() {
  (cd "$here/k8s" && go build -trimpath -ldflags "-s -w" -o "$1" ./etcd)
}
gobin_install() { # module@version command, output; extra go flags in GO_INSTALL_FLAGS
  local tmpdir; tmpdir=$(mktemp -d)
  # shellcheck disable=SC2086
  GOBIN=$tmpdir go install -trimpath -ldflags "-s -w" ${GO_INSTALL_FLAGS:-} "$1" && mv "$tmpdir/$(basename "${1%@*}")" "$2"
  local rc=$?; rm -rf "$tmpdir"; return $rc
}
containerd_install() { # command, output
  GO_INSTALL_FLAGS="-tags no_btrfs" gobin_install "github.com/containerd/containerd/v2/cmd/$1@$CONTAINERD_VERSION" "$2"
}
runc_install() { # output
  CGO_ENABLED=1 GO_INSTALL_FLAGS="-tags seccomp" gobin_install "github.com/opencontainers/runc@$RUNC_VERSION" "$1"
}
pause_build() { # output
  (cd "$here/.." && go build -trimpath -ldflags "-s -w" -o "$1" ./hack/pause)
}
helm_install() { # output
  # helm's own Makefile stamps its version and the Kubernetes version it was
  # built against (client-go v0.37 for helm v3.22), which `helm template`
  # checks a chart's kubeVersion against; unstamped it claims v1.20.
  local tmpdir; tmpdir=$(mktemp -d)
  GOBIN=$tmpdir go install -trimpath -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37 \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" && mv "$tmpdir/helm" "$1"
  local rc=$?; rm -rf "$tmpdir"; return $rc
}
kueue_install() { # output
  # Kueue's manager from its own module (its Kubernetes libraries, not
  # podkit's), stamped as Kueue's Makefile does; pkg/kueue's tests run it.
  local tmpdir; tmpdir=$(mktemp -d)
  GOBIN=$tmpdir go install -trimpath -ldflags "-s -w \
    -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION \
    -X sigs.k8s.io/kueue/pkg/version.BuildDate=$build_date" \
    "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION" && mv "$tmpdir/kueue" "$1"
  local rc=$?; rm -rf "$tmpdir"; return $rc
}
kueue_crds() { # the CRDs of the same module version, into $kueuedir/crd
  [ -n "$(ls "$kueuedir/crd/"*.yaml 2>/dev/null)" ] && { printf '  %-26s cached\n' "kueue CRDs"; return; }
  local dir; dir=$(cd "${TMPDIR:-/tmp}" && go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$kueuedir/.crd.tmp" && mkdir -p "$kueuedir/.crd.tmp"
  cp "$dir"/config/components/crd/bases/*.yaml "$kueuedir/.crd.tmp/" && chmod 644 "$kueuedir/.crd.tmp/"*.yaml
  rm -rf "$kueuedir/crd" && mv "$kueuedir/.crd.tmp" "$kueuedir/crd"
  printf '  %-26s copied\n' "kueue CRDs"
}
registryhint_build() { # output
  (cd "$here/.." && go build -trimpath -ldflags "-s -w" -o "$1" ./hack/registryhint)
}

echo "tools: control plane $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION into $bin"
step etcd etcd_build
step kube-apiserver k8s_build k8s.io/kubernetes/cmd/kube-apiserver
step kube-controller-manager k8s_build k8s.io/kubernetes/cmd/kube-controller-manager
step kube-scheduler k8s_build k8s.io/kubernetes/cmd/kube-scheduler
step kubectl k8s_build k8s.io/kubernetes/cmd/kubectl
step kwok gobin_install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION
step kwokctl gobin_install sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION
step controller-gen gobin_install sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION
step kubelet k8s_build k8s.io/kubernetes/cmd/kubelet
step kube-proxy k8s_build k8s.io/kubernetes/cmd/kube-proxy

echo "tools: helm $HELM_VERSION (test/helm renders the chart; make release packages it) into $helmbin"
STEP_BIN=$helmbin step helm helm_install

echo "tools: kueue $KUEUE_VERSION (pkg/kueue's tests, podkit dev up --with-kueue) into $kueuedir"
STEP_BIN=$kueuedir/bin step kueue kueue_install
kueue_crds

echo "tools: real node runtime containerd $CONTAINERD_VERSION, runc $RUNC_VERSION into $nodebin"
STEP_BIN=$nodebin step containerd containerd_install containerd
STEP_BIN=$nodebin step containerd-shim-runc-v2 containerd_install containerd-shim-runc-v2
STEP_BIN=$nodebin step ctr containerd_install ctr
# podkit's own two are rebuilt every time (a second from the build cache), so
# that a change to their source is never hidden by the cache.
STEP_ALWAYS=1 STEP_BIN=$nodebin step pause pause_build
STEP_ALWAYS=1 STEP_BIN=$nodebin step registryhint registryhint_build
if pkg-config --exists libseccomp 2>/dev/null && command -v gcc >/dev/null; then
  STEP_BIN=$nodebin step runc runc_install
else
  printf '  %-26s skipped: needs gcc, pkg-config and libseccomp-dev (apt-get install libseccomp-dev pkg-config)\n' runc
fi
echo "tools: done in ${SECONDS}s"
