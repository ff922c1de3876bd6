#!/usr/bin/env bash
# make run: starts (or reuses) the local dev cluster and shows podkit on it.
# When `podkit demo` exists it takes over; until then this shows the server
# version and a pod going from Pending to Running on a kwok node.
set -euo pipefail
cd "$(dirname "$0")/.."
podkit=./bin/podkit
kubectl="${PODKIT_CACHE:-$HOME/.cache/podkit}/k8s-v1.37.2/bin/kubectl"

start=$SECONDS
eval "$($podkit dev up --nodes 2)"
echo "KUBECONFIG=$KUBECONFIG"
$podkit version

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
