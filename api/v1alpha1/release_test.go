package v1alpha1

import (
	"testing"

	"k8s.io/utils/ptr"
)

func TestBarrierReleaseState(t *testing.T) {
	spec := FrameworkSpec{TaskRoles: []TaskRoleSpec{{Name: "ps", TaskNumber: 1}, {Name: "w", TaskNumber: 2}}}
	task := func(i int32, ip string, deleting bool) TaskStatus {
		ts := TaskStatus{Index: i, DeletionPending: deleting}
		if ip != "" {
			ts.AttemptStatus.PodIP = ptr.To(ip)
		}
		return ts
	}
	status := func(id int32, state FrameworkState, roles ...TaskRoleStatus) *FrameworkStatus {
		return &FrameworkStatus{State: state, AttemptStatus: FrameworkAttemptStatus{ID: id, TaskRoleStatuses: roles}}
	}
	all := []TaskRoleStatus{{Name: "ps", TaskStatuses: []TaskStatus{task(0, "10.0.0.1", false)}},
		{Name: "w", TaskStatuses: []TaskStatus{task(0, "10.0.1.1", false), task(1, "10.0.1.2", false)}}}
	for _, tc := range []struct {
		name   string
		status *FrameworkStatus
		want   string
	}{
		{"no status yet: nothing to publish", nil, ""},
		{"no task status", status(0, FrameworkAttemptPreparing), "0/waiting"},
		{"every task has an IP", status(0, FrameworkAttemptRunning, all...), "0/released"},
		{"the attempt id is part of the value", status(3, FrameworkAttemptRunning, all...), "3/released"},
		{"a role without status", status(0, FrameworkAttemptRunning, all[1]), "0/waiting"},
		{"a task without IP", status(0, FrameworkAttemptRunning, all[0], TaskRoleStatus{Name: "w",
			TaskStatuses: []TaskStatus{task(0, "10.0.1.1", false), task(1, "", false)}}), "0/waiting"},
		{"a DeletionPending task's IP is no peer's", status(0, FrameworkAttemptRunning, all[0], TaskRoleStatus{Name: "w",
			TaskStatuses: []TaskStatus{task(0, "10.0.1.1", false), task(1, "10.0.1.2", true)}}), "0/waiting"},
		{"statuses found by index, not position", status(0, FrameworkAttemptRunning, all[0], TaskRoleStatus{Name: "w",
			TaskStatuses: []TaskStatus{task(1, "10.0.1.2", false), task(0, "10.0.1.1", false)}}), "0/released"},
		{"extra tasks beyond taskNumber do not count", status(0, FrameworkAttemptRunning, all[0], TaskRoleStatus{Name: "w",
			TaskStatuses: []TaskStatus{task(0, "10.0.1.1", false), task(1, "10.0.1.2", false), task(2, "", false)}}), "0/released"},
		{"completed, whatever the IPs", status(1, FrameworkCompleted, all...), "completed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &Framework{Spec: spec, Status: tc.status}
			if got := BarrierReleaseState(f); got != tc.want {
				t.Errorf("BarrierReleaseState = %q, want %q", got, tc.want)
			}
		})
	}
}
