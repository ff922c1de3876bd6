package podoperator

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// eventType is the kind of a pod event.
type eventType string

const (
	eventAdd    eventType = "add"
	eventUpdate eventType = "update"
	eventDelete eventType = "delete"
)

// event is one pod event waiting for, or being retried by, a worker.
type event struct {
	typ eventType
	// old is set for updates only.
	old *corev1.Pod
	// pod is the new object (add, update) or the last known one (delete).
	pod *corev1.Pod
	// received is when the informer delivered the event (the oldest one,
	// for merged updates).
	received time.Time
	// attempts counts failed handler calls.
	attempts int
	// notBefore holds a retry back until its rate-limited delay is over,
	// even when a newer event wakes the key up earlier.
	notBefore time.Time
}

// pending keeps, per pod key, the FIFO of events not yet handled. The
// workqueue carries only keys; it guarantees that one key is never processed
// by two workers at once, and this FIFO gives the order within a key.
type pending struct {
	mu     sync.Mutex
	events map[types.NamespacedName][]*event
	total  int
}

func newPending() *pending {
	return &pending{events: make(map[types.NamespacedName][]*event)}
}

// push appends ev to key's FIFO. An update that follows a waiting update is
// merged into it (oldest old, newest new); push reports whether it merged.
func (p *pending) push(key types.NamespacedName, ev *event) (merged bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.events[key]
	if n := len(q); n > 0 && ev.typ == eventUpdate && q[n-1].typ == eventUpdate {
		q[n-1].pod = ev.pod
		return true
	}
	p.events[key] = append(q, ev)
	p.total++
	return false
}

// pop removes and returns the oldest event of key, and whether more were
// waiting behind it.
func (p *pending) pop(key types.NamespacedName) (ev *event, more, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.events[key]
	if len(q) == 0 {
		return nil, false, false
	}
	ev = q[0]
	q[0] = nil
	if len(q) == 1 {
		delete(p.events, key)
	} else {
		p.events[key] = q[1:]
	}
	p.total--
	return ev, len(q) > 1, true
}

// pushFront puts a failed event back at the head of key's FIFO.
func (p *pending) pushFront(key types.NamespacedName, ev *event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events[key] = append([]*event{ev}, p.events[key]...)
	p.total++
}

// len is the number of events waiting, across all pods.
func (p *pending) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}
