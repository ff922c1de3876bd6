package framework_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/testenv"
)

// Conformance note. Every expectation below comes from upstream Kubernetes
// 1.37 (k8s.io/kubernetes v1.37.2, k8s.io/api v0.37.2), which the test's
// control plane is built from:
//   - k8s.io/api scheduling/v1beta1 types.go, GangSchedulingPolicy.MinCount:
//     "the minimum number of pods that must be schedulable or scheduled at
//     the same time for the scheduler to admit the entire group" — so a gang
//     of 3 binds 3 or none.
//   - pkg/scheduler/framework/plugins/gangscheduling/gangscheduling.go,
//     Permit: pods wait at Permit until minCount are assumed, then all are
//     allowed together; PlacementFeasible: "minCount (%d) cannot be
//     satisfied" when the nodes cannot hold the gang.
//   - pkg/scheduler/schedule_one_podgroup.go, submitPodGroupAlgorithmResult:
//     the PodGroup's PodGroupInitiallyScheduled condition is True once the
//     gang is placed, False with reason Unschedulable and the algorithm's
//     message when it cannot be — the reason and message GangScheduled
//     carries.
//   - pkg/scheduler/apis/config/v1/default_plugins.go, applyFeatureGates:
//     GangScheduling joins the default profile when GenericWorkload is on;
//     pkg/features/kube_features.go: GenericWorkload is beta, default off,
//     in 1.37 (so the dev cluster turns it on, see devcluster.GangFeatureGates).
//   - k8s.io/api core/v1 types.go, PodSpec.SchedulingGroup.PodGroupName:
//     how a pod names its PodGroup.
// The node capacity (2 kwok nodes × 4 nvidia.com/gpu) comes from TestMain.

// gpuRole is a role of n tasks that each ask for gpus nvidia.com/gpu and
// keep running until the test annotates their pods.
func gpuRole(name string, n int32, gpus int64) v1.TaskRoleSpec {
	r := taskRole(name, n, "")
	q := *resource.NewQuantity(gpus, resource.DecimalSI)
	r.Task.Pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{gpuResource: q},
		Limits:   corev1.ResourceList{gpuResource: q},
	}
	return r
}

const gpuResource = corev1.ResourceName("nvidia.com/gpu")

// bindRecorder watches the namespace's pods and records, in the order the
// apiserver serialised them (one watch is ordered by resourceVersion), every
// first binding of a pod, by Framework.
type bindRecorder struct {
	mu sync.Mutex
	// binds are the Framework names of the pods bound, in watch order.
	binds []string
	// seen holds the UIDs already counted.
	seen map[types.UID]bool
	// samples counts, per Framework, the events of its pods at which it
	// had 0, 1, 2 or 3 pods ever bound.
	samples map[string]map[int]int
	bound   map[string]int
}

func recordBinds(t *testing.T, ns string) *bindRecorder {
	t.Helper()
	b := &bindRecorder{seen: map[types.UID]bool{}, samples: map[string]map[int]int{}, bound: map[string]int{}}
	w, err := env.Clientset.CoreV1().Pods(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch pods: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			b.observe(pod)
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return b
}

func (b *bindRecorder) observe(pod *corev1.Pod) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fw := pod.Labels[v1.LabelFrameworkName]
	if fw == "" {
		return
	}
	if pod.Spec.NodeName != "" && !b.seen[pod.UID] {
		b.seen[pod.UID] = true
		b.binds = append(b.binds, fw)
		b.bound[fw]++
	}
	if b.samples[fw] == nil {
		b.samples[fw] = map[int]int{}
	}
	b.samples[fw][b.bound[fw]]++
}

func (b *bindRecorder) snapshot() ([]string, map[string]map[int]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	samples := map[string]map[int]int{}
	for fw, m := range b.samples {
		samples[fw] = map[int]int{}
		for k, v := range m {
			samples[fw][k] = v
		}
	}
	return append([]string(nil), b.binds...), samples
}

// boundPods counts fw's pods that are bound to a node and not finished.
func boundPods(t *testing.T, ctx context.Context, fw *v1.Framework) int {
	t.Helper()
	n := 0
	for _, p := range podsOf(t, ctx, fw) {
		if p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			n++
		}
	}
	return n
}

func completePods(t *testing.T, ctx context.Context, fw *v1.Framework) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"0"}}}`, testenv.AnnotationExitCode)
	for _, p := range podsOf(t, ctx, fw) {
		if err := env.Client.Patch(ctx, &p, client.RawPatch(types.MergePatchType, patch)); err != nil {
			t.Fatalf("annotate pod %s: %v", p.Name, err)
		}
	}
}

func gangCondition(fw *v1.Framework) *metav1.Condition {
	return meta.FindStatusCondition(fw.Status.Conditions, v1.ConditionGangScheduled)
}

func gangReason(reason string) func(*v1.Framework) bool {
	return func(fw *v1.Framework) bool {
		c := gangCondition(fw)
		return c != nil && c.Reason == reason
	}
}

// TestTwoGangsThatCannotBothFitArePlacedOneWholeAfterTheOther submits two
// Frameworks of 3 tasks × 2 GPUs together onto 2 nodes × 4 GPUs: 12 GPUs
// asked, 8 there. Placed one by one (barrier-only) both could get 2 pods
// and wait for each other; as gangs one is placed whole, the other waits
// with no pod bound, and runs once the first completes.
//
// Samples: the scheduler binds a placed gang's pods with one API write each,
// so a watch sees 1 and 2 bound pods for the instants between those writes.
// What the gang guarantees, and what is asserted at every event, is that
// those partial counts only occur inside one bind run: a Framework's 3
// binds are consecutive in the apiserver's order, never interleaved with
// the other Framework's, and every run reaches 3.
func TestTwoGangsThatCannotBothFitArePlacedOneWholeAfterTheOther(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	rec := recordBinds(t, ns)
	startController(t, ns, 50)
	a := newFramework(ns, "gang-a", gpuRole("worker", 3, 2))
	b := newFramework(ns, "gang-b", gpuRole("worker", 3, 2))
	for _, fw := range []*v1.Framework{a, b} {
		if err := env.Client.Create(ctx, fw); err != nil {
			t.Fatal(err)
		}
	}

	// One gang is placed whole; the other has no pod bound and is
	// Unschedulable (PlacementFeasible: minCount cannot be satisfied).
	var first, second *v1.Framework
	testenv.WaitFor(t, 2*time.Minute, "one gang placed", func(ctx context.Context) (bool, error) {
		for _, fw := range []*v1.Framework{a, b} {
			if boundPods(t, ctx, fw) == 3 {
				first = fw
				return true, nil
			}
		}
		return false, nil
	})
	second = b
	if first == b {
		second = a
	}
	got := waitState(t, second, "the other gang Unschedulable", 2*time.Minute, gangReason(v1.ReasonUnschedulable))
	if c := gangCondition(got); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "minCount (3)") {
		t.Errorf("GangScheduled of %s = %+v, want False with the scheduler's minCount message", second.Name, c)
	}
	if n := boundPods(t, ctx, second); n != 0 {
		t.Fatalf("%s has %d bound pods while %s holds 6 of 8 GPUs; want 0", second.Name, n, first.Name)
	}
	waitState(t, first, "first gang GangScheduled", time.Minute, gangReason(v1.ReasonGangPlaced))
	for _, p := range podsOf(t, ctx, first) {
		if sg := p.Spec.SchedulingGroup; sg == nil || sg.PodGroupName == nil || *sg.PodGroupName != v1.PodGroupName(first.Name, 0) {
			t.Errorf("pod %s: schedulingGroup %+v, want podGroupName %s", p.Name, sg, v1.PodGroupName(first.Name, 0))
		}
	}

	completePods(t, ctx, first)
	waitState(t, first, "first Completed", 2*time.Minute, conditionTrue(v1.ConditionSucceeded))
	testenv.WaitFor(t, 2*time.Minute, "second gang placed", func(ctx context.Context) (bool, error) {
		return boundPods(t, ctx, second) == 3, nil
	})
	waitState(t, second, "second gang GangScheduled", time.Minute, gangReason(v1.ReasonGangPlaced))
	completePods(t, ctx, second)
	waitState(t, second, "second Completed", 2*time.Minute, conditionTrue(v1.ConditionSucceeded))

	binds, samples := rec.snapshot()
	t.Logf("bind order %v; bound-pod counts sampled at each pod event: %v", binds, samples)
	if len(binds) != 6 {
		t.Fatalf("%d binds %v, want 6 (3 per Framework, no retry)", len(binds), binds)
	}
	for i := 0; i < 6; i += 3 {
		if binds[i] != binds[i+1] || binds[i] != binds[i+2] {
			t.Errorf("binds %v: a gang's 3 binds are interleaved with the other's", binds)
		}
	}
	if binds[0] != first.Name {
		t.Errorf("binds %v start with %s, want %s (placed first)", binds, binds[0], first.Name)
	}
	for _, fw := range []*v1.Framework{a, b} {
		if pgs := podGroups(t, ctx, fw); len(pgs) != 0 {
			t.Errorf("%s completed and still has PodGroups %v; they go with the attempt", fw.Name, pgs)
		}
	}
}

func podGroups(t *testing.T, ctx context.Context, fw *v1.Framework) []string {
	t.Helper()
	var list schedulingv1beta1.PodGroupList
	if err := env.Client.List(ctx, &list, client.InNamespace(fw.Namespace), client.MatchingLabels{v1.LabelFrameworkName: fw.Name}); err != nil {
		t.Fatalf("list podgroups: %v", err)
	}
	var names []string
	for _, pg := range list.Items {
		if pg.DeletionTimestamp == nil {
			names = append(names, pg.Name)
		}
	}
	return names
}

// TestGangThatCannotFitHasNoPodBoundAndIsUnschedulable asks 5 × 2 GPUs of
// 8: one by one, 4 pods would bind and hold all GPUs; as a gang none does,
// and GangScheduled says why in the scheduler's words.
func TestGangThatCannotFitHasNoPodBoundAndIsUnschedulable(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startController(t, ns, 50)
	fw := newFramework(ns, "too-big", gpuRole("worker", 5, 2))
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, fw, "GangScheduled Unschedulable", 2*time.Minute, gangReason(v1.ReasonUnschedulable))
	c := gangCondition(got)
	if c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "minCount (5) cannot be satisfied") {
		t.Errorf("GangScheduled = %+v, want False with the scheduler's \"minCount (5) cannot be satisfied\"", c)
	}
	if n := boundPods(t, ctx, fw); n != 0 {
		t.Errorf("%d pods bound; want 0 (all-or-nothing)", n)
	}
	// The pods' FailedScheduling events (what podkit describe fw shows)
	// carry the gang's reason too.
	testenv.WaitFor(t, time.Minute, "a FailedScheduling event naming the gang's minCount", func(ctx context.Context) (bool, error) {
		evs, err := env.Clientset.EventsV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedScheduling"})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if strings.Contains(ev.Note, "minCount (5)") {
				return true, nil
			}
		}
		return false, nil
	})
	pg := &schedulingv1beta1.PodGroup{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1.PodGroupName(fw.Name, 0)}, pg); err != nil {
		t.Fatalf("get the attempt's PodGroup: %v", err)
	}
	if g := pg.Spec.SchedulingPolicy.Gang; g == nil || g.MinCount != 5 || !metav1.IsControlledBy(pg, got) {
		t.Errorf("PodGroup spec %+v owners %+v, want gang minCount 5 controlled by the Framework", pg.Spec.SchedulingPolicy, pg.OwnerReferences)
	}

	// Stopping the Framework deletes the attempt's PodGroup with its pods.
	stopFramework(t, ctx, fw)
	waitState(t, fw, "Completed", 2*time.Minute, completed)
	err := env.Client.Get(ctx, client.ObjectKeyFromObject(pg), &schedulingv1beta1.PodGroup{})
	if !apierrors.IsNotFound(err) {
		if names := podGroups(t, ctx, fw); len(names) > 0 {
			t.Errorf("PodGroups %v remain after the attempt ended (get: %v)", names, err)
		}
	}
}

// TestFrameworkRetryGetsAFreshGang fails the first attempt (a task exits 5,
// framework retryPolicy 1): the retry is placed through a new PodGroup, the
// first attempt's goes with it.
func TestFrameworkRetryGetsAFreshGang(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startController(t, ns, 50)
	role := gpuRole("worker", 2, 1)
	fw := newFramework(ns, "regang", role)
	fw.Spec.RetryPolicy.MaxRetryCount = 1
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	waitState(t, fw, "attempt 0 placed", 2*time.Minute, gangReason(v1.ReasonGangPlaced))
	fail := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"5"}}}`, testenv.AnnotationExitCode)
	p := podsOf(t, ctx, fw)[0]
	if err := env.Client.Patch(ctx, &p, client.RawPatch(types.MergePatchType, fail)); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, fw, "attempt 1 placed", 2*time.Minute, func(fw *v1.Framework) bool {
		c := gangCondition(fw)
		return fw.Status.AttemptStatus.ID == 1 && c != nil && c.Reason == v1.ReasonGangPlaced && strings.Contains(c.Message, "attempt 1")
	})
	if names := podGroups(t, ctx, got); len(names) != 1 || names[0] != v1.PodGroupName(fw.Name, 1) {
		t.Errorf("PodGroups %v in attempt 1, want only %s", names, v1.PodGroupName(fw.Name, 1))
	}
	for _, p := range podsOf(t, ctx, fw) {
		if sg := p.Spec.SchedulingGroup; sg == nil || *sg.PodGroupName != v1.PodGroupName(fw.Name, 1) {
			t.Errorf("pod %s of attempt 1: schedulingGroup %+v", p.Name, sg)
		}
	}
	completePods(t, ctx, fw)
	waitState(t, fw, "Succeeded", 2*time.Minute, conditionTrue(v1.ConditionSucceeded))
}

// TestRetriedTaskAfterPlacementJoinsNoGang: once the gang is placed, a
// retried task's pod names no PodGroup. Upstream the scheduler counts only
// a group's live pods (pkg/scheduler/scheduler.go: its pod informer selects
// status.phase!=Succeeded,Failed; pkg/scheduler/backend/cache/
// podgroupstate.go allPods; gangscheduling.go PreEnqueue: "waiting for
// minCount pods from a gang to appear in scheduling queue"), so here — task 1 succeeded and is
// gone, task 0 fails and is retried — a replacement in the gang of 2 would
// wait forever; outside it, it runs and the Framework succeeds.
func TestRetriedTaskAfterPlacementJoinsNoGang(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startController(t, ns, 50)
	role := gpuRole("worker", 2, 1)
	role.Task.RetryPolicy.MaxRetryCount = 1
	fw := newFramework(ns, "retask", role)
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	waitState(t, fw, "gang placed", 2*time.Minute, gangReason(v1.ReasonGangPlaced))
	exit := func(pod, code string) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pod}}
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, testenv.AnnotationExitCode, code)
		if err := env.Client.Patch(ctx, p, client.RawPatch(types.MergePatchType, patch)); err != nil {
			t.Fatalf("annotate pod %s: %v", pod, err)
		}
	}
	task := func(fw *v1.Framework, i int) v1.TaskStatus {
		return fw.Status.AttemptStatus.TaskRoleStatuses[0].TaskStatuses[i]
	}
	exit("retask-worker-1", "0")
	waitState(t, fw, "task 1 completed", 2*time.Minute, func(fw *v1.Framework) bool { return task(fw, 1).State == v1.TaskCompleted })
	exit("retask-worker-0", "3")
	got := waitState(t, fw, "task 0 retried and running", 2*time.Minute, func(fw *v1.Framework) bool {
		ts := task(fw, 0)
		return ts.AttemptStatus.ID == 1 && ts.State == v1.TaskAttemptRunning
	})
	pod, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, "retask-worker-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.UID != *task(got, 0).AttemptStatus.PodUID || pod.Spec.SchedulingGroup != nil || pod.Spec.NodeName == "" {
		t.Errorf("retried pod %s: schedulingGroup %+v node %q; want the task's new pod, bound, in no group", pod.Name, pod.Spec.SchedulingGroup, pod.Spec.NodeName)
	}
	if c := gangCondition(got); c == nil || c.Reason != v1.ReasonGangPlaced {
		t.Errorf("GangScheduled after the retry = %+v, want it to stay %s", c, v1.ReasonGangPlaced)
	}
	exit("retask-worker-0", "0")
	waitState(t, fw, "Succeeded", 2*time.Minute, conditionTrue(v1.ConditionSucceeded))
}

// TestSuspensionDeletesTheGangAndResumeMakesANewOne: a suspension ends the
// attempt (see suspend.go) and with it its PodGroup; the resumed attempt is
// placed through its own.
func TestSuspensionDeletesTheGangAndResumeMakesANewOne(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startController(t, ns, 50)
	fw := newFramework(ns, "pause", gpuRole("worker", 2, 2))
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	waitState(t, fw, "attempt 0 placed", 2*time.Minute, gangReason(v1.ReasonGangPlaced))
	setSuspend(t, ctx, fw, true)
	got := waitState(t, fw, "Suspended", 2*time.Minute, conditionTrue(v1.ConditionSuspended))
	if names := podGroups(t, ctx, got); len(names) != 0 {
		t.Errorf("PodGroups %v of a suspended Framework, want none", names)
	}
	setSuspend(t, ctx, fw, false)
	got = waitState(t, fw, "attempt 1 placed", 2*time.Minute, func(fw *v1.Framework) bool {
		c := gangCondition(fw)
		return fw.Status.AttemptStatus.ID == 1 && c != nil && c.Reason == v1.ReasonGangPlaced && strings.Contains(c.Message, "attempt 1")
	})
	if names := podGroups(t, ctx, got); len(names) != 1 || names[0] != v1.PodGroupName(fw.Name, 1) {
		t.Errorf("PodGroups %v after the resume, want only %s", names, v1.PodGroupName(fw.Name, 1))
	}
	completePods(t, ctx, fw)
	waitState(t, fw, "Succeeded", 2*time.Minute, conditionTrue(v1.ConditionSucceeded))
}
