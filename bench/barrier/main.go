// Command barrier benchmarks pkg/barrier against the original FrameworkBarrier's
// polling: W concurrent waiters on one Framework of N tasks on a real
// kube-apiserver (testenv.ModeAPIServer). It measures the release latency after
// the last pod IP is written and the apiserver requests each waiter makes over
// its whole wait, for podkit's list+watch and for a GET every interval, in the
// same run, and prints both side by side with their ratios.
//
//	go run ./bench/barrier -waiters 1000 -tasks 1000
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/bench/internal/load"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/barrier"
)

type options struct {
	waiters    int
	tasks      int
	interval   time.Duration
	settle     time.Duration
	updates    int
	baseline   string
	sharedConn bool
}

func main() {
	var o options
	flag.IntVar(&o.waiters, "waiters", 1000, "concurrent waiters on the Framework")
	flag.IntVar(&o.tasks, "tasks", 1000, "tasks in the Framework (one role)")
	flag.DurationVar(&o.interval, "baseline-interval", 10*time.Second, "the polling baseline's GET interval (the original's default is 10s)")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "gang formation window: from all waiters waiting to the last pod IP being written")
	flag.IntVar(&o.updates, "updates", 3, "status updates (pod IPs arriving) spread over the formation window, before the last one")
	flag.BoolVar(&o.sharedConn, "shared-conn", false, "let all waiters share client-go's cached transport (one HTTP/2 connection) instead of one connection each")
	flag.StringVar(&o.baseline, "baseline", "measure", "measure: run the polling waiters; compute: derive the polling figures from the watch run's start times (GET latency not counted)")
	flag.Parse()
	defer load.Report()()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, log, o)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, o options) (err error) {
	log.Info("starting control plane", "mode", testenv.ModeAPIServer)
	env, err := testenv.Start(ctx, testenv.Options{SchemeBuilders: []func(*runtime.Scheme) error{v1alpha1.AddToScheme}})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.Stop()) }()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-barrier"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}

	watchRes, err := scenario(ctx, log, env, o, "watch", watchWaiter)
	if err != nil {
		return err
	}
	pollRes := computedPolling(o, watchRes)
	if o.baseline == "measure" {
		if pollRes, err = scenario(ctx, log, env, o, "poll", pollWaiter(o.interval)); err != nil {
			return err
		}
	}
	report(o, watchRes, pollRes)
	return nil
}

// outcome is what one scenario measured.
type outcome struct {
	latencies  []time.Duration // per waiter: release time - start of the last IP write
	write      time.Duration   // how long the last status write took
	requests   []int64         // per waiter: requests over the whole wait
	bytes      []int64         // per waiter: response bytes over the whole wait
	objectSize int             // bytes of the Framework as JSON
	wall       time.Duration   // first waiter start to last release
	starts     []time.Time     // per waiter: when it started
	written    time.Time       // when the last status write started
	computed   bool            // derived by computedPolling, not measured
}

// waiterFunc waits for the Framework with rc and returns when it is released.
type waiterFunc func(ctx context.Context, rc *rest.Config, ns, name string, started func()) error

func watchWaiter(ctx context.Context, rc *rest.Config, ns, name string, started func()) error {
	var once sync.Once
	_, err := barrier.Wait(ctx, barrier.Config{FrameworkNamespace: ns, FrameworkName: name, BarrierCheckTimeoutSec: 1200},
		barrier.WithRESTConfig(rc), barrier.WithProgress(func(barrier.Progress) { once.Do(started) }))
	return err
}

// pollWaiter does what the original FrameworkBarrier does: GET the Framework,
// check, sleep interval, repeat.
func pollWaiter(interval time.Duration) waiterFunc {
	return func(ctx context.Context, rc *rest.Config, ns, name string, started func()) error {
		client, err := newGetClient(rc)
		if err != nil {
			return err
		}
		first := true
		for {
			var f v1alpha1.Framework
			err := client.Get().Namespace(ns).Resource("frameworks").Name(name).Do(ctx).Into(&f)
			if err == nil && barrier.ProgressOf(&f).Released() {
				return nil
			}
			if first {
				first = false
				started()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(interval):
			}
		}
	}
}

func newGetClient(rc *rest.Config) (*rest.RESTClient, error) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c := rest.CopyConfig(rc)
	c.GroupVersion, c.APIPath = &v1alpha1.GroupVersion, "/apis"
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	return rest.RESTClientFor(c)
}

// countingTransport counts a waiter's requests and response bytes, and
// established watches.
type countingTransport struct {
	next     http.RoundTripper
	requests *atomic.Int64
	bytes    *atomic.Int64
	watches  *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.requests.Add(1)
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusOK && r.URL.Query().Get("watch") == "true" {
		t.watches.Add(1)
	}
	resp.Body = countingBody{ReadCloser: resp.Body, n: t.bytes}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// scenario creates a Framework of o.tasks tasks with all but the last pod IP,
// starts o.waiters waiters spread uniformly over one baseline interval (pods
// start at different times, so pollers have random phases), waits until all
// are waiting (watches established), writes the last pod IP and measures.
func scenario(ctx context.Context, log *slog.Logger, env *testenv.Env, o options, name string, wait waiterFunc) (outcome, error) {
	fwName := "bench-" + name
	f, err := createFramework(ctx, env, "bench-barrier", fwName, o.tasks)
	if err != nil {
		return outcome{}, err
	}
	ips := make([]string, o.tasks)
	for i := range ips {
		ips[i] = fmt.Sprintf("10.%d.%d.%d", 1+i/62500, i/250%250, i%250+1)
	}
	// The last pod IP arrives after the formation window; the hold before it
	// arrive in o.updates steps during the window.
	last := ips[o.tasks-1]
	ips[o.tasks-1] = ""
	hold := min(o.tasks-1, o.updates*10)
	held := slices.Clone(ips[o.tasks-1-hold : o.tasks-1])
	clear(ips[o.tasks-1-hold : o.tasks-1])
	if err := setStatus(ctx, env, f, ips); err != nil {
		return outcome{}, err
	}

	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	var (
		res = outcome{latencies: make([]time.Duration, o.waiters), requests: make([]int64, o.waiters),
			bytes: make([]int64, o.waiters)}
		counters = make([]atomic.Int64, o.waiters)
		bytes    = make([]atomic.Int64, o.waiters)
		watches  atomic.Int64
		ready    sync.WaitGroup
		done     sync.WaitGroup
		released = make([]time.Time, o.waiters)
		errs     = make([]error, o.waiters)
	)
	start := time.Now()
	res.starts = make([]time.Time, o.waiters)
	ready.Add(o.waiters)
	done.Add(o.waiters)
	for i := range o.waiters {
		rc := rest.CopyConfig(env.Config)
		if !o.sharedConn {
			// Its own dialer gives each waiter its own transport and TCP
			// connection, as waiters in separate pods have.
			rc.Dial = (&net.Dialer{}).DialContext
		}
		rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return countingTransport{next: rt, requests: &counters[i], bytes: &bytes[i], watches: &watches}
		})
		delay := time.Duration(rand.Int64N(int64(o.interval)))
		go func() {
			defer done.Done()
			select {
			case <-ctx.Done():
				ready.Done()
				errs[i] = ctx.Err()
				return
			case <-time.After(delay):
			}
			res.starts[i] = time.Now()
			var once sync.Once
			errs[i] = wait(ctx, rc, "bench-barrier", fwName, func() { once.Do(ready.Done) })
			once.Do(ready.Done)
			released[i] = time.Now()
		}()
	}
	ready.Wait()
	if name == "watch" {
		for watches.Load() < int64(o.waiters) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	log.Info("all waiters waiting", "scenario", name, "after", time.Since(start).Round(time.Millisecond))
	for u := range o.updates {
		time.Sleep(o.settle / time.Duration(o.updates+1))
		lo, hi := u*hold/o.updates, (u+1)*hold/o.updates
		copy(ips[o.tasks-1-hold+lo:o.tasks-1-hold+hi], held[lo:hi])
		if err := setStatus(ctx, env, f, ips); err != nil {
			return outcome{}, err
		}
	}
	time.Sleep(o.settle / time.Duration(o.updates+1))

	ips[o.tasks-1] = last
	written := time.Now()
	if err := setStatus(ctx, env, f, ips); err != nil {
		return outcome{}, err
	}
	res.write = time.Since(written)
	res.written = written
	done.Wait()
	for i := range o.waiters {
		if errs[i] != nil {
			return outcome{}, fmt.Errorf("%s waiter %d: %w", name, i, errs[i])
		}
		res.latencies[i] = released[i].Sub(written)
		res.requests[i] = counters[i].Load()
		res.bytes[i] = bytes[i].Load()
	}
	res.wall = time.Since(start)
	var got v1alpha1.Framework
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: f.Namespace, Name: f.Name}, &got); err == nil {
		if b, err := json.Marshal(&got); err == nil {
			res.objectSize = len(b)
		}
	}
	log.Info("all waiters released", "scenario", name, "after", time.Since(written).Round(time.Millisecond))
	return res, nil
}

// computedPolling derives what the original's polling would have measured in
// the watch run: waiter i GETs at starts[i] + k*interval and releases at the
// first GET after the last pod IP was written, after 1+k requests. Each GET's
// own latency is not counted, which favours the baseline.
func computedPolling(o options, w outcome) outcome {
	p := outcome{latencies: make([]time.Duration, len(w.starts)), requests: make([]int64, len(w.starts)),
		bytes: make([]int64, len(w.starts)), objectSize: w.objectSize, computed: true}
	for i, s := range w.starts {
		k := (w.written.Sub(s) + o.interval - 1) / o.interval
		p.latencies[i] = s.Add(k * o.interval).Sub(w.written)
		p.requests[i] = int64(k) + 1
		p.bytes[i] = p.requests[i] * int64(w.objectSize)
	}
	return p
}

func createFramework(ctx context.Context, env *testenv.Env, ns, name string, tasks int) (*v1alpha1.Framework, error) {
	f := &v1alpha1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	f.Spec.TaskRoles = []v1alpha1.TaskRoleSpec{{Name: "worker", TaskNumber: int32(tasks),
		Task: v1alpha1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
		}}}}}
	if err := env.Client.Create(ctx, f); err != nil {
		return nil, fmt.Errorf("create framework %s: %w", name, err)
	}
	return f, nil
}

// setStatus writes the status subresource with pod IP ips[i] for task i.
func setStatus(ctx context.Context, env *testenv.Env, f *v1alpha1.Framework, ips []string) error {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	st := &v1alpha1.FrameworkStatus{StartTime: now, TransitionTime: now, State: v1alpha1.FrameworkAttemptPreparing,
		AttemptStatus: v1alpha1.FrameworkAttemptStatus{StartTime: now, ConfigMapName: v1alpha1.ConfigMapName(f.Name)}}
	rs := v1alpha1.TaskRoleStatus{Name: "worker"}
	for i, ip := range ips {
		ts := v1alpha1.TaskStatus{Index: int32(i), StartTime: now, TransitionTime: now, State: v1alpha1.TaskAttemptPreparing,
			AttemptStatus: v1alpha1.TaskAttemptStatus{StartTime: now, PodName: v1alpha1.PodName(f.Name, "worker", int32(i))}}
		if ip != "" {
			ts.State = v1alpha1.TaskAttemptRunning
			ts.AttemptStatus.PodIP = ptr.To(ip)
		}
		rs.TaskStatuses = append(rs.TaskStatuses, ts)
	}
	st.AttemptStatus.TaskRoleStatuses = []v1alpha1.TaskRoleStatus{rs}
	f.Status = st
	if err := env.Client.Status().Update(ctx, f); err != nil {
		return fmt.Errorf("update status of framework %s: %w", f.Name, err)
	}
	return nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func mean(n []int64) float64 {
	var sum int64
	for _, v := range n {
		sum += v
	}
	return float64(sum) / float64(len(n))
}

func report(o options, w, p outcome) {
	fmt.Printf("\nbarrier benchmark: %d waiters on one Framework of %d tasks (%d KiB as JSON), ModeAPIServer\n",
		o.waiters, o.tasks, w.objectSize/1024)
	fmt.Printf("waiters start spread over %s; then %d status updates over %s; then the last pod IP\n\n", o.interval, o.updates+1, o.settle)
	how := "measured"
	if p.computed {
		how = "computed"
	}
	fmt.Printf("%-34s %16s %22s %10s\n", "", "podkit (watch)", fmt.Sprintf("poll every %s (%s)", o.interval, how), "ratio")
	row := func(label string, wv, pv time.Duration) {
		fmt.Printf("%-34s %16s %22s %9.1fx\n", label, wv.Round(time.Millisecond), pv.Round(time.Millisecond), float64(pv)/float64(wv))
	}
	row("release latency p50", percentile(w.latencies, 0.50), percentile(p.latencies, 0.50))
	row("release latency p99", percentile(w.latencies, 0.99), percentile(p.latencies, 0.99))
	row("release latency max", percentile(w.latencies, 1), percentile(p.latencies, 1))
	fmt.Printf("%-34s %16s %22s\n", "  (of which the status write)", w.write.Round(time.Millisecond), p.write.Round(time.Millisecond))
	wm, pm := mean(w.requests), mean(p.requests)
	fmt.Printf("%-34s %16.2f %22.2f %9.1fx\n", "requests per waiter (whole wait)", wm, pm, pm/wm)
	fmt.Printf("%-34s %16d %22d\n", "requests per waiter, max", slices.Max(w.requests), slices.Max(p.requests))
	wb, pb := mean(w.bytes)/1024, mean(p.bytes)/1024
	fmt.Printf("%-34s %16.0f %22.0f %9.1fx\n", "KiB received per waiter", wb, pb, pb/wb)
	fmt.Printf("%-34s %16s %22.1f\n", "steady apiserver load (req/s)", "0 (watches)", float64(o.waiters)/o.interval.Seconds())
	fmt.Printf("\ngoals: p99 <= 1s: %v; requests per waiter <= 3: %v\n",
		percentile(w.latencies, 0.99) <= time.Second, wm <= 3)
}
