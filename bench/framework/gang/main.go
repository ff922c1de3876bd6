// Command gang measures how long a Framework takes from submission until
// its gang is placed (all its task pods bound to nodes), on a kwok cluster
// of 2 nodes × 4 nvidia.com/gpu, with gang placement (the upstream
// scheduling.k8s.io/v1beta1 PodGroup) and barrier-only (the controller's
// GangOff) side by side:
//
//   - alone: one Framework of 3 tasks × 2 GPUs on empty nodes;
//   - contended: two such Frameworks submitted together (12 GPUs asked, 8
//     there); the pods of whichever is placed first are completed as soon
//     as it is, and the other's time includes that wait.
//
// Barrier-only placement can leave both contended Frameworks partly bound
// (2 + 2 pods, all 8 GPUs held) with neither whole: the run then reports
// the bound counts after -timeout instead of a time. It prints, never
// asserts, and prints the load average beside the figures: the numbers
// are only comparable within one run.
//
//	go run ./bench/framework/gang -runs 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/bench/internal/benchmain"
	"github.com/podkit-dev/podkit/bench/internal/load"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/framework"
)

const (
	gpu      = corev1.ResourceName("nvidia.com/gpu")
	tasks    = 3
	gpusEach = 2
)

type options struct {
	runs    int
	timeout time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 3, "measurements of each scenario (the median is printed with the range)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long a Framework may wait to be placed before the run reports it unplaced")
	flag.Parse()
	benchmain.Run(func(ctx context.Context) error { return run(ctx, o) })
}

func run(ctx context.Context, o options) (err error) {
	ctrl.SetLogger(logr.Discard())
	env, err := testenv.Start(ctx, testenv.Options{
		Mode:           testenv.ModeCluster,
		Nodes:          2,
		NodeResources:  map[string]string{string(gpu): "4"},
		SchemeBuilders: []func(*runtime.Scheme) error{v1.AddToScheme},
	})
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	defer func() { err = errors.Join(err, env.Stop()) }()
	served, err := framework.ServesGangAPI(env.Config)
	if err != nil || !served {
		return fmt.Errorf("the cluster serves no PodGroups (served=%v): %w", served, err)
	}

	fmt.Printf("gang placement benchmark: Frameworks of %d tasks × %d %s on 2 kwok nodes × 4, %d run(s), timeout %s\n",
		tasks, gpusEach, gpu, o.runs, o.timeout)
	results := map[string][]outcome{}
	var order []string
	for i := range o.runs {
		for _, mode := range []framework.GangMode{framework.GangAuto, framework.GangOff} {
			name := "gang"
			if mode == framework.GangOff {
				name = "barrier-only"
			}
			ns := fmt.Sprintf("bench-%s-%d", name, i)
			res, err := scenario(ctx, env, mode, ns, o.timeout)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", name, i, err)
			}
			for _, k := range cases {
				v := res[k]
				key := name + ": " + k
				if _, ok := results[key]; !ok {
					order = append(order, key)
				}
				results[key] = append(results[key], v)
			}
			fmt.Printf("  run %d %-12s alone %s; contended first %s, second %s  (load %s)\n", i, name,
				res[cases[0]], res[cases[1]], res[cases[2]], load.Average())
		}
	}
	fmt.Printf("\n%-44s %10s %22s\n", "submit → all 3 pods bound", "median", "range")
	for _, k := range order {
		fmt.Printf("%-44s %s\n", k, summary(results[k]))
	}
	return nil
}

// cases are the measurements of one scenario, in print order.
var cases = []string{"alone", "contended, first placed", "contended, second placed"}

// outcome is one measurement: the time to placement, or the bound counts
// when the Framework was not placed within the timeout.
type outcome struct {
	d      time.Duration
	placed bool
	bound  int
}

func (o outcome) String() string {
	if !o.placed {
		return fmt.Sprintf("not placed (%d/%d bound)", o.bound, tasks)
	}
	return o.d.Round(time.Millisecond).String()
}

func summary(os []outcome) string {
	var ds []time.Duration
	var unplaced []string
	for _, o := range os {
		if o.placed {
			ds = append(ds, o.d)
		} else {
			unplaced = append(unplaced, o.String())
		}
	}
	s := fmt.Sprintf("%10s %22s", "-", "-")
	if len(ds) > 0 {
		slices.Sort(ds)
		s = fmt.Sprintf("%10s %10s – %-9s", ds[len(ds)/2].Round(time.Millisecond), ds[0].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
	}
	if len(unplaced) > 0 {
		s += fmt.Sprintf("  %d of %d runs %v", len(unplaced), len(os), unplaced)
	}
	return s
}

// scenario runs a controller with mode in namespace ns and measures the
// alone and contended cases there.
func scenario(ctx context.Context, env *testenv.Env, mode framework.GangMode, ns string, timeout time.Duration) (map[string]outcome, error) {
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", ns, err)
	}
	byObject, err := framework.CacheByObjectFor(env.Config)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}, ByObject: byObject},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	r, err := framework.New(framework.Options{Gang: mode, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return nil, err
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = mgr.Start(mctx) })
	defer func() { cancel(); wg.Wait() }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return nil, errors.New("controller cache did not sync")
	}

	out := map[string]outcome{}
	alone, err := submit(ctx, env, ns, timeout, "alone")
	if err != nil {
		return nil, err
	}
	out[cases[0]] = alone[0]
	both, err := submit(ctx, env, ns, timeout, "first", "second")
	if err != nil {
		return nil, err
	}
	out[cases[1]], out[cases[2]] = both[0], both[1]
	return out, nil
}

// submit creates the named Frameworks at once and returns, in the order
// they were placed, how long each took from submission until its 3 pods
// were bound. A placed Framework's pods are completed at once, freeing its
// GPUs. It returns when all were placed or timeout passed, and then stops
// and deletes them all.
func submit(ctx context.Context, env *testenv.Env, ns string, timeout time.Duration, names ...string) ([]outcome, error) {
	w, err := env.Clientset.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("watch pods: %w", err)
	}
	defer w.Stop()
	start := time.Now()
	for _, n := range names {
		if err := env.Client.Create(ctx, newFramework(ns, n)); err != nil {
			return nil, fmt.Errorf("create framework %s: %w", n, err)
		}
	}
	bound := map[string]map[types.UID]bool{}
	var placed []outcome
	done := map[string]bool{}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
wait:
	for len(placed) < len(names) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			break wait
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, errors.New("pod watch closed")
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod || ev.Type == watch.Deleted || pod.Spec.NodeName == "" {
				continue
			}
			fw := pod.Labels[v1.LabelFrameworkName]
			if bound[fw] == nil {
				bound[fw] = map[types.UID]bool{}
			}
			bound[fw][pod.UID] = true
			if len(bound[fw]) == tasks && !done[fw] {
				done[fw] = true
				placed = append(placed, outcome{d: time.Since(start), placed: true})
				if err := completePods(ctx, env, ns, fw); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, n := range names {
		if !done[n] {
			placed = append(placed, outcome{bound: len(bound[n])})
		}
	}
	return placed, cleanUp(ctx, env, ns, names)
}

func newFramework(ns, name string) *v1.Framework {
	q := *resource.NewQuantity(gpusEach, resource.DecimalSI)
	return &v1.Framework{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.FrameworkSpec{TaskRoles: []v1.TaskRoleSpec{{
			Name: "worker", TaskNumber: tasks,
			Task: v1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "main", Image: "busybox",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{gpu: q}, Limits: corev1.ResourceList{gpu: q}}}},
			}}},
		}}},
	}
}

// completePods makes kwok end fw's pods with exit code 0.
func completePods(ctx context.Context, env *testenv.Env, ns, fw string) error {
	var pods corev1.PodList
	if err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{v1.LabelFrameworkName: fw}); err != nil {
		return fmt.Errorf("list pods of %s: %w", fw, err)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"0"}}}`, testenv.AnnotationExitCode)
	for i := range pods.Items {
		if err := env.Client.Patch(ctx, &pods.Items[i], client.RawPatch(types.MergePatchType, patch)); err != nil {
			return fmt.Errorf("complete pod %s: %w", pods.Items[i].Name, err)
		}
	}
	return nil
}

// cleanUp deletes the Frameworks and waits until their pods are gone, so
// the next measurement starts on empty nodes.
func cleanUp(ctx context.Context, env *testenv.Env, ns string, names []string) error {
	for _, n := range names {
		fw := &v1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}
		if err := env.Client.Delete(ctx, fw, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
			return fmt.Errorf("delete framework %s: %w", n, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var pods corev1.PodList
		if err := env.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("list pods: %w", err)
		}
		if len(pods.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d pods of %s to go: %w", len(pods.Items), ns, ctx.Err())
		case <-tick.C:
		}
	}
}
