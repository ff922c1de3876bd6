package framework

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// setConditions derives status.conditions and status.observedGeneration
// from the Framework's spec and state, so that they never disagree with
// State: it runs before every status write. A condition's
// lastTransitionTime moves only when its status flips (meta.SetStatusCondition).
func setConditions(fw *v1.Framework, now metav1.Time) {
	st := fw.Status
	st.ObservedGeneration = fw.Generation
	for _, c := range desiredConditions(fw) {
		c.ObservedGeneration = fw.Generation
		c.LastTransitionTime = now
		meta.SetStatusCondition(&st.Conditions, c)
	}
}

// desiredConditions are the conditions State implies; see the
// v1alpha1.Condition* constants for their meaning.
func desiredConditions(fw *v1.Framework) []metav1.Condition {
	st := fw.Status
	state := st.State
	cond := func(t string, ok bool, reason, msg string) metav1.Condition {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg}
	}
	stateMsg := fmt.Sprintf("framework attempt %d is %s; %s tasks ready", st.AttemptStatus.ID, state, st.ReadyTasks)

	var succeeded, failed metav1.Condition
	if cs := st.AttemptStatus.CompletionStatus; state == v1.FrameworkCompleted && cs != nil {
		msg := fmt.Sprintf("completed with code %d (%s) after %d attempt(s): %s", cs.Code, cs.Phrase, st.AttemptStatus.ID+1, cs.Diagnostics)
		succeeded = cond(v1.ConditionSucceeded, cs.Succeeded(), string(cs.Phrase), msg)
		failed = cond(v1.ConditionFailed, !cs.Succeeded(), string(cs.Phrase), msg)
	} else {
		succeeded = cond(v1.ConditionSucceeded, false, string(state), stateMsg)
		failed = cond(v1.ConditionFailed, false, string(state), stateMsg)
	}

	held := state == v1.FrameworkAttemptCreationPending && fw.Spec.ExecutionType != v1.ExecutionStop
	var suspended metav1.Condition
	switch prev := meta.FindStatusCondition(st.Conditions, v1.ConditionSuspended); {
	case state == v1.FrameworkCompleted:
		suspended = cond(v1.ConditionSuspended, false, string(state), "the framework is completed")
	case fw.Spec.Suspend && held:
		suspended = cond(v1.ConditionSuspended, true, v1.ReasonSuspended, "spec.suspend is true: the framework has no pod until it is resumed")
	case fw.Spec.Suspend:
		suspended = cond(v1.ConditionSuspended, false, v1.ReasonSuspending, fmt.Sprintf("spec.suspend is true: deleting the pods of attempt %d", st.AttemptStatus.ID))
	case prev != nil && prev.Reason != v1.ReasonNotSuspended:
		// As a Job's JobResumed: once suspended, the condition says so.
		suspended = cond(v1.ConditionSuspended, false, v1.ReasonResumed, "spec.suspend was cleared: the framework runs again")
	default:
		suspended = cond(v1.ConditionSuspended, false, v1.ReasonNotSuspended, "spec.suspend is false")
	}

	var reconciling metav1.Condition
	switch {
	case state == v1.FrameworkCompleted || state == v1.FrameworkAttemptRunning:
		reconciling = cond(v1.ConditionReconciling, false, string(state), stateMsg)
	case held && fw.Spec.Suspend:
		reconciling = cond(v1.ConditionReconciling, false, v1.ReasonSuspended, "the framework is suspended")
	case held && fw.Spec.ExecutionType == v1.ExecutionCreate:
		reconciling = cond(v1.ConditionReconciling, false, v1.ReasonExecutionTypeCreate, "executionType is Create: the framework waits for Start")
	case fw.Spec.Suspend:
		reconciling = cond(v1.ConditionReconciling, true, v1.ReasonSuspending, suspended.Message)
	default:
		reconciling = cond(v1.ConditionReconciling, true, string(state), stateMsg)
	}

	return []metav1.Condition{
		cond(v1.ConditionRunning, state == v1.FrameworkAttemptRunning, string(state), stateMsg),
		succeeded,
		failed,
		suspended,
		reconciling,
		cond(v1.ConditionStalled, failed.Status == metav1.ConditionTrue, failed.Reason, failed.Message),
	}
}
