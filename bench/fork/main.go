package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/podkit-dev/podkit/bench/internal/load"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/fork"
)

const labelRun = "bench.podkit.dev/run"

func main() {
	n := flag.Int("n", 100, "pods per round")
	rounds := flag.Int("rounds", 3, "rounds per method (interleaved); the median is reported")
	flag.Parse()
	defer load.Report()()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(context.Background(), logger, *n, *rounds); err != nil {
		logger.Error("bench failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger, n, rounds int) (err error) {
	if n < 1 || rounds < 1 {
		return errors.New("-n and -rounds must be at least 1")
	}
	logger.Info("starting cluster")
	env, err := testenv.Start(ctx, testenv.Options{Mode: testenv.ModeCluster, CRDDirectoryPaths: []string{}})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.Stop()) }()
	cs := env.Clientset

	const ns = "bench-fork"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	if err := waitFor(ctx, func() bool {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}); err != nil {
		return fmt.Errorf("wait for default service account: %w", err)
	}
	parent := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "parent", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "example.com/app:1",
			Env: []corev1.EnvVar{{Name: fork.EnvPodName, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		}}},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, parent, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create parent: %w", err)
	}
	if err := waitFor(ctx, func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "parent", metav1.GetOptions{})
		if err == nil {
			parent = p
		}
		return err == nil && p.Status.Phase == corev1.PodRunning
	}); err != nil {
		return fmt.Errorf("wait for parent Running: %w", err)
	}
	lookup := func(k string) (string, bool) {
		switch k {
		case fork.EnvPodName:
			return parent.Name, true
		case fork.EnvPodNamespace:
			return ns, true
		}
		return "", false
	}

	// Direct creation uses the spec fork would build, so both methods create
	// identical pods and only fork's own work differs.
	spec := fork.PodSpecFrom(parent, "bench")
	direct := func(ctx context.Context, id string, i int) error {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "direct-" + id + "-" + strconv.Itoa(i), Namespace: ns, Labels: map[string]string{labelRun: id}},
			Spec:       *spec.DeepCopy(),
		}
		return env.Client.Create(ctx, p)
	}
	forked := func(ctx context.Context, id string, i int) error {
		_, err := fork.Start(ctx, env.Client, "bench", fork.Options{
			Instance:  id + "-" + strconv.Itoa(i),
			Labels:    map[string]string{labelRun: id},
			LookupEnv: lookup,
		})
		return err
	}

	var directTimes, forkTimes []time.Duration
	for r := range rounds {
		for _, m := range []struct {
			name   string
			create func(context.Context, string, int) error
			into   *[]time.Duration
		}{{"direct", direct, &directTimes}, {"fork", forked, &forkTimes}} {
			id := fmt.Sprintf("%s-%d", m.name, r)
			d, err := round(ctx, cs, ns, id, n, m.create)
			if err != nil {
				return fmt.Errorf("round %s: %w", id, err)
			}
			logger.Info("round done", "method", m.name, "round", r, "pods", n, "toRunning", d.Round(time.Millisecond))
			*m.into = append(*m.into, d)
		}
	}
	dm, fm := median(directTimes), median(forkTimes)
	fmt.Printf("fork-to-Running, %d pods per round, median of %d rounds (kwok cluster, same run)\n", n, rounds)
	fmt.Printf("  %-28s %10s  %8s/pod   rounds %v\n", "direct create (baseline)", dm.Round(time.Millisecond), (dm / time.Duration(n)).Round(10*time.Microsecond), roundAll(directTimes))
	fmt.Printf("  %-28s %10s  %8s/pod   rounds %v\n", "fork.Start", fm.Round(time.Millisecond), (fm / time.Duration(n)).Round(10*time.Microsecond), roundAll(forkTimes))
	fmt.Printf("  ratio fork/direct: %.2fx (goal <= 1.20x)\n", float64(fm)/float64(dm))
	return nil
}

// round creates n pods labelled id one after another and returns the time
// from the first create until all of them are Running, observed by a watch
// opened before the first create. It deletes them afterwards.
func round(ctx context.Context, cs kubernetes.Interface, ns, id string, n int, create func(context.Context, string, int) error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	sel := labelRun + "=" + id
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return 0, fmt.Errorf("watch pods: %w", err)
	}
	defer w.Stop()

	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := create(ctx, id, i); err != nil {
				errc <- fmt.Errorf("create pod %d: %w", i, err)
				return
			}
		}
		errc <- nil
	}()
	running := map[string]bool{}
	for len(running) < n {
		select {
		case err := <-errc:
			if err != nil {
				return 0, err
			}
			errc = nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return 0, errors.New("watch closed")
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod && ev.Type != watch.Deleted && p.Status.Phase == corev1.PodRunning {
				running[p.Name] = true
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of %d pods Running: %w", len(running), n, ctx.Err())
		}
	}
	elapsed := time.Since(start)
	if errc != nil {
		if err := <-errc; err != nil {
			return 0, err
		}
	}

	if err := cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{LabelSelector: sel}); err != nil {
		return 0, fmt.Errorf("delete pods: %w", err)
	}
	err = waitFor(ctx, func() bool {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		return err == nil && len(l.Items) == 0
	})
	if err != nil {
		return 0, fmt.Errorf("wait for pods deleted: %w", err)
	}
	return elapsed, nil
}

func waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
