package kueue_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/kueuemanager"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/testenv/fwtest"
	"github.com/podkit-dev/podkit/internal/toolbuild"
	"github.com/podkit-dev/podkit/pkg/kueue"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Cluster(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1.AddToScheme)
	}))
}

const (
	gpu = corev1.ResourceName("nvidia.com/gpu")
	// flavorLabel is the node label of the test's ResourceFlavor, which
	// only the GPU nodes carry.
	flavorLabel = "podkit.dev/test-gpu"
	flavorValue = "a100"
)

// TestKueue runs the Kueue cases against one real Kueue manager (v0.17.0,
// built from its module by toolbuild when the cache lacks it) beside the
// kwok cluster, on two kwok nodes of 4 nvidia.com/gpu each.
func TestKueue(t *testing.T) {
	ctx := context.Background()
	if err := toolbuild.BuildKueue(ctx, toolbuild.Options{Out: testWriter{t}}); err != nil {
		t.Fatalf("build kueue: %v", err)
	}
	dir := t.TempDir()
	mgr, err := kueuemanager.Start(ctx, kueuemanager.Options{Kubeconfig: env.Kubeconfig, Dir: dir})
	if err != nil {
		t.Fatalf("start kueue: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kueue's log ends:\n%s", mgr.LogTail(60))
		}
		_ = mgr.Stop()
	})
	addGPUNodes(t, ctx, 2, 4)
	t.Run("AtMostTwoOfThreeFourGPUFrameworksRunInAnEightGPUQueue", testQueueHoldsTheThird)
	t.Run("PreemptedFrameworkIsSuspendedNotFailedWithRetryCountsKept", testPreemptionSuspends)
	t.Run("UnsuspendedFrameworkIsHeldAndItsWorkloadFollowsTaskNumber", testUnsuspendedIsHeld)
}

// testQueueHoldsTheThird: a ClusterQueue of 8 GPUs and three Frameworks of
// 4 GPUs (2 tasks × 2): Kueue admits two (its quota: "ClusterQueue …
// nominalQuota", Kueue docs concepts/cluster_queue), the third stays
// suspended with no pods (the integration keeps a job suspended until its
// Workload is admitted: Kueue docs tasks/dev/integrate_a_custom_job,
// jobframework reconciler step "handle job is suspended"), and runs once
// one of the two finishes (a Finished Workload releases its quota: Kueue
// docs concepts/workload, "Finished"). Sampled throughout: never more than
// two Frameworks have pods.
func testQueueHoldsTheThird(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	startControllers(t, ns)
	queue := setUpQueue(t, ctx, ns, 8, "")

	sampler := sampleFrameworksWithPods(t, ns)
	names := []string{"a", "b", "c"}
	for _, n := range names {
		create(t, ctx, newFramework(ns, n, queue, "", 2, 2))
	}
	// Two run, one waits.
	var running, waiting []string
	testenv.WaitFor(t, 2*time.Minute, "two frameworks running and one suspended", func(ctx context.Context) (bool, error) {
		running, waiting = nil, nil
		for _, n := range names {
			if runningPods(t, ctx, ns, n) == 2 {
				running = append(running, n)
			} else {
				waiting = append(waiting, n)
			}
		}
		return len(running) == 2, nil
	})
	third := waiting[0]
	testenv.WaitFor(t, time.Minute, third+" suspended", func(ctx context.Context) (bool, error) {
		fw := get(t, ctx, ns, third)
		return fw.Spec.Suspend && apimeta.IsStatusConditionTrue(fw.Status.Conditions, v1.ConditionSuspended), nil
	})
	if n := len(pods(t, ctx, ns, third)); n != 0 {
		t.Errorf("the waiting framework %s has %d pods, want 0", third, n)
	}
	wl := workload(t, ctx, ns, third)
	if c := apimeta.FindStatusCondition(wlConditions(wl), kueue.CondQuotaReserved); c != nil && c.Status == metav1.ConditionTrue {
		t.Errorf("the waiting framework's workload holds quota: %+v", c)
	}
	// The running ones' pods carry the flavor's node labels (Kueue docs
	// concepts/resource_flavor: "Kueue adds the nodeLabels to the pod
	// nodeSelector" at admission) and are bound to GPU nodes.
	for _, n := range running {
		for _, p := range pods(t, ctx, ns, n) {
			if p.Spec.NodeSelector[flavorLabel] != flavorValue {
				t.Errorf("pod %s: nodeSelector %v lacks %s=%s", p.Name, p.Spec.NodeSelector, flavorLabel, flavorValue)
			}
			if !strings.HasPrefix(p.Spec.NodeName, "gpu-") {
				t.Errorf("pod %s bound to %q, want a GPU node", p.Name, p.Spec.NodeName)
			}
		}
	}

	// One finishes: the third runs.
	finishPods(t, ctx, ns, running[0])
	waitCompleted(t, ns, running[0])
	testenv.WaitFor(t, 2*time.Minute, third+" running after "+running[0]+" finished", func(ctx context.Context) (bool, error) {
		return runningPods(t, ctx, ns, third) == 2, nil
	})
	if c := apimeta.FindStatusCondition(wlConditions(workload(t, ctx, ns, running[0])), kueue.CondFinished); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("the finished framework's workload is not Finished: %+v", c)
	}
	finishPods(t, ctx, ns, running[1])
	finishPods(t, ctx, ns, third)
	for _, n := range []string{running[1], third} {
		waitCompleted(t, ns, n)
	}
	most, samples := sampler()
	t.Logf("%d samples; at most %d frameworks had pods at once", samples, most)
	if most > 2 {
		t.Errorf("%d frameworks had pods at once, want at most 2", most)
	}
	if most < 2 {
		t.Errorf("never saw two frameworks with pods (at most %d in %d samples): the sampler missed the run", most, samples)
	}
	for _, n := range names {
		fw := get(t, ctx, ns, n)
		if !apimeta.IsStatusConditionTrue(fw.Status.Conditions, v1.ConditionSucceeded) {
			t.Errorf("framework %s did not succeed: %+v", n, fw.Status.Conditions)
		}
	}
}

// testPreemptionSuspends: a ClusterQueue of 4 GPUs preempting lower
// priorities (preemption.withinClusterQueue LowerPriority: Kueue docs
// concepts/preemption). A low-priority Framework runs; a high-priority one
// arrives; Kueue evicts the first (Workload condition Evicted, reason
// Preempted: Kueue docs concepts/workload, "Evicted"); the integration
// stops it (jobframework reconciler step "handle eviction") through
// spec.suspend, so it is Suspended, not Failed, its retry counts unchanged
// (batch/v1 Job's suspend, KEP-2232), and it runs again, in a new
// attempt, once the high one finished.
func testPreemptionSuspends(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	startControllers(t, ns)
	low, high := "low-"+ns, "high-"+ns
	priorityClass(t, ctx, low, 100)
	priorityClass(t, ctx, high, 1000)
	queue := setUpQueue(t, ctx, ns, 4, "LowerPriority")

	create(t, ctx, newFramework(ns, "low", queue, low, 2, 2))
	testenv.WaitFor(t, 2*time.Minute, "low running", func(ctx context.Context) (bool, error) {
		return runningPods(t, ctx, ns, "low") == 2, nil
	})
	before := get(t, ctx, ns, "low").Status
	create(t, ctx, newFramework(ns, "high", queue, high, 2, 2))

	testenv.WaitFor(t, 2*time.Minute, "low suspended by preemption", func(ctx context.Context) (bool, error) {
		fw := get(t, ctx, ns, "low")
		return fw.Spec.Suspend && apimeta.IsStatusConditionTrue(fw.Status.Conditions, v1.ConditionSuspended), nil
	})
	if c := apimeta.FindStatusCondition(wlConditions(workload(t, ctx, ns, "low")), kueue.CondEvicted); c == nil || c.Reason != "Preempted" {
		t.Errorf("low's workload: Evicted condition %+v, want reason Preempted", c)
	}
	testenv.WaitFor(t, 2*time.Minute, "high running", func(ctx context.Context) (bool, error) {
		return runningPods(t, ctx, ns, "high") == 2, nil
	})
	after := get(t, ctx, ns, "low")
	if after.Status.State == v1.FrameworkCompleted || apimeta.IsStatusConditionTrue(after.Status.Conditions, v1.ConditionFailed) {
		t.Errorf("preempted framework completed or failed: state %s, conditions %+v", after.Status.State, after.Status.Conditions)
	}
	checkRetriesKept(t, before, after.Status)
	if len(pods(t, ctx, ns, "low")) != 0 {
		t.Errorf("the preempted framework still has pods")
	}

	finishPods(t, ctx, ns, "high")
	waitCompleted(t, ns, "high")
	testenv.WaitFor(t, 2*time.Minute, "low running again", func(ctx context.Context) (bool, error) {
		return runningPods(t, ctx, ns, "low") == 2, nil
	})
	again := get(t, ctx, ns, "low").Status
	if again.AttemptStatus.ID <= before.AttemptStatus.ID {
		t.Errorf("low resumed in attempt %d, want a new attempt after %d", again.AttemptStatus.ID, before.AttemptStatus.ID)
	}
	checkRetriesKept(t, before, again)
	finishPods(t, ctx, ns, "low")
	waitCompleted(t, ns, "low")
	if fw := get(t, ctx, ns, "low"); !apimeta.IsStatusConditionTrue(fw.Status.Conditions, v1.ConditionSucceeded) {
		t.Errorf("low did not succeed after its preemption: %+v", fw.Status.Conditions)
	}
}

// testUnsuspendedIsHeld: a Framework created without spec.suspend in a
// full queue is suspended by the integration (jobframework reconciler step
// "handle job is unsuspended": a running job whose Workload is not
// admitted is stopped) and ends with no pods; while it waits, a changed
// taskNumber replaces its Workload (Kueue's integrations recreate a
// Workload whose pod sets no longer match the job, jobframework
// "EnsureWorkload"); it runs with the new count once quota frees up.
func testUnsuspendedIsHeld(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	startControllers(t, ns)
	queue := setUpQueue(t, ctx, ns, 4, "")

	create(t, ctx, newFramework(ns, "first", queue, "", 2, 2))
	testenv.WaitFor(t, 2*time.Minute, "first running", func(ctx context.Context) (bool, error) {
		return runningPods(t, ctx, ns, "first") == 2, nil
	})
	late := newFramework(ns, "late", queue, "", 2, 2)
	late.Spec.Suspend = false
	create(t, ctx, late)
	testenv.WaitFor(t, 2*time.Minute, "late held suspended without pods", func(ctx context.Context) (bool, error) {
		fw := get(t, ctx, ns, "late")
		return fw.Spec.Suspend && apimeta.IsStatusConditionTrue(fw.Status.Conditions, v1.ConditionSuspended) && len(pods(t, ctx, ns, "late")) == 0, nil
	})

	patch := []byte(`[{"op":"replace","path":"/spec/taskRoles/0/taskNumber","value":1}]`)
	if err := env.Client.Patch(ctx, get(t, ctx, ns, "late"), client.RawPatch(types.JSONPatchType, patch)); err != nil {
		t.Fatalf("scale late to 1 task: %v", err)
	}
	testenv.WaitFor(t, time.Minute, "late's workload recreated with count 1", func(ctx context.Context) (bool, error) {
		wl := &unstructured.Unstructured{}
		wl.SetGroupVersionKind(kueue.WorkloadGVK)
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: kueue.WorkloadName("late")}, wl); err != nil {
			return false, nil
		}
		sets, _, _ := unstructured.NestedSlice(wl.Object, "spec", "podSets")
		return len(sets) == 1 && sets[0].(map[string]any)["count"] == int64(1), nil
	})

	finishPods(t, ctx, ns, "first")
	waitCompleted(t, ns, "first")
	testenv.WaitFor(t, 2*time.Minute, "late running its one task", func(ctx context.Context) (bool, error) {
		return runningPods(t, ctx, ns, "late") == 1, nil
	})
	finishPods(t, ctx, ns, "late")
	waitCompleted(t, ns, "late")
}

func checkRetriesKept(t *testing.T, before, after *v1.FrameworkStatus) {
	t.Helper()
	if b, a := before.RetryPolicyStatus, after.RetryPolicyStatus; b.TotalRetriedCount != a.TotalRetriedCount || b.AccountableRetriedCount != a.AccountableRetriedCount {
		t.Errorf("framework retry counts changed: %+v → %+v", b, a)
	}
	for _, rs := range after.AttemptStatus.TaskRoleStatuses {
		prev := before.AttemptStatus.TaskRoleStatus(rs.Name)
		if prev == nil {
			continue
		}
		for _, ts := range rs.TaskStatuses {
			for _, p := range prev.TaskStatuses {
				if p.Index == ts.Index && (p.RetryPolicyStatus.TotalRetriedCount != ts.RetryPolicyStatus.TotalRetriedCount || p.RetryPolicyStatus.AccountableRetriedCount != ts.RetryPolicyStatus.AccountableRetriedCount) {
					t.Errorf("task %s/%d retry counts changed: %+v → %+v", rs.Name, ts.Index, p.RetryPolicyStatus, ts.RetryPolicyStatus)
				}
			}
		}
	}
}

// startControllers runs podkit's Framework controller and the Kueue
// integration, each on a manager watching ns, until the test ends.
func startControllers(t *testing.T, ns string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			dumpState(t, ns)
		}
	})
	fwtest.Start(t, env, fwtest.Options{Namespace: ns})
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 fwtest.Scheme(t),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	r, err := kueue.New(kueue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "kueue integration manager", mgr.Start)
}

// setUpQueue creates a ResourceFlavor, a ClusterQueue of gpus
// nvidia.com/gpu (with preemption.withinClusterQueue when preempt is set)
// and a LocalQueue in ns pointing at it; it returns the LocalQueue's name.
func setUpQueue(t *testing.T, ctx context.Context, ns string, gpus int, preempt string) string {
	t.Helper()
	rf := "gpu-" + ns
	apply(t, ctx, fmt.Sprintf(`apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: %s}
spec:
  nodeLabels: {%q: %q}
`, rf, flavorLabel, flavorValue))
	preemption := ""
	if preempt != "" {
		preemption = "  preemption: {withinClusterQueue: " + preempt + "}\n"
	}
	apply(t, ctx, fmt.Sprintf(`apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: %s}
spec:
  namespaceSelector: {}
%s  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors:
    - name: %s
      resources:
      - {name: nvidia.com/gpu, nominalQuota: %d}
`, ns, preemption, rf, gpus))
	apply(t, ctx, fmt.Sprintf(`apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: gpus, namespace: %s}
spec: {clusterQueue: %s}
`, ns, ns))
	return "gpus"
}

func priorityClass(t *testing.T, ctx context.Context, name string, value int) {
	t.Helper()
	apply(t, ctx, fmt.Sprintf(`apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: %s}
value: %d
`, name, value))
}

// apply creates the object of a YAML manifest and deletes it when the test
// ends.
func apply(t *testing.T, ctx context.Context, manifest string) {
	t.Helper()
	objs, err := testenv.DecodeManifests([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
}

// addGPUNodes creates n kwok nodes (managed by kwok through its
// kwok.x-k8s.io/node annotation) declaring gpus nvidia.com/gpu each and
// the flavor's label, and waits until they are Ready.
func addGPUNodes(t *testing.T, ctx context.Context, n, gpus int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("gpu-%d", i)
		res := corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("32"),
			corev1.ResourceMemory: resource.MustParse("256Gi"),
			corev1.ResourcePods:   resource.MustParse("110"),
			gpu:                   *resource.NewQuantity(int64(gpus), resource.DecimalSI),
		}
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
				Labels:      map[string]string{"kubernetes.io/hostname": name, "type": "kwok", flavorLabel: flavorValue},
			},
			Status: corev1.NodeStatus{Capacity: res, Allocatable: res},
		}
		if err := env.Client.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create node %s: %v", name, err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), node) })
	}
	testenv.WaitFor(t, time.Minute, "GPU nodes ready", func(ctx context.Context) (bool, error) {
		for i := range n {
			node := &corev1.Node{}
			if err := env.Client.Get(ctx, types.NamespacedName{Name: fmt.Sprintf("gpu-%d", i)}, node); err != nil {
				return false, nil
			}
			q := node.Status.Allocatable[gpu]
			ready := false
			for _, c := range node.Status.Conditions {
				ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
			}
			if !ready || q.Value() != int64(gpus) {
				return false, nil
			}
		}
		return true, nil
	})
}

// newFramework is a suspended Framework in queue (and priority class pc
// when set) of one role of tasks pods, each requesting gpusPerTask; its
// pods run until finishPods.
func newFramework(ns, name, queue, pc string, tasks int32, gpusPerTask int64) *v1.Framework {
	q := *resource.NewQuantity(gpusPerTask, resource.DecimalSI)
	labels := map[string]string{kueue.LabelQueueName: queue}
	if pc != "" {
		labels[kueue.LabelPriorityClass] = pc
	}
	return &v1.Framework{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: v1.FrameworkSpec{
			// Created suspended, as Kueue's webhook would default a job
			// with a queue name (Kueue docs tasks/run/jobs: "Kueue will
			// suspend the Job"); without it the integration suspends it
			// on first sight.
			Suspend: true,
			TaskRoles: []v1.TaskRoleSpec{{
				Name:       "worker",
				TaskNumber: tasks,
				Task: v1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "main", Image: "busybox",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{gpu: q}, Limits: corev1.ResourceList{gpu: q}},
					}},
				}}},
			}},
		},
	}
}

func create(t *testing.T, ctx context.Context, fw *v1.Framework) {
	t.Helper()
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatalf("create framework %s: %v", fw.Name, err)
	}
}

// get returns the Framework, with an empty status before the controller
// wrote one.
func get(t *testing.T, ctx context.Context, ns, name string) *v1.Framework {
	t.Helper()
	fw := &v1.Framework{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, fw); err != nil {
		t.Fatalf("get framework %s: %v", name, err)
	}
	if fw.Status == nil {
		fw.Status = &v1.FrameworkStatus{}
	}
	return fw
}

func workload(t *testing.T, ctx context.Context, ns, fw string) *unstructured.Unstructured {
	t.Helper()
	wl := &unstructured.Unstructured{}
	wl.SetGroupVersionKind(kueue.WorkloadGVK)
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: kueue.WorkloadName(fw)}, wl); err != nil {
		t.Fatalf("get workload of %s: %v", fw, err)
	}
	return wl
}

func wlConditions(wl *unstructured.Unstructured) []metav1.Condition {
	raw, _, _ := unstructured.NestedSlice(wl.Object, "status", "conditions")
	var out []metav1.Condition
	for _, r := range raw {
		m, _ := r.(map[string]any)
		s := func(k string) string { v, _ := m[k].(string); return v }
		out = append(out, metav1.Condition{Type: s("type"), Status: metav1.ConditionStatus(s("status")), Reason: s("reason"), Message: s("message")})
	}
	return out
}

func pods(t *testing.T, ctx context.Context, ns, fw string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{v1.LabelFrameworkName: fw}); err != nil {
		t.Fatalf("list pods: %v", err)
	}
	return list.Items
}

func runningPods(t *testing.T, ctx context.Context, ns, fw string) int {
	n := 0
	for _, p := range pods(t, ctx, ns, fw) {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n
}

// finishPods makes every pod of fw exit 0 (testenv.AnnotationExitCode).
func finishPods(t *testing.T, ctx context.Context, ns, fw string) {
	t.Helper()
	for _, p := range pods(t, ctx, ns, fw) {
		patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, testenv.AnnotationExitCode))
		if err := env.Client.Patch(ctx, &p, client.RawPatch(types.MergePatchType, patch)); err != nil {
			t.Fatalf("finish pod %s: %v", p.Name, err)
		}
	}
}

func waitCompleted(t *testing.T, ns, name string) {
	t.Helper()
	testenv.WaitFor(t, 2*time.Minute, name+" completed", func(ctx context.Context) (bool, error) {
		return get(t, ctx, ns, name).Status.State == v1.FrameworkCompleted, nil
	})
}

// sampleFrameworksWithPods lists ns's pods every 50 ms until the returned
// function is called, which stops it and returns the most Frameworks seen
// with at least one pod (of any phase, deleting or not) at once and the
// number of samples.
func sampleFrameworksWithPods(t *testing.T, ns string) func() (most, samples int) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var most, samples int
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var list corev1.PodList
			if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err == nil {
				with := map[string]bool{}
				for _, p := range list.Items {
					with[p.Labels[v1.LabelFrameworkName]] = true
				}
				most = max(most, len(with))
				samples++
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	stop := func() (int, int) {
		cancel()
		wg.Wait()
		return most, samples
	}
	t.Cleanup(func() { stop() })
	return stop
}

// testWriter sends build progress to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// dumpState logs ns's Frameworks (suspend, state, conditions), Workloads
// (conditions) and pods, for a failed test.
func dumpState(t *testing.T, ns string) {
	ctx := context.Background()
	var fws v1.FrameworkList
	if err := env.Client.List(ctx, &fws, client.InNamespace(ns)); err == nil {
		for _, fw := range fws.Items {
			st := v1.FrameworkStatus{}
			if fw.Status != nil {
				st = *fw.Status
			}
			t.Logf("framework %s: generation %d suspend %v state %s attempt %d conditions %+v", fw.Name, fw.Generation, fw.Spec.Suspend, st.State, st.AttemptStatus.ID, st.Conditions)
		}
	}
	wls := &unstructured.UnstructuredList{}
	wls.SetGroupVersionKind(kueue.WorkloadGVK.GroupVersion().WithKind("WorkloadList"))
	if err := env.Client.List(ctx, wls, client.InNamespace(ns)); err == nil {
		for i := range wls.Items {
			wl := &wls.Items[i]
			sets, _, _ := unstructured.NestedSlice(wl.Object, "spec", "podSets")
			var counts []any
			for _, ps := range sets {
				counts = append(counts, ps.(map[string]any)["count"])
			}
			t.Logf("workload %s: deleting %v pod set counts %v conditions %+v", wl.GetName(), wl.GetDeletionTimestamp() != nil, counts, wlConditions(wl))
		}
	}
	var list corev1.PodList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err == nil {
		for _, p := range list.Items {
			t.Logf("pod %s: phase %s node %q deleting %v", p.Name, p.Status.Phase, p.Spec.NodeName, p.DeletionTimestamp != nil)
		}
	}
}
