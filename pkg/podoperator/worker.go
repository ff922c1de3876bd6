package podoperator

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Event reasons recorded on pods.
const (
	// ReasonHandlerFailed is recorded when an event is dropped after
	// Options.MaxRetries failed handler calls.
	ReasonHandlerFailed = "PodOperatorHandlerFailed"
)

// runWorker takes pod keys from the queue until it shuts down or stop ends.
func (o *Operator) runWorker(stop, handlerCtx context.Context) {
	for o.processNextKey(stop, handlerCtx) {
	}
}

// processNextKey handles the waiting events of one pod, oldest first. The
// workqueue guarantees no other worker holds the same key meanwhile.
func (o *Operator) processNextKey(stop, handlerCtx context.Context) bool {
	key, shutdown := o.queue.Get()
	if shutdown {
		return false
	}
	defer o.queue.Done(key)
	// An event pushed after the last pop re-adds the key, which the queue
	// hands out again after Done: no need to look once more when none was
	// left.
	for more := true; more && stop.Err() == nil; {
		var ev *event
		var ok bool
		if ev, more, ok = o.pending.pop(key); !ok {
			return true
		}
		if wait := time.Until(ev.notBefore); wait > 0 {
			// Woken early by a newer event: keep the backoff.
			o.pending.pushFront(key, ev)
			o.queue.AddAfter(key, wait)
			return true
		}
		o.metrics.latency.Observe(time.Since(ev.received).Seconds())
		err := o.handle(handlerCtx, ev)
		if err == nil {
			if ev.attempts > 0 {
				o.queue.Forget(key)
			}
			continue
		}
		ev.attempts++
		if ev.attempts <= *o.opts.MaxRetries {
			delay := o.opts.RateLimiter.When(key)
			ev.notBefore = time.Now().Add(delay)
			o.metrics.retries.Inc()
			o.log.Info("pod handler failed, retrying", "event", ev.typ, "namespace", key.Namespace, "name", key.Name,
				"attempt", ev.attempts, "retryIn", delay, "err", err)
			o.pending.pushFront(key, ev)
			o.queue.AddAfter(key, delay)
			return true
		}
		o.queue.Forget(key)
		o.metrics.dropped.Inc()
		o.log.Error("pod handler failed, dropping event", "event", ev.typ, "namespace", key.Namespace, "name", key.Name,
			"attempts", ev.attempts, "err", err)
		if o.opts.EventRecorder != nil {
			o.opts.EventRecorder.Eventf(ev.pod, corev1.EventTypeWarning, ReasonHandlerFailed,
				"%s: %s event dropped after %d attempts: %v", o.opts.Name, ev.typ, ev.attempts, err)
		}
	}
	// Stopping: the remaining events of this pod stay unhandled.
	return stop.Err() == nil
}

// handle calls the handler method for ev, turning a panic into an error.
func (o *Operator) handle(ctx context.Context, ev *event) (err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			o.metrics.panics.WithLabelValues(string(ev.typ)).Inc()
			o.log.Error("pod handler panicked", "event", ev.typ, "namespace", ev.pod.Namespace, "name", ev.pod.Name,
				"panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		} else if err != nil {
			o.metrics.errors.WithLabelValues(string(ev.typ)).Inc()
		}
		o.metrics.durationOf[ev.typ].Observe(time.Since(start).Seconds())
	}()
	switch ev.typ {
	case eventAdd:
		return o.opts.Handler.OnAdd(ctx, ev.pod)
	case eventUpdate:
		return o.opts.Handler.OnUpdate(ctx, ev.old, ev.pod)
	case eventDelete:
		return o.opts.Handler.OnDelete(ctx, ev.pod)
	default:
		return fmt.Errorf("unknown event type %q", ev.typ)
	}
}
