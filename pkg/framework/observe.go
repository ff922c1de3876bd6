package framework

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// observe folds what the cache shows (pods, the ConfigMap) into the status:
// pod IPs and nodes, task completions and retries, completion policies,
// and the end of an attempt. It changes no object but the Framework.
func (r *Reconciler) observe(ctx context.Context, s *syncState) error {
	st := s.fw.Status
	if st.State == v1.FrameworkCompleted {
		return nil
	}
	r.rescale(s)
	if st.State == v1.FrameworkAttemptCreationPending {
		return nil
	}
	att := &st.AttemptStatus
	if s.cm != nil {
		r.observed(s.podKey(s.cm.Name))
	}
	if !completing(st.State) && st.State != v1.FrameworkAttemptCompleted && att.ConfigMapUID != nil && (s.cm == nil || s.cm.UID != *att.ConfigMapUID) &&
		!r.pending(s.podKey(att.ConfigMapName), *att.ConfigMapUID) {
		gone, err := r.goneLive(ctx, s.podKey(att.ConfigMapName), *att.ConfigMapUID, &corev1.ConfigMap{})
		if err != nil {
			return err
		}
		if gone {
			r.completeAttempt(ctx, s, &v1.FrameworkAttemptCompletionStatus{
				CompletionStatus: *v1.NewCompletionStatus(v1.CompletionCodeConfigMapExternalDeleted, "the attempt's ConfigMap was deleted by someone else"),
			})
		}
	}
	if err := s.forEachTask(func(role *v1.TaskRoleSpec, ts *v1.TaskStatus) error {
		return r.observeTask(ctx, s, role, ts)
	}); err != nil {
		return err
	}

	switch {
	case st.State == v1.FrameworkAttemptCreationRequested || st.State == v1.FrameworkAttemptPreparing || st.State == v1.FrameworkAttemptRunning:
		if s.fw.Spec.ExecutionType == v1.ExecutionStop {
			r.event(s.fw, corev1.EventTypeNormal, ReasonFrameworkStopping, actionDelete, "executionType is Stop: deleting all pods")
			r.completeAttempt(ctx, s, &v1.FrameworkAttemptCompletionStatus{
				CompletionStatus: *v1.NewCompletionStatus(v1.CompletionCodeStopFrameworkRequested, "spec.executionType is Stop"),
				Trigger:          &v1.CompletionPolicyTriggerStatus{Message: "spec.executionType is Stop"},
			})
			return nil
		}
		if st.State == v1.FrameworkAttemptCreationRequested {
			if s.cm == nil || s.cm.UID != uidOf(att.ConfigMapUID) {
				return nil // the ConfigMap's watch event brings us back
			}
			s.setState(v1.FrameworkAttemptPreparing)
			s.urgent = true
		}
		if cs := attemptCompletion(&s.fw.Spec, att); cs != nil {
			r.completeAttempt(ctx, s, cs)
			return nil
		}
		if s.fw.Spec.Suspend {
			r.suspendAttempt(ctx, s)
			return nil
		}
		if st.State == v1.FrameworkAttemptPreparing && allTasks(s, func(ts *v1.TaskStatus) bool {
			return ts.State == v1.TaskAttemptRunning || ts.State == v1.TaskCompleted || ts.AttemptStatus.RunTime != nil
		}) {
			att.RunTime = &s.now
			s.setState(v1.FrameworkAttemptRunning)
		}
	case st.State == v1.FrameworkAttemptCompleted:
		// Waiting for the retry delay.
		r.finishAttempt(ctx, s)
	case completing(st.State):
		if s.cm != nil && s.cm.DeletionTimestamp != nil {
			s.setState(v1.FrameworkAttemptDeleting)
		}
		if len(s.pods) > 0 || s.cm != nil || !allTasks(s, func(ts *v1.TaskStatus) bool { return ts.State == v1.TaskCompleted }) {
			return nil
		}
		if att.CompletionStatus == nil {
			// The attempt was ended by spec.suspend, not completed.
			if s.fw.Spec.ExecutionType != v1.ExecutionStop {
				r.endSuspendedAttempt(ctx, s)
				return nil
			}
			att.CompletionStatus = &v1.FrameworkAttemptCompletionStatus{
				CompletionStatus: *v1.NewCompletionStatus(v1.CompletionCodeStopFrameworkRequested, "spec.executionType is Stop"),
				Trigger:          &v1.CompletionPolicyTriggerStatus{Message: "spec.executionType became Stop while the framework was suspended"},
			}
		}
		r.finishAttempt(ctx, s)
	}
	return nil
}

// observeTask updates one task from its pod.
func (r *Reconciler) observeTask(ctx context.Context, s *syncState, role *v1.TaskRoleSpec, ts *v1.TaskStatus) error {
	as := &ts.AttemptStatus
	pod := s.pods[as.PodName]
	uid := uidOf(as.PodUID)
	if pod != nil && uid != "" && pod.UID == uid {
		r.observed(s.podKey(pod.Name))
	}
	if pod != nil && pod.UID != uid {
		pod = nil // another attempt's pod (or a stranger): not this attempt's
	}
	switch ts.State {
	case v1.TaskAttemptCreationPending:
		if completing(s.fw.Status.State) || ts.DeletionPending {
			// The attempt ended before this task got a pod.
			if as.CompletionStatus == nil {
				diag := "the framework attempt completed before the task started"
				if suspending(s) {
					diag = "the framework was suspended before the task started"
				}
				as.CompletionStatus = v1.NewCompletionStatus(v1.CompletionCodeFrameworkAttemptCompletion, diag)
			}
			r.finishTask(ctx, s, role, ts)
		}
		return nil

	case v1.TaskAttemptCreationRequested, v1.TaskAttemptPreparing, v1.TaskAttemptRunning:
		if pod == nil {
			if r.pending(s.podKey(as.PodName), uid) {
				// Created moments ago; the cache has not seen it. Its event
				// brings us back; should it never come (a watch lost under
				// load), look at the live pod once the expectation expires.
				s.requeue(r.opts.ExpectationTimeout)
				return nil
			}
			live := &corev1.Pod{}
			gone, err := r.goneLiveInto(ctx, s.podKey(as.PodName), uid, live)
			if err != nil {
				return err
			}
			if !gone {
				log.FromContext(ctx).Info("pod not in the cache (its event is late or lost); using the apiserver's copy",
					"pod", as.PodName, "uid", uid, "taskState", ts.State, "expectationTimeout", r.opts.ExpectationTimeout.String())
				pod = live
			} else {
				if !ts.DeletionPending && as.CompletionStatus == nil {
					as.CompletionStatus = v1.NewCompletionStatus(v1.CompletionCodePodExternalDeleted, fmt.Sprintf("pod %s was deleted by someone else", as.PodName))
					r.event(s.fw, corev1.EventTypeWarning, ReasonPodExternallyDeleted, actionObserve, "pod %s of task %s[%d] was deleted by someone else", as.PodName, role.Name, ts.Index)
				}
				r.finishTask(ctx, s, role, ts)
				return nil
			}
		}
		recordPod(s, ts, pod)
		if pod.DeletionTimestamp != nil && !ts.DeletionPending {
			if as.CompletionStatus == nil {
				if as.CompletionStatus = r.podCompletion(pod); as.CompletionStatus == nil {
					as.CompletionStatus = v1.NewCompletionStatus(v1.CompletionCodePodExternalDeleted, fmt.Sprintf("pod %s is being deleted by someone else", as.PodName))
				}
				r.taskCompleted(ctx, s, role, ts)
			}
			s.setTaskState(ts, v1.TaskAttemptDeletionRequested)
			return nil
		}
		if cs := r.podCompletion(pod); cs != nil {
			if as.CompletionStatus == nil {
				as.CompletionStatus = cs
				r.taskCompleted(ctx, s, role, ts)
			}
			s.setTaskState(ts, v1.TaskAttemptDeletionPending)
			return nil
		}
		switch {
		case pod.Status.Phase == corev1.PodRunning:
			if as.RunTime == nil {
				as.RunTime = &s.now
			}
			s.setTaskState(ts, v1.TaskAttemptRunning)
		case ts.State == v1.TaskAttemptCreationRequested:
			s.setTaskState(ts, v1.TaskAttemptPreparing)
		}
		return nil

	case v1.TaskAttemptDeletionPending, v1.TaskAttemptDeletionRequested, v1.TaskAttemptDeleting:
		if pod != nil {
			if pod.DeletionTimestamp != nil {
				s.setTaskState(ts, v1.TaskAttemptDeleting)
			}
			recordPod(s, ts, pod)
			if as.CompletionStatus == nil {
				as.CompletionStatus = r.podCompletion(pod)
			}
			return nil
		}
		if uid != "" && r.pending(s.podKey(as.PodName), uid) {
			return nil
		}
		r.finishTask(ctx, s, role, ts)
		return nil

	case v1.TaskAttemptCompleted:
		r.finishTask(ctx, s, role, ts)
	}
	return nil
}

// recordPod copies a pod's placement into the task's attempt status.
func recordPod(s *syncState, ts *v1.TaskStatus, pod *corev1.Pod) {
	as := &ts.AttemptStatus
	set := func(dst **string, v string) {
		if v != "" && (*dst == nil || **dst != v) {
			*dst = &v
		}
	}
	set(&as.PodNodeName, pod.Spec.NodeName)
	set(&as.PodIP, pod.Status.PodIP)
	set(&as.PodHostIP, pod.Status.HostIP)
	if as.PodUID == nil || *as.PodUID != pod.UID {
		uid := pod.UID
		as.PodUID = &uid
		as.InstanceUID = attemptInstanceUID(as.ID, pod.UID)
		ts.InstanceUID = as.InstanceUID
	}
	if as.RunTime == nil && pod.Status.Phase == corev1.PodRunning {
		as.RunTime = &s.now
	}
}

// taskCompleted records the side effects of a task attempt's completion
// (event, metric) once, when its completion status is first set.
func (r *Reconciler) taskCompleted(ctx context.Context, s *syncState, role *v1.TaskRoleSpec, ts *v1.TaskStatus) {
	cs := ts.AttemptStatus.CompletionStatus
	if ts.AttemptStatus.CompletionTime == nil {
		ts.AttemptStatus.CompletionTime = &s.now
	}
	s.urgent = true
	r.metrics.taskCompletions.WithLabelValues(string(cs.Type.Name)).Inc()
	if !cs.Succeeded() {
		r.event(s.fw, corev1.EventTypeWarning, ReasonTaskFailed, actionObserve, "task %s[%d] attempt %d failed with code %d (%s): %s",
			role.Name, ts.Index, ts.AttemptStatus.ID, cs.Code, cs.Phrase, cs.Diagnostics)
	}
	log.FromContext(ctx).V(1).Info("task attempt completed", "role", role.Name, "index", ts.Index, "attempt", ts.AttemptStatus.ID, "code", cs.Code)
}

// finishTask ends a task attempt whose pod is gone: it starts a new attempt
// when the task retry policy says so (after the decision's delay, waiting
// in AttemptCompleted with retryPolicyStatus.retryDelaySec set), or
// completes the task.
func (r *Reconciler) finishTask(ctx context.Context, s *syncState, role *v1.TaskRoleSpec, ts *v1.TaskStatus) {
	as := &ts.AttemptStatus
	s.urgent = true
	if as.CompletionStatus == nil {
		if suspending(s) {
			as.CompletionStatus = v1.NewCompletionStatus(v1.CompletionCodeFrameworkAttemptCompletion, "the task's pod was deleted because the framework was suspended")
		} else if ts.DeletionPending || completing(s.fw.Status.State) {
			as.CompletionStatus = v1.NewCompletionStatus(v1.CompletionCodeFrameworkAttemptCompletion, "the task's pod was deleted because its framework attempt completed")
		} else {
			as.CompletionStatus = v1.NewCompletionStatus(v1.CompletionCodePodExternalDeleted, "the task's pod is gone")
		}
	}
	if as.CompletionTime == nil {
		as.CompletionTime = &s.now
	}
	if !ts.DeletionPending && !completing(s.fw.Status.State) && s.fw.Spec.ExecutionType != v1.ExecutionStop {
		// FC decides task retries with a zero Conflict delay: only a
		// framework retry waits the random back-off.
		d := decideRetry(role.Task.RetryPolicy, ts.RetryPolicyStatus, as.CompletionStatus, retryDelays{})
		if d.Retry && r.waitRetryDelay(s, &ts.RetryPolicyStatus, as.CompletionTime.Time, d) {
			if ts.State != v1.TaskAttemptCompleted {
				r.event(s.fw, corev1.EventTypeNormal, ReasonTaskRetrying, actionRetry, "task %s[%d] will be retried in %ds after code %d: %s",
					role.Name, ts.Index, *ts.RetryPolicyStatus.RetryDelaySec, as.CompletionStatus.Code, d.Reason)
			}
			s.setTaskState(ts, v1.TaskAttemptCompleted)
			return
		}
		if d.Retry {
			applyRetry(&ts.RetryPolicyStatus, d)
			r.metrics.taskRetries.Inc()
			r.event(s.fw, corev1.EventTypeNormal, ReasonTaskRetrying, actionRetry, "retrying task %s[%d] after code %d: %s", role.Name, ts.Index, as.CompletionStatus.Code, d.Reason)
			ts.AttemptStatus = newTaskAttemptStatus(s.fw, role.Name, ts.Index, as.ID+1, s.now)
			ts.InstanceUID = nil
			s.setTaskState(ts, v1.TaskAttemptCreationPending)
			return
		}
	}
	ts.RetryPolicyStatus.RetryDelaySec = nil
	if ts.CompletionTime == nil {
		ts.CompletionTime = &s.now
	}
	s.setTaskState(ts, v1.TaskCompleted)
}

// delays are the reconciler's retry delays for decideRetry.
func (r *Reconciler) delays() retryDelays {
	return retryDelays{minConflict: r.minConflictDelay, maxConflict: r.maxConflictDelay, rand: r.opts.Rand}
}

// waitRetryDelay records the delay of a retry decision the first time it
// is taken (so that a random delay is drawn once) and reports whether the
// retry must still wait; if so it asks for a reconcile when it is due.
func (r *Reconciler) waitRetryDelay(s *syncState, st *v1.RetryPolicyStatus, completed time.Time, d retryDecision) bool {
	if st.RetryDelaySec == nil {
		if d.Delay <= 0 {
			return false
		}
		sec := int64(d.Delay / time.Second)
		st.RetryDelaySec = &sec
	}
	left := completed.Add(time.Duration(*st.RetryDelaySec) * time.Second).Sub(s.now.Time)
	if left <= 0 {
		return false
	}
	s.requeue(left)
	return true
}

// completeAttempt records the completion of the framework attempt and marks
// every unfinished task for deletion.
func (r *Reconciler) completeAttempt(ctx context.Context, s *syncState, cs *v1.FrameworkAttemptCompletionStatus) {
	att := &s.fw.Status.AttemptStatus
	att.CompletionStatus = cs
	s.urgent = true
	s.setState(v1.FrameworkAttemptDeletionPending)
	_ = s.forEachTask(func(_ *v1.TaskRoleSpec, ts *v1.TaskStatus) error {
		if ts.State != v1.TaskCompleted {
			ts.DeletionPending = true
		}
		return nil
	})
	r.metrics.attemptCompletions.WithLabelValues(string(cs.Type.Name)).Inc()
	eventType := corev1.EventTypeNormal
	if !cs.Succeeded() {
		eventType = corev1.EventTypeWarning
	}
	r.event(s.fw, eventType, ReasonAttemptCompleted, actionComplete, "framework attempt %d completed with code %d (%s): %s", att.ID, cs.Code, cs.Phrase, cs.Diagnostics)
	log.FromContext(ctx).Info("framework attempt completed", "attempt", att.ID, "code", cs.Code, "phrase", cs.Phrase)
}

// finishAttempt runs once every pod and the ConfigMap of a completed attempt
// are gone: the framework retry policy starts a new attempt (after its
// delay, waiting in AttemptCompleted) or completes the Framework.
func (r *Reconciler) finishAttempt(ctx context.Context, s *syncState) {
	st := s.fw.Status
	att := &st.AttemptStatus
	s.urgent = true
	if att.CompletionTime == nil {
		att.CompletionTime = &s.now
	}
	cs := &att.CompletionStatus.CompletionStatus
	if s.fw.Spec.ExecutionType != v1.ExecutionStop && cs.Code != v1.CompletionCodeStopFrameworkRequested {
		d := decideRetry(s.fw.Spec.RetryPolicy, st.RetryPolicyStatus, cs, r.delays())
		if d.Retry && r.waitRetryDelay(s, &st.RetryPolicyStatus, att.CompletionTime.Time, d) {
			if st.State != v1.FrameworkAttemptCompleted {
				r.event(s.fw, corev1.EventTypeNormal, ReasonFrameworkRetrying, actionRetry, "the framework will be retried in %ds after attempt %d ended with code %d: %s",
					*st.RetryPolicyStatus.RetryDelaySec, att.ID, cs.Code, d.Reason)
			}
			s.setState(v1.FrameworkAttemptCompleted)
			return
		}
		if d.Retry {
			applyRetry(&st.RetryPolicyStatus, d)
			r.metrics.frameworkRetries.Inc()
			r.event(s.fw, corev1.EventTypeNormal, ReasonFrameworkRetrying, actionRetry, "retrying the framework after attempt %d ended with code %d: %s", att.ID, cs.Code, d.Reason)
			st.AttemptStatus = newAttemptStatus(s.fw, att.ID+1, s.now)
			s.setState(v1.FrameworkAttemptCreationPending)
			return
		}
	}
	st.RetryPolicyStatus.RetryDelaySec = nil
	st.CompletionTime = &s.now
	s.setState(v1.FrameworkCompleted)
	eventType := corev1.EventTypeNormal
	if !cs.Succeeded() {
		eventType = corev1.EventTypeWarning
	}
	r.event(s.fw, eventType, ReasonFrameworkCompleted, actionComplete, "framework completed with code %d (%s) after %d attempt(s)", cs.Code, cs.Phrase, att.ID+1)
	log.FromContext(ctx).Info("framework completed", "code", cs.Code, "phrase", cs.Phrase)
}

func allTasks(s *syncState, pred func(ts *v1.TaskStatus) bool) bool {
	ok := true
	_ = s.forEachTask(func(_ *v1.TaskRoleSpec, ts *v1.TaskStatus) error {
		if !pred(ts) {
			ok = false
		}
		return nil
	})
	return ok
}

// goneLive asks the apiserver (not the cache) whether the object nn with
// uid no longer exists.
func (r *Reconciler) goneLive(ctx context.Context, nn types.NamespacedName, uid types.UID, obj client.Object) (bool, error) {
	return r.goneLiveInto(ctx, nn, uid, obj)
}

func (r *Reconciler) goneLiveInto(ctx context.Context, nn types.NamespacedName, uid types.UID, obj client.Object) (bool, error) {
	if err := r.reader.Get(ctx, nn, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("get %s: %w", nn, err)
	}
	return obj.GetUID() != uid, nil
}

// taskIndexOf returns a pod's task role and index from its labels, or
// from its annotations (FrameworkController puts no index label on pods).
func taskIndexOf(pod *corev1.Pod) (string, int32, bool) {
	index, ok := pod.Labels[v1.LabelTaskIndex]
	if !ok {
		index = pod.Annotations[v1.AnnotationTaskIndex]
	}
	i, err := strconv.Atoi(index)
	if err != nil {
		return "", 0, false
	}
	role := pod.Labels[v1.LabelTaskRoleName]
	if role == "" {
		role = pod.Annotations[v1.AnnotationTaskRoleName]
	}
	return role, int32(i), true
}
