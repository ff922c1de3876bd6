// Command podoperator-bench compares podkit's pod operator with a plain
// client-go SharedIndexInformer on a real API server (etcd + kube-apiserver,
// no kubelet) holding N pods: cache heap after sync, initial-sync event
// throughput, and write-to-handler latency while every pod is patched.
//
//	go run ./bench/podoperator -pods 10000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1informers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/podkit-dev/podkit/bench/internal/load"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/podoperator"
)

const (
	syncRounds     = 5
	namespace      = "bench"
	sentAnnotation = "bench.podkit.dev/sent-unix-nano"
)

func main() {
	pods := flag.Int("pods", 10000, "pods to create")
	workers := flag.Int("workers", 4, "podkit operator workers")
	writers := flag.Int("writers", 32, "concurrent API writers when creating and patching pods")
	syncOnly := flag.Bool("sync-only", false, "skip the patch phase (latency)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the sync phase to this file")
	flag.Parse()
	defer load.Report()()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *pods, *workers, *writers, *syncOnly, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "podoperator-bench:", err)
		os.Exit(1)
	}
}

// side is one contender: something that caches pods and calls a counting
// no-op handler.
type side struct {
	name string
	// label tags the side's goroutines in the CPU profile ("plain", "podkit").
	label string
	// reg, when set, receives the side's metrics.
	reg   *prometheus.Registry
	start func(ctx context.Context, client kubernetes.Interface, h *counter) (wait func(), err error)
}

// counter is the no-op handler both sides share: it counts calls and, for
// patched pods, records write-to-handler latency.
type counter struct {
	adds      atomic.Int64
	updates   atomic.Int64
	latencies []time.Duration
	n         atomic.Int64
	firstAt   atomic.Int64
	lastAt    atomic.Int64
}

func newCounter(capacity int) *counter { return &counter{latencies: make([]time.Duration, capacity)} }

func (c *counter) add() { c.adds.Add(1) }
func (c *counter) update(p *corev1.Pod) {
	c.updates.Add(1)
	sent, err := strconv.ParseInt(p.Annotations[sentAnnotation], 10, 64)
	if err != nil {
		return
	}
	now := time.Now().UnixNano()
	c.firstAt.CompareAndSwap(0, now)
	c.lastAt.Store(now)
	if i := c.n.Add(1) - 1; int(i) < len(c.latencies) {
		c.latencies[i] = time.Duration(now - sent)
	}
}

func plainInformer() side {
	return side{name: "client-go SharedIndexInformer", label: "plain", start: func(ctx context.Context, client kubernetes.Interface, h *counter) (func(), error) {
		inf := corev1informers.NewPodInformer(client, namespace, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { h.add() },
			UpdateFunc: func(_, n any) { h.update(n.(*corev1.Pod)) },
		}); err != nil {
			return nil, err
		}
		var wg sync.WaitGroup
		wg.Go(func() { inf.RunWithContext(ctx) })
		return wg.Wait, nil
	}}
}

func podkitOperator(workers int, reg *prometheus.Registry) side {
	return side{name: fmt.Sprintf("podkit operator (%d workers)", workers), label: "podkit", reg: reg, start: func(ctx context.Context, client kubernetes.Interface, h *counter) (func(), error) {
		metrics := reg
		if metrics == nil {
			metrics = prometheus.NewRegistry() // a fresh one per start
		}
		op, err := podoperator.New(client, podoperator.Options{
			Namespace:  namespace,
			Workers:    workers,
			Logger:     slog.New(slog.DiscardHandler),
			Registerer: metrics,
			Handler: podoperator.HandlerFuncs{
				AddFunc:    func(context.Context, *corev1.Pod) error { h.add(); return nil },
				UpdateFunc: func(_ context.Context, _, p *corev1.Pod) error { h.update(p); return nil },
			},
		})
		if err != nil {
			return nil, err
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := op.Run(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "operator:", err)
			}
		})
		return wg.Wait, nil
	}}
}

// result is what one side measured.
type result struct {
	heapInuse, heapAlloc uint64
	syncTime             time.Duration
	syncRate             float64
	syncCPU              time.Duration // this process's user+sys CPU during the sync
	patchRate            float64
	p50, p99, max        time.Duration
	handled              int
}

func run(ctx context.Context, pods, workers, writers int, syncOnly bool, cpuProfile string) error {
	fmt.Fprintf(os.Stderr, "starting etcd + kube-apiserver …\n")
	env, err := testenv.Start(ctx, testenv.Options{Mode: testenv.ModeAPIServer, CRDDirectoryPaths: []string{}})
	if err != nil {
		return err
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop control plane:", err)
		}
	}()
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 5000, 5000
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create clientset: %w", err)
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	begin := time.Now()
	if err := parallel(ctx, pods, writers, func(ctx context.Context, i int) error {
		_, err := admin.CoreV1().Pods(namespace).Create(ctx, benchPod(i), metav1.CreateOptions{FieldManager: "bench"})
		return err
	}); err != nil {
		return fmt.Errorf("create pods: %w", err)
	}
	fmt.Fprintf(os.Stderr, "created %d pods in %s\n", pods, time.Since(begin).Round(time.Millisecond))

	sides := []side{plainInformer(), podkitOperator(workers, nil)}
	results := make([]result, len(sides))

	// Phase 1, one side at a time, alternating the order over rounds: heap
	// after sync and sync throughput; the median round is reported.
	rounds := make([][]result, len(sides))
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("create profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start profile: %w", err)
		}
	}
	for round := range syncRounds {
		for j := range sides {
			i := j
			if round%2 == 1 {
				i = len(sides) - 1 - j
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return fmt.Errorf("create clientset: %w", err)
			}
			r, err := measureSync(ctx, sides[i], client, pods)
			if err != nil {
				return fmt.Errorf("%s: %w", sides[i].name, err)
			}
			rounds[i] = append(rounds[i], r)
			fmt.Fprintf(os.Stderr, "round %d, %s: synced %d pods in %s, cache heap in use %.1f MiB\n",
				round+1, sides[i].name, pods, r.syncTime.Round(time.Millisecond), mib(r.heapInuse))
		}
	}
	for i := range sides {
		results[i] = median(rounds[i])
	}
	pprof.StopCPUProfile()
	if syncOnly {
		report(pods, workers, sides, results, 0)
		return nil
	}

	// Phase 2, both sides at once: patch every pod, measure latency.
	queueMetrics := prometheus.NewRegistry()
	sides[1] = podkitOperator(workers, queueMetrics)
	runCtx, cancel := context.WithCancel(ctx)
	counters := make([]*counter, len(sides))
	var waits []func()
	for i, s := range sides {
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			cancel()
			return fmt.Errorf("create clientset: %w", err)
		}
		counters[i] = newCounter(pods)
		wait, err := s.start(runCtx, client, counters[i])
		if err != nil {
			cancel()
			return fmt.Errorf("%s: %w", s.name, err)
		}
		waits = append(waits, wait)
	}
	stopAll := func() {
		cancel()
		for _, w := range waits {
			w()
		}
	}
	if err := waitUntil(ctx, 5*time.Minute, func() bool {
		return counters[0].adds.Load() >= int64(pods) && counters[1].adds.Load() >= int64(pods)
	}); err != nil {
		stopAll()
		return fmt.Errorf("both sides sync: %w", err)
	}
	begin = time.Now()
	if err := parallel(ctx, pods, writers, func(ctx context.Context, i int) error {
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"%d"}}}`, sentAnnotation, time.Now().UnixNano())
		_, err := admin.CoreV1().Pods(namespace).Patch(ctx, podName(i), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "bench"})
		return err
	}); err != nil {
		stopAll()
		return fmt.Errorf("patch pods: %w", err)
	}
	fmt.Fprintf(os.Stderr, "patched %d pods in %s\n", pods, time.Since(begin).Round(time.Millisecond))
	if err := waitUntil(ctx, 5*time.Minute, func() bool {
		return counters[0].n.Load() >= int64(pods) && counters[1].n.Load() >= int64(pods)
	}); err != nil {
		stopAll()
		return fmt.Errorf("both sides handle the patches: %w", err)
	}
	stopAll()
	for i, c := range counters {
		n := min(int(c.n.Load()), pods)
		lat := slices.Clone(c.latencies[:n])
		slices.Sort(lat)
		r := &results[i]
		r.handled = n
		r.p50, r.p99, r.max = lat[n*50/100], lat[n*99/100], lat[n-1]
		if span := time.Duration(c.lastAt.Load() - c.firstAt.Load()); span > 0 {
			r.patchRate = float64(n) / span.Seconds()
		}
	}
	queueP99, err := histogramQuantile(queueMetrics, "podkit_podoperator_queue_latency_seconds", 0.99)
	if err != nil {
		return err
	}
	report(pods, workers, sides, results, queueP99)
	return nil
}

// median returns the round with the median sync time, with the median heap.
func median(rs []result) result {
	bySync := slices.SortedFunc(slices.Values(rs), func(a, b result) int { return int(a.syncTime - b.syncTime) })
	byCPU := slices.SortedFunc(slices.Values(rs), func(a, b result) int { return int(a.syncCPU - b.syncCPU) })
	byHeap := slices.SortedFunc(slices.Values(rs), func(a, b result) int { return int(int64(a.heapInuse) - int64(b.heapInuse)) })
	r := bySync[len(rs)/2]
	r.heapInuse, r.heapAlloc = byHeap[len(rs)/2].heapInuse, byHeap[len(rs)/2].heapAlloc
	r.syncCPU = byCPU[len(rs)/2].syncCPU
	return r
}

// measureSync starts s alone, waits until its handler has seen every pod,
// and measures the heap it holds.
func measureSync(ctx context.Context, s side, client kubernetes.Interface, pods int) (result, error) {
	before := heap()
	h := newCounter(0)
	runCtx, cancel := context.WithCancel(ctx)
	cpuBefore := cpuTime()
	begin := time.Now()
	var wait func()
	var err error
	// Goroutines inherit the label: `go tool pprof -tagfocus side=podkit`
	// shows one side's share of the profile (GC workers carry no label).
	pprof.Do(runCtx, pprof.Labels("side", s.label), func(ctx context.Context) {
		wait, err = s.start(ctx, client, h)
	})
	if err != nil {
		cancel()
		return result{}, err
	}
	err = waitUntil(ctx, 5*time.Minute, func() bool { return h.adds.Load() >= int64(pods) })
	elapsed := time.Since(begin)
	cpu := cpuTime() - cpuBefore
	after := heap()
	cancel()
	wait()
	if err != nil {
		return result{}, fmt.Errorf("wait for %d adds: %w", pods, err)
	}
	heap() // release what this side held before the next one starts
	return result{
		heapInuse: after.HeapInuse - min(before.HeapInuse, after.HeapInuse),
		heapAlloc: after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc),
		syncTime:  elapsed,
		syncRate:  float64(pods) / elapsed.Seconds(),
		syncCPU:   cpu,
	}, nil
}

// cpuTime is the user+sys CPU time this process has used. Unlike wall
// time it does not depend on what else the machine runs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heap collects garbage (twice, and returns memory to the OS) and reads the
// heap statistics.
func heap() runtime.MemStats {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// histogramQuantile returns the upper bound of the bucket holding quantile
// q of the named histogram (summed over its series).
func histogramQuantile(g prometheus.Gatherer, name string, q float64) (time.Duration, error) {
	families, err := g.Gather()
	if err != nil {
		return 0, fmt.Errorf("gather metrics: %w", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			want := uint64(math.Ceil(q * float64(h.GetSampleCount())))
			for _, b := range h.GetBucket() {
				if b.GetCumulativeCount() >= want {
					return time.Duration(b.GetUpperBound() * float64(time.Second)), nil
				}
			}
			return time.Duration(math.Inf(1)), nil
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

func report(pods, workers int, sides []side, r []result, queueP99 time.Duration) {
	base, pk := r[0], r[1]
	fmt.Printf("\npod operator benchmark: %d pods on kube-apiserver (no kubelet), GOMAXPROCS=%d, podkit workers=%d, sync figures: median of %d rounds\n\n", pods, runtime.GOMAXPROCS(0), workers, syncRounds)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "metric\t%s\t%s\tratio (podkit/plain)\tgoal\t\n", sides[0].name, sides[1].name)
	fmt.Fprintf(w, "cache heap in use after sync (MiB)\t%.1f\t%.1f\t%.2fx\t<= 0.50x\t\n", mib(base.heapInuse), mib(pk.heapInuse), ratio(pk.heapInuse, base.heapInuse))
	fmt.Fprintf(w, "cache heap live after sync (MiB)\t%.1f\t%.1f\t%.2fx\t\t\n", mib(base.heapAlloc), mib(pk.heapAlloc), ratio(pk.heapAlloc, base.heapAlloc))
	fmt.Fprintf(w, "initial sync, list to last add handled\t%s\t%s\t\t\t\n", base.syncTime.Round(time.Millisecond), pk.syncTime.Round(time.Millisecond))
	fmt.Fprintf(w, "sync event throughput (events/s)\t%.0f\t%.0f\t%.2fx\t>= 0.90x\t\n", base.syncRate, pk.syncRate, pk.syncRate/base.syncRate)
	fmt.Fprintf(w, "sync client CPU (user+sys)\t%s\t%s\t%.2fx\t\t\n", base.syncCPU.Round(time.Millisecond), pk.syncCPU.Round(time.Millisecond), float64(pk.syncCPU)/float64(base.syncCPU))
	fmt.Fprintf(w, "sync events per client CPU-second\t%.0f\t%.0f\t%.2fx\t>= 0.90x\t\n", float64(pods)/base.syncCPU.Seconds(), float64(pods)/pk.syncCPU.Seconds(), base.syncCPU.Seconds()/pk.syncCPU.Seconds())
	if base.handled == 0 {
		_ = w.Flush()
		return
	}
	fmt.Fprintf(w, "watch event throughput, API-bound (events/s)\t%.0f\t%.0f\t%.2fx\t>= 0.90x\t\n", base.patchRate, pk.patchRate, pk.patchRate/base.patchRate)
	fmt.Fprintf(w, "write-to-handler latency p50\t%s\t%s\t\t\t\n", base.p50.Round(time.Microsecond), pk.p50.Round(time.Microsecond))
	fmt.Fprintf(w, "write-to-handler latency p99\t%s\t%s\t%.2fx\t\t\n", base.p99.Round(time.Microsecond), pk.p99.Round(time.Microsecond), float64(pk.p99)/float64(base.p99))
	fmt.Fprintf(w, "podkit queue latency p99 (event received → handler)\t-\t<= %s\t\t\t\n", queueP99)
	fmt.Fprintf(w, "write-to-handler latency max\t%s\t%s\t\t\t\n", base.max.Round(time.Microsecond), pk.max.Round(time.Microsecond))
	_ = w.Flush()
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// parallel runs fn(i) for i in [0, n) on `workers` goroutines, retrying
// each call a few times, and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				var err error
				for range 5 {
					if err = fn(ctx, i); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func podName(i int) string { return fmt.Sprintf("web-7c5d8f9b4-%05d", i) }

// benchPod looks like a Deployment's pod: labels, an owner, resources,
// env, ports and probes.
func benchPod(i int) *corev1.Pod {
	isController := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      podName(i),
			Namespace: namespace,
			Labels:    map[string]string{"app": "web", "pod-template-hash": "7c5d8f9b4", "tier": "frontend"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7c5d8f9b4",
				UID: "5b1c6a2e-0d7f-4a8e-9f3b-2c4d6e8f0a1b", Controller: &isController,
			}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "web",
				Image: "registry.example.com/team/web:1.27.3",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
				Env: []corev1.EnvVar{
					{Name: "LOG_LEVEL", Value: "info"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}},
			}},
		},
	}
}
