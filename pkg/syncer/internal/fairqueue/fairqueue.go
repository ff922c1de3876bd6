package fairqueue

import (
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Queue is a workqueue.Queue that pops items round-robin across the lanes
// key puts them in, first in first out within a lane. It is not safe for
// concurrent use on its own; the workqueue that wraps it holds a lock.
type Queue[T comparable] struct {
	key   func(T) string
	lanes map[string][]T
	ring  []string // lanes with items, in turn order
	n     int
}

var _ workqueue.Queue[reconcile.Request] = (*Queue[reconcile.Request])(nil)

// New returns an empty Queue with lanes chosen by key.
func New[T comparable](key func(T) string) *Queue[T] {
	return &Queue[T]{key: key, lanes: map[string][]T{}}
}

// Touch implements workqueue.Queue: an item added again keeps its place.
func (q *Queue[T]) Touch(T) {}

// Push implements workqueue.Queue: item joins the end of its lane; a lane
// that was empty joins the end of the turn order.
func (q *Queue[T]) Push(item T) {
	k := q.key(item)
	if len(q.lanes[k]) == 0 {
		q.ring = append(q.ring, k)
	}
	q.lanes[k] = append(q.lanes[k], item)
	q.n++
}

// Len implements workqueue.Queue.
func (q *Queue[T]) Len() int { return q.n }

// Pop implements workqueue.Queue: the first item of the lane whose turn it
// is; that lane, if not empty, goes to the end of the turn order. Call it
// only when Len is positive.
func (q *Queue[T]) Pop() T {
	k := q.ring[0]
	q.ring = q.ring[1:]
	lane := q.lanes[k]
	item := lane[0]
	var zero T
	lane[0] = zero // let the item be collected
	lane = lane[1:]
	if len(lane) == 0 {
		delete(q.lanes, k)
	} else {
		q.lanes[k] = lane
		q.ring = append(q.ring, k)
	}
	q.n--
	return item
}

// ByNamespace is the lane of a reconcile request: its namespace
// (cluster-scoped objects share the lane "").
func ByNamespace(req reconcile.Request) string { return req.Namespace }

// NewRateLimiting returns a rate-limited work queue for a controller that
// takes requests round-robin across namespaces; it has the signature of
// controller.Options.NewQueue. Metrics are registered under name, as
// controller-runtime names its queues.
func NewRateLimiting(name string, rateLimiter workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	base := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[reconcile.Request]{
		Name:  name,
		Queue: New(ByNamespace),
	})
	delaying := workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[reconcile.Request]{
		Name:  name,
		Queue: base,
	})
	return workqueue.NewTypedRateLimitingQueueWithConfig(rateLimiter, workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{
		Name:          name,
		DelayingQueue: delaying,
	})
}
