package framework

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// Suspension follows batch/v1 Job's spec.suspend (KEP-2232): suspending
// deletes the active pods, and a suspension is neither a failure nor a
// retry; resuming creates pods again and restarts the clock (Job resets
// status.startTime, here attemptStatus.startTime). In FrameworkController's
// state machine a suspension ends the running attempt through the same
// deletion states as a completion (AttemptDeletionPending → … → all pods
// and the ConfigMap gone) but without a completion status, which is how
// observe tells the two apart; then the next attempt waits in
// AttemptCreationPending until spec.suspend is false. The next attempt,
// not the same one, so that its ConfigMap, instance UID and barrier release
// state are new and no barrier of a new pod is released by the old pods'
// IPs.

// suspendAttempt ends the current attempt because spec.suspend is true:
// every unfinished task is marked DeletionPending and act deletes the pods
// and the ConfigMap. No completion status is set, no retry is counted.
func (r *Reconciler) suspendAttempt(ctx context.Context, s *syncState) {
	att := &s.fw.Status.AttemptStatus
	s.urgent = true
	s.setState(v1.FrameworkAttemptDeletionPending)
	_ = s.forEachTask(func(_ *v1.TaskRoleSpec, ts *v1.TaskStatus) error {
		if ts.State != v1.TaskCompleted {
			ts.DeletionPending = true
		}
		return nil
	})
	r.event(s.fw, corev1.EventTypeNormal, ReasonFrameworkSuspending, actionDelete, "spec.suspend is true: deleting the pods of attempt %d", att.ID)
	log.FromContext(ctx).Info("suspending framework", "attempt", att.ID)
}

// endSuspendedAttempt runs once a suspended attempt's pods and ConfigMap
// are gone: the next attempt is created in AttemptCreationPending, where
// act holds it while spec.suspend is true. The framework's and every
// task's retry counts carry over unchanged.
func (r *Reconciler) endSuspendedAttempt(ctx context.Context, s *syncState) {
	st := s.fw.Status
	old := st.AttemptStatus
	st.AttemptStatus = newAttemptStatus(s.fw, old.ID+1, s.now)
	for ri := range st.AttemptStatus.TaskRoleStatuses {
		rs := &st.AttemptStatus.TaskRoleStatuses[ri]
		prev := old.TaskRoleStatus(rs.Name)
		if prev == nil {
			continue
		}
		for ti := range rs.TaskStatuses {
			ts := &rs.TaskStatuses[ti]
			for _, p := range prev.TaskStatuses {
				if p.Index == ts.Index {
					ts.RetryPolicyStatus = p.RetryPolicyStatus
					ts.RetryPolicyStatus.RetryDelaySec = nil
					break
				}
			}
		}
	}
	st.RetryPolicyStatus.RetryDelaySec = nil
	s.urgent = true
	s.setState(v1.FrameworkAttemptCreationPending)
	r.event(s.fw, corev1.EventTypeNormal, ReasonFrameworkSuspended, actionDelete, "framework suspended: the pods of attempt %d are gone; attempt %d starts when spec.suspend is false", old.ID, old.ID+1)
	log.FromContext(ctx).Info("framework suspended", "attempt", old.ID)
}

// suspending reports whether the current attempt is being deleted because
// of spec.suspend rather than because it completed.
func suspending(s *syncState) bool {
	st := s.fw.Status
	return completing(st.State) && st.AttemptStatus.CompletionStatus == nil
}
