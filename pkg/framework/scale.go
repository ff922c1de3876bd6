package framework

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// rescale brings the current attempt's task statuses to the spec's roles
// and task numbers, as FrameworkController rescales (doc/user-manual.md,
// "Framework Rescale"):
//   - a new role, or a taskNumber grown, adds tasks in AttemptCreationPending
//     (persisted before any pod is created);
//   - a role deleted, or a taskNumber shrunk, marks the tasks at the highest
//     indices DeletionPending with DeleteTaskRequested (persisted before any
//     pod is deleted); once such a task is Completed it leaves the status;
//   - a DeletionPending task is never reused: a later scale up waits until
//     it has completed and puts a new task in its place.
//
// DeletionPending tasks count for no completion policy. It runs only while
// the attempt is not completing; it reports whether the status changed.
func (r *Reconciler) rescale(s *syncState) bool {
	st := s.fw.Status
	if completing(st.State) || st.State == v1.FrameworkAttemptCompleted || st.State == v1.FrameworkCompleted {
		return false
	}
	att := &st.AttemptStatus
	changed := false
	for _, role := range s.fw.Spec.TaskRoles {
		rs := att.TaskRoleStatus(role.Name)
		if rs == nil {
			att.TaskRoleStatuses = append(att.TaskRoleStatuses, v1.TaskRoleStatus{
				Name: role.Name, PodGracefulDeletionTimeoutSec: role.Task.PodGracefulDeletionTimeoutSec,
			})
			rs = &att.TaskRoleStatuses[len(att.TaskRoleStatuses)-1]
			r.event(s.fw, corev1.EventTypeNormal, ReasonRescaled, actionRescale, "task role %s added with %d task(s)", role.Name, role.TaskNumber)
			changed = true
		}
		if !ptr.Equal(rs.PodGracefulDeletionTimeoutSec, role.Task.PodGracefulDeletionTimeoutSec) {
			rs.PodGracefulDeletionTimeoutSec = role.Task.PodGracefulDeletionTimeoutSec
			changed = true
		}
		if r.rescaleRole(s, rs, role.TaskNumber) {
			changed = true
		}
	}
	kept := att.TaskRoleStatuses[:0]
	for _, rs := range att.TaskRoleStatuses {
		if s.fw.Spec.TaskRole(rs.Name) == nil {
			changed = r.rescaleRole(s, &rs, 0) || changed
			if len(rs.TaskStatuses) == 0 {
				r.event(s.fw, corev1.EventTypeNormal, ReasonRescaled, actionRescale, "task role %s deleted", rs.Name)
				changed = true
				continue
			}
		}
		kept = append(kept, rs)
	}
	att.TaskRoleStatuses = kept
	if changed {
		s.urgent = true
	}
	return changed
}

// rescaleRole brings one role's tasks to n; it reports whether it changed
// anything.
func (r *Reconciler) rescaleRole(s *syncState, rs *v1.TaskRoleStatus, n int32) bool {
	changed := false
	for i := range rs.TaskStatuses {
		ts := &rs.TaskStatuses[i]
		switch {
		case ts.Index >= n && !ts.DeletionPending:
			r.deleteTask(s, rs.Name, ts)
			changed = true
		case ts.Index < n && ts.DeletionPending && ts.State == v1.TaskCompleted:
			// Scaled down, then up again: a new task replaces the old.
			rs.TaskStatuses[i] = newTaskStatus(s.fw, rs.Name, ts.Index, s.now)
			changed = true
		}
	}
	// Completed tasks beyond n leave the status, from the end, so that the
	// list stays indexed by task index.
	for len(rs.TaskStatuses) > 0 {
		last := rs.TaskStatuses[len(rs.TaskStatuses)-1]
		if last.Index < n || last.State != v1.TaskCompleted {
			break
		}
		rs.TaskStatuses = rs.TaskStatuses[:len(rs.TaskStatuses)-1]
		changed = true
	}
	for i := int32(len(rs.TaskStatuses)); i < n; i++ {
		rs.TaskStatuses = append(rs.TaskStatuses, newTaskStatus(s.fw, rs.Name, i, s.now))
		changed = true
	}
	return changed
}

// deleteTask marks a task for deletion by a scale down: it completes with
// DeleteTaskRequested, at once if it has no pod, else once its pod is gone.
func (r *Reconciler) deleteTask(s *syncState, role string, ts *v1.TaskStatus) {
	ts.DeletionPending = true
	as := &ts.AttemptStatus
	if ts.State == v1.TaskCompleted {
		return
	}
	if as.CompletionStatus == nil {
		as.CompletionStatus = v1.NewCompletionStatus(v1.CompletionCodeDeleteTaskRequested, fmt.Sprintf("task %s[%d] deleted by a rescale", role, ts.Index))
		as.CompletionTime = &s.now
	}
	ts.RetryPolicyStatus.RetryDelaySec = nil
	switch ts.State {
	case v1.TaskAttemptCreationPending, v1.TaskAttemptCompleted:
		ts.CompletionTime = &s.now
		s.setTaskState(ts, v1.TaskCompleted)
	case v1.TaskAttemptCreationRequested, v1.TaskAttemptPreparing, v1.TaskAttemptRunning:
		s.setTaskState(ts, v1.TaskAttemptDeletionPending)
	}
}

func newTaskStatus(fw *v1.Framework, role string, index int32, now metav1.Time) v1.TaskStatus {
	return v1.TaskStatus{
		Index:          index,
		StartTime:      now,
		State:          v1.TaskAttemptCreationPending,
		TransitionTime: now,
		AttemptStatus:  newTaskAttemptStatus(fw, role, index, 0, now),
	}
}
