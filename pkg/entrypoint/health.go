package entrypoint

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/podkit-dev/podkit/pkg/entrypoint/internal/minihttp"
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

// Serve answers GET /healthz, /readyz and /metrics on ln until ctx ends. It speaks just enough
// HTTP/1.1 for probes and Prometheus (see internal/minihttp): net/http would more than double the
// binary and its resident memory.
func (h *Health) Serve(ctx context.Context, ln net.Listener) error {
	return minihttp.Serve(ctx, netListener{ln}, h.route)
}

// ServeOn is Serve on a listener from ListenHealth, which podkit-entrypoint uses so that its
// binary carries no package net.
func (h *Health) ServeOn(ctx context.Context, ln *HealthListener) error {
	return minihttp.Serve(ctx, ln.ln, h.route)
}

// HealthListener is a TCP listener opened by ListenHealth.
type HealthListener struct{ ln *minihttp.SocketListener }

// ListenHealth listens on addr: ":PORT" for every address (IPv4 and IPv6), or "HOST:PORT" with
// HOST an IP address or localhost. Host names are not resolved.
func ListenHealth(addr string) (*HealthListener, error) {
	ln, err := minihttp.Listen(addr)
	if err != nil {
		return nil, err
	}
	return &HealthListener{ln: ln}, nil
}

// Addr is the address listened on, with the port the kernel chose when the port was 0.
func (l *HealthListener) Addr() netip.AddrPort { return l.ln.Addr() }

// Close stops listening; Serve closes the listener itself when it returns.
func (l *HealthListener) Close() error { return l.ln.Close() }

// netListener adapts a net.Listener to the server.
type netListener struct{ net.Listener }

func (l netListener) Accept() (minihttp.Conn, error) { return l.Listener.Accept() }

func (h *Health) route(method, path string) minihttp.Response {
	if method != "GET" && method != "HEAD" {
		return minihttp.Response{Status: 405, Body: []byte("method not allowed\n")}
	}
	switch path {
	case "/healthz":
		return minihttp.Response{Status: 200, Body: []byte("ok\n")}
	case "/readyz":
		if h.Ready != nil && !h.Ready() {
			return minihttp.Response{Status: 503, Body: []byte("not ready\n")}
		}
		return minihttp.Response{Status: 200, Body: []byte("ok\n")}
	case "/metrics":
		var b bytes.Buffer
		h.WriteMetrics(&b)
		return minihttp.Response{Status: 200, ContentType: "text/plain; version=0.0.4; charset=utf-8", Body: b.Bytes()}
	}
	return minihttp.Response{Status: 404, Body: []byte("not found\n")}
}

// WriteMetrics writes the metrics in the Prometheus text exposition format.
func (h *Health) WriteMetrics(w io.Writer) {
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
