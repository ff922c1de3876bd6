// Package podoperator runs handlers for every add, update and delete of Pods:
// an informer fills a cache, events go into a typed rate-limited workqueue
// keyed by pod, and workers call a Handler, in order per pod and in parallel
// across pods, with retries, metrics, health checks and optional leader
// election. It does not reconcile other kinds or write to the API itself.
package podoperator
