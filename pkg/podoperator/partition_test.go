package podoperator_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
)

// partition wraps a client's transport so a test can cut it off from the
// API server, and make its next watches answer "410 Gone" as after an etcd
// compaction, forcing a relist.
type partition struct {
	base *rest.Config

	mu      sync.Mutex
	down    bool
	expire  bool
	bodies  map[io.ReadCloser]struct{}
	expired int
}

func newPartition(cfg *rest.Config) *partition {
	return &partition{base: cfg, bodies: map[io.ReadCloser]struct{}{}}
}

func (p *partition) config() *rest.Config {
	cfg := rest.CopyConfig(p.base)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) { return p.roundTrip(rt, req) })
	})
	return cfg
}

// cut fails every new request and closes open watch streams.
func (p *partition) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for b := range p.bodies {
		_ = b.Close()
	}
	clear(p.bodies)
}

// expireWatches makes the next watch that resumes from a resourceVersion
// answer 410 Gone, as the API server does once that version is compacted.
func (p *partition) expireWatches() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire = true
}

func (p *partition) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *partition) roundTrip(rt http.RoundTripper, req *http.Request) (*http.Response, error) {
	isWatch := req.URL.Query().Get("watch") == "true"
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		return nil, errors.New("test partition: connection refused")
	}
	if isWatch && p.expire && req.URL.Query().Get("resourceVersion") != "" {
		p.expire = false
		p.expired++
		p.mu.Unlock()
		return goneResponse(req), nil
	}
	p.mu.Unlock()
	resp, err := rt.RoundTrip(req)
	if err != nil || !isWatch {
		return resp, err
	}
	p.mu.Lock()
	p.bodies[resp.Body] = struct{}{}
	p.mu.Unlock()
	return resp, nil
}

// goneResponse is what the API server sends for a too old resourceVersion:
// a watch stream whose only event is an ERROR with a 410 Status.
func goneResponse(req *http.Request) *http.Response {
	body := `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version","reason":"Expired","code":410}}` + "\n"
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": []string{"application/json"}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// newEventRecorder returns a recorder that writes Events through client.
func newEventRecorder(t *testing.T, client kubernetes.Interface) record.EventRecorder {
	b := record.NewBroadcaster(record.WithContext(context.Background()))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "podoperator-test"})
}
