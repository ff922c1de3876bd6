package framework

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// syncState is one reconcile's view of a Framework and its objects.
type syncState struct {
	fw *v1.Framework
	// written is the status as last read or written (nil: none yet).
	written *v1.FrameworkStatus
	now     metav1.Time
	// pods are the Framework's pods in the cache, by name.
	pods map[string]*corev1.Pod
	// cm is the attempt ConfigMap in the cache, or nil.
	cm *corev1.ConfigMap
	// podGroups are the Framework's PodGroups in the cache, by name; nil
	// when not listed (a completed Framework).
	podGroups map[string]*schedulingv1beta1.PodGroup
	// urgent is set when the status holds a change that must be persisted
	// before acting on it.
	urgent bool
	// requeueAfter asks for another reconcile (deletion timeouts); set it
	// with requeue, which parallel deletions call concurrently.
	requeueAfter time.Duration
	requeueMu    sync.Mutex
}

// requeue asks for a reconcile within d (the earliest request wins).
func (s *syncState) requeue(d time.Duration) {
	s.requeueMu.Lock()
	defer s.requeueMu.Unlock()
	if s.requeueAfter == 0 || d < s.requeueAfter {
		s.requeueAfter = d
	}
}

func (r *Reconciler) newSyncState(ctx context.Context, fw *v1.Framework) (*syncState, error) {
	s := &syncState{
		fw:   fw,
		now:  metav1.NewTime(r.opts.Clock.Now()),
		pods: map[string]*corev1.Pod{},
	}
	if fw.Status != nil {
		s.written = fw.Status.DeepCopy()
	} else {
		fw.Status = &v1.FrameworkStatus{
			StartTime:      s.now,
			State:          v1.FrameworkAttemptCreationPending,
			TransitionTime: s.now,
			AttemptStatus:  newAttemptStatus(fw, 0, s.now),
		}
		// Not urgent: creating the ConfigMap and pods before the first
		// status write is safe (deterministic names, adoption), and it saves
		// writing a status of N pending tasks only to rewrite it at once.
	}
	cm := &corev1.ConfigMap{}
	err := r.client.Get(ctx, types.NamespacedName{Namespace: fw.Namespace, Name: v1.ConfigMapName(fw.Name)}, cm)
	switch {
	case err == nil:
		if metav1.IsControlledBy(cm, fw) {
			s.cm = cm
		}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("get configmap of framework %s/%s: %w", fw.Namespace, fw.Name, err)
	}
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(fw.Namespace), client.MatchingLabels{v1.LabelFrameworkName: fw.Name}); err != nil {
		return nil, fmt.Errorf("list pods of framework %s/%s: %w", fw.Namespace, fw.Name, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if owned(p, fw, s.cm) {
			s.pods[p.Name] = p
		}
	}
	if err := r.listPodGroups(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// newAttemptStatus is a fresh framework attempt with every task pending.
func newAttemptStatus(fw *v1.Framework, id int32, now metav1.Time) v1.FrameworkAttemptStatus {
	att := v1.FrameworkAttemptStatus{
		ID:            id,
		StartTime:     now,
		ConfigMapName: v1.ConfigMapName(fw.Name),
	}
	for _, role := range fw.Spec.TaskRoles {
		rs := v1.TaskRoleStatus{
			Name:                          role.Name,
			PodGracefulDeletionTimeoutSec: role.Task.PodGracefulDeletionTimeoutSec,
			TaskStatuses:                  make([]v1.TaskStatus, role.TaskNumber),
		}
		for i := range rs.TaskStatuses {
			rs.TaskStatuses[i] = newTaskStatus(fw, role.Name, int32(i), now)
		}
		att.TaskRoleStatuses = append(att.TaskRoleStatuses, rs)
	}
	return att
}

func newTaskAttemptStatus(fw *v1.Framework, role string, index, id int32, now metav1.Time) v1.TaskAttemptStatus {
	return v1.TaskAttemptStatus{ID: id, StartTime: now, PodName: v1.PodName(fw.Name, role, index)}
}

func statusEqual(a, b *v1.FrameworkStatus) bool {
	return apiequality.Semantic.DeepEqual(a, b)
}

func (s *syncState) setState(state v1.FrameworkState) {
	if s.fw.Status.State != state {
		s.fw.Status.State = state
		s.fw.Status.TransitionTime = s.now
	}
}

func (s *syncState) setTaskState(ts *v1.TaskStatus, state v1.TaskState) {
	if ts.State != state {
		ts.State = state
		ts.TransitionTime = s.now
	}
}

// forEachTask calls fn for every task of the current attempt, with its spec.
// A role deleted from the spec (its tasks are being deleted) gets a spec
// holding only its name: no retry, no completion policy.
func (s *syncState) forEachTask(fn func(role *v1.TaskRoleSpec, ts *v1.TaskStatus) error) error {
	att := &s.fw.Status.AttemptStatus
	for ri := range att.TaskRoleStatuses {
		rs := &att.TaskRoleStatuses[ri]
		role := s.fw.Spec.TaskRole(rs.Name)
		if role == nil {
			role = &v1.TaskRoleSpec{Name: rs.Name}
		}
		for ti := range rs.TaskStatuses {
			if err := fn(role, &rs.TaskStatuses[ti]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *syncState) podKey(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: s.fw.Namespace, Name: name}
}

func completing(state v1.FrameworkState) bool {
	switch state {
	case v1.FrameworkAttemptDeletionPending, v1.FrameworkAttemptDeletionRequested, v1.FrameworkAttemptDeleting:
		return true
	}
	return false
}

func uidOf(p *types.UID) types.UID {
	if p == nil {
		return ""
	}
	return *p
}
