package entrypoint

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestHealthServesProbesAndMetrics(t *testing.T) {
	var ready atomic.Bool
	h := &Health{Ready: ready.Load, Restarts: func() int { return 2 }, Active: func() int { return 1 }}
	h.ObserveReload(nil)
	h.ObserveReload(errors.New("bad"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.Serve(ctx, ln) }()
	get := func(p string) (int, string) {
		resp, err := http.Get("http://" + ln.Addr().String() + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz before ready = %d, want 503", code)
	}
	ready.Store(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d, want 200", code)
	}
	_, body := get("/metrics")
	for _, want := range []string{
		"podkit_entrypoint_restarts_total 2",
		`podkit_entrypoint_reloads_total{result="success"} 1`,
		`podkit_entrypoint_reloads_total{result="failure"} 1`,
		"podkit_entrypoint_last_reload_success 0",
		"podkit_entrypoint_active 1",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	// The hand-written exposition must be what Prometheus itself accepts: parse it with the
	// reference text parser and check every family's type and values.
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("Prometheus' text parser rejects /metrics: %v\n%s", err, body)
	}
	want := map[string]struct {
		typ   dto.MetricType
		value float64
	}{
		"podkit_entrypoint_restarts_total":      {dto.MetricType_COUNTER, 2},
		"podkit_entrypoint_last_reload_success": {dto.MetricType_GAUGE, 0},
		"podkit_entrypoint_active":              {dto.MetricType_GAUGE, 1},
	}
	for name, w := range want {
		f, ok := families[name]
		if !ok || f.GetType() != w.typ || len(f.GetMetric()) != 1 {
			t.Errorf("family %s = %v, want one %v", name, f, w.typ)
			continue
		}
		m := f.GetMetric()[0]
		got := m.GetGauge().GetValue()
		if w.typ == dto.MetricType_COUNTER {
			got = m.GetCounter().GetValue()
		}
		if got != w.value {
			t.Errorf("%s = %v, want %v", name, got, w.value)
		}
	}
	if f := families["podkit_entrypoint_reloads_total"]; f == nil || f.GetType() != dto.MetricType_COUNTER || len(f.GetMetric()) != 2 {
		t.Errorf("podkit_entrypoint_reloads_total = %v, want a counter with success and failure", f)
	}
}
