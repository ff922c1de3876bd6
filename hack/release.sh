#!/usr/bin/env bash
# make release: builds the artifacts of one podkit version into
# _output/release/<version>/ (override with RELEASE_DIR):
#   podkit_<version>_<os>_<arch>            static CLI, linux and darwin × amd64 and arm64
#   podkit-entrypoint_<version>_linux_<arch> static PID-1 binary, linux × amd64 and arm64
#   podkit_<version>_image.tar               multi-arch OCI image index (linux/amd64, linux/arm64),
#   podkit-entrypoint_<version>_image.tar    as oci-archives: `ctr images import --all-platforms`,
#                                            `skopeo copy oci-archive:… docker://…`
#   install.yaml                             CRD, RBAC and controller (config/default) at this version
#   podkit-<chart version>.tgz               the Helm chart (charts/podkit) at this version
# Linux only (sed -i, sha256sum); it needs make tools' kubectl and helm.
#   SHA256SUMS                               sha256sum -c checks every file above
# Everything is built in a temporary directory first and moved into place at
# the end: a failed release leaves no partial one behind, and an earlier
# release of the same version is kept until the new one is complete.
#
#   bash hack/release.sh                    # all of it (VERSION, IMAGE_REPO from the environment)
#   bash hack/release.sh install-yaml FILE  # only install.yaml (the e2e test renders it so)
set -euo pipefail
cd "$(dirname "$0")/.."

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
repo=${IMAGE_REPO:-ghcr.io/podkit-dev}
cache=${PODKIT_CACHE:-$HOME/.cache/podkit}
k8s_version=$(sed -n 's/^K8S_VERSION=//p' hack/tools.sh)
helm_version=$(sed -n 's/^HELM_VERSION=//p' hack/tools.sh)
kubectl=$cache/k8s-$k8s_version/bin/kubectl
helm=$cache/helm-$helm_version/bin/helm

die() { echo "release: $*" >&2; exit 1; }

# install_yaml FILE: config/default with the controller's image at
# $repo/podkit:$version, rendered by kubectl's built-in kustomize.
install_yaml() ( # a subshell, so that its EXIT trap cleans up after it alone
  [ -x "$kubectl" ] || die "kubectl not found at $kubectl: run make tools"
  # kustomize takes bases by relative path only: the overlay lives two
  # levels below the checkout.
  mkdir -p _output
  local overlay; overlay=$(mktemp -d "$PWD/_output/.install-XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$overlay' '$1.tmp'" EXIT
  cat >"$overlay/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../config/default
images:
- name: podkit
  newName: $repo/podkit
  newTag: $version
EOF
  {
    echo "# podkit $version: the Framework CRD, RBAC and controller."
    echo "#   kubectl apply --server-side -f install.yaml"
    "$kubectl" kustomize "$overlay"
  } >"$1.tmp"
  mv "$1.tmp" "$1"
)

if [ "${1:-}" = install-yaml ]; then
  [ $# -eq 2 ] || die "usage: hack/release.sh install-yaml FILE"
  install_yaml "$2"
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument $1: run it with no argument, or install-yaml FILE"

case $version in
  *-dirty) die "version $version: the tree has uncommitted changes; commit them, or set VERSION to release anyway" ;;
esac
# It becomes an image tag: the OCI distribution spec's tag grammar.
[[ $version =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ ]] ||
  die "version '$version': an image tag has 1-128 letters, digits, '_', '.' and '-', and starts with a letter, digit or '_'"
# A chart's version must be SemVer: v1.2.3[-pre] → 1.2.3[-pre]; anything else
# (a bare commit) → 0.0.0-dev-<version>, one pre-release identifier.
if [[ $version =~ ^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  chart_version=${version#v}
else
  chart_version=0.0.0-dev-${version//[_.]/-}
fi
[ -x "$helm" ] || die "helm not found at $helm: run make tools"

out=${RELEASE_DIR:-_output/release/$version}
if [ -e "$out" ] && [ ! -f "$out/SHA256SUMS" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  die "RELEASE_DIR $out exists and holds no earlier release (no SHA256SUMS): choose an empty or new directory"
fi
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$(dirname "$out")/.release-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
ldflags="-s -w -X github.com/podkit-dev/podkit/internal/cli/version.Version=$version -X main.version=$version"

start=$SECONDS
build() { # cmd os arch
  local name="$1_${version}_$2_$3" t=$SECONDS
  CGO_ENABLED=0 GOOS=$2 GOARCH=$3 go build -trimpath -ldflags "$ldflags" -o "$tmp/$name" "./cmd/$1"
  printf '  %-46s built in %ds\n' "$name" $((SECONDS - t))
}
echo "release $version: binaries"
for os in linux darwin; do
  for arch in amd64 arm64; do
    build podkit "$os" "$arch"
  done
done
for arch in amd64 arm64; do
  build podkit-entrypoint linux "$arch"
done
got=$("$tmp/podkit_${version}_linux_$(go env GOARCH)" version --client -o json | sed -n 's/.*"clientVersion": *"\([^"]*\)".*/\1/p')
[ "$got" = "$version" ] || die "the linux binary reports version '$got', want $version"

echo "release $version: multi-arch images ($repo/podkit, $repo/podkit-entrypoint)"
for cmd in podkit podkit-entrypoint; do
  go run ./hack/image --out "$tmp/.layout-$cmd" --archive "$tmp/${cmd}_${version}_image.tar" \
    --tag "$version" --version "$version" --entrypoint "/$cmd" \
    --binary "$tmp/${cmd}_${version}_linux_amd64" --binary "$tmp/${cmd}_${version}_linux_arm64"
  rm -rf "$tmp/.layout-$cmd"
done

echo "release $version: install.yaml and the Helm chart"
install_yaml "$tmp/install.yaml"
chart=$(mktemp -d)
trap 'rm -rf "$tmp" "$chart"' EXIT
cp -r charts/podkit "$chart/podkit"
sed -i "s/^version: .*/version: $chart_version/; s/^appVersion: .*/appVersion: \"$version\"/" "$chart/podkit/Chart.yaml"
sed -i "s|^  repository: .*|  repository: $repo/podkit|; s|^  tag: .*|  tag: \"$version\"|" "$chart/podkit/values.yaml"
"$helm" lint --strict "$chart/podkit" >/dev/null || die "helm lint failed: run $helm lint --strict charts/podkit"
"$helm" package "$chart/podkit" --destination "$tmp" >/dev/null

(cd "$tmp" && sha256sum -- * >SHA256SUMS && sha256sum --quiet -c SHA256SUMS)
# The earlier release of this version stays whole until the new one is in place.
[ -e "$out" ] && mv "$out" "$out.old"
mv "$tmp" "$out"
rm -rf "$out.old"
trap 'rm -rf "$chart"' EXIT
echo "release $version: $(ls "$out" | wc -l) files in $out in $((SECONDS - start))s"
ls -l "$out"
