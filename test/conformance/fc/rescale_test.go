package fc_test

import (
	"fmt"
	"testing"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// TestRescaleUnderLoad scales a 100-task role up to 200 and down to 30
// while two other Frameworks fail and retry their own tasks, and checks
// that exactly the tasks of the spec are left: no pod too many, none lost,
// every index present once.
//
// It scales up before down on purpose: kwok deletes a terminating pod by
// name, with no UID precondition (kwok v0.8 pod_controller.go), so a late
// delete of a scaled-down pod can hit the new pod of the same name that a
// quick scale up creates. A real kubelet deletes with the pod's UID as a
// precondition. Reusing a name after a scale down is covered, at a pace
// kwok keeps up with, by the rescale scenario.
func TestRescaleUnderLoad(t *testing.T) {
	ns := env.Namespace(t)
	startController(t, ns)
	fw := create(t, ns, manifest("big", false, 0, role("w", 100, false, 0, 1, -1, "", "")))
	for i := range 2 {
		create(t, ns, manifest(fmt.Sprintf("noise%d", i), false, -1, role("n", 50, false, -1, -1, -1, "1", "")))
	}
	allRunning := func(n int) func(*v1.Framework) bool {
		return func(fw *v1.Framework) bool {
			rs := fw.Status.AttemptStatus.TaskRoleStatus("w")
			if rs == nil || len(rs.TaskStatuses) != n {
				return false
			}
			for i, ts := range rs.TaskStatuses {
				if int(ts.Index) != i || ts.State != v1.TaskAttemptRunning || ts.DeletionPending {
					return false
				}
			}
			return true
		}
	}
	got := waitFor(t, fw, "100 tasks running", allRunning(100))
	patch(t, got, `[{"op":"replace","path":"/spec/taskRoles/0/taskNumber","value":200}]`)
	got = waitFor(t, fw, "scaled up to 200", func(fw *v1.Framework) bool { return allRunning(200)(fw) && podCount(t, ns, "big") == 200 })
	patch(t, got, `[{"op":"replace","path":"/spec/taskRoles/0/taskNumber","value":30}]`)
	got = waitFor(t, fw, "scaled down to 30", func(fw *v1.Framework) bool { return allRunning(30)(fw) && podCount(t, ns, "big") == 30 })
	if got.Status.ReadyTasks != "30/30" || got.Status.AttemptStatus.ID != 0 {
		t.Errorf("after the rescales: ready %s, attempt %d; want 30/30 in attempt 0", got.Status.ReadyTasks, got.Status.AttemptStatus.ID)
	}
	stop(t, got)
	waitFor(t, fw, "Completed after Stop", completed)
	if n := podCount(t, ns, "big"); n != 0 {
		t.Errorf("%d pods left after Stop", n)
	}
}
