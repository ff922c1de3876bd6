package podoperator

import (
	"context"

	corev1 "k8s.io/api/core/v1"
)

// Handler reacts to pod events. The operator calls at most one method at a
// time for a given pod (namespace/name), in the order the events happened;
// different pods are handled in parallel by Options.Workers workers.
//
// Pods passed to a Handler come from the shared cache: never modify them,
// DeepCopy first. A returned error (or a panic) retries the same event with
// the rate limiter, up to Options.MaxRetries; later events for that pod wait
// behind it so order is kept. The context is cancelled when the operator's
// shutdown grace period runs out.
type Handler interface {
	// OnAdd is called when a pod appears, including once for every pod that
	// exists when the operator starts (or becomes leader).
	OnAdd(ctx context.Context, pod *corev1.Pod) error
	// OnUpdate is called when a pod changes, and on every resync. When
	// several updates for a pod are waiting, they are merged into one call
	// with the oldest old and the newest new object.
	OnUpdate(ctx context.Context, oldPod, newPod *corev1.Pod) error
	// OnDelete is called with the last known state of a deleted pod, also
	// when the deletion was only noticed on a relist (a tombstone).
	OnDelete(ctx context.Context, pod *corev1.Pod) error
}

// HandlerFuncs adapts plain functions to a Handler. A nil function ignores
// its event.
type HandlerFuncs struct {
	AddFunc    func(ctx context.Context, pod *corev1.Pod) error
	UpdateFunc func(ctx context.Context, oldPod, newPod *corev1.Pod) error
	DeleteFunc func(ctx context.Context, pod *corev1.Pod) error
}

var _ Handler = HandlerFuncs{}

// OnAdd calls AddFunc if it is set.
func (f HandlerFuncs) OnAdd(ctx context.Context, pod *corev1.Pod) error {
	if f.AddFunc == nil {
		return nil
	}
	return f.AddFunc(ctx, pod)
}

// OnUpdate calls UpdateFunc if it is set.
func (f HandlerFuncs) OnUpdate(ctx context.Context, oldPod, newPod *corev1.Pod) error {
	if f.UpdateFunc == nil {
		return nil
	}
	return f.UpdateFunc(ctx, oldPod, newPod)
}

// OnDelete calls DeleteFunc if it is set.
func (f HandlerFuncs) OnDelete(ctx context.Context, pod *corev1.Pod) error {
	if f.DeleteFunc == nil {
		return nil
	}
	return f.DeleteFunc(ctx, pod)
}
