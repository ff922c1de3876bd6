package framework

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// TestGangConditionFollowsThePodGroup checks GangScheduled for each thing a
// reconcile can see: the controller's mode, the API's presence, and the
// PodGroup's PodGroupInitiallyScheduled condition that the scheduler writes
// (k8s.io/kubernetes pkg/scheduler/schedule_one_podgroup.go).
func TestGangConditionFollowsThePodGroup(t *testing.T) {
	group := v1.PodGroupName("job", 2)
	pg := func(conds ...metav1.Condition) *schedulingv1beta1.PodGroup {
		p := newPodGroup(testFramework(), 2, 2)
		p.Status.Conditions = conds
		return p
	}
	pod := func(name, node string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{NodeName: node}}
		joinGroup(p, group)
		return p
	}
	unsched := metav1.Condition{Type: schedulingv1beta1.PodGroupInitiallyScheduled, Status: metav1.ConditionFalse,
		Reason: schedulingv1beta1.PodGroupReasonUnschedulable, Message: "minCount (2) cannot be satisfied: 1 scheduled, 0 remaining"}
	placed := metav1.Condition{Type: schedulingv1beta1.PodGroupInitiallyScheduled, Status: metav1.ConditionTrue, Reason: "Scheduled"}
	tests := []struct {
		name       string
		mode       GangMode
		api        bool
		state      v1.FrameworkState
		podGroups  map[string]*schedulingv1beta1.PodGroup
		pods       []*corev1.Pod
		wantNil    bool
		wantStatus metav1.ConditionStatus
		wantReason string
		wantInMsg  string
	}{
		{name: "gang off", mode: GangOff, api: true, wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonGangDisabled},
		{name: "API not served", api: false, wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonGangAPIUnavailable, wantInMsg: "scheduling.k8s.io/v1beta1"},
		{name: "not listed (completed framework)", api: true, state: v1.FrameworkAttemptRunning, wantNil: true},
		{name: "attempt being deleted", api: true, state: v1.FrameworkAttemptDeletionRequested, podGroups: map[string]*schedulingv1beta1.PodGroup{group: pg(placed)}, wantNil: true},
		{name: "pod group not in the cache yet", api: true, state: v1.FrameworkAttemptPreparing, podGroups: map[string]*schedulingv1beta1.PodGroup{}, wantNil: true},
		{name: "waiting", api: true, state: v1.FrameworkAttemptPreparing, podGroups: map[string]*schedulingv1beta1.PodGroup{group: pg()},
			pods: []*corev1.Pod{pod("a", "node-0"), pod("b", "")}, wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonGangWaiting, wantInMsg: "1 of 2 pods bound"},
		{name: "unschedulable", api: true, state: v1.FrameworkAttemptPreparing, podGroups: map[string]*schedulingv1beta1.PodGroup{group: pg(unsched)},
			wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonUnschedulable, wantInMsg: "minCount (2) cannot be satisfied"},
		{name: "placed per the pod group", api: true, state: v1.FrameworkAttemptRunning, podGroups: map[string]*schedulingv1beta1.PodGroup{group: pg(placed)},
			wantStatus: metav1.ConditionTrue, wantReason: v1.ReasonGangPlaced},
		{name: "all bound before the condition is written", api: true, state: v1.FrameworkAttemptPreparing, podGroups: map[string]*schedulingv1beta1.PodGroup{group: pg(unsched)},
			pods: []*corev1.Pod{pod("a", "node-0"), pod("b", "node-1")}, wantStatus: metav1.ConditionTrue, wantReason: v1.ReasonGangPlaced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Reconciler{opts: Options{Gang: tt.mode}, gangAPI: tt.api}
			fw := testFramework()
			fw.Status.State = tt.state
			s := &syncState{fw: fw, podGroups: tt.podGroups, pods: map[string]*corev1.Pod{}}
			for _, p := range tt.pods {
				s.pods[p.Name] = p
			}
			got := r.gangCondition(s)
			if tt.wantNil {
				if got != nil {
					t.Fatalf("condition = %+v, want none (keep the status's)", got)
				}
				return
			}
			if got == nil || got.Status != tt.wantStatus || got.Reason != tt.wantReason || !strings.Contains(got.Message, tt.wantInMsg) {
				t.Fatalf("condition = %+v, want %s/%s with %q", got, tt.wantStatus, tt.wantReason, tt.wantInMsg)
			}
		})
	}
}

// TestGangSizeCountsUnfinishedTasks: minCount is the attempt's tasks that
// still need a pod; finished tasks and tasks being deleted (a scale-down)
// are not waited for.
func TestGangSizeCountsUnfinishedTasks(t *testing.T) {
	fw := testFramework()
	fw.Status.AttemptStatus.TaskRoleStatuses = []v1.TaskRoleStatus{{Name: "worker", TaskStatuses: []v1.TaskStatus{
		{Index: 0, State: v1.TaskAttemptCreationPending},
		{Index: 1, State: v1.TaskCompleted},
		{Index: 2, State: v1.TaskAttemptRunning, DeletionPending: true},
		{Index: 3, State: v1.TaskAttemptPreparing},
	}}}
	if got := gangSize(&syncState{fw: fw}); got != 2 {
		t.Errorf("gangSize = %d, want 2", got)
	}
}
