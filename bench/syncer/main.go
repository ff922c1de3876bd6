// Command syncer benchmarks podkit's syncer on two real control planes
// (host and virtual kube-apiservers from internal/testenv): N ConfigMaps
// created in the virtual cluster until all are on the host, against creating
// them on the host directly, for several worker counts; then the latency of
// syncing one object at a time, idle and while -loaded other ConfigMaps are
// syncing (created in bursts in another virtual namespace; a sample counts
// only while a burst is on its way to the host). It prints figures; it
// asserts nothing.
//
//	go run ./bench/syncer -n 1000 -workers 1,4,8 -samples 200 -loaded 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/podkit-dev/podkit/bench/internal/load"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

func main() {
	n := flag.Int("n", 1000, "ConfigMaps per run")
	workerList := flag.String("workers", "1,4,8", "syncer worker counts to compare")
	creators := flag.Int("creators", 8, "concurrent creating clients, for both the baseline and the syncer runs")
	samples := flag.Int("samples", 200, "single-object latency samples, idle and loaded each")
	loaded := flag.Int("loaded", 1000, "other ConfigMaps syncing while the loaded latency is sampled (0: idle only)")
	onlyLatency := flag.Bool("latency-only", false, "skip the throughput runs")
	flag.Parse()
	defer load.Report()()
	ctrllog.SetLogger(logr.Discard())
	if err := run(*n, *workerList, *creators, *samples, *loaded, *onlyLatency); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type bench struct {
	host, virtual *testenv.Env
	creators      int
}

func run(n int, workerList string, creators, samples, loaded int, onlyLatency bool) error {
	var workers []int
	for _, w := range strings.Split(workerList, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || v < 1 {
			return fmt.Errorf("-workers %q: want comma-separated positive numbers", workerList)
		}
		workers = append(workers, v)
	}
	ctx := context.Background()
	host, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		return fmt.Errorf("start host: %w", err)
	}
	defer host.Stop()
	virtual, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		return fmt.Errorf("start virtual: %w", err)
	}
	defer virtual.Stop()
	b := &bench{host: host, virtual: virtual, creators: creators}

	// Warm both API servers up (first writes pay for etcd and caches).
	if _, err := b.baseline(ctx, 100); err != nil {
		return err
	}
	if !onlyLatency {
		if err := b.throughput(ctx, n, workers); err != nil {
			return err
		}
	}
	idle, err := b.latency(ctx, samples, syncer.DefaultWorkers)
	if err != nil {
		return err
	}
	printLatency(fmt.Sprintf("single-object sync latency (virtual create -> host watch event), idle, workers=%d", syncer.DefaultWorkers), idle)
	if loaded > 0 {
		busy, bursts, err := b.loadedLatency(ctx, samples, syncer.DefaultWorkers, loaded)
		if err != nil {
			return err
		}
		printLatency(fmt.Sprintf("single-object sync latency (virtual create -> host watch event), while %d others sync (%d bursts), workers=%d", loaded, bursts, syncer.DefaultWorkers), busy)
	}
	return nil
}

// printLatency prints the percentiles of lat (sorted in place).
func printLatency(what string, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(100 * time.Microsecond)
	}
	fmt.Printf("%s, %d samples: p50 %s  p90 %s  p99 %s  max %s\n",
		what, len(lat), pct(0.50), pct(0.90), pct(0.99), lat[len(lat)-1].Round(100*time.Microsecond))
}

// throughput prints the time n ConfigMaps take to reach the host, directly
// and through the syncer with each worker count.
func (b *bench) throughput(ctx context.Context, n int, workers []int) error {
	base, err := b.baseline(ctx, n)
	if err != nil {
		return err
	}
	fmt.Printf("%d ConfigMaps, %d concurrent creators, client QPS %d\n", n, b.creators, syncer.DefaultQPS)
	fmt.Printf("%-34s %10s %8s\n", "", "time", "ratio")
	fmt.Printf("%-34s %10s %8s\n", "baseline: create on host directly", base.Round(time.Millisecond), "1.00x")
	for _, w := range workers {
		d, err := b.synced(ctx, n, w)
		if err != nil {
			return err
		}
		fmt.Printf("%-34s %10s %7.2fx\n", fmt.Sprintf("syncer: virtual -> host, workers=%d", w), d.Round(time.Millisecond), float64(d)/float64(base))
	}
	return nil
}

func newNamespace(ctx context.Context, cs kubernetes.Interface) (string, error) {
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create namespace: %w", err)
	}
	return ns.Name, nil
}

// createAll creates n ConfigMaps in ns with b.creators goroutines.
func (b *bench) createAll(ctx context.Context, cs kubernetes.Interface, ns string, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, b.creators)
	next := make(chan int)
	for range b.creators {
		wg.Go(func() {
			for i := range next {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%05d", i)}, Data: map[string]string{"i": strconv.Itoa(i)}}
				if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("create ConfigMap %d: %w", i, err)
					return
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

// countAdds watches ns on the host and closes the returned channel once n
// ConfigMaps matching selector were added.
func countAdds(ctx context.Context, cs kubernetes.Interface, ns, selector string, n int) (<-chan struct{}, error) {
	w, err := cs.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("watch host ConfigMaps: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer w.Stop()
		seen := map[string]bool{}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Added {
				seen[ev.Object.(*corev1.ConfigMap).Name] = true
				if len(seen) == n {
					close(done)
					return
				}
			}
		}
	}()
	return done, nil
}

// baseline creates n ConfigMaps on the host and returns when all were seen.
func (b *bench) baseline(ctx context.Context, n int) (time.Duration, error) {
	ns, err := newNamespace(ctx, b.host.Clientset)
	if err != nil {
		return 0, err
	}
	done, err := countAdds(ctx, b.host.Clientset, ns, "", n)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := b.createAll(ctx, b.host.Clientset, ns, n); err != nil {
		return 0, err
	}
	<-done
	return time.Since(start), nil
}

// startSyncer runs a ConfigMap syncer with workers into a fresh target namespace.
func (b *bench) startSyncer(ctx context.Context, workers int) (target string, stop func(), err error) {
	target, err = newNamespace(ctx, b.host.Clientset)
	if err != nil {
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	rc, err := syncer.NewRegisterContext(sctx, syncer.Options{
		VirtualConfig: b.virtual.Config, HostConfig: b.host.Config, TargetNamespace: target, Name: "bench", Workers: workers,
		// The ConfigMaps here are used by no pod; by default only those
		// synced pods use reach the host.
		Policy: synccontext.Policy{Allow: []synccontext.Permission{synccontext.AllowAllConfigMaps}},
	})
	if err != nil {
		cancel()
		return "", nil, err
	}
	plugins, err := resources.New(rc, []string{"configmaps"})
	if err != nil {
		cancel()
		return "", nil, err
	}
	errc := make(chan error, 1)
	go func() { errc <- syncer.Start(rc, plugins...) }()
	return target, func() {
		cancel()
		if err := <-errc; err != nil {
			slog.Error("syncer ended", "err", err)
		}
	}, nil
}

// synced creates n ConfigMaps in a fresh virtual namespace and returns when
// all are on the host.
func (b *bench) synced(ctx context.Context, n, workers int) (time.Duration, error) {
	target, stop, err := b.startSyncer(ctx, workers)
	if err != nil {
		return 0, err
	}
	defer stop()
	vns, err := newNamespace(ctx, b.virtual.Clientset)
	if err != nil {
		return 0, err
	}
	done, err := countAdds(ctx, b.host.Clientset, target, translator.LabelNamespace+"="+vns, n)
	if err != nil {
		return 0, err
	}
	time.Sleep(500 * time.Millisecond) // let the syncer's caches sync
	start := time.Now()
	if err := b.createAll(ctx, b.virtual.Clientset, vns, n); err != nil {
		return 0, err
	}
	select {
	case <-done:
		return time.Since(start), nil
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("workers=%d: not all %d ConfigMaps reached the host within 5 minutes", workers, n)
	}
}

// sampler creates one virtual ConfigMap at a time in its own namespace and
// measures until its host copy's ADDED event arrives.
type sampler struct {
	b   *bench
	vns string
	w   watch.Interface
	i   int
	// calls are the durations of the virtual create calls alone.
	calls []time.Duration
}

func (b *bench) newSampler(ctx context.Context, target string) (*sampler, error) {
	vns, err := newNamespace(ctx, b.virtual.Clientset)
	if err != nil {
		return nil, err
	}
	w, err := b.host.Clientset.CoreV1().ConfigMaps(target).Watch(ctx, metav1.ListOptions{LabelSelector: translator.LabelNamespace + "=" + vns})
	if err != nil {
		return nil, fmt.Errorf("watch host ConfigMaps: %w", err)
	}
	return &sampler{b: b, vns: vns, w: w}, nil
}

// sample syncs one ConfigMap and returns how long it took.
func (s *sampler) sample(ctx context.Context) (time.Duration, error) {
	name := fmt.Sprintf("lat-%05d", s.i)
	s.i++
	start := time.Now()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := s.b.virtual.Clientset.CoreV1().ConfigMaps(s.vns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return 0, fmt.Errorf("create %s: %w", name, err)
	}
	s.calls = append(s.calls, time.Since(start))
	for ev := range s.w.ResultChan() {
		if ev.Type == watch.Added && ev.Object.(*corev1.ConfigMap).Annotations[translator.AnnotationName] == name {
			return time.Since(start), nil
		}
	}
	return 0, fmt.Errorf("host watch ended while waiting for %s", name)
}

// latency samples single-object syncs with nothing else to sync.
func (b *bench) latency(ctx context.Context, samples, workers int) ([]time.Duration, error) {
	target, stop, err := b.startSyncer(ctx, workers)
	if err != nil {
		return nil, err
	}
	defer stop()
	s, err := b.newSampler(ctx, target)
	if err != nil {
		return nil, err
	}
	defer s.w.Stop()
	time.Sleep(500 * time.Millisecond)
	out := make([]time.Duration, 0, samples)
	for range samples {
		d, err := s.sample(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	printLatency("  idle: the virtual create call alone", s.calls)
	return out, nil
}

// loadedLatency samples single-object syncs while others ConfigMaps of
// another virtual namespace are syncing: it starts a burst of others
// (b.creators concurrent creators), samples one object at a time until the
// whole burst is on the host, and starts the next burst until it has
// samples samples. It returns them and the number of bursts.
func (b *bench) loadedLatency(ctx context.Context, samples, workers, others int) ([]time.Duration, int, error) {
	target, stop, err := b.startSyncer(ctx, workers)
	if err != nil {
		return nil, 0, err
	}
	defer stop()
	s, err := b.newSampler(ctx, target)
	if err != nil {
		return nil, 0, err
	}
	defer s.w.Stop()
	time.Sleep(500 * time.Millisecond)
	out := make([]time.Duration, 0, samples)
	bursts := 0
	for len(out) < samples {
		bursts++
		bg, err := newNamespace(ctx, b.virtual.Clientset)
		if err != nil {
			return nil, 0, err
		}
		synced, err := countAdds(ctx, b.host.Clientset, target, translator.LabelNamespace+"="+bg, others)
		if err != nil {
			return nil, 0, err
		}
		created := make(chan error, 1)
		go func() { created <- b.createAll(ctx, b.virtual.Clientset, bg, others) }()
		time.Sleep(50 * time.Millisecond) // the burst is under way
	burst:
		for len(out) < samples {
			select {
			case <-synced:
				break burst
			default:
			}
			d, err := s.sample(ctx)
			if err != nil {
				return nil, 0, err
			}
			out = append(out, d)
		}
		if err := <-created; err != nil {
			return nil, 0, err
		}
		select {
		case <-synced:
		case <-time.After(5 * time.Minute):
			return nil, 0, fmt.Errorf("burst %d: not all %d ConfigMaps reached the host within 5 minutes", bursts, others)
		}
	}
	printLatency("  loaded: the virtual create call alone", s.calls)
	return out, bursts, nil
}
