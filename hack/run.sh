#!/usr/bin/env bash
# make run: starts (or reuses) the local dev cluster and shows podkit on it.
# As root with the real node's binaries built (make tools) and Debian's CNI
# plugins installed, the cluster gets a real node too, and podkit's image
# runs there first; otherwise it says why and runs on kwok nodes alone
# (PODKIT_REAL_NODE=off forces that). Then `podkit demo` takes over.
set -euo pipefail
cd "$(dirname "$0")/.."
podkit=./bin/podkit
kubectl="${PODKIT_CACHE:-$HOME/.cache/podkit}/k8s-v1.37.2/bin/kubectl"

start=$SECONDS
errfile=$(mktemp)
trap 'rm -f "$errfile"' EXIT
real=no
if [ "${PODKIT_REAL_NODE:-auto}" != off ] && out=$($podkit dev up --nodes 2 --real-node 2>"$errfile"); then
  real=yes
  eval "$out"
  echo "Mode: kwok nodes + a real node that runs containers ($($kubectl get nodes -l podkit.dev/real-node=true -o name))"
else
  [ "${PODKIT_REAL_NODE:-auto}" = off ] && reason="PODKIT_REAL_NODE=off" || reason=$(grep -v '^ *\.\.\.' "$errfile" | tail -3 | tr '\n' ' ')
  eval "$($podkit dev up --nodes 2)"
  echo "Mode: kwok nodes only, no container really runs (real node unavailable: $reason)"
fi
echo "KUBECONFIG=$KUBECONFIG"
$podkit version

if [ "$real" = yes ]; then
  tag=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
  echo "Building podkit's image and running it on the real node..."
  make --no-print-directory image >/dev/null
  $podkit dev import _output/image/podkit.tar --as podkit.dev/podkit
  $kubectl delete pod podkit-real --ignore-not-found >/dev/null
  $kubectl run podkit-real --image="podkit.dev/podkit:$tag" --image-pull-policy=Never --restart=Never \
    --overrides='{"spec":{"nodeSelector":{"podkit.dev/real-node":"true"},"tolerations":[{"key":"podkit.dev/real-node","value":"true","effect":"NoSchedule"}]}}' -- version >/dev/null
  $kubectl wait pod/podkit-real --for=jsonpath='{.status.phase}'=Succeeded --timeout=120s >/dev/null
  echo "kubectl logs podkit-real (a real container on the real node):"
  $kubectl logs podkit-real | sed 's/^/  /'
fi

if $podkit demo --help >/dev/null 2>&1; then
  exec $podkit demo
fi

echo "Creating pod podkit-hello in namespace default..."
$kubectl delete pod podkit-hello --ignore-not-found --wait=false >/dev/null
$kubectl run podkit-hello --image=registry.example/podkit/hello:1 --restart=Never >/dev/null
$kubectl wait pod/podkit-hello --for=jsonpath='{.status.phase}'=Running --timeout=60s >/dev/null
$kubectl get pod podkit-hello -o wide
echo
echo "Up with a Running pod in $((SECONDS - start))s."
echo "Use it:      export KUBECONFIG=$KUBECONFIG"
echo "Take down:   ./bin/podkit dev down"
