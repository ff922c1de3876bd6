package framework

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// reasonFailedScheduling is the reason of the scheduler's event on a pod it
// could not place.
const reasonFailedScheduling = "FailedScheduling"

// maxUnplacedShown bounds the pods describe looks up events for: one
// request each.
const maxUnplacedShown = 20

// unplaced is a task's pod the scheduler has not placed, and why.
type unplaced struct {
	pod     string
	since   time.Time
	message string
}

// unplacedTasks finds the current pods of fw's tasks that are Pending and
// not bound to a node, with the latest FailedScheduling event of each (the
// scheduler's reason, as `kubectl describe pod` shows it), found by the
// field selector involvedObject.name and matched by UID, since a retried
// task's new pod has its predecessor's name. When no event is left (they
// expire), the pod's PodScheduled condition says the same. more counts the
// pods beyond maxUnplacedShown.
func unplacedTasks(ctx context.Context, cl client.Reader, fw *v1.Framework) (list []unplaced, more int, err error) {
	if fw.Status == nil {
		return nil, 0, nil
	}
	var pods corev1.PodList
	if err := cl.List(ctx, &pods, client.InNamespace(fw.Namespace), client.MatchingLabels{v1.LabelFrameworkName: fw.Name}); err != nil {
		return nil, 0, fmt.Errorf("list pods of framework %s/%s: %w", fw.Namespace, fw.Name, err)
	}
	byName := make(map[string]*corev1.Pod, len(pods.Items))
	for i := range pods.Items {
		byName[pods.Items[i].Name] = &pods.Items[i]
	}
	var waiting []*corev1.Pod
	for _, rs := range fw.Status.AttemptStatus.TaskRoleStatuses {
		for _, ts := range rs.TaskStatuses {
			as := ts.AttemptStatus
			p := byName[as.PodName]
			if p == nil || (as.PodUID != nil && *as.PodUID != p.UID) {
				continue
			}
			if p.Status.Phase == corev1.PodPending && p.Spec.NodeName == "" && p.DeletionTimestamp == nil {
				waiting = append(waiting, p)
			}
		}
	}
	if len(waiting) > maxUnplacedShown {
		more = len(waiting) - maxUnplacedShown
		waiting = waiting[:maxUnplacedShown]
	}
	for _, p := range waiting {
		u := unplaced{pod: p.Name, since: p.CreationTimestamp.Time}
		var events corev1.EventList
		if err := cl.List(ctx, &events, client.InNamespace(p.Namespace),
			client.MatchingFields{"involvedObject.name": p.Name, "reason": reasonFailedScheduling}); err != nil {
			return nil, 0, fmt.Errorf("list events of pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		var latest *corev1.Event
		for i := range events.Items {
			e := &events.Items[i]
			if e.InvolvedObject.UID != p.UID || e.Reason != reasonFailedScheduling {
				continue
			}
			if latest == nil || eventTime(*e).After(eventTime(*latest)) {
				latest = e
			}
		}
		switch {
		case latest != nil:
			u.since, u.message = eventTime(*latest), latest.Message
		default:
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
					u.since, u.message = c.LastTransitionTime.Time, c.Message
				}
			}
		}
		if u.message == "" {
			u.message = "<no FailedScheduling event yet>"
		}
		u.message = strings.TrimSpace(u.message)
		list = append(list, u)
	}
	return list, more, nil
}
