package framework

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// metrics are the controller's Prometheus series, registered in
// controller-runtime's registry (served by the manager's metrics endpoint)
// next to its own workqueue and reconcile metrics.
type metrics struct {
	podCreations       *prometheus.CounterVec
	podDeletions       prometheus.Counter
	taskCompletions    *prometheus.CounterVec
	attemptCompletions *prometheus.CounterVec
	taskRetries        prometheus.Counter
	frameworkRetries   prometheus.Counter
	statusWrites       *prometheus.CounterVec
	releasePublished   prometheus.Counter
	podGroupCreations  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	m := &metrics{
		podCreations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podkit_framework_pod_creations_total",
			Help: "Task pods the Framework controller asked the apiserver to create, by result (created, adopted, rejected, error).",
		}, []string{"result"}),
		podDeletions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podkit_framework_pod_deletions_total",
			Help: "Task pods the Framework controller deleted.",
		}),
		taskCompletions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podkit_framework_task_attempt_completions_total",
			Help: "Completed task attempts, by completion type (Succeeded, Failed).",
		}, []string{"type"}),
		attemptCompletions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podkit_framework_attempt_completions_total",
			Help: "Completed framework attempts, by completion type (Succeeded, Failed).",
		}, []string{"type"}),
		taskRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podkit_framework_task_retries_total",
			Help: "Task attempts retried by a task retryPolicy.",
		}),
		frameworkRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podkit_framework_retries_total",
			Help: "Framework attempts retried by the framework retryPolicy.",
		}),
		statusWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podkit_framework_status_writes_total",
			Help: "Framework status writes, by result (ok, conflict, error).",
		}, []string{"result"}),
		releasePublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podkit_framework_barrier_release_publications_total",
			Help: "Changes of a Framework's barrier release annotation (waiting, released, completed) written for barriers.",
		}),
		podGroupCreations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podkit_framework_podgroup_creations_total",
			Help: "scheduling.k8s.io/v1beta1 PodGroups (one gang per framework attempt) the Framework controller created.",
		}),
	}
	m.podCreations = register(reg, m.podCreations)
	m.podDeletions = register(reg, m.podDeletions)
	m.taskCompletions = register(reg, m.taskCompletions)
	m.attemptCompletions = register(reg, m.attemptCompletions)
	m.taskRetries = register(reg, m.taskRetries)
	m.frameworkRetries = register(reg, m.frameworkRetries)
	m.statusWrites = register(reg, m.statusWrites)
	m.releasePublished = register(reg, m.releasePublished)
	m.podGroupCreations = register(reg, m.podGroupCreations)
	return m
}

// register registers c, or returns the collector already registered under
// the same name (several controllers in one process share the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
