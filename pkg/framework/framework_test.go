package framework_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/testenv/fwtest"
	"github.com/podkit-dev/podkit/pkg/framework"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Cluster(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1.AddToScheme)
		// 2 nodes (the default) × 4 GPUs for the gang tests.
		o.NodeResources = map[string]string{string(gpuResource): "4"}
	}))
}

// startController runs a Framework controller watching only ns until the
// returned stop function (also registered as cleanup) is called.
func startController(t *testing.T, ns string, qps float32) (stop func()) {
	t.Helper()
	return fwtest.Start(t, env, fwtest.Options{Namespace: ns, QPS: qps})
}

// newFramework builds a Framework whose role pods exit with exitCode once
// running ("" keeps them running).
func newFramework(ns, name string, roles ...v1.TaskRoleSpec) *v1.Framework {
	return &v1.Framework{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.FrameworkSpec{TaskRoles: roles},
	}
}

func taskRole(name string, n int32, exitCode string) v1.TaskRoleSpec {
	tmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sh", "-c", "echo $FC_TASK_INDEX"}}},
	}}
	if exitCode != "" {
		tmpl.Annotations = map[string]string{testenv.AnnotationExitCode: exitCode}
	}
	return v1.TaskRoleSpec{Name: name, TaskNumber: n, Task: v1.TaskSpec{Pod: tmpl}}
}

func get(t *testing.T, ctx context.Context, fw *v1.Framework) *v1.Framework {
	t.Helper()
	got := &v1.Framework{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(fw), got); err != nil {
		t.Fatalf("get framework: %v", err)
	}
	return got
}

func waitState(t *testing.T, fw *v1.Framework, what string, timeout time.Duration, cond func(*v1.Framework) bool) *v1.Framework {
	t.Helper()
	var last *v1.Framework
	t.Cleanup(func() {
		if t.Failed() && last != nil && last.Status != nil {
			t.Logf("last seen %s/%s: state %s ready %s attempt %d", last.Namespace, last.Name, last.Status.State, last.Status.ReadyTasks, last.Status.AttemptStatus.ID)
			for _, ts := range allTasks(last) {
				t.Logf("  task %s: %s attempt %d completion %+v", ts.AttemptStatus.PodName, ts.State, ts.AttemptStatus.ID, ts.AttemptStatus.CompletionStatus)
			}
		}
	})
	testenv.WaitFor(t, timeout, what, func(ctx context.Context) (bool, error) {
		got := &v1.Framework{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(fw), got); err != nil {
			return false, err
		}
		last = got
		return got.Status != nil && cond(got), nil
	})
	return last
}

// stopFramework sets executionType Stop, retrying on write conflicts with
// the controller's status writes.
func stopFramework(t *testing.T, ctx context.Context, fw *v1.Framework) {
	t.Helper()
	// A merge patch carries no resourceVersion, so the controller's frequent
	// status writes on a large Framework cannot make it conflict.
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"executionType":"`+string(v1.ExecutionStop)+`"}}`))
	if err := env.Client.Patch(ctx, fw.DeepCopy(), patch); err != nil {
		t.Fatalf("stop framework: %v", err)
	}
}

func completed(fw *v1.Framework) bool { return fw.Status.State == v1.FrameworkCompleted }

func podsOf(t *testing.T, ctx context.Context, fw *v1.Framework) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := env.Client.List(ctx, &pods, client.InNamespace(fw.Namespace), client.MatchingLabels{v1.LabelFrameworkName: fw.Name}); err != nil {
		t.Fatalf("list pods: %v", err)
	}
	return pods.Items
}

func allTasks(fw *v1.Framework) []v1.TaskStatus {
	var out []v1.TaskStatus
	for _, rs := range fw.Status.AttemptStatus.TaskRoleStatuses {
		out = append(out, rs.TaskStatuses...)
	}
	return out
}

func TestFrameworkRunsToCompletion(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startController(t, ns, 50)
	fw := newFramework(ns, "happy", taskRole("master", 1, "0"), taskRole("worker", 3, "0"))
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, fw, "framework Completed", 2*time.Minute, completed)
	cs := got.Status.AttemptStatus.CompletionStatus
	if cs == nil || cs.Code != 0 || !cs.Succeeded() {
		t.Fatalf("completion = %+v, want Succeeded with code 0", cs)
	}
	if got.Status.CompletionTime == nil || got.Status.AttemptStatus.ID != 0 {
		t.Errorf("completionTime=%v attempt=%d, want set and 0", got.Status.CompletionTime, got.Status.AttemptStatus.ID)
	}
	tasks := allTasks(got)
	if len(tasks) != 4 {
		t.Fatalf("%d task statuses, want 4", len(tasks))
	}
	for _, ts := range tasks {
		as := ts.AttemptStatus
		if ts.State != v1.TaskCompleted || !as.CompletionStatus.Succeeded() {
			t.Errorf("task %s: state %s completion %+v, want Completed/Succeeded", as.PodName, ts.State, as.CompletionStatus)
		}
		if as.PodUID == nil || as.PodIP == nil || as.PodHostIP == nil || as.PodNodeName == nil {
			t.Errorf("task %s: pod uid/ip/hostIP/node not all recorded: %+v", as.PodName, as)
		}
	}
	testenv.WaitFor(t, time.Minute, "pods and ConfigMap deleted", func(ctx context.Context) (bool, error) {
		err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: v1.ConfigMapName(fw.Name)}, &corev1.ConfigMap{})
		return len(podsOf(t, ctx, fw)) == 0 && apierrors.IsNotFound(err), nil
	})
}

func TestRunningPodsCarryIdentityAndStopCompletesTheFramework(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startController(t, ns, 50)
	fw := newFramework(ns, "ident", taskRole("worker", 3, ""))
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, fw, "all tasks ready", 2*time.Minute, func(fw *v1.Framework) bool {
		return fw.Status.State == v1.FrameworkAttemptRunning && fw.Status.ReadyTasks == "3/3"
	})
	pods := podsOf(t, ctx, got)
	if len(pods) != 3 {
		t.Fatalf("%d pods, want 3", len(pods))
	}
	byName := map[string]corev1.Pod{}
	for _, p := range pods {
		byName[p.Name] = p
	}
	for _, ts := range allTasks(got) {
		as := ts.AttemptStatus
		pod, ok := byName[fmt.Sprintf("ident-worker-%d", ts.Index)]
		if !ok {
			t.Fatalf("no pod named ident-worker-%d", ts.Index)
		}
		if as.PodUID == nil || *as.PodUID != pod.UID || as.PodIP == nil || *as.PodIP != pod.Status.PodIP {
			t.Errorf("task %d: status uid/ip %v/%v, pod %s/%s", ts.Index, as.PodUID, as.PodIP, pod.UID, pod.Status.PodIP)
		}
		if !metav1.IsControlledBy(&pod, got) {
			t.Errorf("pod %s is not controlled by the framework", pod.Name)
		}
		env := map[string]string{}
		for _, e := range pod.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		want := map[string]string{
			"FC_FRAMEWORK_NAMESPACE": ns, "FC_FRAMEWORK_NAME": "ident", "FC_TASKROLE_NAME": "worker",
			"FC_TASK_INDEX": fmt.Sprint(ts.Index), "FC_POD_NAME": pod.Name, "FC_FRAMEWORK_ATTEMPT_ID": "0",
			"FC_TASK_ATTEMPT_ID": "0", "FC_FRAMEWORK_UID": string(got.UID), "PODKIT_TASK_INDEX": fmt.Sprint(ts.Index),
			"FC_CONFIGMAP_UID": string(*got.Status.AttemptStatus.ConfigMapUID),
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("pod %s: env %s = %q, want %q", pod.Name, k, env[k], v)
			}
		}
	}

	// Below v1.BarrierReleaseMinTasks the release is not published: the
	// barriers watch the whole Framework (TestReleaseIsPublishedFromReleaseMinTasks).
	if a, ok := got.Annotations[v1.AnnotationBarrierRelease]; ok {
		t.Errorf("a released 3-task Framework carries %s=%q; below %d tasks the default publishes nothing", v1.AnnotationBarrierRelease, a, v1.BarrierReleaseMinTasks)
	}

	stopFramework(t, ctx, got)
	got = waitState(t, fw, "stopped framework Completed", 2*time.Minute, completed)
	if cs := got.Status.AttemptStatus.CompletionStatus; cs == nil || cs.Code != v1.CompletionCodeStopFrameworkRequested {
		t.Fatalf("completion = %+v, want code %d", cs, v1.CompletionCodeStopFrameworkRequested)
	}
	if n := len(podsOf(t, ctx, got)); n != 0 {
		t.Errorf("%d pods left after Stop, want 0", n)
	}
}

// The release annotation is published for Frameworks of at least
// Options.ReleaseMinTasks tasks, and only for those: here 3, so that a
// 3-task Framework is published ("0/released", then "completed") while a
// 2-task one beside it, released and stopped the same way, never is.
func TestReleaseIsPublishedFromReleaseMinTasks(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	fwtest.Start(t, env, fwtest.Options{Namespace: ns, QPS: 50, Reconciler: framework.Options{ReleaseMinTasks: 3}})
	big := newFramework(ns, "big", taskRole("worker", 3, ""))
	small := newFramework(ns, "small", taskRole("worker", 2, ""))
	for _, fw := range []*v1.Framework{big, small} {
		if err := env.Client.Create(ctx, fw); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, big, "release published", time.Minute, func(fw *v1.Framework) bool {
		return fw.Annotations[v1.AnnotationBarrierRelease] == "0/"+v1.BarrierReleased
	})
	got := waitState(t, small, "all tasks ready", time.Minute, func(fw *v1.Framework) bool {
		return fw.Status.ReadyTasks == "2/2" && v1.BarrierReleaseState(fw) == "0/"+v1.BarrierReleased
	})
	stopFramework(t, ctx, big)
	stopFramework(t, ctx, got)
	waitState(t, big, "completion published", time.Minute, func(fw *v1.Framework) bool {
		return fw.Annotations[v1.AnnotationBarrierRelease] == v1.BarrierCompleted
	})
	got = waitState(t, small, "stopped framework Completed", time.Minute, completed)
	if a, ok := got.Annotations[v1.AnnotationBarrierRelease]; ok {
		t.Errorf("the 2-task Framework carries %s=%q; below ReleaseMinTasks (3) nothing is published", v1.AnnotationBarrierRelease, a)
	}
}

func TestFailingTaskIsRetriedThenFailsTheFramework(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startController(t, ns, 50)
	r := taskRole("worker", 1, "3")
	r.Task.RetryPolicy.MaxRetryCount = 2
	fw := newFramework(ns, "retry", r)
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, fw, "framework Completed", 2*time.Minute, completed)
	cs := got.Status.AttemptStatus.CompletionStatus
	if cs == nil || cs.Code != 3 || cs.Succeeded() {
		t.Fatalf("completion = %+v, want Failed with code 3", cs)
	}
	ts := allTasks(got)[0]
	if ts.AttemptStatus.ID != 2 || ts.RetryPolicyStatus.TotalRetriedCount != 2 || ts.RetryPolicyStatus.AccountableRetriedCount != 2 {
		t.Errorf("task attempt %d, retried %+v; want attempt 2 after 2 accountable retries", ts.AttemptStatus.ID, ts.RetryPolicyStatus)
	}
	if c := ts.AttemptStatus.CompletionStatus; c == nil || c.Code != 3 || c.Pod == nil || len(c.Pod.Containers) != 1 {
		t.Errorf("task completion = %+v, want code 3 with the container's status", c)
	}
}

func TestMinFailedTaskCountFailsTheAttemptAndFrameworkRetries(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startController(t, ns, 50)
	good := taskRole("good", 1, "")
	bad := taskRole("bad", 2, "5")
	bad.FrameworkAttemptCompletionPolicy = v1.CompletionPolicySpec{MinFailedTaskCount: 2, MinSucceededTaskCount: -1}
	fw := newFramework(ns, "minfail", good, bad)
	fw.Spec.RetryPolicy.MaxRetryCount = 1
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, fw, "framework Completed", 3*time.Minute, completed)
	st := got.Status
	cs := st.AttemptStatus.CompletionStatus
	if cs == nil || cs.Code != 5 || cs.Trigger == nil || cs.Trigger.TaskRoleName != "bad" {
		t.Fatalf("completion = %+v, want code 5 triggered by role bad", cs)
	}
	if st.AttemptStatus.ID != 1 || st.RetryPolicyStatus.TotalRetriedCount != 1 {
		t.Errorf("attempt %d retried %+v, want attempt 1 after one framework retry", st.AttemptStatus.ID, st.RetryPolicyStatus)
	}
	goodTask := st.AttemptStatus.TaskRoleStatus("good").TaskStatuses[0]
	if c := goodTask.AttemptStatus.CompletionStatus; goodTask.State != v1.TaskCompleted || c == nil || c.Code != v1.CompletionCodeFrameworkAttemptCompletion {
		t.Errorf("running task of the failed attempt: state %s completion %+v, want Completed with code %d", goodTask.State, c, v1.CompletionCodeFrameworkAttemptCompletion)
	}
}

func TestPodDeletedBehindTheControllersBackIsRetried(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startController(t, ns, 50)
	r := taskRole("worker", 1, "")
	r.Task.RetryPolicy = v1.RetryPolicySpec{FancyRetryPolicy: true}
	fw := newFramework(ns, "deleted", r)
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, fw, "task running", 2*time.Minute, func(fw *v1.Framework) bool { return fw.Status.ReadyTasks == "1/1" })
	first := *allTasks(got)[0].AttemptStatus.PodUID
	if err := env.Clientset.CoreV1().Pods(ns).Delete(ctx, "deleted-worker-0", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	got = waitState(t, fw, "task retried with a new pod", 2*time.Minute, func(fw *v1.Framework) bool {
		ts := allTasks(fw)[0]
		return ts.AttemptStatus.ID == 1 && ts.AttemptStatus.PodUID != nil && *ts.AttemptStatus.PodUID != first && ts.State == v1.TaskAttemptRunning
	})
	ts := allTasks(got)[0]
	if ts.RetryPolicyStatus.TotalRetriedCount != 1 || ts.RetryPolicyStatus.AccountableRetriedCount != 0 {
		t.Errorf("retry status %+v: a transient failure under fancyRetryPolicy retries without counting", ts.RetryPolicyStatus)
	}
	if got.Status.State == v1.FrameworkCompleted {
		t.Error("the framework completed; it must keep running after a retried task")
	}
	pod, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, "deleted-worker-0", metav1.GetOptions{})
	if err != nil || pod.UID != *ts.AttemptStatus.PodUID || pod.Annotations[v1.AnnotationTaskAttemptID] != "1" {
		t.Errorf("new pod: err=%v uid=%v annotations=%v, want status uid and task attempt 1", err, pod.UID, pod.Annotations)
	}
}

// startControllerProcess builds (once) and starts testdata/controller as
// a separate process, so that the test can SIGKILL it.
func startControllerProcess(t *testing.T, ns string, qps int) *exec.Cmd {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "controller")
	build := exec.Command("go", "build", "-o", bin, "./testdata/controller")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/controller: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, env.Kubeconfig, ns, fmt.Sprint(qps))
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start controller process: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestControllerKilledMidCreationLeavesExactlyNPods(t *testing.T) {
	const n = 500
	ns := env.Namespace(t)
	ctx := context.Background()
	// A low QPS makes creation take most of a minute, so the kill lands
	// mid-way.
	proc := startControllerProcess(t, ns, 10)
	fw := newFramework(ns, "restart", taskRole("worker", n, ""))
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	testenv.WaitFor(t, 60*time.Second, "30 pods created", func(ctx context.Context) (bool, error) {
		return len(podsOf(t, ctx, fw)) >= 30, nil
	})
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 controller: %v", err)
	}
	_ = proc.Wait()
	mid := len(podsOf(t, ctx, fw))
	t.Logf("%d of %d pods existed when the controller was killed, %s after the Framework was created", mid, n, time.Since(created).Round(time.Millisecond))
	restarted := time.Now()
	startController(t, ns, 200)
	got := waitState(t, fw, "every task has a recorded pod", 60*time.Second, func(fw *v1.Framework) bool {
		for _, ts := range allTasks(fw) {
			if ts.AttemptStatus.PodUID == nil {
				return false
			}
		}
		return len(allTasks(fw)) == n
	})
	t.Logf("converged %s after the new controller started", time.Since(restarted).Round(time.Millisecond))
	pods := podsOf(t, ctx, got)
	if len(pods) != n {
		t.Fatalf("%d pods after restart (were %d at the kill), want exactly %d", len(pods), mid, n)
	}
	uids := map[types.UID]bool{}
	for _, p := range pods {
		uids[p.UID] = true
	}
	for _, ts := range allTasks(got) {
		if !uids[*ts.AttemptStatus.PodUID] || ts.AttemptStatus.ID != 0 {
			t.Fatalf("task %d records pod %s attempt %d: not one of the live pods or not the first attempt", ts.Index, *ts.AttemptStatus.PodUID, ts.AttemptStatus.ID)
		}
	}
	stopFramework(t, ctx, got)
	waitState(t, fw, "stopped", 60*time.Second, completed)
}

func TestFrameworkSurvivesAPIServerRestart(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startController(t, ns, 50)
	fw := newFramework(ns, "apirestart", taskRole("worker", 2, ""))
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	waitState(t, fw, "tasks ready", 2*time.Minute, func(fw *v1.Framework) bool { return fw.Status.ReadyTasks == "2/2" })
	restart := time.Now()
	env.RestartAPIServer(t)
	t.Logf("apiserver restarted in %s", time.Since(restart).Round(time.Millisecond))
	defer func() { t.Logf("completed %s after the restart began", time.Since(restart).Round(time.Millisecond)) }()
	for _, p := range podsOf(t, ctx, fw) {
		patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, testenv.AnnotationExitCode))
		if _, err := env.Clientset.CoreV1().Pods(ns).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("patch pod %s: %v", p.Name, err)
		}
	}
	got := waitState(t, fw, "framework Completed after the apiserver restart", 60*time.Second, completed)
	if cs := got.Status.AttemptStatus.CompletionStatus; !cs.Succeeded() {
		t.Errorf("completion = %+v, want Succeeded", cs)
	}
}

func TestSamplesReachCompleted(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "framework_*.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("samples: %v %v, want at least 2 files", files, err)
	}
	ns := env.Namespace(t)
	ctx := context.Background()
	startController(t, ns, 50)
	var fws []*v1.Framework
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// A sample may carry its task pods' ServiceAccount and RBAC before the Framework
		// (framework_pytorch.yaml): create those first, as kubectl apply would.
		fw := &v1.Framework{}
		for _, doc := range strings.Split(string(data), "\n---") {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			switch u.GetKind() {
			case "":
			case "Framework":
				if err := yaml.UnmarshalStrict([]byte(doc), fw); err != nil {
					t.Fatalf("%s: %v", file, err)
				}
			default:
				u.SetNamespace(ns)
				if err := env.Client.Create(ctx, u); err != nil {
					t.Fatalf("%s: create %s %s: %v", file, u.GetKind(), u.GetName(), err)
				}
			}
		}
		if fw.Name == "" {
			t.Fatalf("%s holds no Framework", file)
		}
		fw.Namespace = ns
		// Containers do not run on kwok nodes: make every task exit 0.
		for i := range fw.Spec.TaskRoles {
			pod := &fw.Spec.TaskRoles[i].Task.Pod
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[testenv.AnnotationExitCode] = "0"
		}
		if err := env.Client.Create(ctx, fw); err != nil {
			t.Fatalf("create %s: %v", file, err)
		}
		fws = append(fws, fw)
	}
	for _, fw := range fws {
		got := waitState(t, fw, "sample "+fw.Name+" Completed", 3*time.Minute, completed)
		if cs := got.Status.AttemptStatus.CompletionStatus; !cs.Succeeded() {
			t.Errorf("sample %s completed with %+v, want Succeeded", fw.Name, cs)
		}
	}
}
