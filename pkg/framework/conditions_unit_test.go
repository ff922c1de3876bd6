package framework

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// TestConditionsAreTrueExactlyInTheirStates walks the state machine and
// checks which conditions are True in each state (the others are False),
// and that a Resumed Suspended condition stays Resumed.
func TestConditionsAreTrueExactlyInTheirStates(t *testing.T) {
	ok := &v1.FrameworkAttemptCompletionStatus{CompletionStatus: *v1.NewCompletionStatus(v1.CompletionCodeSucceeded, "")}
	failed := &v1.FrameworkAttemptCompletionStatus{CompletionStatus: *v1.NewCompletionStatus(v1.CompletionCodeStopFrameworkRequested, "")}
	tests := []struct {
		name       string
		state      v1.FrameworkState
		exec       v1.ExecutionType
		suspend    bool
		completion *v1.FrameworkAttemptCompletionStatus
		true_      []string
	}{
		{"held by Create", v1.FrameworkAttemptCreationPending, v1.ExecutionCreate, false, nil, nil},
		{"pending", v1.FrameworkAttemptCreationPending, v1.ExecutionStart, false, nil, []string{v1.ConditionReconciling}},
		{"preparing", v1.FrameworkAttemptPreparing, v1.ExecutionStart, false, nil, []string{v1.ConditionReconciling}},
		{"running", v1.FrameworkAttemptRunning, v1.ExecutionStart, false, nil, []string{v1.ConditionRunning}},
		{"completing", v1.FrameworkAttemptDeletionRequested, v1.ExecutionStart, false, ok, []string{v1.ConditionReconciling}},
		{"retry delay", v1.FrameworkAttemptCompleted, v1.ExecutionStart, false, failed, []string{v1.ConditionReconciling}},
		{"suspending", v1.FrameworkAttemptDeletionRequested, v1.ExecutionStart, true, nil, []string{v1.ConditionReconciling}},
		{"suspended", v1.FrameworkAttemptCreationPending, v1.ExecutionStart, true, nil, []string{v1.ConditionSuspended}},
		{"stopping a suspended one", v1.FrameworkAttemptCreationPending, v1.ExecutionStop, true, nil, []string{v1.ConditionReconciling}},
		{"succeeded", v1.FrameworkCompleted, v1.ExecutionStart, false, ok, []string{v1.ConditionSucceeded}},
		{"failed", v1.FrameworkCompleted, v1.ExecutionStop, false, failed, []string{v1.ConditionFailed, v1.ConditionStalled}},
		{"completed, then suspend set", v1.FrameworkCompleted, v1.ExecutionStart, true, ok, []string{v1.ConditionSucceeded}},
	}
	all := []string{v1.ConditionRunning, v1.ConditionSucceeded, v1.ConditionFailed, v1.ConditionSuspended, v1.ConditionReconciling, v1.ConditionStalled}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw := &v1.Framework{
				ObjectMeta: metav1.ObjectMeta{Generation: 3},
				Spec:       v1.FrameworkSpec{ExecutionType: tt.exec, Suspend: tt.suspend},
				Status:     &v1.FrameworkStatus{State: tt.state, AttemptStatus: v1.FrameworkAttemptStatus{CompletionStatus: tt.completion}},
			}
			setConditions(fw, metav1.Now())
			var got []string
			for _, typ := range all {
				c := meta.FindStatusCondition(fw.Status.Conditions, typ)
				if c == nil {
					t.Fatalf("condition %s missing", typ)
				}
				if c.ObservedGeneration != 3 || c.Reason == "" {
					t.Errorf("condition %s: observedGeneration %d reason %q", typ, c.ObservedGeneration, c.Reason)
				}
				if c.Status == metav1.ConditionTrue {
					got = append(got, typ)
				}
			}
			if d := cmp.Diff(tt.true_, got); d != "" {
				t.Errorf("True conditions (-want +got):\n%s", d)
			}
			if fw.Status.ObservedGeneration != 3 {
				t.Errorf("status.observedGeneration = %d, want 3", fw.Status.ObservedGeneration)
			}
		})
	}

	// Suspended → resumed → running: Resumed sticks, as Job's JobResumed.
	fw := &v1.Framework{Spec: v1.FrameworkSpec{Suspend: true}, Status: &v1.FrameworkStatus{State: v1.FrameworkAttemptCreationPending}}
	for _, step := range []struct {
		suspend bool
		state   v1.FrameworkState
		reason  string
	}{
		{true, v1.FrameworkAttemptCreationPending, v1.ReasonSuspended},
		{false, v1.FrameworkAttemptCreationPending, v1.ReasonResumed},
		{false, v1.FrameworkAttemptRunning, v1.ReasonResumed},
	} {
		fw.Spec.Suspend, fw.Status.State = step.suspend, step.state
		setConditions(fw, metav1.Now())
		if c := meta.FindStatusCondition(fw.Status.Conditions, v1.ConditionSuspended); c.Reason != step.reason {
			t.Errorf("suspend=%v state %s: Suspended reason %q, want %q", step.suspend, step.state, c.Reason, step.reason)
		}
	}
}
