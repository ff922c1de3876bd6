package realnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

// importMu guards imported: the tests run in parallel, and the first one
// imports the image.
var (
	importMu sync.Mutex
	imported bool
)

// importImage builds podkit and podkit-entrypoint, writes the test image
// and imports it into the real node, once per test binary.
func importImage(t *testing.T) {
	t.Helper()
	importMu.Lock()
	defer importMu.Unlock()
	if imported {
		return
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// One go build for the three: it compiles them in parallel.
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", dir+"/", "./cmd/podkit", "./cmd/podkit-entrypoint", "./examples/fork")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The image is multi-arch, as make release writes podkit's: an image
	// index whose first entry is a stand-in for another architecture
	// (podkit's pause binary built for it, at the same path). containerd
	// must pick this machine's platform out of the index for any pod here
	// to run: containerd is the oracle for ociimage.WriteIndex.
	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	if other == "" {
		t.Fatalf("no stand-in architecture for %s", runtime.GOARCH)
	}
	standIn := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "pause-"+other), "./hack/pause")
	standIn.Dir = root
	standIn.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+other)
	if out, err := standIn.CombinedOutput(); err != nil {
		t.Fatalf("go build hack/pause for %s: %v\n%s", other, err, out)
	}
	layout := filepath.Join(dir, "layout")
	if _, err := ociimage.WriteIndex(layout, "dev", []ociimage.Options{{
		Binary: filepath.Join(dir, "pause-"+other), Path: "/bin/busybox", Links: []string{"/bin/sh"},
	}, {
		Binary: "/bin/busybox", Path: "/bin/busybox", Links: []string{"/bin/sh"},
		Files: []ociimage.ExtraFile{
			{Path: "/podkit", Source: filepath.Join(dir, "podkit")},
			{Path: "/podkit-entrypoint", Source: filepath.Join(dir, "podkit-entrypoint")},
			{Path: "/fork-example", Source: filepath.Join(dir, "fork")},
		},
		Env: []string{"PATH=/bin:/"},
	}}); err != nil {
		t.Fatalf("write the test image (apt-get install busybox-static): %v", err)
	}
	archive := filepath.Join(dir, "e2e.tar")
	if err := ociimage.WriteArchiveFile(archive, layout); err != nil {
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
	t.Parallel()
	importImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	grantBarrier(ctx, t, ns)
	fwtest.Start(t, env, fwtest.Options{Namespace: ns})

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
          tolerations: [{key: %[4]s, operator: Equal, value: "true", effect: NoSchedule}]
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

// TestEntrypointAppliesConfigMapUpdate: a ConfigMap edit reaches
// podkit-entrypoint (PID 1 of the pod) through the kubelet's ..data swap,
// and the app gets SIGHUP and reads the new value from the live copy, with
// no container restart.
func TestEntrypointAppliesConfigMapUpdate(t *testing.T) {
	t.Parallel()
	importImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Data: map[string]string{"greeting": "one"}}
	if err := env.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	// $$$$ is the shell's $$ once Kubernetes has expanded the command.
	app := `trap 'echo "reload $(cat "$PODKIT_CONFIG_DEST/greeting") pid $$$$"' HUP
echo "start $(cat "$PODKIT_CONFIG_DEST/greeting") pid $$$$"
while true; do sleep 1 & wait $!; done`
	pod := realPod("entrypoint", []string{"/podkit-entrypoint", "--config", "/cfg", "--on-change", "signal:SIGHUP", "--signal-target", "child", "--", "/bin/sh", "-c", app})
	pod.Namespace = ns
	pod.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	start := waitLog(ctx, t, ns, "entrypoint", "start one pid ")
	pid := strings.TrimSpace(strings.TrimPrefix(start, "start one pid "))
	cm.Data["greeting"] = "two"
	if err := env.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	reload := waitLog(ctx, t, ns, "entrypoint", "reload two pid ")
	t.Logf("ConfigMap update applied %s after the API write (kubelet sync included)", time.Since(began).Round(100*time.Millisecond))
	if got := strings.TrimSpace(strings.TrimPrefix(reload, "reload two pid ")); got != pid {
		t.Errorf("reloaded in shell pid %s, started as %s: the app was restarted", got, pid)
	}
	got, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, "entrypoint", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := got.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("container restarted %d times", n)
	}
}

// TestForkOnRealNode runs examples/fork in a pod: it forks a child pod of
// its own image under another code path, waits for it, prints its logs and
// exits with its code.
func TestForkOnRealNode(t *testing.T) {
	t.Parallel()
	importImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for _, f := range []string{"config/rbac/fork_role.yaml", "examples/fork/pod.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			u.SetNamespace(ns)
			if u.GetKind() == "Pod" {
				// The example's manifest as published, pointed at the test
				// image and the real node.
				spec := u.Object["spec"].(map[string]any)
				spec["nodeSelector"] = map[string]any{devcluster.LabelRealNode: "true"}
				spec["tolerations"] = []any{map[string]any{"key": devcluster.LabelRealNode, "operator": "Equal", "value": "true", "effect": "NoSchedule"}}
				c := spec["containers"].([]any)[0].(map[string]any)
				c["image"], c["imagePullPolicy"], c["command"] = image, "Never", []any{"/fork-example"}
			}
			objs = append(objs, u)
		}
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %s %s: %v", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	parent := waitFinished(ctx, t, ns, "fork-example")
	logs, err := env.Clientset.CoreV1().Pods(ns).GetLogs("fork-example", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if parent.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("forking pod %s:\n%s", parent.Status.Phase, logs)
	}
	// The child ran in a pod of its own (its hostname is its pod name, not
	// the parent's), its log came back to the parent, and the parent exited
	// with the child's code.
	child := regexp.MustCompile(`child log.*forked child running.* hostname=([a-z0-9.-]+) pod=([a-z0-9.-]+)`).FindSubmatch(logs)
	if child == nil || string(child[1]) != string(child[2]) || string(child[1]) == "fork-example" {
		t.Errorf("parent log lacks the child's own log line from a pod of its own:\n%s", logs)
	}
	if !strings.Contains(string(logs), "exitCode=0") || parent.Status.ContainerStatuses[0].State.Terminated.ExitCode != 0 {
		t.Errorf("parent did not report and exit with the child's code 0:\n%s", logs)
	}
}

// TestRealNodeSurvivesKubeletAndContainerdCrash kills the kubelet,
// containerd and kube-proxy under a running pod; after podkit dev up starts
// them again the pod is the same container, never restarted, and the node
// runs new pods.
//
// It is the one test here that does not run in parallel: Go runs it alone,
// before the parallel ones, so the crash disturbs no other test.
func TestRealNodeSurvivesKubeletAndContainerdCrash(t *testing.T) {
	importImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	pod := realPod("survivor", []string{"/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done"})
	pod.Namespace = ns
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitLog(ctx, t, ns, "survivor", "tick 2")
	logs, err := env.Clientset.CoreV1().Pods(ns).GetLogs("survivor", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ticks := strings.Count(string(logs), "tick ")
	before, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, "survivor", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	env.CrashRealNode(t, "kubelet", "containerd", "kube-proxy")

	after, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, "survivor", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pod lost across the crash: %v", err)
	}
	if b, a := before.Status.ContainerStatuses[0], after.Status.ContainerStatuses[0]; a.ContainerID != b.ContainerID || a.RestartCount != 0 || a.State.Running == nil {
		t.Errorf("container before %s (restarts %d), after %s (restarts %d, running %v): want the same one still running", b.ContainerID, b.RestartCount, a.ContainerID, a.RestartCount, a.State.Running != nil)
	}
	// Its log keeps counting from where it was: the process itself
	// survived, and the restarted kubelet serves its log again.
	waitLog(ctx, t, ns, "survivor", fmt.Sprintf("tick %d", ticks+3))

	fresh := realPod("after-crash", []string{"/bin/sh", "-c", "exit 7"})
	fresh.Namespace = ns
	if err := env.Client.Create(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	p := waitFinished(ctx, t, ns, "after-crash")
	if p.Status.Phase != corev1.PodFailed || p.Status.ContainerStatuses[0].State.Terminated == nil || p.Status.ContainerStatuses[0].State.Terminated.ExitCode != 7 {
		t.Errorf("a pod created after the restart ended %s %+v, want Failed with code 7", p.Status.Phase, p.Status.ContainerStatuses)
	}
}

// waitFinished waits until the pod is Succeeded or Failed and returns it.
func waitFinished(ctx context.Context, t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	for ctx.Err() == nil {
		p, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
			return p
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s never finished:\n%s", ns, name, podLogs(t, ns))
	return nil
}

// realPod is a pod of the test image on the real node.
func realPod(name string, command []string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeSelector:  map[string]string{devcluster.LabelRealNode: "true"},
			Tolerations:   []corev1.Toleration{devcluster.RealNodeToleration},
			Containers:    []corev1.Container{{Name: "app", Image: image, ImagePullPolicy: corev1.PullNever, Command: command}},
		},
	}
}

// waitLog waits until a line of the pod's log starts with prefix and
// returns that line.
func waitLog(ctx context.Context, t *testing.T, ns, pod, prefix string) string {
	t.Helper()
	var last []byte
	for ctx.Err() == nil {
		logs, err := env.Clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err == nil {
			last = logs
			for _, l := range strings.Split(string(logs), "\n") {
				if strings.HasPrefix(l, prefix) {
					return l
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s never logged %q; log:\n%s", ns, pod, prefix, last)
	return ""
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
