package framework

import (
	"fmt"
	"time"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// retryDecision is what a retry policy says about one completed attempt.
type retryDecision struct {
	// Retry is true when a new attempt must start.
	Retry bool
	// Accountable is true when the retry counts against maxRetryCount.
	Accountable bool
	// Delay is how long after the completion the new attempt starts.
	Delay time.Duration
	// Reason explains the decision, for events and logs.
	Reason string
}

// retryDelays are the delays decideRetry may ask for.
type retryDelays struct {
	// minConflict and maxConflict bound the uniform random delay of a
	// Transient Conflict failure under fancyRetryPolicy.
	minConflict, maxConflict time.Duration
	// rand returns a uniform number in [0, 1).
	rand func() float64
}

// maxCreationBackoff caps the back-off before retrying a task whose pod the
// apiserver refused.
const maxCreationBackoff = 5 * time.Minute

// decideRetry applies a RetryPolicySpec to a completed attempt, given the
// retries already done. It is FrameworkController's RetryPolicySpec.
// ShouldRetry (pkg/apis/frameworkcontroller/v1/funcs.go), step by step:
//  0. a completion the controller caused on purpose (stop requested,
//     framework attempt completed, task deleted) or a pod spec the
//     apiserver refuses is never retried;
//  1. with fancyRetryPolicy, a Transient failure is retried without
//     counting (after a random delay when it is also a Conflict) and a
//     Permanent failure is never retried;
//  2. otherwise maxRetryCount decides: -2 retries every completion,
//     success included; -1 retries every failure; N retries failures while
//     fewer than N accountable retries were made.
//
// podkit adds one thing: a retry after PodCreationUnknownError waits an
// exponential back-off (1 s doubling per accountable retry, at most 5 min),
// so a pod the apiserver keeps refusing never makes a hot loop.
func decideRetry(policy v1.RetryPolicySpec, status v1.RetryPolicyStatus, cs *v1.CompletionStatus, delays retryDelays) retryDecision {
	if cs == nil {
		return retryDecision{Reason: "no completion status"}
	}
	switch cs.Code {
	case v1.CompletionCodePodCreationPermanentError, v1.CompletionCodeStopFrameworkRequested,
		v1.CompletionCodeFrameworkAttemptCompletion, v1.CompletionCodeDeleteTaskRequested:
		return retryDecision{Accountable: true, Reason: fmt.Sprintf("completion code %d (%s) is never retried", cs.Code, cs.Phrase)}
	}
	failed := cs.Type.Name == v1.CompletionTypeNameFailed
	if policy.FancyRetryPolicy && failed {
		reason := fmt.Sprintf("fancyRetryPolicy and a %s failure %v", cs.Type.Name, cs.Type.Attributes)
		switch {
		case cs.Type.HasAttribute(v1.CompletionTypeAttributeTransient):
			d := retryDecision{Retry: true, Reason: reason}
			if cs.Type.HasAttribute(v1.CompletionTypeAttributeConflict) {
				d.Delay = randomDelay(delays)
			}
			return d
		case cs.Type.HasAttribute(v1.CompletionTypeAttributePermanent):
			return retryDecision{Accountable: true, Reason: reason}
		}
	}
	if policy.MaxRetryCount == -2 ||
		(failed && policy.MaxRetryCount == -1) ||
		(failed && status.AccountableRetriedCount < policy.MaxRetryCount) {
		d := retryDecision{Retry: true, Accountable: true,
			Reason: fmt.Sprintf("accountableRetriedCount %d has not reached maxRetryCount %d", status.AccountableRetriedCount, policy.MaxRetryCount)}
		if cs.Code == v1.CompletionCodePodCreationUnknownError {
			d.Delay = creationBackoff(status.AccountableRetriedCount)
		}
		return d
	}
	if !failed {
		return retryDecision{Accountable: true, Reason: "succeeded"}
	}
	return retryDecision{Accountable: true,
		Reason: fmt.Sprintf("accountableRetriedCount %d has reached maxRetryCount %d", status.AccountableRetriedCount, policy.MaxRetryCount)}
}

// randomDelay is a whole number of seconds drawn uniformly from
// [minConflict, maxConflict], as FC draws its delay in seconds.
func randomDelay(d retryDelays) time.Duration {
	lo, hi := int64(d.minConflict/time.Second), int64(d.maxConflict/time.Second)
	if hi <= lo || d.rand == nil {
		return time.Duration(lo) * time.Second
	}
	return time.Duration(lo+int64(d.rand()*float64(hi-lo+1))) * time.Second
}

func creationBackoff(retried int32) time.Duration {
	if retried >= 9 {
		return maxCreationBackoff
	}
	return min(time.Second<<retried, maxCreationBackoff)
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
	status.RetryDelaySec = nil
}

// attemptCompletion checks the frameworkAttemptCompletionPolicy of every
// role against the tasks' states and returns the completion status of the
// attempt, or nil while it must go on. FrameworkController's rule
// (controller.go): a role whose failed tasks reach minFailedTaskCount fails
// the attempt with the code of its last failed task; one whose succeeded
// tasks reach minSucceededTaskCount succeeds it; else the attempt succeeds
// once every task has completed. -1 disables a count; 0 acts as 1 (FC
// compares only when a task of that kind completes).
func attemptCompletion(spec *v1.FrameworkSpec, attempt *v1.FrameworkAttemptStatus) *v1.FrameworkAttemptCompletionStatus {
	allCompleted := true
	var total, totalFailed int32
	var lastTask *v1.TaskStatus
	var lastRole string
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
			if ts.DeletionPending {
				continue // deleted by a rescale: counts for nothing
			}
			total++
			if ts.State != v1.TaskCompleted {
				allCompleted = false
				continue
			}
			if lastTask == nil || ts.TransitionTime.After(lastTask.TransitionTime.Time) {
				lastTask, lastRole = ts, role.Name
			}
			if ts.AttemptStatus.CompletionStatus.Succeeded() {
				succeeded++
				if lastSucceeded == nil || ts.TransitionTime.After(lastSucceeded.TransitionTime.Time) {
					lastSucceeded = ts
				}
			} else {
				failed++
				totalFailed++
				if lastFailed == nil || ts.TransitionTime.After(lastFailed.TransitionTime.Time) {
					lastFailed = ts
				}
			}
		}
		policy := role.FrameworkAttemptCompletionPolicy
		if policy.MinFailedTaskCount != -1 && failed > 0 && failed >= policy.MinFailedTaskCount {
			cs := *lastFailed.AttemptStatus.CompletionStatus.DeepCopy()
			cs.Pod = nil
			cs.Diagnostics = truncate(fmt.Sprintf("FailedTaskCount %d has reached MinFailedTaskCount %d in TaskRole [%s]: Triggered by Task [%s][%d]: Diagnostics: %s",
				failed, policy.MinFailedTaskCount, role.Name, role.Name, lastFailed.Index, cs.Diagnostics))
			return &v1.FrameworkAttemptCompletionStatus{
				CompletionStatus: cs,
				Trigger: &v1.CompletionPolicyTriggerStatus{
					Message:      fmt.Sprintf("FailedTaskCount %d has reached MinFailedTaskCount %d in TaskRole [%s]", failed, policy.MinFailedTaskCount, role.Name),
					TaskRoleName: role.Name,
					TaskIndex:    lastFailed.Index,
				},
			}
		}
		if policy.MinSucceededTaskCount != -1 && succeeded > 0 && succeeded >= policy.MinSucceededTaskCount {
			msg := fmt.Sprintf("SucceededTaskCount %d has reached MinSucceededTaskCount %d in TaskRole [%s]", succeeded, policy.MinSucceededTaskCount, role.Name)
			return &v1.FrameworkAttemptCompletionStatus{
				CompletionStatus: *v1.NewCompletionStatus(v1.CompletionCodeSucceeded, fmt.Sprintf("%s: Triggered by Task [%s][%d]", msg, role.Name, lastSucceeded.Index)),
				Trigger:          &v1.CompletionPolicyTriggerStatus{Message: msg, TaskRoleName: role.Name, TaskIndex: lastSucceeded.Index},
			}
		}
	}
	if !allCompleted || lastTask == nil {
		return nil
	}
	msg := fmt.Sprintf("All Tasks are completed and no user specified conditions in FrameworkAttemptCompletionPolicy have ever been triggered: TotalTaskCount: %d, FailedTaskCount: %d", total, totalFailed)
	return &v1.FrameworkAttemptCompletionStatus{
		CompletionStatus: *v1.NewCompletionStatus(v1.CompletionCodeSucceeded, fmt.Sprintf("%s: Triggered by Task [%s][%d]", msg, lastRole, lastTask.Index)),
		Trigger:          &v1.CompletionPolicyTriggerStatus{Message: msg, TaskRoleName: lastRole, TaskIndex: lastTask.Index},
	}
}
