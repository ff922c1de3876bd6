package v1alpha1

import "strconv"

// AnnotationBarrierRelease is the Framework annotation through which
// podkit's Framework controller tells waiting barriers (pkg/barrier) when to
// read the Framework again. The controller keeps it equal to
// BarrierReleaseState of the status it last wrote. A barrier that sees it
// watches the Framework's metadata only and reads the whole Framework once
// per change of this value, instead of receiving the whole Framework on
// every status write; without it (FrameworkController's own controller) a
// barrier watches the whole Framework.
const AnnotationBarrierRelease = "barrier.podkit.dev/release"

// States published in AnnotationBarrierRelease: "<attempt id>/waiting",
// "<attempt id>/released", and "completed".
const (
	BarrierWaiting   = "waiting"
	BarrierReleased  = "released"
	BarrierCompleted = "completed"
)

// BarrierReleaseState is the value published in AnnotationBarrierRelease
// for f's status: "<attempt id>/waiting" until every task counted by the
// spec has a pod IP (TaskPodIP), then "<attempt id>/released", and
// "completed" once the Framework is completed. It is "" before the first
// status.
func BarrierReleaseState(f *Framework) string {
	st := f.Status
	if st == nil {
		return ""
	}
	if st.State == FrameworkCompleted {
		return BarrierCompleted
	}
	id := strconv.FormatInt(int64(st.AttemptStatus.ID), 10) + "/"
	for _, r := range f.Spec.TaskRoles {
		rs := st.AttemptStatus.TaskRoleStatus(r.Name)
		for i := range r.TaskNumber {
			if rs.TaskPodIP(i) == "" {
				return id + BarrierWaiting
			}
		}
	}
	return id + BarrierReleased
}

// TaskPodIP returns the pod IP of the role's task index as a peer sees it:
// "" when the task has no status or no pod IP yet, or is DeletionPending
// (going away in a scale down or a completing attempt; FC's manual asks
// every reader of the status to ignore such tasks). s may be nil.
func (s *TaskRoleStatus) TaskPodIP(index int32) string {
	if s == nil {
		return ""
	}
	ts := s.TaskStatuses
	var t *TaskStatus
	if int(index) < len(ts) && ts[index].Index == index {
		t = &ts[index]
	} else {
		for i := range ts {
			if ts[i].Index == index {
				t = &ts[i]
				break
			}
		}
	}
	if t == nil || t.DeletionPending || t.AttemptStatus.PodIP == nil {
		return ""
	}
	return *t.AttemptStatus.PodIP
}
