package podoperator

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the operator's Prometheus collectors. Every series carries an
// "operator" label with Options.Name.
type metrics struct {
	events      *prometheus.CounterVec
	merged      prometheus.Counter
	tombstones  prometheus.Counter
	latency     prometheus.Histogram
	duration    *prometheus.HistogramVec
	errors      *prometheus.CounterVec
	panics      *prometheus.CounterVec
	retries     prometheus.Counter
	dropped     prometheus.Counter
	isLeader    prometheus.Gauge
	queueDepth  prometheus.GaugeFunc
	pendingKeys prometheus.GaugeFunc

	pendingOverLimit prometheus.Gauge
	pendingActions   *prometheus.CounterVec
	pendingErrors    prometheus.Counter

	// Children per event type, resolved once: the hot path skips the
	// label lookup.
	eventsOf   map[eventType]prometheus.Counter
	durationOf map[eventType]prometheus.Observer
}

const metricsNamespace, metricsSubsystem = "podkit", "podoperator"

func newMetrics(name string, reg prometheus.Registerer, depth, keys func() float64) (*metrics, error) {
	labels := prometheus.Labels{"operator": name}
	opts := func(metric, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: metric, Help: help, ConstLabels: labels}
	}
	hopts := func(metric, help string) prometheus.HistogramOpts {
		return prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: metric, Help: help, ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms … 16 s
		}
	}
	m := &metrics{
		events:      prometheus.NewCounterVec(prometheus.CounterOpts(opts("events_total", "Pod events received from the informer, by type (add, update, delete).")), []string{"type"}),
		merged:      prometheus.NewCounter(prometheus.CounterOpts(opts("events_merged_total", "Updates merged into an update of the same pod that was still waiting."))),
		tombstones:  prometheus.NewCounter(prometheus.CounterOpts(opts("tombstones_total", "Deletes noticed on a relist, handled with the last known object."))),
		latency:     prometheus.NewHistogram(hopts("queue_latency_seconds", "Time from receiving an event to calling its handler.")),
		duration:    prometheus.NewHistogramVec(hopts("handler_duration_seconds", "Time spent in handler calls, by event type."), []string{"type"}),
		errors:      prometheus.NewCounterVec(prometheus.CounterOpts(opts("handler_errors_total", "Handler calls that returned an error, by event type.")), []string{"type"}),
		panics:      prometheus.NewCounterVec(prometheus.CounterOpts(opts("handler_panics_total", "Handler calls that panicked (recovered), by event type.")), []string{"type"}),
		retries:     prometheus.NewCounter(prometheus.CounterOpts(opts("retries_total", "Events requeued with the rate limiter after a failure."))),
		dropped:     prometheus.NewCounter(prometheus.CounterOpts(opts("dropped_total", "Events dropped after MaxRetries failures."))),
		isLeader:    prometheus.NewGauge(prometheus.GaugeOpts(opts("leader", "1 while this operator handles events (leader, or no leader election), else 0."))),
		queueDepth:  prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("queue_depth", "Events waiting to be handled, across all pods.")), depth),
		pendingKeys: prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("queue_keys", "Pods with events waiting in the workqueue.")), keys),

		pendingOverLimit: prometheus.NewGauge(prometheus.GaugeOpts(opts("pending_over_limit", "Pods Pending longer than PendingWatch.Limit at the last scan."))),
		pendingActions:   prometheus.NewCounterVec(prometheus.CounterOpts(opts("pending_actions_total", "Pods pending too long that the watcher acted on, by action (Event, Delete, Callback).")), []string{"action"}),
		pendingErrors:    prometheus.NewCounter(prometheus.CounterOpts(opts("pending_action_errors_total", "Failed actions on pods pending too long (retried at the next scan)."))),
	}
	m.eventsOf = make(map[eventType]prometheus.Counter)
	m.durationOf = make(map[eventType]prometheus.Observer)
	for _, t := range []eventType{eventAdd, eventUpdate, eventDelete} {
		m.eventsOf[t] = m.events.WithLabelValues(string(t))
		m.durationOf[t] = m.duration.WithLabelValues(string(t))
	}
	for _, c := range []prometheus.Collector{
		m.events, m.merged, m.tombstones, m.latency, m.duration, m.errors, m.panics,
		m.retries, m.dropped, m.isLeader, m.queueDepth, m.pendingKeys,
		m.pendingOverLimit, m.pendingActions, m.pendingErrors,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics for operator %q (give each operator sharing Options.Registerer its own Options.Name): %w", name, err)
		}
	}
	return m, nil
}
