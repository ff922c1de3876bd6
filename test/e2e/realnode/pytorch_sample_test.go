package realnode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/devcluster"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/testenv/fwtest"
	"github.com/podkit-dev/podkit/pkg/barrier"
)

// pytorchSample is the sample this file runs, relative to the module root.
const pytorchSample = "config/samples/framework_pytorch.yaml"

// torchrunStandIn takes torchrun's place in the sample's command line, with
// the arguments the sample gives torchrun. It checks what torchrun's static
// rendezvous depends on: --nnodes and WORLD_SIZE are 4, --node_rank and RANK
// are the task's rank (master 0, worker i i+1), --master_port and
// MASTER_PORT are 29500, and --master_addr is the master pod's IP: the
// master finds it on its own interface and serves it on the port, each
// worker connects to --master_addr and must be answered with that address.
// A worker that got through serves "rank N ok" on port 29501 and exits; the
// master exits 0 only once it has that from every worker. Any failed check
// exits 1, which fails the Framework.
const torchrunStandIn = `
fail() { echo "torchrun stand-in, task $FC_TASKROLE_NAME-$FC_TASK_INDEX: $*"; exit 1; }
nnodes= rank= addr= port= oks=
for a in "$@"; do
  case $a in
  --nnodes=*) nnodes=${a#*=} ;;
  --node_rank=*) rank=${a#*=} ;;
  --master_addr=*) addr=${a#*=} ;;
  --master_port=*) port=${a#*=} ;;
  esac
done
case $FC_TASKROLE_NAME in
master) want=0 ;;
worker) want=$((FC_TASK_INDEX + 1)) ;;
*) fail "unexpected role" ;;
esac
[ "$nnodes" = 4 ] && [ "$WORLD_SIZE" = 4 ] || fail "--nnodes=$nnodes WORLD_SIZE=$WORLD_SIZE, want 4"
[ "$rank" = "$want" ] && [ "$RANK" = "$want" ] || fail "--node_rank=$rank RANK=$RANK, want $want"
[ "$port" = 29500 ] && [ "$MASTER_PORT" = 29500 ] || fail "--master_port=$port MASTER_PORT=$MASTER_PORT, want 29500"
deadline=$(($(date +%s) + 30))
if [ "$want" = 0 ]; then
  ip -o addr show | awk -v a="$addr" '$2 != "lo" { split($4, p, "/"); if (p[1] == a) found = 1 } END { exit !found }' ||
    fail "--master_addr=$addr is not an address of this pod: $(ip -o addr show | awk '{ print $2, $4 }' | tr '\n' ' ')"
  ( while :; do echo "$addr" | nc -l -p "$port"; done ) &
  server=$!
  for w in $(echo "$FB_WORKER_IPS" | tr , ' '); do
    until r=$(nc -w 2 "$w" 29501 </dev/null) && [ -n "$r" ]; do
      [ "$(date +%s)" -lt "$deadline" ] || fail "worker $w never reported"
      sleep 0.2
    done
    echo "$r"
    oks="$oks $r;"
  done
  kill "$server"
  for r in 1 2 3; do
    case $oks in *" rank $r ok;"*) ;; *) fail "reports$oks lack rank $r" ;; esac
  done
  echo "master $addr:$port: every worker reached it"
else
  until reply=$(nc -w 2 "$addr" "$port" </dev/null) && [ -n "$reply" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "never reached the master at $addr:$port"
    sleep 0.2
  done
  [ "$reply" = "$addr" ] || fail "$addr:$port answered as $reply, not as the master"
  echo "rank $rank ok" | nc -l -p 29501 || fail "report to the master"
  echo "rank $rank reached the master at $addr:$port"
fi
`

// TestPyTorchSampleWiresTheGangOnRealNode runs config/samples/framework_pytorch.yaml
// on the real node as published, with only its images replaced by the test
// image and torchrun by torchrunStandIn (given the sample's own torchrun
// arguments): the sample's RBAC lets the barrier read the Framework, and
// what the barrier's injector.sh exports is the master's pod IP, the world
// size and every task's rank. The same sample with the master named by its
// pod name, as the sample once did, fails.
func TestPyTorchSampleWiresTheGangOnRealNode(t *testing.T) {
	t.Parallel()
	importImage(t)
	ns := env.Namespace(t)
	rbac, fw := readPyTorchSample(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	for _, o := range rbac {
		o.SetNamespace(ns)
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create the sample's %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	fwtest.Start(t, env, fwtest.Options{Namespace: ns})

	t.Run("torchrun gets the master's pod IP, world size and ranks", func(t *testing.T) {
		t.Parallel()
		got := runOnRealNode(ctx, t, standIn(t, fw, ns, fw.Name, nil))
		cs := got.Status.AttemptStatus.CompletionStatus
		if cs == nil || cs.Code != 0 || cs.Type.Name != v1.CompletionTypeNameSucceeded {
			t.Fatalf("framework completed with %+v, want Succeeded with code 0: %s", cs, describeTasks(got))
		}
	})

	t.Run("a pod name as MASTER_ADDR fails", func(t *testing.T) {
		t.Parallel()
		podName := func(args string) string {
			if !strings.Contains(args, "--master_addr=$MASTER_ADDR") {
				t.Fatalf("%s: torchrun is not given --master_addr=$MASTER_ADDR: %s", pytorchSample, args)
			}
			return strings.Replace(args, "--master_addr=$MASTER_ADDR", "--master_addr=$(FC_FRAMEWORK_NAME)-master-0", 1)
		}
		got := runOnRealNode(ctx, t, standIn(t, fw, ns, "pod-name", podName))
		cs := got.Status.AttemptStatus.CompletionStatus
		tasks := describeTasks(got)
		if cs == nil || cs.Type.Name != v1.CompletionTypeNameFailed || cs.Trigger == nil || cs.Trigger.TaskRoleName != "master" ||
			!strings.Contains(tasks, "--master_addr=pod-name-master-0 is not an address of this pod") {
			t.Fatalf("framework completed with %+v, want Failed by the master, which refuses a --master_addr that is not its IP: %s", cs, tasks)
		}
	})
}

// readPyTorchSample returns the RBAC objects and the Framework of the
// sample. The sample's Role must grant what config/rbac/barrier_role.yaml
// grants.
func readPyTorchSample(t *testing.T) ([]*unstructured.Unstructured, *v1.Framework) {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, pytorchSample))
	if err != nil {
		t.Fatal(err)
	}
	var rbac []*unstructured.Unstructured
	var fw *v1.Framework
	var role *rbacv1.Role
	for _, doc := range strings.Split(string(b), "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("%s: %v", pytorchSample, err)
		}
		switch u.GetKind() {
		case "":
			continue
		case "Framework":
			fw = &v1.Framework{}
			if err := yaml.UnmarshalStrict([]byte(doc), fw); err != nil {
				t.Fatalf("%s: Framework: %v", pytorchSample, err)
			}
			continue
		case "Role":
			role = &rbacv1.Role{}
			if err := yaml.UnmarshalStrict([]byte(doc), role); err != nil {
				t.Fatalf("%s: Role: %v", pytorchSample, err)
			}
		}
		if fw != nil {
			t.Errorf("%s: %s %s comes after the Framework; kubectl apply creates in file order, and the pods need it first", pytorchSample, u.GetKind(), u.GetName())
		}
		rbac = append(rbac, u)
	}
	if fw == nil || role == nil {
		t.Fatalf("%s has no Framework or no Role", pytorchSample)
	}
	b, err = os.ReadFile(filepath.Join(root, "config", "rbac", "barrier_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &rbacv1.Role{}
	if err := yaml.UnmarshalStrict(b, want); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want.Rules, role.Rules); d != "" {
		t.Errorf("%s: the Role's rules differ from config/rbac/barrier_role.yaml's (-want +got):\n%s", pytorchSample, d)
	}
	return rbac, fw
}

// standIn returns a copy of the sample's Framework named name in ns, on the
// real node with the test image, torchrun replaced by torchrunStandIn and
// edit (if any) applied to each task's command line. It shrinks what only
// costs test time: no framework retry (a failure shows at once) and a 1 s
// grace period for pods deleted at completion (the stand-in's shell, PID 1,
// ignores SIGTERM).
func standIn(t *testing.T, sample *v1.Framework, ns, name string, edit func(string) string) *v1.Framework {
	t.Helper()
	fw := sample.DeepCopy()
	fw.Name, fw.Namespace = name, ns
	fw.Spec.RetryPolicy.MaxRetryCount = 0
	script, err := barrier.ShellQuote(torchrunStandIn)
	if err != nil {
		t.Fatal(err)
	}
	for i := range fw.Spec.TaskRoles {
		task := &fw.Spec.TaskRoles[i].Task
		task.PodGracefulDeletionTimeoutSec = ptr.To[int64](1)
		spec := &task.Pod.Spec
		spec.NodeSelector = map[string]string{devcluster.LabelRealNode: "true"}
		spec.Tolerations = []corev1.Toleration{devcluster.RealNodeToleration}
		for j := range spec.InitContainers {
			spec.InitContainers[j].Image, spec.InitContainers[j].ImagePullPolicy = image, corev1.PullNever
		}
		for j := range spec.Containers {
			c := &spec.Containers[j]
			c.Image, c.ImagePullPolicy = image, corev1.PullNever
			if len(c.Args) != 1 || strings.Count(c.Args[0], "torchrun ") != 1 {
				t.Fatalf("%s: role %s: want one sh -c argument that runs torchrun once, got %q", pytorchSample, fw.Spec.TaskRoles[i].Name, c.Args)
			}
			if edit != nil {
				c.Args[0] = edit(c.Args[0])
			}
			c.Args[0] = strings.Replace(c.Args[0], "torchrun ", "sh -c "+script+" torchrun ", 1)
		}
	}
	return fw
}

// runOnRealNode creates fw and waits until it is Completed.
func runOnRealNode(ctx context.Context, t *testing.T, fw *v1.Framework) *v1.Framework {
	t.Helper()
	start := time.Now()
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	got := waitCompleted(ctx, t, fw)
	t.Logf("framework %s completed in %s: %s", fw.Name, time.Since(start).Round(100*time.Millisecond), describeTasks(got))
	return got
}
