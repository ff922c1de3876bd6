package framework

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// act creates and deletes objects as the status asks: the attempt's
// ConfigMap, pods of pending tasks, and pods of completed tasks or attempts.
func (r *Reconciler) act(ctx context.Context, s *syncState) error {
	st := s.fw.Status
	switch {
	case st.State == v1.FrameworkAttemptCreationPending:
		if s.fw.Spec.ExecutionType == v1.ExecutionStop {
			st.AttemptStatus.CompletionStatus = &v1.FrameworkAttemptCompletionStatus{
				CompletionStatus: *v1.NewCompletionStatus(v1.CompletionCodeStopFrameworkRequested, "spec.executionType is Stop"),
				Trigger:          &v1.CompletionPolicyTriggerStatus{Message: "spec.executionType is Stop before the attempt started"},
			}
			_ = s.forEachTask(func(_ *v1.TaskRoleSpec, ts *v1.TaskStatus) error {
				ts.DeletionPending = true
				return nil
			})
			s.setState(v1.FrameworkAttemptDeletionPending)
			s.urgent = true
			return r.deleteAttempt(ctx, s)
		}
		if s.fw.Spec.ExecutionType == v1.ExecutionCreate || s.fw.Spec.Suspend {
			// Held: no ConfigMap, no pod until executionType is Start and
			// spec.suspend is false.
			return r.deleteLeftovers(ctx, s)
		}
		if att := &st.AttemptStatus; att.ConfigMapUID == nil && meta.IsStatusConditionTrue(st.Conditions, v1.ConditionSuspended) {
			// Resumed: as a Job's startTime, the attempt's starts now.
			att.StartTime = s.now
			s.urgent = true
			r.event(s.fw, corev1.EventTypeNormal, ReasonFrameworkResumed, actionCreate, "spec.suspend is false: starting attempt %d", att.ID)
		}
		ready, err := r.ensureConfigMap(ctx, s)
		if err != nil || !ready {
			return err
		}
		return r.ensurePods(ctx, s)
	case st.State == v1.FrameworkAttemptPreparing || st.State == v1.FrameworkAttemptRunning:
		if err := r.ensurePods(ctx, s); err != nil {
			return err
		}
		return r.deleteCompletedPods(ctx, s)
	case completing(st.State):
		return r.deleteAttempt(ctx, s)
	}
	return nil
}

// deleteLeftovers deletes, in a held attempt, the pods, PodGroups and then
// the ConfigMap that a reconcile created before its status write was lost:
// the first status is written after the first pods are created (see
// newSyncState), so a spec change that races it — Kueue suspending a
// Framework created unsuspended — leaves pods the status does not name.
// Held means none may run.
func (r *Reconciler) deleteLeftovers(ctx context.Context, s *syncState) error {
	if len(s.pods) == 0 && len(s.podGroups) == 0 && (s.cm == nil || s.cm.DeletionTimestamp != nil) {
		return nil
	}
	log.FromContext(ctx).Info("held framework has objects of a creation whose status was not written; deleting them", "pods", len(s.pods), "configMap", s.cm != nil)
	if err := r.deletePodsAndGroups(ctx, s); err != nil {
		return err
	}
	if err := r.deleteConfigMapOncePodless(ctx, s); err != nil {
		return err
	}
	s.requeue(time.Second)
	return nil
}

// ensureConfigMap creates (or adopts) the ConfigMap of the current attempt.
// As in FC, the attempt is AttemptCreationRequested until the cache shows
// the ConfigMap, then AttemptPreparing; it returns true once the pods may
// be created. It returns false while an older attempt's ConfigMap is still
// going away.
func (r *Reconciler) ensureConfigMap(ctx context.Context, s *syncState) (bool, error) {
	att := &s.fw.Status.AttemptStatus
	cm := s.cm
	if cm == nil {
		want := newConfigMap(s.fw, att.ID)
		want.OwnerReferences = []metav1.OwnerReference{ownerRef(s.fw, r.opts.API.gvk())}
		err := r.client.Create(ctx, want)
		switch {
		case err == nil:
			cm = want
			r.expect(s.podKey(cm.Name), cm.UID)
		case apierrors.IsAlreadyExists(err):
			live := &corev1.ConfigMap{}
			if err := r.reader.Get(ctx, s.podKey(want.Name), live); err != nil {
				return false, fmt.Errorf("get configmap %s/%s: %w", want.Namespace, want.Name, err)
			}
			cm = live
		default:
			return false, fmt.Errorf("create configmap %s/%s: %w", want.Namespace, want.Name, err)
		}
	}
	if !metav1.IsControlledBy(cm, s.fw) {
		r.event(s.fw, corev1.EventTypeWarning, ReasonPodNameConflict, actionCreate, "configmap %s exists and is not owned by this framework", cm.Name)
		s.requeue(10 * time.Second)
		return false, nil
	}
	if cm.Annotations[v1.AnnotationFrameworkAttemptID] != strconv.Itoa(int(att.ID)) || cm.DeletionTimestamp != nil {
		// A previous attempt's ConfigMap: wait until it is gone.
		if cm.DeletionTimestamp == nil {
			if err := r.deleteObject(ctx, cm, nil); err != nil {
				return false, err
			}
		}
		s.requeue(time.Second)
		return false, nil
	}
	uid := cm.UID
	att.ConfigMapUID = &uid
	att.InstanceUID = attemptInstanceUID(att.ID, uid)
	s.urgent = true
	r.event(s.fw, corev1.EventTypeNormal, ReasonAttemptCreated, actionCreate, "framework attempt %d started", att.ID)
	if s.cm == nil {
		// Created (or found) just now: wait for the cache to show it.
		s.setState(v1.FrameworkAttemptCreationRequested)
		return false, nil
	}
	s.setState(v1.FrameworkAttemptPreparing)
	return true, nil
}

// creation is one pod to create and the task it belongs to.
type creation struct {
	role *v1.TaskRoleSpec
	ts   *v1.TaskStatus
	pod  *corev1.Pod
	err  error
}

// ensurePods creates the pods of tasks waiting for one, in parallel. A pod
// that already exists with this task attempt's identity (a previous run
// created it but died before writing the status) is adopted, never
// duplicated: pod names are deterministic.
func (r *Reconciler) ensurePods(ctx context.Context, s *syncState) error {
	var todo []*creation
	var errs []error
	group, err := r.ensurePodGroup(ctx, s)
	if err != nil {
		return err
	}
	_ = s.forEachTask(func(role *v1.TaskRoleSpec, ts *v1.TaskStatus) error {
		if ts.State != v1.TaskAttemptCreationPending || ts.DeletionPending {
			return nil
		}
		if existing := s.pods[ts.AttemptStatus.PodName]; existing != nil {
			if err := r.adoptOrClear(ctx, s, ts, existing); err != nil {
				errs = append(errs, err)
			}
			return nil
		}
		pod := NewPod(s.fw, role, ts.Index, ts.AttemptStatus.ID)
		pod.OwnerReferences = []metav1.OwnerReference{ownerRef(s.fw, r.opts.API.gvk())}
		joinGroup(pod, group)
		todo = append(todo, &creation{role: role, ts: ts, pod: pod})
		return nil
	})
	r.parallel(len(todo), func(i int) {
		c := todo[i]
		c.err = r.client.Create(ctx, c.pod)
	})
	for _, c := range todo {
		switch {
		case c.err == nil:
			r.metrics.podCreations.WithLabelValues("created").Inc()
			r.expect(s.podKey(c.pod.Name), c.pod.UID)
			r.recordCreated(s, c.ts, c.pod)
		case apierrors.IsAlreadyExists(c.err):
			live := &corev1.Pod{}
			if err := r.reader.Get(ctx, s.podKey(c.pod.Name), live); err != nil {
				if !apierrors.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("get pod %s/%s: %w", c.pod.Namespace, c.pod.Name, err))
				}
				s.requeue(time.Second)
				continue
			}
			if err := r.adoptOrClear(ctx, s, c.ts, live); err != nil {
				errs = append(errs, err)
			}
		default:
			cs := classifyCreationError(c.err)
			if cs.Code == v1.CompletionCodePodCreationTransientError {
				// Quota, throttling, an unreachable apiserver: try again
				// with the workqueue's exponential back-off; the task
				// attempt does not complete.
				r.metrics.podCreations.WithLabelValues("error").Inc()
				errs = append(errs, fmt.Errorf("create pod %s/%s: %w", c.pod.Namespace, c.pod.Name, c.err))
				continue
			}
			r.metrics.podCreations.WithLabelValues("rejected").Inc()
			c.ts.AttemptStatus.CompletionStatus = cs
			r.event(s.fw, corev1.EventTypeWarning, ReasonPodCreationFailed, actionCreate, "pod %s of task %s[%d] refused (%s): %v", c.pod.Name, c.role.Name, c.ts.Index, cs.Phrase, c.err)
			r.taskCompleted(ctx, s, c.role, c.ts)
			r.finishTask(ctx, s, c.role, c.ts)
		}
	}
	if n := len(todo); n > 0 {
		log.FromContext(ctx).V(1).Info("created task pods", "count", n, "errors", len(errs))
	}
	return errors.Join(errs...)
}

// classifyCreationError is FrameworkController's ClassifyPodCreationError
// (pkg/apis/frameworkcontroller/v1/completion.go): a pod the apiserver
// refuses as invalid, too large or forbidden (except by quota) is a
// PodCreationPermanentError, unless the error came through a broken
// connection; a bad request is a PodCreationUnknownError; anything else,
// quota and non-API errors included, is a PodCreationTransientError.
func classifyCreationError(err error) *v1.CompletionStatus {
	diag := truncate("failed to create the pod: " + err.Error())
	brokenConn := utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err)
	switch {
	case apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err) ||
		(apierrors.IsForbidden(err) && !strings.Contains(err.Error(), "exceeded quota")):
		if brokenConn {
			return v1.NewCompletionStatus(v1.CompletionCodePodCreationUnknownError, diag)
		}
		return v1.NewCompletionStatus(v1.CompletionCodePodCreationPermanentError, diag)
	case apierrors.IsBadRequest(err):
		return v1.NewCompletionStatus(v1.CompletionCodePodCreationUnknownError, diag)
	}
	return v1.NewCompletionStatus(v1.CompletionCodePodCreationTransientError, diag)
}

// adoptOrClear handles a pod that already carries a pending task's name:
// this task attempt's pod is adopted; a pod of an earlier attempt of this
// Framework is deleted so the name frees up; a stranger's pod is reported.
func (r *Reconciler) adoptOrClear(ctx context.Context, s *syncState, ts *v1.TaskStatus, pod *corev1.Pod) error {
	switch {
	case podBelongsTo(pod, s.fw, s.cm, ts.AttemptStatus.ID):
		r.metrics.podCreations.WithLabelValues("adopted").Inc()
		r.recordCreated(s, ts, pod)
		return nil
	case owned(pod, s.fw, s.cm):
		s.requeue(time.Second)
		if pod.DeletionTimestamp != nil {
			return r.forceDeleteAfterTimeout(ctx, s, pod)
		}
		return r.deleteObject(ctx, pod, nil)
	default:
		r.event(s.fw, corev1.EventTypeWarning, ReasonPodNameConflict, actionCreate, "pod %s exists and is not owned by this framework", pod.Name)
		s.requeue(10 * time.Second)
		return nil
	}
}

func (r *Reconciler) recordCreated(s *syncState, ts *v1.TaskStatus, pod *corev1.Pod) {
	recordPod(s, ts, pod)
	s.setTaskState(ts, v1.TaskAttemptCreationRequested)
	s.urgent = true
}

// deleteCompletedPods deletes the pods of tasks whose attempt completed.
func (r *Reconciler) deleteCompletedPods(ctx context.Context, s *syncState) error {
	var victims []*corev1.Pod
	var tasks []*v1.TaskStatus
	_ = s.forEachTask(func(_ *v1.TaskRoleSpec, ts *v1.TaskStatus) error {
		if ts.State != v1.TaskAttemptDeletionPending && ts.State != v1.TaskAttemptDeletionRequested && ts.State != v1.TaskAttemptDeleting {
			return nil
		}
		if pod := s.pods[ts.AttemptStatus.PodName]; pod != nil && pod.UID == uidOf(ts.AttemptStatus.PodUID) {
			victims = append(victims, pod)
			tasks = append(tasks, ts)
		}
		return nil
	})
	err := r.deletePods(ctx, s, victims)
	for _, ts := range tasks {
		if ts.State == v1.TaskAttemptDeletionPending {
			s.setTaskState(ts, v1.TaskAttemptDeletionRequested)
		}
	}
	return err
}

// deleteAttempt deletes every pod and PodGroup of the Framework, then its
// ConfigMap.
func (r *Reconciler) deleteAttempt(ctx context.Context, s *syncState) error {
	if err := r.deletePodsAndGroups(ctx, s); err != nil {
		return err
	}
	_ = s.forEachTask(func(_ *v1.TaskRoleSpec, ts *v1.TaskStatus) error {
		switch ts.State {
		case v1.TaskCompleted, v1.TaskAttemptCreationPending, v1.TaskAttemptDeleting, v1.TaskAttemptCompleted:
		default:
			s.setTaskState(ts, v1.TaskAttemptDeletionRequested)
		}
		return nil
	})
	if err := r.deleteConfigMapOncePodless(ctx, s); err != nil {
		return err
	}
	if s.fw.Status.State == v1.FrameworkAttemptDeletionPending {
		s.setState(v1.FrameworkAttemptDeletionRequested)
	}
	return nil
}

// deletePodsAndGroups deletes every pod and PodGroup of the Framework that
// the cache shows.
func (r *Reconciler) deletePodsAndGroups(ctx context.Context, s *syncState) error {
	pods := make([]*corev1.Pod, 0, len(s.pods))
	for _, p := range s.pods {
		pods = append(pods, p)
	}
	if err := r.deletePods(ctx, s, pods); err != nil {
		return err
	}
	return r.deletePodGroups(ctx, s)
}

// deleteConfigMapOncePodless deletes the attempt's ConfigMap once the cache
// shows no pod of the Framework (pods name it; FC deletes it last).
func (r *Reconciler) deleteConfigMapOncePodless(ctx context.Context, s *syncState) error {
	if len(s.pods) == 0 && s.cm != nil && s.cm.DeletionTimestamp == nil {
		return r.deleteObject(ctx, s.cm, nil)
	}
	return nil
}

// deletePods deletes pods in parallel; pods already terminating are
// force-deleted once their role's podGracefulDeletionTimeoutSec expires.
func (r *Reconciler) deletePods(ctx context.Context, s *syncState, pods []*corev1.Pod) error {
	errs := make([]error, len(pods))
	r.parallel(len(pods), func(i int) {
		p := pods[i]
		if p.DeletionTimestamp != nil {
			errs[i] = r.forceDeleteAfterTimeout(ctx, s, p)
			return
		}
		var grace *int64
		if t := gracefulTimeout(s.fw, p); t != nil && *t == 0 {
			grace = t
		}
		errs[i] = r.deleteObject(ctx, p, grace)
		if errs[i] == nil {
			r.metrics.podDeletions.Inc()
		}
	})
	return errors.Join(errs...)
}

// forceDeleteAfterTimeout force-deletes a terminating pod whose role's
// podGracefulDeletionTimeoutSec has passed, or asks to be requeued then.
func (r *Reconciler) forceDeleteAfterTimeout(ctx context.Context, s *syncState, p *corev1.Pod) error {
	timeout := gracefulTimeout(s.fw, p)
	if timeout == nil {
		return nil
	}
	requested := p.DeletionTimestamp.Time
	if p.DeletionGracePeriodSeconds != nil {
		requested = requested.Add(-time.Duration(*p.DeletionGracePeriodSeconds) * time.Second)
	}
	left := requested.Add(time.Duration(*timeout) * time.Second).Sub(s.now.Time)
	if left > 0 {
		s.requeue(left)
		return nil
	}
	zero := int64(0)
	return r.deleteObject(ctx, p, &zero)
}

func gracefulTimeout(fw *v1.Framework, p *corev1.Pod) *int64 {
	role, _, ok := taskIndexOf(p)
	if !ok {
		return nil
	}
	if spec := fw.Spec.TaskRole(role); spec != nil {
		return spec.Task.PodGracefulDeletionTimeoutSec
	}
	// A deleted role: the value its status kept (FC keeps it for this).
	if fw.Status != nil {
		if rs := fw.Status.AttemptStatus.TaskRoleStatus(role); rs != nil {
			return rs.PodGracefulDeletionTimeoutSec
		}
	}
	return nil
}

// deleteObject deletes obj if it still has the same UID.
func (r *Reconciler) deleteObject(ctx context.Context, obj client.Object, grace *int64) error {
	uid := obj.GetUID()
	opts := []client.DeleteOption{client.Preconditions{UID: &uid}}
	if grace != nil {
		opts = append(opts, client.GracePeriodSeconds(*grace))
	}
	err := r.client.Delete(ctx, obj, opts...)
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// parallel runs fn(0..n-1) on up to CreationConcurrency goroutines and
// returns when all are done.
func (r *Reconciler) parallel(n int, fn func(i int)) {
	if n == 0 {
		return
	}
	workers := min(r.opts.CreationConcurrency, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
