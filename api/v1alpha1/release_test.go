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

// BarrierReleaseUpdate publishes from minTasks tasks, and keeps a value once
// published current below it (a Framework scaled down never shows a stale
// release).
func TestBarrierReleaseUpdate(t *testing.T) {
	released := &FrameworkStatus{State: FrameworkAttemptRunning, AttemptStatus: FrameworkAttemptStatus{TaskRoleStatuses: []TaskRoleStatus{
		{Name: "w", TaskStatuses: []TaskStatus{{Index: 0, AttemptStatus: TaskAttemptStatus{PodIP: ptr.To("10.0.0.1")}},
			{Index: 1, AttemptStatus: TaskAttemptStatus{PodIP: ptr.To("10.0.0.2")}}}}}}}
	framework := func(tasks int32, annotation *string, st *FrameworkStatus) *Framework {
		f := &Framework{Spec: FrameworkSpec{TaskRoles: []TaskRoleSpec{{Name: "w", TaskNumber: tasks}}}, Status: st}
		if annotation != nil {
			f.Annotations = map[string]string{AnnotationBarrierRelease: *annotation}
		}
		return f
	}
	for _, tc := range []struct {
		name      string
		f         *Framework
		minTasks  int
		want      string
		wantWrite bool
	}{
		{"below minTasks, never published: nothing written", framework(2, nil, released), 3, "0/released", false},
		{"at minTasks: written", framework(2, nil, released), 2, "0/released", true},
		{"minTasks 0 publishes every size", framework(2, nil, released), 0, "0/released", true},
		{"negative minTasks publishes every size", framework(2, nil, released), -1, "0/released", true},
		{"below minTasks but published once: kept current", framework(2, ptr.To("0/waiting"), released), 3, "0/released", true},
		{"unchanged: nothing written", framework(2, ptr.To("0/released"), released), 1, "0/released", false},
		{"no status yet: nothing written", framework(5, nil, nil), 1, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, write := BarrierReleaseUpdate(tc.f, tc.minTasks)
			if got != tc.want || write != tc.wantWrite {
				t.Errorf("BarrierReleaseUpdate = %q, %t; want %q, %t", got, write, tc.want, tc.wantWrite)
			}
		})
	}
}
