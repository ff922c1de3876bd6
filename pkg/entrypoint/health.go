package entrypoint

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Health serves the entrypoint's opt-in HTTP endpoints: /healthz (the entrypoint is alive),
// /readyz (the Ready func says so) and /metrics in the Prometheus text format. The exposition is
// written by hand: the handful of series below do not justify the client library's binary size.
type Health struct {
	// Ready reports readiness for /readyz, e.g. "child running and last reload succeeded".
	// Default: always ready.
	Ready func() bool
	// Restarts reports the child's restart count. Default: 0.
	Restarts func() int
	// Active reports the activation state (1 active, 0 backup, -1 unknown). Default: -1.
	Active func() int

	mu             sync.Mutex
	reloadsOK      uint64
	reloadsFailed  uint64
	lastReloadOK   bool
	lastReloadTime time.Time
}

// ObserveReload records a reload attempt; err nil means success.
func (h *Health) ObserveReload(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.reloadsOK++
	} else {
		h.reloadsFailed++
	}
	h.lastReloadOK = err == nil
	h.lastReloadTime = time.Now()
}

// LastReloadOK reports whether the last reload succeeded (true when none happened yet).
func (h *Health) LastReloadOK() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastReloadTime.IsZero() || h.lastReloadOK
}

// Handler returns the mux with /healthz, /readyz and /metrics.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if h.Ready != nil && !h.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /metrics", h.serveMetrics)
	return mux
}

func (h *Health) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	restarts, active := 0, -1
	if h.Restarts != nil {
		restarts = h.Restarts()
	}
	if h.Active != nil {
		active = h.Active()
	}
	h.mu.Lock()
	ok, failed, last, at := h.reloadsOK, h.reloadsFailed, h.lastReloadOK, h.lastReloadTime
	h.mu.Unlock()
	lastVal, atVal := 0, float64(0)
	if last {
		lastVal = 1
	}
	if !at.IsZero() {
		atVal = float64(at.UnixNano()) / 1e9
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = fmt.Fprintf(w, `# HELP podkit_entrypoint_restarts_total Times the child process was started again.
# TYPE podkit_entrypoint_restarts_total counter
podkit_entrypoint_restarts_total %d
# HELP podkit_entrypoint_reloads_total Configuration reloads by result.
# TYPE podkit_entrypoint_reloads_total counter
podkit_entrypoint_reloads_total{result="success"} %d
podkit_entrypoint_reloads_total{result="failure"} %d
# HELP podkit_entrypoint_last_reload_success Whether the last configuration reload succeeded (1) or not (0).
# TYPE podkit_entrypoint_last_reload_success gauge
podkit_entrypoint_last_reload_success %d
# HELP podkit_entrypoint_last_reload_timestamp_seconds Time of the last configuration reload attempt.
# TYPE podkit_entrypoint_last_reload_timestamp_seconds gauge
podkit_entrypoint_last_reload_timestamp_seconds %g
# HELP podkit_entrypoint_active Activation state: 1 active, 0 backup, -1 unknown.
# TYPE podkit_entrypoint_active gauge
podkit_entrypoint_active %d
`, restarts, ok, failed, lastVal, atVal, active)
}
