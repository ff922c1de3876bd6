package integration

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/barrier"
)

// publish does what podkit's Framework controller does after a status
// write: it sets v1alpha1.AnnotationBarrierRelease to the release state of the
// status, with a merge patch (pkg/framework's publishRelease; the
// controller-level test is in pkg/barrier/e2e).
func publish(t *testing.T, nn types.NamespacedName) string {
	t.Helper()
	var f v1alpha1.Framework
	if err := env.Client.Get(context.Background(), nn, &f); err != nil {
		t.Fatal(err)
	}
	state := v1alpha1.BarrierReleaseState(&f)
	if state == "" {
		state = "0/" + v1alpha1.BarrierWaiting
	}
	annotate(t, nn, state)
	return state
}

// annotate sets (or, with "", removes) the release annotation.
func annotate(t *testing.T, nn types.NamespacedName, value string) {
	t.Helper()
	var v any = value
	if value == "" {
		v = nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{v1alpha1.AnnotationBarrierRelease: v}}})
	f := &v1alpha1.Framework{}
	f.Namespace, f.Name = nn.Namespace, nn.Name
	if err := env.Client.Patch(context.Background(), f, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatalf("annotate %s: %v", nn, err)
	}
}

// halfReadyPublished creates Framework name with two tasks, the first with a
// pod IP, and publishes its release state ("0/waiting") as the controller
// would.
func halfReadyPublished(t *testing.T, name string) (string, types.NamespacedName, *v1alpha1.Framework) {
	t.Helper()
	ns := env.Namespace(t)
	f := createFramework(t, ns, name, role{"w", 2})
	nn := types.NamespacedName{Namespace: ns, Name: name}
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1"}})
	publish(t, nn)
	return ns, nn, f
}

// metadataWatch makes these small Frameworks take the metadata-only path,
// which Wait uses by default from DefaultMetadataWatchMinTasks tasks.
var metadataWatch = barrier.WithMetadataWatch(0)

// requestLog records the requests of one waiter.
type requestLog struct {
	mu   sync.Mutex
	reqs []string // "LIST", "WATCH", "WATCH(metadata)", "GET"
}

func (l *requestLog) RoundTrip(next http.RoundTripper, r *http.Request) (*http.Response, error) {
	kind := r.Method
	q := r.URL.Query()
	switch {
	case q.Get("watch") == "true" && strings.Contains(r.Header.Get("Accept"), "as=PartialObjectMetadata"):
		kind = "WATCH(metadata)"
	case q.Get("watch") == "true":
		kind = "WATCH"
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/frameworks"):
		kind = "LIST"
	}
	l.mu.Lock()
	l.reqs = append(l.reqs, kind)
	l.mu.Unlock()
	return next.RoundTrip(r)
}

func (l *requestLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.reqs, " ")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// counted returns a rest.Config whose requests are recorded in l.
func counted(l *requestLog) *rest.Config {
	rc := rest.CopyConfig(env.Config)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) { return l.RoundTrip(rt, r) })
	})
	return rc
}

// A Framework whose controller publishes the release state is watched by
// metadata only: status writes that leave the state "waiting" cost the
// waiter no read, and the release costs one GET, three requests in all.
func TestPublishedWaitReadsTheFrameworkOnlyOnRelease(t *testing.T) {
	ns := env.Namespace(t)
	createFramework(t, ns, "pub", role{"w", 4})
	nn := types.NamespacedName{Namespace: ns, Name: "pub"}
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1"}})
	if got := publish(t, nn); got != "0/waiting" {
		t.Fatalf("published %q, want 0/waiting", got)
	}
	var reqs requestLog
	done, progress := startWait(t, context.Background(), config(ns, "pub"), metadataWatch, barrier.WithRESTConfig(counted(&reqs)))
	if p := awaitProgress(t, progress, generous); p.Ready != 1 || p.Total != 4 {
		t.Fatalf("first progress = %v, want 1/4", p)
	}
	for _, ips := range [][]string{{"10.0.0.1", "10.0.0.2"}, {"10.0.0.1", "10.0.0.2", "10.0.0.3"}} {
		setPodIPs(t, nn, map[string][]string{"w": ips})
		if got := publish(t, nn); got != "0/waiting" {
			t.Fatalf("published %q, want 0/waiting", got)
		}
	}
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}})
	select {
	case r := <-done:
		t.Fatalf("released before the controller published it: %v", r.err)
	default:
	}
	if got := publish(t, nn); got != "0/released" {
		t.Fatalf("published %q, want 0/released", got)
	}
	r := await(t, done, generous)
	if r.err != nil {
		t.Fatalf("Wait: %v", r.err)
	}
	if p := barrier.ProgressOf(r.f); !p.Released() {
		t.Fatalf("returned framework progress = %v", p)
	}
	if got, want := reqs.String(), "LIST WATCH(metadata) GET"; got != want {
		t.Errorf("requests = %q, want %q", got, want)
	}
}

// The annotation is a hint: a "released" that the status does not back
// (a forged or early value) does not release the barrier, and the
// addresses written are those of the status read at release. Here task
// w-1 was retried: its first pod's IP went away and its new pod has
// another one; only the new one may be written.
func TestPublishedWaitWritesOnlyTheAddressesOfTheStatusAtRelease(t *testing.T) {
	ns := env.Namespace(t)
	createFramework(t, ns, "retried", role{"w", 2})
	nn := types.NamespacedName{Namespace: ns, Name: "retried"}
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1", "10.0.0.2"}})
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1", ""}}) // w-1 retried
	publish(t, nn)
	dir := t.TempDir()
	b, err := barrier.New(config(ns, "retried"), barrier.Options{Dir: dir,
		Injector: barrier.InjectorOptions{TaskRoleName: "w", TaskIndex: 0}, WaitOptions: []barrier.Option{metadataWatch}})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- b.RunContext(context.Background()) }()

	annotate(t, nn, "0/released") // not backed by the status
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1", ""}})
	select {
	case err := <-errc:
		t.Fatalf("barrier ended on an unbacked release annotation: %v", err)
	default:
	}
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1", "10.0.0.99"}})
	publish(t, nn)
	if err := awaitErr(t, errc); err != nil {
		t.Fatalf("Run: %v", err)
	}
	script, err := os.ReadFile(filepath.Join(dir, "injector.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), "FB_W_IPS='10.0.0.1,10.0.0.99'") || strings.Contains(string(script), "10.0.0.2'") || strings.Contains(string(script), "10.0.0.2,") {
		t.Errorf("injector.sh does not hold exactly the new addresses:\n%s", script)
	}
	fj, err := os.ReadFile(filepath.Join(dir, "framework.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(fj), `"10.0.0.2"`) || !strings.Contains(string(fj), `"10.0.0.99"`) {
		t.Errorf("framework.json holds a stale address or lacks the new one")
	}
}

func TestPublishedWaitFailsWhenFrameworkDeletedAndRecreated(t *testing.T) {
	ns, nn, f := halfReadyPublished(t, "doomed")
	done, progress := startWait(t, context.Background(), config(ns, "doomed"), metadataWatch)
	awaitProgress(t, progress, generous)
	if err := env.Client.Delete(context.Background(), f); err != nil {
		t.Fatalf("delete framework: %v", err)
	}
	createFramework(t, ns, "doomed", role{"w", 2})
	setPodIPs(t, nn, map[string][]string{"w": {"10.9.0.1", "10.9.0.2"}})
	publish(t, nn)
	r := await(t, done, generous)
	if !errors.Is(r.err, barrier.ErrFrameworkNotFound) || !strings.Contains(r.err.Error(), "deleted") {
		t.Fatalf("Wait = %v, %v; want ErrFrameworkNotFound (deleted while waiting), never the new Framework's addresses", r.f, r.err)
	}
	if code := barrier.ExitCode(r.err); code != barrier.ExitCode(barrier.ErrFrameworkNotFound) {
		t.Errorf("exit code %d", code)
	}
}

func TestPublishedWaitFailsWhenFrameworkCompletes(t *testing.T) {
	ns, nn, _ := halfReadyPublished(t, "finished")
	done, progress := startWait(t, context.Background(), config(ns, "finished"), metadataWatch)
	awaitProgress(t, progress, generous)
	var f v1alpha1.Framework
	if err := env.Client.Get(context.Background(), nn, &f); err != nil {
		t.Fatal(err)
	}
	f.Status.State = v1alpha1.FrameworkCompleted
	if err := env.Client.Status().Update(context.Background(), &f); err != nil {
		t.Fatal(err)
	}
	if got := publish(t, nn); got != v1alpha1.BarrierCompleted {
		t.Fatalf("published %q, want %q", got, v1alpha1.BarrierCompleted)
	}
	r := await(t, done, generous)
	if !errors.Is(r.err, barrier.ErrFrameworkCompleted) {
		t.Fatalf("Wait error = %v, want ErrFrameworkCompleted", r.err)
	}
}

func TestPublishedWaitReleasesAfterAPIServerRestart(t *testing.T) {
	ns, nn, _ := halfReadyPublished(t, "restartpub")
	var logs testenv.SyncBuffer
	var reqs requestLog
	done, progress := startWait(t, context.Background(), config(ns, "restartpub"), metadataWatch, barrier.WithRESTConfig(counted(&reqs)),
		barrier.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	awaitProgress(t, progress, generous)

	env.RestartAPIServer(t)
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1", "10.0.0.2"}})
	publish(t, nn)
	r := await(t, done, generous)
	if r.err != nil {
		t.Fatalf("Wait after apiserver restart: %v (requests %s; logs:\n%s)", r.err, reqs.String(), logs.String())
	}
	if p := barrier.ProgressOf(r.f); !p.Released() {
		t.Errorf("released framework progress = %v", p)
	}
	if !strings.Contains(reqs.String(), "WATCH(metadata)") {
		t.Errorf("requests %q: never watched metadata only", reqs.String())
	}
}

// When the annotation goes away (FrameworkController's own controller took
// over the Framework), the barrier watches the whole Framework again and
// releases on the status alone.
// Below DefaultMetadataWatchMinTasks, a published Framework is still
// watched whole: the cheaper and faster path for small Frameworks.
func TestPublishedSmallFrameworkIsWatchedWhole(t *testing.T) {
	ns, nn, _ := halfReadyPublished(t, "small")
	var reqs requestLog
	done, progress := startWait(t, context.Background(), config(ns, "small"), barrier.WithRESTConfig(counted(&reqs)))
	awaitProgress(t, progress, generous)
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1", "10.0.0.2"}})
	if r := await(t, done, generous); r.err != nil {
		t.Fatalf("Wait: %v", r.err)
	}
	if got, want := reqs.String(), "LIST WATCH"; got != want {
		t.Errorf("requests = %q, want %q", got, want)
	}
}

func TestWaitFallsBackToWholeWatchWhenTheAnnotationGoes(t *testing.T) {
	ns, nn, _ := halfReadyPublished(t, "handover")
	var reqs requestLog
	done, progress := startWait(t, context.Background(), config(ns, "handover"), metadataWatch, barrier.WithRESTConfig(counted(&reqs)))
	awaitProgress(t, progress, generous)
	annotate(t, nn, "")
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1", "10.0.0.2"}}) // no publish
	r := await(t, done, generous)
	if r.err != nil {
		t.Fatalf("Wait: %v (requests %s)", r.err, reqs.String())
	}
	if got := reqs.String(); !strings.HasPrefix(got, "LIST WATCH(metadata) GET WATCH") {
		t.Errorf("requests = %q, want LIST WATCH(metadata) GET WATCH…", got)
	}
}

func awaitErr(t *testing.T, errc <-chan error) error {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- result{err: <-errc} }()
	return await(t, done, generous).err
}

// A released Framework read on the metadata path is not decoded whole:
// injector.sh and framework.json come from its JSON (pod IPs read directly,
// the compressed task statuses expanded into the file). framework.json must
// still say what the decoded Framework says, the typed fallback's file.
func TestPublishedWaitWritesFrameworkJSONOfTheCompressedStatus(t *testing.T) {
	const tasks = 400 // task statuses beyond v1alpha1.CompressionMinBytes
	ns := env.Namespace(t)
	createFramework(t, ns, "big", role{"w", tasks})
	nn := types.NamespacedName{Namespace: ns, Name: "big"}
	ips := ipsFor(7, tasks)
	setPodIPs(t, nn, map[string][]string{"w": ips[:tasks-1]})
	publish(t, nn)
	dir := t.TempDir()
	var reqs requestLog
	opts := barrier.InjectorOptions{TaskRoleName: "w", TaskIndex: 3}
	b, err := barrier.New(config(ns, "big"), barrier.Options{Dir: dir, RESTConfig: counted(&reqs),
		Injector: opts, WaitOptions: []barrier.Option{metadataWatch}})
	if err != nil {
		t.Fatal(err)
	}
	errc := runUntil(t, b, &reqs, "WATCH(metadata)")
	setPodIPs(t, nn, map[string][]string{"w": ips})
	publish(t, nn)
	if err := awaitErr(t, errc); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := reqs.String(), "LIST WATCH(metadata) GET"; got != want {
		t.Errorf("requests = %q, want %q", got, want)
	}
	f := checkOutputsOfDecoded(t, dir, nn, opts, nil)
	raw, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "taskRoleStatusesCompressed") {
		t.Fatalf("the status of %d tasks is not stored compressed; the test does not cover the expansion", tasks)
	}
}

// runUntil runs b and waits until reqs logs a request containing watch
// ("WATCH", "WATCH(metadata)"); the channel gets RunContext's error.
func runUntil(t *testing.T, b *barrier.FrameworkBarrier, reqs *requestLog, watch string) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- b.RunContext(context.Background()) }()
	for deadline := time.Now().Add(generous); !strings.Contains(reqs.String(), watch); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s; requests %q", watch, generous, reqs.String())
		}
	}
	return errc
}

// checkOutputsOfDecoded checks that dir holds the files barrier.WriteOutputs
// writes with opts for the Framework nn as the typed client reads it now:
// injector.sh the same, framework.json the same JSON. each, if not nil, is
// called first on each file's contents. It returns that Framework.
func checkOutputsOfDecoded(t *testing.T, dir string, nn types.NamespacedName, opts barrier.InjectorOptions, each func(name string, got []byte)) *v1alpha1.Framework {
	t.Helper()
	var f v1alpha1.Framework
	if err := env.Client.Get(context.Background(), nn, &f); err != nil {
		t.Fatal(err)
	}
	wantDir := t.TempDir()
	if err := barrier.WriteOutputs(wantDir, &f, opts); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"framework.json", "injector.sh"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if each != nil {
			each(name, got)
		}
		want, err := os.ReadFile(filepath.Join(wantDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "injector.sh" {
			if string(got) != string(want) {
				t.Errorf("injector.sh differs from the decoded Framework's:\n%s\nwant:\n%s", got, want)
			}
			continue
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("decode framework.json: %v", err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(w, g); d != "" {
			t.Errorf("framework.json differs from the decoded Framework's (-want +got):\n%s", d)
		}
	}
	return &f
}

// FrameworkController's controller publishes nothing: the whole-object watch
// reads each event for its addresses only, a compressed status included.
// Task w-5 is retried before the gang forms: its old address must not be
// written, and framework.json must say what the decoded Framework says.
func TestWholeWatchWritesOnlyTheAddressesOfTheReleasingStatus(t *testing.T) {
	const tasks = 400 // task statuses beyond v1alpha1.CompressionMinBytes
	ns := env.Namespace(t)
	createFramework(t, ns, "fcbig", role{"w", tasks})
	nn := types.NamespacedName{Namespace: ns, Name: "fcbig"}
	ips := ipsFor(8, tasks)
	old := ips[5]
	setPodIPs(t, nn, map[string][]string{"w": ips[:tasks-1]})
	dir := t.TempDir()
	var reqs requestLog
	opts := barrier.InjectorOptions{TaskRoleName: "w", TaskIndex: 5}
	b, err := barrier.New(config(ns, "fcbig"), barrier.Options{Dir: dir, RESTConfig: counted(&reqs), Injector: opts})
	if err != nil {
		t.Fatal(err)
	}
	errc := runUntil(t, b, &reqs, "WATCH")
	retried := slices.Clone(ips)
	retried[5] = "" // w-5 retried: its first pod's address is gone
	setPodIPs(t, nn, map[string][]string{"w": retried})
	select {
	case err := <-errc:
		t.Fatalf("barrier ended with w-5 retried and without an address: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	ips[5] = "10.8.250.250"
	setPodIPs(t, nn, map[string][]string{"w": ips})
	if err := awaitErr(t, errc); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := reqs.String(), "LIST WATCH"; got != want {
		t.Errorf("requests = %q, want %q", got, want)
	}
	checkOutputsOfDecoded(t, dir, nn, opts, func(name string, got []byte) {
		if strings.Contains(string(got), `"`+old+`"`) || strings.Contains(string(got), old+",") || strings.Contains(string(got), old+"'") {
			t.Errorf("%s holds w-5's old address %s", name, old)
		}
	})
}

func TestWholeWatchFailsWhenFrameworkDeletedAndRecreated(t *testing.T) {
	ns := env.Namespace(t)
	f := createFramework(t, ns, "again", role{"w", 2})
	nn := types.NamespacedName{Namespace: ns, Name: "again"}
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1"}})
	done, progress := startWait(t, context.Background(), config(ns, "again"))
	awaitProgress(t, progress, generous)
	if err := env.Client.Delete(context.Background(), f); err != nil {
		t.Fatalf("delete framework: %v", err)
	}
	createFramework(t, ns, "again", role{"w", 2})
	setPodIPs(t, nn, map[string][]string{"w": {"10.9.0.1", "10.9.0.2"}})
	r := await(t, done, generous)
	if !errors.Is(r.err, barrier.ErrFrameworkNotFound) {
		t.Fatalf("Wait = %v, %v; want ErrFrameworkNotFound, never the new Framework's addresses", r.f, r.err)
	}
}
