// Command framework benchmarks the Framework controller against a raw
// client: one Framework of N tasks, from creation until every pod exists and
// every task's pod UID is recorded in the Framework's status, versus a plain
// clientset creating the same N pods, in the same run, with the same client
// QPS/burst and the same creation concurrency. It prints both side by side
// and the ratio (goal: at most 1.25x).
//
// It runs on testenv.ModeAPIServer by default (pods only need to exist;
// nothing schedules them); -mode cluster uses a kwok cluster instead.
//
//	go run ./bench/framework -tasks 1000 -qps 80 -burst 120
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/bench/internal/benchmain"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/framework"
)

type options struct {
	mode        string
	tasks       int
	qps         float64
	burst       int
	concurrency int
	runs        int
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", string(testenv.ModeAPIServer), "control plane: apiserver or cluster")
	flag.IntVar(&o.tasks, "tasks", 1000, "tasks (pods) in the Framework")
	flag.Float64Var(&o.qps, "qps", 80, "client QPS of both the controller and the raw client (FrameworkController's default is 80)")
	flag.IntVar(&o.burst, "burst", 120, "client burst of both (FrameworkController's default is 120)")
	flag.IntVar(&o.concurrency, "concurrency", 32, "pod creations in flight, for both")
	flag.IntVar(&o.runs, "runs", 1, "measurements of each side (alternating; the best of each is compared)")
	flag.Parse()
	benchmain.Run(func(ctx context.Context) error { return run(ctx, o) })
}

func run(ctx context.Context, o options) (err error) {
	if os.Getenv("BENCH_DEBUG") != "" {
		ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-1)})))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	env, err := testenv.Start(ctx, testenv.Options{
		Mode:           testenv.Mode(o.mode),
		SchemeBuilders: []func(*runtime.Scheme) error{v1.AddToScheme},
	})
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	defer func() { err = errors.Join(err, env.Stop()) }()

	cfg := *env.Config
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	raw, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return fmt.Errorf("create clientset: %w", err)
	}

	watcher, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		return fmt.Errorf("create watch client: %w", err)
	}

	// One controller for all runs, like a deployed one; namespaces differ.
	mgr, err := ctrl.NewManager(&cfg, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{ByObject: framework.CacheByObject()},
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	r, err := framework.New(framework.Options{CreationConcurrency: o.concurrency, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = mgr.Start(mctx) })
	defer func() { cancel(); wg.Wait() }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("controller cache did not sync")
	}

	fmt.Printf("framework benchmark: %d tasks, mode %s, client QPS %.0f burst %d, concurrency %d, %d run(s)\n",
		o.tasks, o.mode, o.qps, o.burst, o.concurrency, o.runs)
	var bestRaw, bestFw time.Duration
	for i := range o.runs {
		dRaw, err := rawClient(ctx, env, raw, o, fmt.Sprintf("bench-raw-%d", i))
		if err != nil {
			return err
		}
		dFw, err := controller(ctx, env, watcher, o, fmt.Sprintf("bench-fw-%d", i))
		if err != nil {
			return err
		}
		fmt.Printf("  run %d: raw client %8s   framework controller %8s\n", i, dRaw.Round(time.Millisecond), dFw.Round(time.Millisecond))
		if bestRaw == 0 || dRaw < bestRaw {
			bestRaw = dRaw
		}
		if bestFw == 0 || dFw < bestFw {
			bestFw = dFw
		}
	}
	fmt.Printf("\n%-44s %10s %12s\n", "", "time", "pods/s")
	fmt.Printf("%-44s %10s %12.1f\n", "baseline: raw client creates the pods", bestRaw.Round(time.Millisecond), float64(o.tasks)/bestRaw.Seconds())
	fmt.Printf("%-44s %10s %12.1f\n", "podkit: Framework → pods created + status", bestFw.Round(time.Millisecond), float64(o.tasks)/bestFw.Seconds())
	fmt.Printf("ratio (podkit / baseline): %.2fx (goal <= 1.25x)\n", bestFw.Seconds()/bestRaw.Seconds())
	return nil
}

func createNamespace(ctx context.Context, env *testenv.Env, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(ctx, ns); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers:    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}}},
	}}
}

// rawClient creates the pods directly, as a hand-written job launcher
// would: the same pods, the same concurrency.
func rawClient(ctx context.Context, env *testenv.Env, cs kubernetes.Interface, o options, ns string) (time.Duration, error) {
	if err := createNamespace(ctx, env, ns); err != nil {
		return 0, err
	}
	// The very pods the controller creates (same labels, annotations and
	// env), minus the owner reference to a Framework that does not exist.
	shadow := &v1.Framework{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "job", UID: "shadow"},
		Spec:       v1.FrameworkSpec{TaskRoles: []v1.TaskRoleSpec{{Name: "worker", TaskNumber: int32(o.tasks), Task: v1.TaskSpec{Pod: podTemplate()}}}},
		Status:     &v1.FrameworkStatus{AttemptStatus: v1.FrameworkAttemptStatus{ConfigMapName: v1.ConfigMapName("job")}},
	}
	start := time.Now()
	errs := make([]error, o.tasks)
	next := make(chan int)
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			for i := range next {
				pod := framework.NewPod(shadow, &shadow.Spec.TaskRoles[0], int32(i), 0)
				pod.OwnerReferences = nil
				_, errs[i] = cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			}
		})
	}
	for i := range o.tasks {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("raw client: %w", err)
	}
	return time.Since(start), nil
}

// controller creates one Framework and waits until its status records a
// pod UID for every task (and the pods exist).
func controller(ctx context.Context, env *testenv.Env, watcher client.WithWatch, o options, ns string) (time.Duration, error) {
	if err := createNamespace(ctx, env, ns); err != nil {
		return 0, err
	}
	fw := &v1.Framework{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "job"},
		Spec: v1.FrameworkSpec{TaskRoles: []v1.TaskRoleSpec{{
			Name: "worker", TaskNumber: int32(o.tasks), Task: v1.TaskSpec{Pod: podTemplate()},
		}}},
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	w, err := watcher.Watch(wctx, &v1.FrameworkList{}, client.InNamespace(ns))
	if err != nil {
		return 0, fmt.Errorf("watch frameworks: %w", err)
	}
	defer w.Stop()
	start := time.Now()
	if err := env.Client.Create(ctx, fw); err != nil {
		return 0, fmt.Errorf("create framework: %w", err)
	}
	for ev := range w.ResultChan() {
		got, ok := ev.Object.(*v1.Framework)
		if !ok || recorded(got) != o.tasks {
			continue
		}
		d := time.Since(start)
		var pods corev1.PodList
		if err := env.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return 0, fmt.Errorf("list pods: %w", err)
		}
		if len(pods.Items) != o.tasks {
			return 0, fmt.Errorf("framework: %d pods exist, want %d", len(pods.Items), o.tasks)
		}
		return d, nil
	}
	return 0, errors.New("framework: status did not record every pod within 10 minutes")
}

func recorded(fw *v1.Framework) int {
	if fw.Status == nil {
		return 0
	}
	n := 0
	for _, rs := range fw.Status.AttemptStatus.TaskRoleStatuses {
		for _, ts := range rs.TaskStatuses {
			if ts.AttemptStatus.PodUID != nil {
				n++
			}
		}
	}
	return n
}
