package podoperator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1informers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Operator watches pods and calls a Handler for each event. Build it with
// New and start it with Run; an Operator runs once.
type Operator struct {
	opts     Options
	client   kubernetes.Interface
	log      *slog.Logger
	informer cache.SharedIndexInformer
	lister   corev1listers.PodLister
	queue    workqueue.TypedRateLimitingInterface[types.NamespacedName]
	pending  *pending
	metrics  *metrics
	gatherer prometheus.Gatherer

	started atomic.Bool
	running atomic.Bool
	synced  atomic.Bool
}

// New validates opts, applies the defaults and builds the informer, lister,
// workqueue and metrics. It does not contact the API server.
func New(client kubernetes.Interface, opts Options) (*Operator, error) {
	if client == nil {
		return nil, errors.New("new pod operator: client is nil: pass a kubernetes.Interface, e.g. from kubernetes.NewForConfig")
	}
	if opts.LeaderElection != nil {
		le := *opts.LeaderElection
		opts.LeaderElection = &le // do not write defaults into the caller's struct
	}
	if opts.PendingWatch != nil {
		pw := *opts.PendingWatch
		opts.PendingWatch = &pw
	}
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("new pod operator: %w", err)
	}
	opts.setDefaults()

	o := &Operator{
		opts:    opts,
		client:  client,
		log:     opts.Logger.With("controller", opts.Name),
		pending: newPending(),
	}
	o.queue = workqueue.NewTypedRateLimitingQueueWithConfig(opts.RateLimiter, workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{
		// Unnamed on purpose: the operator exports its own queue metrics
		// under Options.Registerer instead of client-go's global provider.
	})
	tweak := func(lo *metav1.ListOptions) {
		lo.LabelSelector = opts.LabelSelector
		lo.FieldSelector = opts.FieldSelector
	}
	o.informer = corev1informers.NewFilteredPodInformer(client, opts.Namespace, opts.ResyncPeriod,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}, tweak)
	if err := o.informer.SetTransform(opts.Transform); err != nil {
		return nil, fmt.Errorf("new pod operator: set transform: %w", err)
	}
	o.lister = corev1listers.NewPodLister(o.informer.GetIndexer())

	m, err := newMetrics(opts.Name, opts.Registerer,
		func() float64 { return float64(o.pending.len()) },
		func() float64 { return float64(o.queue.Len()) })
	if err != nil {
		return nil, fmt.Errorf("new pod operator: %w", err)
	}
	o.metrics = m
	if g, ok := opts.Registerer.(prometheus.Gatherer); ok {
		o.gatherer = g
	}
	return o, nil
}

// Lister reads pods from the operator's cache (transformed by
// Options.Transform). It is filled once Run has synced; never modify the
// objects it returns.
func (o *Operator) Lister() corev1listers.PodLister { return o.lister }

// HasSynced reports whether the cache has been filled with the initial list.
func (o *Operator) HasSynced() bool { return o.synced.Load() }

// Run starts the informer, waits for the cache to sync and, as the leader
// when leader election is on, handles events with Options.Workers workers.
// It blocks until ctx ends, then stops taking new work, waits up to
// Options.ShutdownGracePeriod for running handlers, and returns. It returns
// nil after a clean shutdown (also when ctx ends before the cache has
// synced), and an error when leadership is lost or handlers outlive the
// grace period.
func (o *Operator) Run(ctx context.Context) error {
	if !o.started.CompareAndSwap(false, true) {
		return errors.New("run pod operator: already started; build a new Operator with New")
	}
	o.running.Store(true)
	defer o.running.Store(false)

	// Without leader election, events queue up while the initial list is
	// still arriving; workers start once the cache has synced, so handlers
	// can rely on the Lister being complete.
	var reg cache.ResourceEventHandlerRegistration
	if o.opts.LeaderElection == nil {
		var err error
		if reg, err = o.addEventHandler(); err != nil {
			return err
		}
	}
	informerCtx, stopInformer := context.WithCancel(context.WithoutCancel(ctx))
	var informerDone sync.WaitGroup
	informerDone.Go(func() { o.informer.RunWithContext(informerCtx) })
	defer func() {
		stopInformer()
		informerDone.Wait()
	}()

	o.log.Info("starting pod operator", "namespace", o.opts.Namespace, "labelSelector", o.opts.LabelSelector,
		"fieldSelector", o.opts.FieldSelector, "workers", o.opts.Workers)
	// The informer closes a channel when it has synced; cache.WaitForCacheSync
	// would poll every 100 ms instead, and the workers would sit idle on a
	// full queue for up to that long.
	select {
	case <-o.informer.HasSyncedChecker().Done():
	case <-ctx.Done():
		return nil
	}
	o.synced.Store(true)
	o.log.Info("pod cache synced", "pods", len(o.informer.GetStore().ListKeys()))

	if o.opts.LeaderElection != nil {
		return o.runWithLeaderElection(ctx)
	}
	return o.lead(ctx, reg)
}

func (o *Operator) addEventHandler() (cache.ResourceEventHandlerRegistration, error) {
	reg, err := o.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    o.onAdd,
		UpdateFunc: o.onUpdate,
		DeleteFunc: o.onDelete,
	})
	if err != nil {
		return nil, fmt.Errorf("add pod event handler: %w", err)
	}
	return reg, nil
}

// lead handles events until ctx ends, then drains. reg is the informer
// registration feeding the queue; when nil, lead registers one (a new
// leader gets an add for every cached pod, then live events).
func (o *Operator) lead(ctx context.Context, reg cache.ResourceEventHandlerRegistration) error {
	if reg == nil {
		var err error
		if reg, err = o.addEventHandler(); err != nil {
			return err
		}
	}
	o.metrics.isLeader.Set(1)
	defer o.metrics.isLeader.Set(0)

	// Handlers get a context that outlives ctx by the grace period.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	var workers sync.WaitGroup
	for range o.opts.Workers {
		workers.Go(func() { o.runWorker(ctx, handlerCtx) })
	}
	if o.opts.PendingWatch != nil {
		workers.Go(func() { o.runPendingWatch(ctx) })
	}
	o.log.Info("handling pod events")

	<-ctx.Done()
	o.log.Info("stopping pod operator", "waiting", o.pending.len(), "gracePeriod", o.opts.ShutdownGracePeriod)
	if err := o.informer.RemoveEventHandler(reg); err != nil {
		o.log.Error("remove pod event handler", "err", err)
	}
	o.queue.ShutDown()
	done := make(chan struct{})
	go func() {
		workers.Wait()
		close(done)
	}()
	timer := time.NewTimer(o.opts.ShutdownGracePeriod)
	defer timer.Stop()
	select {
	case <-done:
		o.log.Info("pod operator stopped")
		return nil
	case <-timer.C:
		cancelHandlers()
		return fmt.Errorf("stop pod operator: handlers still running after the %s grace period; their context was cancelled", o.opts.ShutdownGracePeriod)
	}
}

// onAdd, onUpdate and onDelete run on the informer's delivery goroutine, one
// event at a time, so the per-pod FIFO receives events in watch order.
func (o *Operator) onAdd(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		o.log.Error("ignoring add of unexpected type", "type", fmt.Sprintf("%T", obj))
		return
	}
	o.enqueue(&event{typ: eventAdd, pod: pod, received: time.Now()})
}

func (o *Operator) onUpdate(oldObj, newObj any) {
	oldPod, ok1 := oldObj.(*corev1.Pod)
	newPod, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 {
		o.log.Error("ignoring update of unexpected type", "type", fmt.Sprintf("%T", newObj))
		return
	}
	o.enqueue(&event{typ: eventUpdate, old: oldPod, pod: newPod, received: time.Now()})
}

func (o *Operator) onDelete(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		o.metrics.tombstones.Inc()
		obj = tombstone.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		o.log.Error("ignoring delete of unexpected type", "type", fmt.Sprintf("%T", obj))
		return
	}
	o.enqueue(&event{typ: eventDelete, pod: pod, received: time.Now()})
}

func (o *Operator) enqueue(ev *event) {
	o.metrics.eventsOf[ev.typ].Inc()
	key := types.NamespacedName{Namespace: ev.pod.Namespace, Name: ev.pod.Name}
	if o.pending.push(key, ev) {
		o.metrics.merged.Inc()
	}
	o.queue.Add(key)
}
