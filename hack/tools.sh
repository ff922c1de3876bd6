#!/usr/bin/env bash
# Builds podkit's pinned control plane from Go modules into
# ${PODKIT_CACHE:-~/.cache/podkit}/k8s-<version>/bin. A binary already there is
# skipped, so a warm cache makes this a no-op. Nothing is downloaded but modules.
set -euo pipefail

K8S_VERSION=v1.37.2
KWOK_VERSION=v0.8.0
CONTROLLER_GEN_VERSION=v0.23.0
ETCD_VERSION=v3.7.0

here=$(cd "$(dirname "$0")" && pwd)
cache=${PODKIT_CACHE:-$HOME/.cache/podkit}
bin=$cache/k8s-$K8S_VERSION/bin
mkdir -p "$bin"

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
  if [ -x "$bin/$name" ]; then
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
gobin_install() { # module@version command, output
  local tmpdir; tmpdir=$(mktemp -d)
  GOBIN=$tmpdir go install -trimpath -ldflags "-s -w" "$1" && mv "$tmpdir/$(basename "${1%@*}")" "$2"
  local rc=$?; rm -rf "$tmpdir"; return $rc
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
echo "tools: done in ${SECONDS}s"
