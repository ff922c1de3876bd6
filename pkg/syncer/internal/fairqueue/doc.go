// Package fairqueue orders a controller's work queue round-robin across
// namespaces, so one namespace's thousand pending objects do not hold up
// another namespace's one. It only orders: de-duplication, the processing
// set, delays and rate limits stay client-go's workqueue.
package fairqueue
