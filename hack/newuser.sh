#!/usr/bin/env bash
# Times what a new user does with nothing but Go, on a fresh HOME (empty Go
# module and build caches, no podkit cache), and prints one line per step:
#   1. go install podkit (from this checkout: the module is not published;
#      `go install github.com/podkit-dev/podkit/cmd/podkit@<version>` does the
#      same from the module proxy)
#   2. podkit dev tools        the control plane, from the pins in the binary
#   3. podkit dev up           a kwok cluster
#   4. kubectl apply -f install.yaml   (rendered as make release renders it)
#   5. the controller as the installed ServiceAccount (--as): on kwok nodes the
#      Deployment's pod does not really run, so it runs here instead
#   6. the parameter-server sample applied and run to Completed (kwok "exits"
#      each task when annotated podkit.dev/test-exit-code=0)
# It cleans up after itself (cluster, processes, the temporary HOME) unless
# KEEP=1. Takes 15-30 minutes on 2 cores: run it by hand, not in make test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
home=$(mktemp -d /tmp/podkit-newuser-XXXXXX)
export HOME=$home GOPATH=$home/go GOCACHE=$home/.cache/go-build GOMODCACHE=$home/go/pkg/mod
export PATH=$home/go/bin:$PATH GOFLAGS=-p=2
unset PODKIT_CACHE KUBECONFIG PODKIT_K8S_BIN KUBEBUILDER_ASSETS
ctl_pid=
cleanup() {
  set +e
  [ -n "$ctl_pid" ] && kill "$ctl_pid" 2>/dev/null && wait "$ctl_pid" 2>/dev/null
  if [ -z "${KEEP:-}" ]; then
    podkit dev down --name newuser >/dev/null 2>&1 || true
    chmod -R u+w "$home" 2>/dev/null; rm -rf "$home"
  fi
}
trap cleanup EXIT

start=$SECONDS last=$SECONDS
step() { printf '%-34s %4ds  (total %4ds, load %s)\n' "$1" $((SECONDS - last)) $((SECONDS - start)) "$(cut -d' ' -f1-3 /proc/loadavg)"; last=$SECONDS; }

echo "newuser: HOME=$home, $(go version | awk '{print $3}'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$root" && go install ./cmd/podkit)
step "go install podkit"
podkit dev tools >"$home/tools.log" 2>&1 || { tail -20 "$home/tools.log"; exit 1; }
step "podkit dev tools"
up=$(podkit dev up --name newuser --nodes 2)
eval "$up"
step "podkit dev up"
kubectl=$home/.cache/podkit/k8s-$(sed -n 's/^K8S_VERSION=//p' "$root/hack/tools.sh")/bin/kubectl
PODKIT_CACHE=$home/.cache/podkit VERSION=newuser bash "$root/hack/release.sh" install-yaml "$home/install.yaml"
"$kubectl" apply --server-side -f "$home/install.yaml" >/dev/null
"$kubectl" wait --for condition=Established crd/frameworks.podkit.dev --timeout 60s >/dev/null
step "kubectl apply -f install.yaml"
podkit controller --as system:serviceaccount:podkit-system:podkit-framework-controller \
  --leader-elect --leader-election-namespace podkit-system \
  --metrics-bind-address 0 --health-probe-bind-address 0 >"$home/controller.log" 2>&1 &
ctl_pid=$!
"$kubectl" create namespace newuser >/dev/null
"$kubectl" apply -n newuser --server-side -f "$root/config/samples/framework_parameter_server.yaml" >/dev/null
fw=$("$kubectl" get -n newuser frameworks -o name | head -1)
for _ in $(seq 600); do
  state=$("$kubectl" get -n newuser "$fw" -o jsonpath='{.status.state}' 2>/dev/null || true)
  [ "$state" = Completed ] && break
  for p in $("$kubectl" get pods -n newuser --field-selector status.phase=Running -o name); do
    "$kubectl" annotate -n newuser "$p" podkit.dev/test-exit-code=0 --overwrite >/dev/null 2>&1 || true
  done
  sleep 1
done
[ "$state" = Completed ] || { echo "newuser: $fw is $state, not Completed"; tail -20 "$home/controller.log"; exit 1; }
step "sample Completed"
echo "newuser: $fw $("$kubectl" get -n newuser "$fw" -o jsonpath='{.status.attemptStatus.completionStatus.type.name} code={.status.attemptStatus.completionStatus.code}')"
