package framework

import (
	"fmt"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// retryDecision is what a retry policy says about one completed attempt.
type retryDecision struct {
	// Retry is true when a new attempt must start.
	Retry bool
	// Accountable is true when the retry counts against maxRetryCount.
	Accountable bool
	// Reason explains the decision, for events and logs.
	Reason string
}

// decideRetry applies a RetryPolicySpec to a completed attempt, given the
// retries already done. It is FrameworkController's policy: success is
// never retried (unless maxRetryCount is -2), and with fancyRetryPolicy a
// Permanent failure is never retried while a Transient one always is,
// without counting.
func decideRetry(policy v1.RetryPolicySpec, status v1.RetryPolicyStatus, cs *v1.CompletionStatus) retryDecision {
	if cs == nil {
		return retryDecision{Reason: "no completion status"}
	}
	if policy.MaxRetryCount == -2 {
		return retryDecision{Retry: true, Accountable: true, Reason: "maxRetryCount is -2: always retry"}
	}
	if cs.Succeeded() {
		return retryDecision{Reason: "succeeded"}
	}
	if policy.FancyRetryPolicy {
		switch {
		case cs.Type.HasAttribute(v1.CompletionTypeAttributePermanent):
			return retryDecision{Reason: "permanent failure under fancyRetryPolicy"}
		case cs.Type.HasAttribute(v1.CompletionTypeAttributeTransient):
			return retryDecision{Retry: true, Reason: "transient failure under fancyRetryPolicy"}
		}
	}
	if policy.MaxRetryCount == -1 {
		return retryDecision{Retry: true, Accountable: true, Reason: "maxRetryCount is -1: retry failures without limit"}
	}
	if status.AccountableRetriedCount < policy.MaxRetryCount {
		return retryDecision{Retry: true, Accountable: true,
			Reason: fmt.Sprintf("retry %d of %d", status.AccountableRetriedCount+1, policy.MaxRetryCount)}
	}
	return retryDecision{Reason: fmt.Sprintf("maxRetryCount %d reached", policy.MaxRetryCount)}
}

// applyRetry records a retry decision in a retry status.
func applyRetry(status *v1.RetryPolicyStatus, d retryDecision) {
	if !d.Retry {
		return
	}
	status.TotalRetriedCount++
	if d.Accountable {
		status.AccountableRetriedCount++
	}
}

// attemptCompletion checks the frameworkAttemptCompletionPolicy of every
// role against the tasks' states and returns the completion status of the
// attempt, or nil while it must go on. A role's minFailedTaskCount or
// minSucceededTaskCount triggers it; otherwise it completes as Succeeded
// once every task has completed (FrameworkController's rule).
func attemptCompletion(spec *v1.FrameworkSpec, attempt *v1.FrameworkAttemptStatus) *v1.FrameworkAttemptCompletionStatus {
	allCompleted := true
	for _, role := range spec.TaskRoles {
		rs := attempt.TaskRoleStatus(role.Name)
		if rs == nil {
			allCompleted = false
			continue
		}
		var failed, succeeded int32
		var lastFailed, lastSucceeded *v1.TaskStatus
		for i := range rs.TaskStatuses {
			ts := &rs.TaskStatuses[i]
			if ts.State != v1.TaskCompleted {
				allCompleted = false
				continue
			}
			if ts.AttemptStatus.CompletionStatus.Succeeded() {
				succeeded++
				if lastSucceeded == nil || ts.TransitionTime.After(lastSucceeded.TransitionTime.Time) {
					lastSucceeded = ts
				}
			} else {
				failed++
				if lastFailed == nil || ts.TransitionTime.After(lastFailed.TransitionTime.Time) {
					lastFailed = ts
				}
			}
		}
		policy := role.FrameworkAttemptCompletionPolicy
		if policy.MinFailedTaskCount > 0 && failed >= policy.MinFailedTaskCount {
			cs := *lastFailed.AttemptStatus.CompletionStatus.DeepCopy()
			cs.Diagnostics = fmt.Sprintf("task %s[%d] failed: %s", role.Name, lastFailed.Index, cs.Diagnostics)
			return &v1.FrameworkAttemptCompletionStatus{
				CompletionStatus: cs,
				Trigger: &v1.CompletionPolicyTriggerStatus{
					Message:      fmt.Sprintf("%d task(s) of role %s failed, minFailedTaskCount is %d", failed, role.Name, policy.MinFailedTaskCount),
					TaskRoleName: role.Name,
					TaskIndex:    lastFailed.Index,
				},
			}
		}
		if policy.MinSucceededTaskCount > 0 && succeeded >= policy.MinSucceededTaskCount {
			return &v1.FrameworkAttemptCompletionStatus{
				CompletionStatus: *v1.NewCompletionStatus(v1.CompletionCodeSucceeded, fmt.Sprintf("role %s reached minSucceededTaskCount", role.Name)),
				Trigger: &v1.CompletionPolicyTriggerStatus{
					Message:      fmt.Sprintf("%d task(s) of role %s succeeded, minSucceededTaskCount is %d", succeeded, role.Name, policy.MinSucceededTaskCount),
					TaskRoleName: role.Name,
					TaskIndex:    lastSucceeded.Index,
				},
			}
		}
	}
	if !allCompleted {
		return nil
	}
	return &v1.FrameworkAttemptCompletionStatus{
		CompletionStatus: *v1.NewCompletionStatus(v1.CompletionCodeSucceeded, "all tasks completed"),
		Trigger:          &v1.CompletionPolicyTriggerStatus{Message: "all tasks completed and no completion policy triggered"},
	}
}
