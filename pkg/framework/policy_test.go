package framework

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

func TestAttemptCompletionAppliesRolePolicies(t *testing.T) {
	spec := &v1.FrameworkSpec{TaskRoles: []v1.TaskRoleSpec{
		{Name: "ps", TaskNumber: 2, FrameworkAttemptCompletionPolicy: v1.CompletionPolicySpec{MinFailedTaskCount: 1, MinSucceededTaskCount: -1}},
		{Name: "worker", TaskNumber: 3, FrameworkAttemptCompletionPolicy: v1.CompletionPolicySpec{MinFailedTaskCount: 2, MinSucceededTaskCount: 3}},
	}}
	now := metav1.NewTime(time.Unix(1000, 0))
	task := func(i int32, state v1.TaskState, code v1.CompletionCode) v1.TaskStatus {
		ts := v1.TaskStatus{Index: i, State: state, TransitionTime: metav1.NewTime(now.Add(time.Duration(i) * time.Second))}
		if state == v1.TaskCompleted {
			ts.AttemptStatus.CompletionStatus = v1.NewCompletionStatus(code, "")
		}
		return ts
	}
	R, C := v1.TaskAttemptRunning, v1.TaskCompleted
	tests := []struct {
		name     string
		ps, wk   []v1.TaskStatus
		wantNil  bool
		wantCode v1.CompletionCode
		wantRole string
	}{
		{"running tasks complete nothing", []v1.TaskStatus{task(0, R, 0), task(1, R, 0)}, []v1.TaskStatus{task(0, R, 0), task(1, R, 0), task(2, R, 0)}, true, 0, ""},
		{"one failed ps fails the attempt", []v1.TaskStatus{task(0, R, 0), task(1, C, 3)}, []v1.TaskStatus{task(0, R, 0), task(1, R, 0), task(2, R, 0)}, false, 3, "ps"},
		{"one failed worker is tolerated", []v1.TaskStatus{task(0, R, 0), task(1, R, 0)}, []v1.TaskStatus{task(0, C, 1), task(1, R, 0), task(2, R, 0)}, true, 0, ""},
		{"two failed workers fail the attempt with the last code", []v1.TaskStatus{task(0, R, 0), task(1, R, 0)}, []v1.TaskStatus{task(0, C, 1), task(1, C, 7), task(2, R, 0)}, false, 7, "worker"},
		{"three succeeded workers succeed the attempt", []v1.TaskStatus{task(0, R, 0), task(1, R, 0)}, []v1.TaskStatus{task(0, C, 0), task(1, C, 0), task(2, C, 0)}, false, 0, "worker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			att := &v1.FrameworkAttemptStatus{TaskRoleStatuses: []v1.TaskRoleStatus{{Name: "ps", TaskStatuses: tt.ps}, {Name: "worker", TaskStatuses: tt.wk}}}
			got := attemptCompletion(spec, att)
			if tt.wantNil {
				if got != nil {
					t.Fatalf("attemptCompletion = %+v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatal("attemptCompletion = nil, want a completion")
			}
			if got.Code != tt.wantCode || got.Trigger == nil || got.Trigger.TaskRoleName != tt.wantRole {
				t.Errorf("attemptCompletion = code %d trigger %+v, want code %d role %s", got.Code, got.Trigger, tt.wantCode, tt.wantRole)
			}
		})
	}
}

func TestAttemptCompletionSucceedsWhenAllTasksCompleteWithoutTrigger(t *testing.T) {
	spec := &v1.FrameworkSpec{TaskRoles: []v1.TaskRoleSpec{{Name: "w", TaskNumber: 2,
		FrameworkAttemptCompletionPolicy: v1.CompletionPolicySpec{MinFailedTaskCount: -1, MinSucceededTaskCount: -1}}}}
	att := &v1.FrameworkAttemptStatus{TaskRoleStatuses: []v1.TaskRoleStatus{{Name: "w", TaskStatuses: []v1.TaskStatus{
		{Index: 0, State: v1.TaskCompleted, AttemptStatus: v1.TaskAttemptStatus{CompletionStatus: v1.NewCompletionStatus(2, "")}},
		{Index: 1, State: v1.TaskCompleted, AttemptStatus: v1.TaskAttemptStatus{CompletionStatus: v1.NewCompletionStatus(0, "")}},
	}}}}
	got := attemptCompletion(spec, att)
	if got == nil || !got.Succeeded() {
		t.Fatalf("attemptCompletion = %+v, want Succeeded", got)
	}
}
