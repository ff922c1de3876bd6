package podoperator_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/podoperator"
)

var env *testenv.Env

// TestMain runs one API server for the package; pods need no CRDs.
func TestMain(m *testing.M) {
	os.Exit(testenv.APIServer(m, &env, func(o *testenv.Options) { o.CRDDirectoryPaths = []string{} }))
}

func TestHandlersReceiveAddUpdateDeleteWithTheRightObjects(t *testing.T) {
	ns := env.Namespace(t)
	rec := newRecorder(t)
	start(t, env.Clientset, podoperator.Options{Namespace: ns, Handler: rec.handler()})
	ctx := context.Background()

	created := createPod(t, env.Clientset, newPod(ns, "web", map[string]string{"app": "web"}))
	if err := setSeq(ctx, env.Clientset, ns, "web", 1); err != nil {
		t.Fatal(err)
	}
	if err := env.Clientset.CoreV1().Pods(ns).Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	testenv.WaitFor(t, 30*time.Second, "add, update and delete handled", func(context.Context) (bool, error) {
		cs := rec.get("web")
		return len(cs) > 0 && cs[len(cs)-1].typ == "delete", nil
	})

	// The API server may write the pod once more (deletionTimestamp) before
	// removing it: add, update(s), delete.
	cs := rec.get("web")
	if len(cs) < 3 {
		t.Fatalf("got calls %v, want add, update, delete", types_(cs))
	}
	add, upd, del := cs[0], cs[1], cs[len(cs)-1]
	for _, c := range cs[1 : len(cs)-1] {
		if c.typ != "update" {
			t.Errorf("calls = %v, want only updates between the add and the delete", types_(cs))
		}
	}
	if add.typ != "add" || add.uid != created.UID || add.rv != created.ResourceVersion || add.seq != 0 {
		t.Errorf("add call = %+v, want the created pod (uid %s, rv %s, seq 0)", add, created.UID, created.ResourceVersion)
	}
	if upd.oldRV != created.ResourceVersion || upd.seq != 1 || upd.uid != created.UID {
		t.Errorf("first update = %+v, want old rv %s and new seq 1", upd, created.ResourceVersion)
	}
	if del.uid != created.UID || del.seq != 1 || del.labels["app"] != "web" {
		t.Errorf("delete call = %+v, want the last known pod (seq 1, label app=web)", del)
	}
	for _, c := range cs {
		if len(c.pod.ManagedFields) != 0 {
			t.Errorf("%s call got %d managedFields, want them stripped by DefaultTransform", c.typ, len(c.pod.ManagedFields))
		}
	}
}

func TestEventsForOnePodAreHandledInOrderNeverConcurrentlyUnderFourWorkers(t *testing.T) {
	const pods, writes = 12, 15
	ns := env.Namespace(t)
	rec := newRecorder(t)
	rec.hook = func(context.Context, call) error {
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) // let workers interleave
		return nil
	}
	run := start(t, env.Clientset, podoperator.Options{Namespace: ns, Workers: 4, Handler: rec.handler()})
	for i := range pods {
		createPod(t, env.Clientset, newPod(ns, fmt.Sprintf("p%d", i), nil))
	}
	// Interleave writes across pods from several goroutines.
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() {
			for seq := 1; seq <= writes; seq++ {
				if err := setSeq(ctx, env.Clientset, ns, fmt.Sprintf("p%d", i), seq); err != nil {
					t.Errorf("write seq %d: %v", seq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	testenv.WaitFor(t, 60*time.Second, "final state of every pod handled", func(context.Context) (bool, error) {
		for i := range pods {
			if lastSeq(rec.get(fmt.Sprintf("p%d", i))) != writes {
				return false, nil
			}
		}
		return true, nil
	})
	for i := range pods {
		name := fmt.Sprintf("p%d", i)
		cs := rec.get(name)
		assertSeqNeverDecreases(t, name, cs)
		if cs[0].typ != "add" {
			t.Errorf("pod %s: first call is %s, want add", name, cs[0].typ)
		}
		for j := 1; j < len(cs); j++ {
			if cs[j].oldRV != cs[j-1].rv {
				t.Errorf("pod %s: update %d has old rv %s, want the previous new rv %s", name, j, cs[j].oldRV, cs[j-1].rv)
			}
		}
	}
	if got := metric(t, run.reg, "podkit_podoperator_events_total"); got < pods*(writes+1) {
		t.Errorf("events_total = %v, want at least %d", got, pods*(writes+1))
	}
}

func TestDeleteNoticedOnRelistCarriesTheLastKnownPod(t *testing.T) {
	ns := env.Namespace(t)
	rec := newRecorder(t)
	part := newPartition(env.Config)
	client := kubernetes.NewForConfigOrDie(part.config())
	run := start(t, client, podoperator.Options{Namespace: ns, Handler: rec.handler()})
	ctx := context.Background()

	created := createPod(t, env.Clientset, newPod(ns, "gone", map[string]string{"app": "gone"}))
	if err := setSeq(ctx, env.Clientset, ns, "gone", 1); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "update handled", func(context.Context) (bool, error) {
		return lastSeq(rec.get("gone")) == 1, nil
	})

	// Cut the operator off, delete the pod, and make its watch position
	// expire so that it must relist: the delete can only be seen as a
	// tombstone.
	part.cut()
	if err := env.Clientset.CoreV1().Pods(ns).Delete(ctx, "gone", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	part.expireWatches()
	part.heal()

	testenv.WaitFor(t, 60*time.Second, "delete handled", func(context.Context) (bool, error) {
		cs := rec.get("gone")
		return cs[len(cs)-1].typ == "delete", nil
	})
	del := rec.get("gone")[len(rec.get("gone"))-1]
	if del.uid != created.UID || del.seq != 1 || del.labels["app"] != "gone" {
		t.Errorf("delete call = %+v, want the last known pod (uid %s, seq 1)", del, created.UID)
	}
	if got := metric(t, run.reg, "podkit_podoperator_tombstones_total"); got != 1 {
		t.Errorf("tombstones_total = %v, want 1 (the delete must come from a relist)", got)
	}
}

func TestAPIServerRestartMidStreamHandlesEveryFinalStateInOrder(t *testing.T) {
	const pods, writes = 8, 30
	ns := env.Namespace(t)
	rec := newRecorder(t)
	start(t, env.Clientset, podoperator.Options{Namespace: ns, Workers: 4, Handler: rec.handler()})
	for i := range pods {
		createPod(t, env.Clientset, newPod(ns, fmt.Sprintf("r%d", i), nil))
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() {
			for seq := 1; seq <= writes; seq++ {
				if err := setSeq(ctx, env.Clientset, ns, fmt.Sprintf("r%d", i), seq); err != nil {
					t.Errorf("write seq %d: %v", seq, err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	// Restart once some writes have been handled.
	testenv.WaitFor(t, 30*time.Second, "some writes handled", func(context.Context) (bool, error) {
		return lastSeq(rec.get("r0")) >= 3, nil
	})
	env.RestartAPIServer(t)
	wg.Wait()

	testenv.WaitFor(t, 90*time.Second, "final state of every pod handled after the restart", func(context.Context) (bool, error) {
		for i := range pods {
			if lastSeq(rec.get(fmt.Sprintf("r%d", i))) != writes {
				return false, nil
			}
		}
		return true, nil
	})
	for i := range pods {
		name := fmt.Sprintf("r%d", i)
		assertSeqNeverDecreases(t, name, rec.get(name))
	}
}

func TestFailingHandlerIsRetriedWithBackoffThenDropped(t *testing.T) {
	ns := env.Namespace(t)
	rec := newRecorder(t)
	var mu sync.Mutex
	failures := map[string]int{"fails-twice": 2, "always-fails": 1 << 30}
	var attempts []time.Time
	rec.hook = func(_ context.Context, c call) error {
		mu.Lock()
		defer mu.Unlock()
		if c.typ != "add" {
			return nil
		}
		if c.name == "always-fails" {
			attempts = append(attempts, time.Now())
		}
		if failures[c.name] > 0 {
			failures[c.name]--
			return errors.New("boom")
		}
		return nil
	}
	const maxRetries = 3
	recorder := newEventRecorder(t, env.Clientset)
	run := start(t, env.Clientset, podoperator.Options{
		Namespace:     ns,
		Handler:       rec.handler(),
		MaxRetries:    new(int(maxRetries)),
		RateLimiter:   workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](20*time.Millisecond, time.Second),
		EventRecorder: recorder,
	})
	createPod(t, env.Clientset, newPod(ns, "fails-twice", nil))
	createPod(t, env.Clientset, newPod(ns, "always-fails", nil))
	ctx := context.Background()

	testenv.WaitFor(t, 30*time.Second, "event dropped after MaxRetries", func(context.Context) (bool, error) {
		return metric(t, run.reg, "podkit_podoperator_dropped_total") == 1, nil
	})
	// Later events of a pod whose event was dropped still flow.
	if err := setSeq(ctx, env.Clientset, ns, "always-fails", 1); err != nil {
		t.Fatal(err)
	}
	if err := setSeq(ctx, env.Clientset, ns, "fails-twice", 1); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "updates after failures handled", func(context.Context) (bool, error) {
		return lastSeq(rec.get("always-fails")) == 1 && lastSeq(rec.get("fails-twice")) == 1, nil
	})

	if got := types_(rec.get("fails-twice")); strings.Join(got, ",") != "add,add,add,update" {
		t.Errorf("fails-twice calls = %v, want add retried until it succeeds, then the update", got)
	}
	if got := types_(rec.get("always-fails")); strings.Join(got, ",") != "add,add,add,add,update" {
		t.Errorf("always-fails calls = %v, want 1+%d adds then the update", got, maxRetries)
	}
	if got := metric(t, run.reg, "podkit_podoperator_retries_total"); got != 2+maxRetries {
		t.Errorf("retries_total = %v, want %d", got, 2+maxRetries)
	}
	if got := metric(t, run.reg, "podkit_podoperator_handler_errors_total"); got != 3+maxRetries {
		t.Errorf("handler_errors_total = %v, want %d", got, 3+maxRetries)
	}
	mu.Lock()
	for i := 1; i < len(attempts); i++ {
		// AddAfter never fires early, so each gap is at least the backoff.
		if minGap := 20 * time.Millisecond << (i - 1); attempts[i].Sub(attempts[i-1]) < minGap {
			t.Errorf("retry %d came %v after the previous attempt, want at least the %v backoff", i, attempts[i].Sub(attempts[i-1]), minGap)
		}
	}
	mu.Unlock()
	testenv.WaitFor(t, 30*time.Second, "HandlerFailed event recorded on the pod", func(ctx context.Context) (bool, error) {
		evs, err := env.Clientset.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=always-fails"})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == podoperator.ReasonHandlerFailed && e.Type == corev1.EventTypeWarning {
				return true, nil
			}
		}
		return false, nil
	})
}

func TestPanickingHandlerIsRecoveredCountedAndRetried(t *testing.T) {
	ns := env.Namespace(t)
	rec := newRecorder(t)
	var once sync.Once
	rec.hook = func(context.Context, call) error {
		once.Do(func() { panic("handler bug") })
		return nil
	}
	run := start(t, env.Clientset, podoperator.Options{
		Namespace:   ns,
		Handler:     rec.handler(),
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](10*time.Millisecond, time.Second),
	})
	createPod(t, env.Clientset, newPod(ns, "panicky", nil))
	testenv.WaitFor(t, 30*time.Second, "add retried after the panic", func(context.Context) (bool, error) {
		return len(rec.get("panicky")) == 2, nil
	})
	if got := metric(t, run.reg, "podkit_podoperator_handler_panics_total"); got != 1 {
		t.Errorf("handler_panics_total = %v, want 1", got)
	}
	if got := types_(rec.get("panicky")); strings.Join(got, ",") != "add,add" {
		t.Errorf("calls = %v, want the add twice", got)
	}
}

func TestRunWaitsForInFlightHandlersOnCancel(t *testing.T) {
	ns := env.Namespace(t)
	rec := newRecorder(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var handlerCtxErr error
	rec.hook = func(ctx context.Context, c call) error {
		if c.name != "slow" {
			return nil
		}
		close(entered)
		<-release
		handlerCtxErr = ctx.Err()
		return nil
	}
	run := start(t, env.Clientset, podoperator.Options{Namespace: ns, Handler: rec.handler(), ShutdownGracePeriod: time.Minute})
	createPod(t, env.Clientset, newPod(ns, "slow", nil))
	<-entered

	stopped := make(chan error, 1)
	go func() { stopped <- run.stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while a handler was still running", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Errorf("Run = %v, want nil after a clean drain", err)
	}
	if handlerCtxErr != nil {
		t.Errorf("handler context ended (%v) within the grace period", handlerCtxErr)
	}
}

func TestRunCancelsHandlersThatOutliveTheGracePeriod(t *testing.T) {
	ns := env.Namespace(t)
	rec := newRecorder(t)
	entered := make(chan struct{})
	rec.hook = func(ctx context.Context, c call) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	run := start(t, env.Clientset, podoperator.Options{Namespace: ns, Handler: rec.handler(), ShutdownGracePeriod: 100 * time.Millisecond})
	createPod(t, env.Clientset, newPod(ns, "stuck", nil))
	<-entered
	err := run.stop()
	if err == nil || !strings.Contains(err.Error(), "grace period") {
		t.Errorf("Run = %v, want an error about the grace period", err)
	}
}

func types_(cs []call) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.typ
	}
	return out
}

func TestRunReturnsNilWhenCancelledBeforeTheCacheSyncs(t *testing.T) {
	ns := env.Namespace(t)
	cut := newPartition(env.Config)
	cut.cut() // the informer can never list
	client, err := kubernetes.NewForConfig(cut.config())
	if err != nil {
		t.Fatal(err)
	}
	op, err := podoperator.New(client, podoperator.Options{Namespace: ns, Handler: newRecorder(t).handler()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := op.Run(ctx); err != nil {
		t.Errorf("Run = %v, want nil when ctx ends before the cache syncs", err)
	}
	if op.HasSynced() {
		t.Error("HasSynced is true though the informer never listed")
	}
}

func TestWorkersStartWhenTheCacheSyncsWithoutPolling(t *testing.T) {
	// cache.WaitForCacheSync checks at once, then every 100 ms, so a pod
	// that exists before Run would wait at least 100 ms for a worker; the
	// operator waits on the informer's synced channel instead, and handles
	// it as soon as the list is in. The median of a few starts leaves room
	// for a slow machine.
	ns := env.Namespace(t)
	createPod(t, env.Clientset, newPod(ns, "early", nil))
	var delays []time.Duration
	for range 5 {
		handled := make(chan time.Time, 1)
		h := podoperator.HandlerFuncs{AddFunc: func(context.Context, *corev1.Pod) error {
			handled <- time.Now()
			return nil
		}}
		op, err := podoperator.New(env.Clientset, podoperator.Options{Namespace: ns, Handler: h, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		begin := time.Now()
		go func() { done <- op.Run(ctx) }()
		select {
		case at := <-handled:
			delays = append(delays, at.Sub(begin))
		case <-time.After(10 * time.Second):
			t.Fatal("the existing pod was not handled within 10 s of Run")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
	}
	slices.Sort(delays)
	if median := delays[len(delays)/2]; median >= 90*time.Millisecond {
		t.Errorf("median time from Run to handling a pod that existed before = %s (all: %v), want under the 100 ms poll", median, delays)
	}
}
