package podoperator_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/podoperator"
)

// podTraffic records the pod list and watch requests of a client and the
// bytes of their responses.
type podTraffic struct {
	mu       sync.Mutex
	queries  []string
	received bytes.Buffer
}

func (p *podTraffic) config(base *rest.Config) *rest.Config {
	cfg := rest.CopyConfig(base)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err != nil || !strings.HasSuffix(req.URL.Path, "/pods") {
				return resp, err
			}
			p.mu.Lock()
			p.queries = append(p.queries, req.URL.RawQuery)
			p.mu.Unlock()
			resp.Body = &teeBody{ReadCloser: resp.Body, p: p}
			return resp, nil
		})
	})
	return cfg
}

func (p *podTraffic) snapshot() ([]string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.queries...), p.received.String()
}

type teeBody struct {
	io.ReadCloser
	p *podTraffic
}

func (b *teeBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	b.p.mu.Lock()
	b.p.received.Write(buf[:n])
	b.p.mu.Unlock()
	return n, err
}

func TestSelectorsFilterPodsOnTheServer(t *testing.T) {
	ns := env.Namespace(t)
	rec := newRecorder(t)
	traffic := &podTraffic{}
	client := kubernetes.NewForConfigOrDie(traffic.config(env.Config))
	start(t, client, podoperator.Options{
		Namespace:     ns,
		LabelSelector: "app=web,tier!=cache",
		FieldSelector: "spec.restartPolicy=Always",
		Handler:       rec.handler(),
	})
	// Only "match-q7" passes both selectors.
	match := newPod(ns, "match-q7", map[string]string{"app": "web"})
	wrongLabel := newPod(ns, "wrong-label-xyz", map[string]string{"app": "web", "tier": "cache"})
	wrongField := newPod(ns, "wrong-field-xyz", map[string]string{"app": "web"})
	wrongField.Spec.RestartPolicy = "Never"
	createPod(t, env.Clientset, wrongLabel)
	createPod(t, env.Clientset, wrongField)
	createPod(t, env.Clientset, match)
	testenv.WaitFor(t, 30*time.Second, "matching pod handled", func(context.Context) (bool, error) {
		return len(rec.get("match-q7")) == 1, nil
	})
	// Writes to the others after the match was seen: the watch is ordered,
	// so once this last write to "match-q7" arrives, any event about them
	// would have arrived before it.
	if err := setSeq(context.Background(), env.Clientset, ns, "wrong-label-xyz", 1); err != nil {
		t.Fatal(err)
	}
	if err := setSeq(context.Background(), env.Clientset, ns, "match-q7", 1); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "matching pod update handled", func(context.Context) (bool, error) {
		return lastSeq(rec.get("match-q7")) == 1, nil
	})

	if n := rec.total(); n != 2 {
		t.Errorf("handler saw %d events, want 2 (add and update of the matching pod)", n)
	}
	queries, received := traffic.snapshot()
	// client-go may serve the list from the watch (WatchList, one request).
	if len(queries) == 0 {
		t.Fatal("saw no pod list or watch requests")
	}
	for _, q := range queries {
		if !strings.Contains(q, "labelSelector=") || !strings.Contains(q, "fieldSelector=") {
			t.Errorf("pod request %q does not carry both selectors", q)
		}
	}
	// Names appear verbatim whatever the encoding (JSON, protobuf, CBOR).
	if got := strings.Count(received, "match-q7"); got < 2 {
		t.Errorf("responses named the matching pod %d times, want it in the list or watch at least twice", got)
	}
	for _, name := range []string{"wrong-label-xyz", "wrong-field-xyz"} {
		if got := strings.Count(received, name); got != 0 {
			t.Errorf("responses mention %s %d times, want 0: the server must filter it", name, got)
		}
	}
}

func TestOnlyTheLeaderHandlesAndAFollowerTakesOverWhenItStops(t *testing.T) {
	ns := env.Namespace(t)
	le := func(id string) *podoperator.LeaderElection {
		return &podoperator.LeaderElection{
			LeaseNamespace: ns, LeaseName: "pods", Identity: id,
			LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond,
		}
	}
	recA, recB := newRecorder(t), newRecorder(t)
	a := start(t, env.Clientset, podoperator.Options{Namespace: ns, Name: "op-a", Handler: recA.handler(), LeaderElection: le("a")})
	b := start(t, env.Clientset, podoperator.Options{Namespace: ns, Name: "op-b", Handler: recB.handler(), LeaderElection: le("b")})

	createPod(t, env.Clientset, newPod(ns, "first", nil))
	testenv.WaitFor(t, 30*time.Second, "one operator handles the pod", func(context.Context) (bool, error) {
		return recA.total()+recB.total() > 0, nil
	})
	leader, follower, followerRec, leaderID := a, b, recB, "a"
	if recB.total() > 0 {
		leader, follower, followerRec, leaderID = b, a, recA, "b"
	}
	if got := metric(t, leader.reg, "podkit_podoperator_leader"); got != 1 {
		t.Errorf("leader gauge of the handling operator = %v, want 1", got)
	}
	if got := metric(t, follower.reg, "podkit_podoperator_leader"); got != 0 {
		t.Errorf("leader gauge of the other operator = %v, want 0", got)
	}
	if n := followerRec.total(); n != 0 {
		t.Errorf("the follower handled %d events, want 0", n)
	}
	// The follower keeps a warm cache (its own watch may deliver the pod a
	// little after the leader's did).
	testenv.WaitFor(t, 30*time.Second, "the follower's cache has the pod", func(context.Context) (bool, error) {
		_, err := follower.op.Lister().Pods(ns).Get("first")
		return err == nil, nil
	})

	if err := leader.stop(); err != nil {
		t.Fatalf("stop leader: %v", err)
	}
	// A leader that stops releases its Lease on the way out, so the follower
	// need not wait for it to expire: once stop has returned, the Lease is
	// no longer the old leader's. (Checked on the Lease itself rather than
	// against a clock, which a loaded machine would make flaky.)
	lease, err := env.Clientset.CoordinationV1().Leases(ns).Get(context.Background(), "pods", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get lease: %v", err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h == leaderID {
		t.Errorf("lease holder after the leader stopped = %q, want it released", *h)
	}
	createPod(t, env.Clientset, newPod(ns, "second", nil))
	testenv.WaitFor(t, 30*time.Second, "the follower takes over and handles the new pod", func(context.Context) (bool, error) {
		return len(followerRec.get("second")) == 1, nil
	})
	if got := metric(t, follower.reg, "podkit_podoperator_leader"); got != 1 {
		t.Errorf("leader gauge of the new leader = %v, want 1", got)
	}
}

func TestNewRejectsInvalidOptionsNamingTheField(t *testing.T) {
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: "http://127.0.0.1:1"})
	h := podoperator.HandlerFuncs{}
	tests := []struct {
		name  string
		opts  podoperator.Options
		field string
	}{
		{"no handler", podoperator.Options{}, "Options.Handler"},
		{"negative workers", podoperator.Options{Handler: h, Workers: -1}, "Options.Workers"},
		{"bad label selector", podoperator.Options{Handler: h, LabelSelector: "app in (web"}, "Options.LabelSelector"},
		{"bad field selector", podoperator.Options{Handler: h, FieldSelector: "spec.nodeName"}, "Options.FieldSelector"},
		{"negative retries", podoperator.Options{Handler: h, MaxRetries: new(-1)}, "Options.MaxRetries"},
		{"negative resync", podoperator.Options{Handler: h, ResyncPeriod: -time.Second}, "Options.ResyncPeriod"},
		{"negative grace", podoperator.Options{Handler: h, ShutdownGracePeriod: -time.Second}, "Options.ShutdownGracePeriod"},
		{"bad namespace", podoperator.Options{Handler: h, Namespace: "Not_A_Namespace"}, "Options.Namespace"},
		{"bad name", podoperator.Options{Handler: h, Name: "Bad Name"}, "Options.Name"},
		{"lease without namespace", podoperator.Options{Handler: h, LeaderElection: &podoperator.LeaderElection{}}, "Options.LeaderElection.LeaseNamespace"},
		{"renew not below lease", podoperator.Options{Handler: h, LeaderElection: &podoperator.LeaderElection{
			LeaseNamespace: "x", LeaseDuration: time.Second, RenewDeadline: 2 * time.Second}}, "Options.LeaderElection.RenewDeadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := podoperator.New(client, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("New error = %v, want one naming %s", err, tt.field)
			}
		})
	}
	if _, err := podoperator.New(client, podoperator.Options{Handler: h}); err != nil {
		t.Errorf("New with only a Handler = %v, want the defaults to be valid", err)
	}
}

func TestReadyzTurnsReadyAfterCacheSyncAndMetricsAreServed(t *testing.T) {
	ns := env.Namespace(t)
	op, err := podoperator.New(env.Clientset, podoperator.Options{Namespace: ns, Handler: podoperator.HandlerFuncs{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(op.HealthHandler())
	defer srv.Close()
	status := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz before Run = %d, want 503", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- op.Run(ctx) }()
	testenv.WaitFor(t, 30*time.Second, "/readyz and /healthz return 200", func(context.Context) (bool, error) {
		return status("/readyz") == http.StatusOK && status("/healthz") == http.StatusOK, nil
	})
	createPod(t, env.Clientset, newPod(ns, "counted", nil))
	testenv.WaitFor(t, 30*time.Second, "metrics count the add", func(context.Context) (bool, error) {
		rr := httptest.NewRecorder()
		op.MetricsHandler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return strings.Contains(rr.Body.String(), `podkit_podoperator_events_total{operator="podoperator",type="add"} 1`), nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if got := status("/healthz"); got != http.StatusServiceUnavailable {
		t.Errorf("/healthz after Run = %d, want 503", got)
	}
}
