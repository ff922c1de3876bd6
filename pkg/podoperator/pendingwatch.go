package podoperator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PendingAction is what the pending-pod watcher does with a pod that has been
// Pending longer than PendingWatch.Limit.
type PendingAction string

const (
	// PendingActionEvent logs the pod and, with Options.EventRecorder, records
	// a Warning Event (ReasonPendingTooLong) on it.
	PendingActionEvent PendingAction = "Event"
	// PendingActionDelete deletes the pod (with a UID precondition, so a new
	// pod of the same name is never deleted instead), then logs and records
	// the Event as PendingActionEvent does.
	PendingActionDelete PendingAction = "Delete"
	// PendingActionCallback calls PendingWatch.Callback.
	PendingActionCallback PendingAction = "Callback"
)

// ReasonPendingTooLong is the reason of the Event recorded on a pod that has
// been Pending longer than PendingWatch.Limit.
const ReasonPendingTooLong = "PodPendingTooLong"

// PendingWatch configures the pending-pod watcher: every Interval it looks
// through the operator's cache (no request to the API server) for pods whose
// phase has been Pending for longer than Limit since their creation, and acts
// once on each such pod. A pod is acted on again only after it has left that
// state and come back (a new pod of the same name, say). The watcher runs
// while the operator handles events (as the leader, with leader election).
type PendingWatch struct {
	// Limit is how long a pod may stay Pending, counted from its
	// creationTimestamp. Required, positive.
	Limit time.Duration
	// Interval is how often the cache is scanned. Default: Limit/10,
	// at least 1 s and at most 1 min.
	Interval time.Duration
	// Action is what happens to a pod over the limit. Default
	// PendingActionEvent.
	Action PendingAction
	// Callback is called with a copy of the pod and how long it has been
	// Pending. With PendingActionCallback it is the action (required then);
	// with Event or Delete, when set, it is called after the action
	// succeeded, e.g. to print it. An error is logged and counted, and the
	// pod is tried again at the next scan.
	Callback func(ctx context.Context, pod *corev1.Pod, pendingFor time.Duration) error
}

func (pw *PendingWatch) setDefaults() {
	if pw.Action == "" {
		pw.Action = PendingActionEvent
	}
	if pw.Interval == 0 {
		pw.Interval = min(max(pw.Limit/10, time.Second), time.Minute)
	}
}

func (pw *PendingWatch) validate() []error {
	var errs []error
	if pw.Limit <= 0 {
		errs = append(errs, fmt.Errorf("Options.PendingWatch.Limit is %s: set how long a pod may stay Pending, e.g. 5m", pw.Limit))
	}
	if pw.Interval < 0 {
		errs = append(errs, fmt.Errorf("Options.PendingWatch.Interval is %s: use a positive duration, or 0 for Limit/10", pw.Interval))
	}
	switch pw.Action {
	case "", PendingActionEvent, PendingActionDelete:
	case PendingActionCallback:
		if pw.Callback == nil {
			errs = append(errs, errors.New("Options.PendingWatch.Action is Callback but Callback is nil: set Callback"))
		}
	default:
		errs = append(errs, fmt.Errorf("Options.PendingWatch.Action %q: use Event, Delete or Callback", pw.Action))
	}
	return errs
}

// runPendingWatch scans the cache every Interval until ctx ends.
func (o *Operator) runPendingWatch(ctx context.Context) {
	pw := o.opts.PendingWatch
	acted := map[types.UID]bool{}
	ticker := time.NewTicker(pw.Interval)
	defer ticker.Stop()
	for {
		o.scanPending(ctx, time.Now(), acted)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// scanPending acts on every cached pod Pending for longer than the limit and
// not acted on yet; acted holds the UIDs done, and forgets those no longer
// over the limit.
func (o *Operator) scanPending(ctx context.Context, now time.Time, acted map[types.UID]bool) {
	pw := o.opts.PendingWatch
	over := map[types.UID]bool{}
	for _, obj := range o.informer.GetStore().List() {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Status.Phase != corev1.PodPending || pod.DeletionTimestamp != nil {
			continue
		}
		age := now.Sub(pod.CreationTimestamp.Time)
		if age <= pw.Limit {
			continue
		}
		over[pod.UID] = true
		if acted[pod.UID] || ctx.Err() != nil {
			continue
		}
		if err := o.actOnPending(ctx, pod.DeepCopy(), age.Truncate(time.Second)); err != nil {
			o.metrics.pendingErrors.Inc()
			o.log.Error("act on pod pending too long; retrying at the next scan", "namespace", pod.Namespace, "name", pod.Name,
				"action", string(pw.Action), "err", err)
			continue
		}
		acted[pod.UID] = true
		o.metrics.pendingActions.WithLabelValues(string(pw.Action)).Inc()
	}
	for uid := range acted {
		if !over[uid] {
			delete(acted, uid)
		}
	}
	o.metrics.pendingOverLimit.Set(float64(len(over)))
}

func (o *Operator) actOnPending(ctx context.Context, pod *corev1.Pod, pendingFor time.Duration) error {
	pw := o.opts.PendingWatch
	if pw.Action == PendingActionCallback {
		return pw.Callback(ctx, pod, pendingFor)
	}
	why := PendingReason(pod)
	if pw.Action == PendingActionDelete {
		err := o.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	o.log.Warn("pod pending too long", "namespace", pod.Namespace, "name", pod.Name, "pendingFor", pendingFor,
		"limit", pw.Limit, "action", string(pw.Action), "why", why)
	if o.opts.EventRecorder != nil {
		verb := "still Pending"
		if pw.Action == PendingActionDelete {
			verb = "deleted"
		}
		o.opts.EventRecorder.Eventf(pod, corev1.EventTypeWarning, ReasonPendingTooLong,
			"Pending for %s, longer than the limit of %s (%s); %s by %s", pendingFor, pw.Limit, why, verb, o.opts.Name)
	}
	if pw.Callback != nil {
		return pw.Callback(ctx, pod, pendingFor)
	}
	return nil
}

// PendingReason says why a pod is Pending, from its PodScheduled condition
// or its waiting containers ("Unschedulable: 0/2 nodes are available: …",
// "ImagePullBackOff"), or "no reason reported".
func PendingReason(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return strings.TrimSpace(c.Reason + ": " + c.Message)
		}
	}
	for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return cs.Name + ": " + w.Reason
		}
	}
	if pod.Spec.NodeName == "" {
		return "not scheduled yet"
	}
	return "no reason reported"
}
