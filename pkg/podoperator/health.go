package podoperator

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HealthHandler serves /healthz (200 while Run is running) and /readyz (200
// once the cache has synced). Mount it on the manager's probe port:
//
//	http.ListenAndServe(":8081", op.HealthHandler())
func (o *Operator) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		probe(w, o.running.Load(), "pod operator is not running")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		probe(w, o.running.Load() && o.synced.Load(), "pod cache has not synced")
	})
	return mux
}

// MetricsHandler serves the operator's metrics in the Prometheus format
// when Options.Registerer is a prometheus.Gatherer (the default private
// registry is); otherwise it answers 404: serve your own registry instead.
func (o *Operator) MetricsHandler() http.Handler {
	if o.gatherer == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(o.gatherer, promhttp.HandlerOpts{})
}

func probe(w http.ResponseWriter, ok bool, why string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(why + "\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
