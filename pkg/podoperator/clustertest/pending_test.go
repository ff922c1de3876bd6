package clustertest_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/podoperator"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Cluster(m, &env)) }

const waitLong = 60 * time.Second

// pod returns a pod that the real scheduler places on a kwok node, or, with
// unschedulable, one whose nodeSelector no node satisfies.
func pod(ns, name string, unschedulable bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "example.com/app:1"}}},
	}
	if unschedulable {
		p.Spec.NodeSelector = map[string]string{"podkit.dev/no-such-node": "true"}
	}
	return p
}

func create(t *testing.T, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, err := env.Clientset.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", p.Name, err)
	}
	return got
}

// run starts an operator until the test ends.
func run(t *testing.T, opts podoperator.Options) {
	t.Helper()
	op, err := podoperator.New(env.Clientset, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	testenv.Run(t, "Run", op.Run)
}

func counter(t *testing.T, reg prometheus.Gatherer, name, action string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "action" && l.GetValue() == action {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A pod kept Pending by an unsatisfiable nodeSelector is handed to the
// callback once, with the scheduler's reason; a pod that runs never is.
func TestPendingWatchCallsBackOnceForAPodTheSchedulerCannotPlace(t *testing.T) {
	ns := env.Namespace(t)
	type seen struct {
		name, why string
		age       time.Duration
	}
	var mu sync.Mutex
	var calls []seen
	called := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range calls {
			if c.name == name {
				n++
			}
		}
		return n
	}
	reg := prometheus.NewRegistry()
	limit := 2 * time.Second
	run(t, podoperator.Options{
		Namespace:  ns,
		Handler:    podoperator.HandlerFuncs{},
		Registerer: reg,
		PendingWatch: &podoperator.PendingWatch{
			Limit: limit, Interval: 200 * time.Millisecond, Action: podoperator.PendingActionCallback,
			Callback: func(_ context.Context, p *corev1.Pod, age time.Duration) error {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, seen{p.Name, podoperator.PendingReason(p), age})
				return nil
			},
		},
	})
	create(t, pod(ns, "runs", false))
	create(t, pod(ns, "stuck", true))
	testenv.WaitFor(t, waitLong, "the callback for pod stuck", func(context.Context) (bool, error) {
		return called("stuck") > 0, nil
	})
	// A second stuck pod, created now, is reported at least Limit later: by
	// then the first has been scanned again many times.
	create(t, pod(ns, "stuck-2", true))
	testenv.WaitFor(t, waitLong, "the callback for pod stuck-2", func(context.Context) (bool, error) {
		return called("stuck-2") > 0, nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, c := range calls {
		if c.age < limit {
			t.Errorf("pod %s reported after %s, before the %s limit", c.name, c.age, limit)
		}
		if !strings.HasPrefix(c.why, "Unschedulable") {
			t.Errorf("pod %s reason = %q, want the scheduler's Unschedulable", c.name, c.why)
		}
	}
	if n := len(calls); n != 2 || calls[0].name != "stuck" || calls[1].name != "stuck-2" {
		t.Errorf("callback calls = %+v, want stuck then stuck-2, once each (never runs)", calls)
	}
	if got := counter(t, reg, "podkit_podoperator_pending_actions_total", "Callback"); got != 2 {
		t.Errorf("pending_actions_total{action=Callback} = %v, want 2", got)
	}
}

// With Action Delete the stuck pod is deleted and a Warning Event says why;
// the running pod stays.
func TestPendingWatchDeletesAStuckPodAndRecordsAnEvent(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: env.Clientset.CoreV1().Events("")})
	t.Cleanup(broadcaster.Shutdown)
	reg := prometheus.NewRegistry()
	run(t, podoperator.Options{
		Name:          "pending-test",
		Namespace:     ns,
		Handler:       podoperator.HandlerFuncs{},
		Registerer:    reg,
		EventRecorder: broadcaster.NewRecorder(env.Scheme, corev1.EventSource{Component: "pending-test"}),
		PendingWatch:  &podoperator.PendingWatch{Limit: 2 * time.Second, Interval: 200 * time.Millisecond, Action: podoperator.PendingActionDelete},
	})
	create(t, pod(ns, "runs", false))
	stuck := create(t, pod(ns, "stuck", true))
	testenv.WaitFor(t, waitLong, "pod stuck deleted", func(ctx context.Context) (bool, error) {
		_, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, "stuck", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	testenv.WaitFor(t, waitLong, "the PodPendingTooLong event", func(ctx context.Context) (bool, error) {
		evs, err := env.Clientset.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.uid", string(stuck.UID)).String(),
		})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == podoperator.ReasonPendingTooLong && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "deleted by pending-test") {
				return true, nil
			}
		}
		return false, nil
	})
	p, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, "runs", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp != nil {
		t.Errorf("running pod: %v, deletionTimestamp %v; want it kept", err, p.GetDeletionTimestamp())
	}
	if got := counter(t, reg, "podkit_podoperator_pending_actions_total", "Delete"); got != 1 {
		t.Errorf("pending_actions_total{action=Delete} = %v, want 1", got)
	}
}

func TestPendingWatchOptionsAreValidated(t *testing.T) {
	for _, tt := range []struct {
		pw   podoperator.PendingWatch
		want string
	}{
		{podoperator.PendingWatch{}, "PendingWatch.Limit is 0s"},
		{podoperator.PendingWatch{Limit: time.Minute, Action: "Kill"}, `PendingWatch.Action "Kill"`},
		{podoperator.PendingWatch{Limit: time.Minute, Action: podoperator.PendingActionCallback}, "Callback is nil"},
		{podoperator.PendingWatch{Limit: time.Minute, Interval: -time.Second}, "PendingWatch.Interval is -1s"},
	} {
		pw := tt.pw
		_, err := podoperator.New(env.Clientset, podoperator.Options{Handler: podoperator.HandlerFuncs{}, PendingWatch: &pw})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("PendingWatch %+v: error %v, want %q", tt.pw, err, tt.want)
		}
	}
}
