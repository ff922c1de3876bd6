package realnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/devcluster"
	"github.com/podkit-dev/podkit/internal/ociimage"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/testenv/fwtest"
)

var env *testenv.Env

// image is the test image every pod here runs: Debian's static busybox as
// /bin/sh beside the podkit and podkit-entrypoint binaries built from this
// checkout.
const image = "podkit.dev/e2e:dev"

func TestMain(m *testing.M) {
	os.Exit(testenv.Cluster(m, &env, func(o *testenv.Options) {
		o.RealNode = true
		o.Nodes = 1
		o.SchemeBuilders = append(o.SchemeBuilders, v1.AddToScheme)
	}))
}

var imported = false

// importImage builds podkit and podkit-entrypoint, writes the test image
// and imports it into the real node, once per test binary.
func importImage(t *testing.T) {
	t.Helper()
	if imported {
		return
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, cmd := range []string{"podkit", "podkit-entrypoint"} {
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, cmd), "./cmd/"+cmd)
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/%s: %v\n%s", cmd, err, out)
		}
	}
	layout := filepath.Join(dir, "layout")
	if _, err := ociimage.Write(layout, ociimage.Options{
		Binary: "/bin/busybox", Path: "/bin/busybox", Links: []string{"/bin/sh"},
		Files: []ociimage.ExtraFile{
			{Path: "/podkit", Source: filepath.Join(dir, "podkit")},
			{Path: "/podkit-entrypoint", Source: filepath.Join(dir, "podkit-entrypoint")},
		},
		Env: []string{"PATH=/bin:/"}, RefName: "dev",
	}); err != nil {
		t.Fatalf("write the test image (apt-get install busybox-static): %v", err)
	}
	archive := filepath.Join(dir, "e2e.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociimage.WriteArchive(f, layout); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	name, _, _ := strings.Cut(image, ":")
	env.ImportImage(t, archive, name)
	imported = true
}

// taskScript is the app of every task: it sources the barrier's
// injector.sh, serves one greeting per peer on port 7000, connects to every
// peer's address (its own included) and exits 0 only once it reached them
// all and all of them reached it. Any task that misses a peer exits 1.
const taskScript = `
set -e
FB_PEER_PORT=7000 . /fb/injector.sh
n=$FB_PEER_COUNT
( i=0; while [ $i -lt $n ]; do echo "hello from $FB_INDEX" | nc -l -p 7000; i=$((i+1)); done ) &
server=$!
for addr in $(echo "$FB_PEER_ADDRESSES" | tr , ' '); do
  ip=${addr%:*}; port=${addr##*:}
  tries=0
  until reply=$(nc -w 2 "$ip" "$port" </dev/null) && [ -n "$reply" ]; do
    tries=$((tries+1)); [ $tries -lt 100 ] || { echo "never reached $addr"; exit 1; }
    sleep 0.2
  done
  echo "reached $addr: $reply"
done
wait $server
echo "task $FB_INDEX reached $n peers and was reached by $n"
`

// TestFrameworkOnRealNode runs a 3-task Framework whose pods use the
// barrier as an init container (in-cluster config, under the barrier Role
// from config/rbac) and podkit-entrypoint as the app's PID 1: every task
// reaches every peer at the address injector.sh gave it, and the
// Framework completes as FrameworkController's would: Succeeded with code
// 0 when all succeed; a task's own exit code as the completion code when one
// fails.
func TestFrameworkOnRealNode(t *testing.T) {
	importImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	grantBarrier(ctx, t, ns)
	fwtest.Start(t, env, fwtest.Options{})

	run := func(name, script string, tasks int) *v1.Framework {
		t.Helper()
		fw := &v1.Framework{}
		manifest := fmt.Sprintf(`
apiVersion: podkit.dev/v1alpha1
kind: Framework
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  executionType: Start
  retryPolicy: {fancyRetryPolicy: false, maxRetryCount: 0}
  taskRoles:
  - name: peer
    taskNumber: %[3]d
    frameworkAttemptCompletionPolicy: {minFailedTaskCount: 1, minSucceededTaskCount: -1}
    task:
      retryPolicy: {fancyRetryPolicy: false, maxRetryCount: 0}
      pod:
        spec:
          restartPolicy: Never
          serviceAccountName: task
          nodeSelector: {%[4]s: "true"}
          volumes:
          - {name: fb, emptyDir: {}}
          initContainers:
          - name: barrier
            image: %[5]s
            imagePullPolicy: Never
            command: ["/podkit", "barrier", "--dir", "/fb"]
            volumeMounts: [{name: fb, mountPath: /fb}]
          containers:
          - name: app
            image: %[5]s
            imagePullPolicy: Never
            command: ["/podkit-entrypoint", "--", "/bin/sh", "-c"]
            args: [%[6]q]
            volumeMounts: [{name: fb, mountPath: /fb}]
`, name, ns, tasks, devcluster.LabelRealNode, image, script)
		if err := yaml.UnmarshalStrict([]byte(manifest), fw); err != nil {
			t.Fatalf("framework manifest: %v", err)
		}
		if err := env.Client.Create(ctx, fw); err != nil {
			t.Fatal(err)
		}
		return waitCompleted(ctx, t, fw)
	}

	t.Run("every task reaches every peer", func(t *testing.T) {
		fw := run("gang", taskScript, 3)
		cs := fw.Status.AttemptStatus.CompletionStatus
		if cs == nil || cs.Code != 0 || cs.Type.Name != v1.CompletionTypeNameSucceeded {
			t.Fatalf("framework completed with %+v, want Succeeded with code 0: %s", cs, describeTasks(fw))
		}
	})

	t.Run("a task's exit code completes the framework", func(t *testing.T) {
		// Task 1 fails with its own code 3; FC's ContainerUnrecognizedFailed
		// carries the container's code as the completion code.
		fw := run("exit-code", `FB_PEER_PORT=7000 . /fb/injector.sh; [ "$FB_INDEX" = 1 ] && exit 3; sleep 600`, 2)
		cs := fw.Status.AttemptStatus.CompletionStatus
		if cs == nil || cs.Code != 3 || cs.Type.Name != v1.CompletionTypeNameFailed {
			t.Fatalf("framework completed with %+v, want Failed with the task's code 3: %s", cs, describeTasks(fw))
		}
		if cs.Trigger == nil || cs.Trigger.TaskRoleName != "peer" || cs.Trigger.TaskIndex != 1 {
			t.Errorf("completion trigger %+v, want task peer-1", cs.Trigger)
		}
	})
}

// grantBarrier creates the task pods' service account and binds it to
// config/rbac/barrier_role.yaml in ns.
func grantBarrier(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "rbac", "barrier_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{}
	if err := yaml.UnmarshalStrict(b, role); err != nil {
		t.Fatal(err)
	}
	role.Namespace = ns
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "task", Namespace: ns}},
		role,
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "task-barrier", Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "task", Namespace: ns}},
		},
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

func waitCompleted(ctx context.Context, t *testing.T, fw *v1.Framework) *v1.Framework {
	t.Helper()
	key := client.ObjectKeyFromObject(fw)
	got := &v1.Framework{}
	for ctx.Err() == nil {
		if err := env.Client.Get(ctx, key, got); err == nil && got.Status != nil && got.Status.State == v1.FrameworkCompleted {
			return got
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("framework %s never completed: %s\n%s", key, describeTasks(got), podLogs(t, fw.Namespace))
	return nil
}

func describeTasks(fw *v1.Framework) string {
	if fw.Status == nil {
		return "no status"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state %s", fw.Status.State)
	for _, r := range fw.Status.AttemptStatus.TaskRoleStatuses {
		for _, ts := range r.TaskStatuses {
			fmt.Fprintf(&b, "; %s-%d %s", r.Name, ts.Index, ts.State)
			if ts.AttemptStatus.CompletionStatus != nil {
				fmt.Fprintf(&b, " code %d %s", ts.AttemptStatus.CompletionStatus.Code, ts.AttemptStatus.CompletionStatus.Diagnostics)
			}
		}
	}
	return b.String()
}

// podLogs returns every container log of the namespace's pods, for a
// failure message.
func podLogs(t *testing.T, ns string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			logs, err := env.Clientset.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name}).DoRaw(ctx)
			fmt.Fprintf(&b, "--- %s/%s (%v):\n%s\n", p.Name, c.Name, err, logs)
		}
	}
	return b.String()
}
