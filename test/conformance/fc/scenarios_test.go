package fc_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/barrier"
)

// TestFrameworkControllerScenarios runs FC's example scenarios side by side
// on one controller. Each expectation names the FC example it comes from
// (example/framework/basic/*.yaml and doc/user-manual.md#RetryPolicy).
func TestFrameworkControllerScenarios(t *testing.T) {
	ns := env.Namespace(t)
	startController(t, ns)

	// batchsucceeded.yaml: one task that exits 0. Every status written is
	// watched: the states come in FC's order (types.go), through
	// AttemptCreationRequested (until the ConfigMap is in the cache).
	t.Run("succeeded", func(t *testing.T) {
		t.Parallel()
		states := watchStates(t, ns, "batchsucceeded")
		fw := create(t, ns, manifest("batchsucceeded", false, 0, role("worker", 1, false, 0, 1, -1, "0", "")))
		got := waitFor(t, fw, "Completed", completed)
		seen := states(t, got)
		t.Logf("states written: %v", seen)
		checkStateOrder(t, seen, v1.FrameworkAttemptCreationRequested, v1.FrameworkAttemptPreparing, v1.FrameworkAttemptDeletionPending, v1.FrameworkCompleted)
		check(t, got, want{0, "Succeeded", "[]", 0, 0})
		if ts := task(got, "worker", 0); ts.AttemptStatus.PodName != "batchsucceeded-worker-0" || ts.State != v1.TaskCompleted {
			t.Errorf("task = %s %s, FC: pod batchsucceeded-worker-0, Completed", ts.AttemptStatus.PodName, ts.State)
		}
	})

	// batchfailedpermanent.yaml: exit 210 under fancyRetryPolicy and
	// maxRetryCount 1 is Permanent: never retried, at either level.
	t.Run("failed permanent", func(t *testing.T) {
		t.Parallel()
		fw := create(t, ns, manifest("batchfailedpermanent", true, 1, role("worker", 1, true, 1, 1, -1, "210", "")))
		got := waitFor(t, fw, "Completed", completed)
		check(t, got, want{210, "ContainerPermanentFailed", "[Permanent]", 0, 0})
		if rs := task(got, "worker", 0).RetryPolicyStatus; rs.TotalRetriedCount != 0 {
			t.Errorf("task retried %d times, FC: never", rs.TotalRetriedCount)
		}
	})

	// batchfailedunknown.yaml: exit 1 is unrecognised (no attribute):
	// retried within maxRetryCount 1 at each level, every retry counted.
	t.Run("failed unknown", func(t *testing.T) {
		t.Parallel()
		fw := create(t, ns, manifest("batchfailedunknown", true, 1, role("worker", 1, true, 1, 1, -1, "1", "")))
		got := waitFor(t, fw, "Completed", completed)
		check(t, got, want{1, "ContainerUnrecognizedFailed", "[]", 1, 1})
		if rs := task(got, "worker", 0).RetryPolicyStatus; rs.TotalRetriedCount != 1 || rs.AccountableRetriedCount != 1 {
			t.Errorf("last attempt's task retried %+v, FC: 1 (1 accountable)", rs)
		}
	})

	// batchfailedtransient.yaml: exit 200 under fancyRetryPolicy is always
	// retried and never counted, whatever maxRetryCount says.
	t.Run("failed transient", func(t *testing.T) {
		t.Parallel()
		fw := create(t, ns, manifest("batchfailedtransient", true, 1, role("worker", 1, true, 1, 1, -1, "200", "")))
		got := waitFor(t, fw, "task retried 3 times", func(fw *v1.Framework) bool {
			ts := task(fw, "worker", 0)
			return ts != nil && ts.RetryPolicyStatus.TotalRetriedCount >= 3
		})
		ts := task(got, "worker", 0)
		if ts.RetryPolicyStatus.AccountableRetriedCount != 0 || got.Status.AttemptStatus.ID != 0 {
			t.Errorf("after 3 transient failures: task %+v, framework attempt %d; FC: none accountable, attempt 0", ts.RetryPolicyStatus, got.Status.AttemptStatus.ID)
		}
		if ts.AttemptStatus.PodName != "batchfailedtransient-worker-0" {
			t.Errorf("retried pod %s, FC keeps the name batchfailedtransient-worker-0", ts.AttemptStatus.PodName)
		}
		stop(t, got)
		check(t, waitFor(t, fw, "Completed after Stop", completed), want{-210, "StopFrameworkRequested", "[Permanent]", 0, 0})
	})

	// batchfailedtransientconflict.yaml: exit 201 is Transient and
	// Conflict. The task policy (false, 0) does not retry it, so the
	// attempt fails with 201; the framework policy (fancy, 1) retries it
	// without counting, after a random back-off (retryDelaySec).
	t.Run("failed transient conflict", func(t *testing.T) {
		t.Parallel()
		fw := create(t, ns, manifest("batchfailedtransientconflict", true, 1, role("worker", 1, false, 0, 1, -1, "201", "")))
		var waited *v1.Framework
		got := waitFor(t, fw, "second framework attempt", func(fw *v1.Framework) bool { return fw.Status.AttemptStatus.ID >= 1 },
			func(fw *v1.Framework) {
				if fw.Status.State == v1.FrameworkAttemptCompleted && waited == nil {
					waited = fw.DeepCopy()
				}
			})
		if waited == nil || waited.Status.RetryPolicyStatus.RetryDelaySec == nil || *waited.Status.RetryPolicyStatus.RetryDelaySec != conflictDelay {
			t.Errorf("never saw AttemptCompleted with retryDelaySec %d before the retry (saw %+v)", conflictDelay, waited)
		} else {
			check(t, waited, want{201, "ContainerTransientConflictFailed", "[Transient,Conflict]", 0, 0})
		}
		if rs := got.Status.RetryPolicyStatus; rs.TotalRetriedCount < 1 || rs.AccountableRetriedCount != 0 {
			t.Errorf("framework retries %+v, FC: counted in total only", rs)
		}
		stop(t, got)
		waitFor(t, fw, "Completed after Stop", completed)
	})

	// batchstatefulfailed.yaml: tasks keep their names (identity) across
	// retries; each attempt has its own instance UID.
	t.Run("stateful", func(t *testing.T) {
		t.Parallel()
		fw := create(t, ns, manifest("batchstatefulfailed", false, 0, role("worker", 3, false, 1, 3, -1, "1", "")))
		got := waitFor(t, fw, "Completed", completed)
		check(t, got, want{1, "ContainerUnrecognizedFailed", "[]", 0, 0})
		for i := range 3 {
			ts := task(got, "worker", i)
			as := ts.AttemptStatus
			if as.PodName != "batchstatefulfailed-worker-"+string(rune('0'+i)) || as.ID != 1 || as.InstanceUID == nil ||
				!strings.HasPrefix(string(*as.InstanceUID), "1_") || ts.RetryPolicyStatus.TotalRetriedCount != 1 {
				t.Errorf("task %d: pod %s attempt %d instance %v retried %d; FC: same name, attempt 1, instance 1_<pod UID>, retried once",
					i, as.PodName, as.ID, as.InstanceUID, ts.RetryPolicyStatus.TotalRetriedCount)
			}
		}
	})

	// batchwithservicesucceeded.yaml: servers never exit; three workers
	// succeed and minSucceededTaskCount 3 succeeds the attempt; the servers
	// are deleted with FrameworkAttemptCompletion.
	t.Run("with service", func(t *testing.T) {
		t.Parallel()
		fw := create(t, ns, manifest("batchwithservicesucceeded", false, 0,
			role("server", 2, false, 0, 1, -1, "", ""),
			role("worker", 3, false, 0, 1, 3, "0", "")))
		got := waitFor(t, fw, "Completed", completed)
		check(t, got, want{0, "Succeeded", "[]", 0, 0})
		if tr := got.Status.AttemptStatus.CompletionStatus.Trigger; tr == nil || tr.TaskRoleName != "worker" || !strings.Contains(tr.Message, "MinSucceededTaskCount 3") {
			t.Errorf("trigger = %+v, FC: the worker role's MinSucceededTaskCount 3", tr)
		}
		for i := range 2 {
			cs := task(got, "server", i).AttemptStatus.CompletionStatus
			if cs == nil || cs.Code != v1.CompletionCodeFrameworkAttemptCompletion || attrs(cs.Type) != "[Permanent]" {
				t.Errorf("server %d completion %+v, FC: -220 FrameworkAttemptCompletion [Permanent]", i, cs)
			}
		}
	})

	// The TensorFlow parameter-server scenario: a failed worker fails the
	// attempt with its own code; the parameter servers are cleaned up.
	t.Run("tensorflow ps", func(t *testing.T) {
		t.Parallel()
		fw := create(t, ns, manifest("tensorflowps", false, 0,
			role("ps", 2, false, 0, 1, -1, "", ""),
			role("worker", 2, false, 0, 1, 2, "3", "")))
		got := waitFor(t, fw, "Completed", completed)
		check(t, got, want{3, "ContainerUnrecognizedFailed", "[]", 0, 0})
		if cs := task(got, "ps", 0).AttemptStatus.CompletionStatus; cs == nil || cs.Code != v1.CompletionCodeFrameworkAttemptCompletion {
			t.Errorf("ps completion %+v, FC: -220", cs)
		}
	})

	// service.yaml (retryPolicy -2 at both levels) with restartPolicy
	// Always: a service whose pod ends is retried even after success, and
	// every retry counts.
	t.Run("service", func(t *testing.T) {
		t.Parallel()
		m := manifest("service", false, -2, role("server", 1, false, -2, 1, -1, "0", ""))
		m = strings.Replace(m, "restartPolicy: Never", "restartPolicy: Always", 1)
		fw := create(t, ns, m)
		got := waitFor(t, fw, "task retried twice after success", func(fw *v1.Framework) bool {
			ts := task(fw, "server", 0)
			return ts != nil && ts.RetryPolicyStatus.AccountableRetriedCount >= 2
		})
		if got.Status.AttemptStatus.ID != 0 || got.Status.State == v1.FrameworkCompleted {
			t.Errorf("service framework state %s attempt %d, FC: keeps running attempt 0", got.Status.State, got.Status.AttemptStatus.ID)
		}
		stop(t, got)
		check(t, waitFor(t, fw, "Completed after Stop", completed), want{-210, "StopFrameworkRequested", "[Permanent]", 0, 0})
	})

	// servicestateful.yaml and the PyTorch elastic README: {{FC_*}}
	// placeholders in the pod template become the task's identity.
	t.Run("placeholders", func(t *testing.T) {
		t.Parallel()
		extra := "\n          hostname: \"{{FC_TASKROLE_NAME}}-{{FC_TASK_INDEX}}\"\n          subdomain: \"{{FC_FRAMEWORK_NAME}}-{{FC_TASKROLE_NAME}}\""
		fw := create(t, ns, manifest("servicestateful", false, 0, role("server", 2, false, 0, 1, -1, "", extra)))
		waitFor(t, fw, "two pods created", func(fw *v1.Framework) bool {
			return fw.Status.AttemptStatus.ConfigMapUID != nil && task(fw, "server", 1).AttemptStatus.PodUID != nil
		})
		for i, want := range []string{"server-0", "server-1"} {
			pod := &corev1.Pod{}
			if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "servicestateful-server-" + string(rune('0'+i))}, pod); err != nil {
				t.Fatal(err)
			}
			if pod.Spec.Hostname != want || pod.Spec.Subdomain != "servicestateful-server" {
				t.Errorf("pod %s hostname %q subdomain %q, FC: %q and servicestateful-server", pod.Name, pod.Spec.Hostname, pod.Spec.Subdomain, want)
			}
			if p := pod.Spec.Containers[0].TerminationMessagePolicy; p != corev1.TerminationMessageFallbackToLogsOnError {
				t.Errorf("terminationMessagePolicy %q, FC: FallbackToLogsOnError", p)
			}
		}
		stop(t, fw)
		waitFor(t, fw, "Completed after Stop", completed)
	})

	// executionType Create holds the Framework: no ConfigMap, no pod,
	// until it is set to Start.
	t.Run("execution type create", func(t *testing.T) {
		t.Parallel()
		m := strings.Replace(manifest("created", false, 0, role("worker", 2, false, 0, 1, -1, "0", "")), "executionType: Start", "executionType: Create", 1)
		fw := create(t, ns, m)
		got := waitFor(t, fw, "status written", func(fw *v1.Framework) bool { return fw.Status.State == v1.FrameworkAttemptCreationPending })
		var pods corev1.PodList
		if err := env.Client.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{v1.LabelFrameworkName: "created"}); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 0 || got.Status.AttemptStatus.ConfigMapUID != nil {
			t.Errorf("a Create Framework has %d pods and ConfigMap %v, want none", len(pods.Items), got.Status.AttemptStatus.ConfigMapUID)
		}
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"executionType":"Start"}}`))
		if err := env.Client.Patch(context.Background(), got, patch); err != nil {
			t.Fatal(err)
		}
		check(t, waitFor(t, fw, "Completed after Start", completed), want{0, "Succeeded", "[]", 0, 0})
	})

	// A pod the apiserver refuses is PodCreationPermanentError, which FC
	// never retries (ShouldRetry's built-in rule), even with -1.
	t.Run("pod creation refused", func(t *testing.T) {
		t.Parallel()
		m := strings.Replace(manifest("refused", false, -1, role("worker", 1, false, -1, 1, -1, "0", "")), "- name: main", "- name: Not_A_DNS_Label", 1)
		fw := create(t, ns, m)
		got := waitFor(t, fw, "Completed", completed)
		check(t, got, want{-200, "PodCreationPermanentError", "[Permanent]", 0, 0})
	})

	// extension/frameworkbarrier.yaml: 10 servers and 10 workers; the
	// barrier releases once every task has a pod IP, with every address.
	t.Run("barrier", func(t *testing.T) {
		t.Parallel()
		fw := create(t, ns, manifest("frameworkbarrier", false, 0, role("server", 10, false, 0, 1, -1, "", ""), role("worker", 10, false, 0, 1, -1, "", "")))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		released, err := barrier.Wait(ctx, barrier.Config{KubeConfigFilePath: env.Kubeconfig, FrameworkNamespace: ns, FrameworkName: fw.Name})
		if err != nil {
			t.Fatalf("barrier: %v", err)
		}
		peers, err := barrier.PeersOf(released)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range peers {
			if p.Name != []string{"server", "worker"}[i] || len(p.IPs) != 10 {
				t.Errorf("peers %d: %s with %d IPs, FC's barrier: server then worker, 10 each", i, p.Name, len(p.IPs))
			}
			for j, ip := range p.IPs {
				if want := task(released, p.Name, j).AttemptStatus.PodIP; want == nil || *want != ip {
					t.Errorf("%s-%d: barrier IP %s, status %v", p.Name, j, ip, want)
				}
			}
		}
		stop(t, released)
		waitFor(t, fw, "Completed after Stop", completed)
	})

	// rescalebasic (doc/user-manual.md, Framework Rescale): a scale down
	// deletes the highest indices with DeleteTaskRequested and drops them
	// from the status; a scale up adds new tasks, never reusing a deleted
	// one; roles are added and deleted on the live Framework.
	t.Run("rescale", func(t *testing.T) {
		t.Parallel()
		fw := create(t, ns, manifest("rescalebasic", false, 0, role("a", 4, false, 0, 1, -1, "", "")))
		running := func(role string, n int) func(*v1.Framework) bool {
			return func(fw *v1.Framework) bool {
				rs := fw.Status.AttemptStatus.TaskRoleStatus(role)
				if rs == nil || len(rs.TaskStatuses) != n {
					return false
				}
				for _, ts := range rs.TaskStatuses {
					if ts.State != v1.TaskAttemptRunning || ts.DeletionPending {
						return false
					}
				}
				return true
			}
		}
		got := waitFor(t, fw, "4 tasks running", running("a", 4))
		oldA2 := task(got, "a", 2).AttemptStatus.PodUID

		// JSON patches, as FC's manual rescales.
		patch(t, got, `[{"op":"replace","path":"/spec/taskRoles/0/taskNumber","value":2}]`)
		var deleted *v1.TaskStatus
		waitFor(t, fw, "scaled down to 2", func(fw *v1.Framework) bool {
			return running("a", 2)(fw) && podCount(t, ns, "rescalebasic") == 2
		}, func(fw *v1.Framework) {
			if ts := task(fw, "a", 3); ts != nil && ts.DeletionPending && deleted == nil {
				deleted = ts.DeepCopy()
			}
		})
		if deleted == nil || deleted.AttemptStatus.CompletionStatus == nil || deleted.AttemptStatus.CompletionStatus.Code != v1.CompletionCodeDeleteTaskRequested {
			t.Errorf("task a-3 while it was deleted: %+v; FC: DeletionPending with -230 DeleteTaskRequested", deleted)
		}

		patch(t, got, `[{"op":"replace","path":"/spec/taskRoles/0/taskNumber","value":3},{"op":"add","path":"/spec/taskRoles/-","value":`+roleJSON("b", 1)+`}]`)
		got = waitFor(t, fw, "scaled up to 3 and role b added", func(fw *v1.Framework) bool {
			return running("a", 3)(fw) && running("b", 1)(fw)
		})
		if uid := task(got, "a", 2).AttemptStatus.PodUID; uid == nil || oldA2 == nil || *uid == *oldA2 || task(got, "a", 2).AttemptStatus.ID != 0 {
			t.Errorf("task a-2 after the scale up: pod %v attempt %d; FC: a new task (new pod, attempt 0), not the deleted one (pod %v)", uid, task(got, "a", 2).AttemptStatus.ID, oldA2)
		}

		patch(t, got, `[{"op":"test","path":"/spec/taskRoles/1/name","value":"b"},{"op":"remove","path":"/spec/taskRoles/1"}]`)
		got = waitFor(t, fw, "role b deleted", func(fw *v1.Framework) bool {
			return fw.Status.AttemptStatus.TaskRoleStatus("b") == nil && podCount(t, ns, "rescalebasic") == 3
		})
		if got.Status.State == v1.FrameworkCompleted || got.Status.AttemptStatus.ID != 0 {
			t.Errorf("after the rescales: state %s attempt %d; FC: the same attempt keeps running", got.Status.State, got.Status.AttemptStatus.ID)
		}
		stop(t, got)
		check(t, waitFor(t, fw, "Completed after Stop", completed), want{-210, "StopFrameworkRequested", "[Permanent]", 0, 0})
	})
}

// roleJSON is a running role (no exit) with n tasks, for JSON patches.
func roleJSON(name string, n int) string {
	return `{"name":"` + name + `","taskNumber":` + strconv.Itoa(n) + `,"frameworkAttemptCompletionPolicy":{"minFailedTaskCount":1,"minSucceededTaskCount":-1},` +
		`"task":{"retryPolicy":{"fancyRetryPolicy":false,"maxRetryCount":0},"pod":{"spec":{"restartPolicy":"Never","containers":[{"name":"main","image":"ubuntu:trusty","command":["sh","-c","printenv"]}]}}}}`
}

func patch(t *testing.T, fw *v1.Framework, body string) {
	t.Helper()
	if err := env.Client.Patch(context.Background(), fw.DeepCopy(), client.RawPatch(types.JSONPatchType, []byte(body))); err != nil {
		t.Fatalf("patch %s: %v", fw.Name, err)
	}
}

func podCount(t *testing.T, ns, framework string) int {
	t.Helper()
	var pods corev1.PodList
	if err := env.Client.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{v1.LabelFrameworkName: framework}); err != nil {
		t.Fatal(err)
	}
	return len(pods.Items)
}

// fcOrder is FC's framework state order within one attempt.
var fcOrder = []v1.FrameworkState{
	v1.FrameworkAttemptCreationPending, v1.FrameworkAttemptCreationRequested, v1.FrameworkAttemptPreparing,
	v1.FrameworkAttemptRunning, v1.FrameworkAttemptDeletionPending, v1.FrameworkAttemptDeletionRequested,
	v1.FrameworkAttemptDeleting, v1.FrameworkAttemptCompleted, v1.FrameworkCompleted,
}

// watchStates records the state of every version of the named Framework
// that the apiserver sends on a watch. The returned function gives the
// states once the watch has delivered upTo's resource version: a Get can
// see a version before the watch does, so reading at once would race.
func watchStates(t *testing.T, ns, name string) func(t *testing.T, upTo *v1.Framework) []v1.FrameworkState {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &v1.FrameworkList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var states []v1.FrameworkState
	seenRV := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			fw, ok := ev.Object.(*v1.Framework)
			if !ok || fw.Name != name {
				continue
			}
			mu.Lock()
			seenRV[fw.ResourceVersion] = true
			if fw.Status != nil && (len(states) == 0 || states[len(states)-1] != fw.Status.State) {
				states = append(states, fw.Status.State)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return func(t *testing.T, upTo *v1.Framework) []v1.FrameworkState {
		t.Helper()
		testenv.WaitFor(t, 30*time.Second, "watch delivers "+name+" at resource version "+upTo.ResourceVersion, func(context.Context) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return seenRV[upTo.ResourceVersion], nil
		})
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(states)
	}
}

// checkStateOrder checks that seen follows fcOrder and contains must.
func checkStateOrder(t *testing.T, seen []v1.FrameworkState, must ...v1.FrameworkState) {
	t.Helper()
	last := -1
	for _, st := range seen {
		i := slices.Index(fcOrder, st)
		if i < last {
			t.Errorf("states %v: %s after %s breaks FC's order", seen, st, fcOrder[last])
		}
		last = max(last, i)
	}
	for _, st := range must {
		if !slices.Contains(seen, st) {
			t.Errorf("states %v: %s never written; FC enters it", seen, st)
		}
	}
}
