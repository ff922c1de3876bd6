package podoperator_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/podoperator"
)

// seqAnnotation numbers the writes a test makes to a pod.
const seqAnnotation = "test.podkit.dev/seq"

// call is one handler invocation seen by a recorder.
type call struct {
	typ    string
	name   string
	uid    types.UID
	rv     string
	oldRV  string
	seq    int
	labels map[string]string
	pod    *corev1.Pod
}

// recorder is a Handler that remembers every call, per pod, and fails the
// test if two calls for one pod ever overlap.
type recorder struct {
	t        testing.TB
	mu       sync.Mutex
	calls    map[string][]call
	inFlight map[string]bool
	// hook, when set, runs inside each call (after recording) and may
	// return an error or panic.
	hook func(ctx context.Context, c call) error
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, calls: map[string][]call{}, inFlight: map[string]bool{}}
}

func (r *recorder) record(ctx context.Context, typ string, old, pod *corev1.Pod) error {
	c := call{typ: typ, name: pod.Name, uid: pod.UID, rv: pod.ResourceVersion, seq: seqOf(pod), labels: pod.Labels, pod: pod}
	if old != nil {
		c.oldRV = old.ResourceVersion
	}
	r.mu.Lock()
	if r.inFlight[pod.Name] {
		r.t.Errorf("two handler calls overlap for pod %s", pod.Name)
	}
	r.inFlight[pod.Name] = true
	r.calls[pod.Name] = append(r.calls[pod.Name], c)
	hook := r.hook
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight[pod.Name] = false
		r.mu.Unlock()
	}()
	if hook != nil {
		return hook(ctx, c)
	}
	return nil
}

func (r *recorder) handler() podoperator.Handler {
	return podoperator.HandlerFuncs{
		AddFunc: func(ctx context.Context, pod *corev1.Pod) error { return r.record(ctx, "add", nil, pod) },
		UpdateFunc: func(ctx context.Context, old, pod *corev1.Pod) error {
			return r.record(ctx, "update", old, pod)
		},
		DeleteFunc: func(ctx context.Context, pod *corev1.Pod) error { return r.record(ctx, "delete", nil, pod) },
	}
}

// get returns a copy of the calls seen for pod name.
func (r *recorder) get(name string) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls[name]...)
}

// total is the number of calls across all pods.
func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, cs := range r.calls {
		n += len(cs)
	}
	return n
}

func seqOf(pod *corev1.Pod) int {
	n, err := strconv.Atoi(pod.Annotations[seqAnnotation])
	if err != nil {
		return -1
	}
	return n
}

// running is an operator started by start.
type running struct {
	op   *podoperator.Operator
	reg  *prometheus.Registry
	stop func() error
}

// start builds an operator with opts (a fresh registry unless set) and runs
// it until the test ends or stop is called; stop returns Run's error.
func start(t *testing.T, client kubernetes.Interface, opts podoperator.Options) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	if opts.Registerer == nil {
		opts.Registerer = reg
	}
	op, err := podoperator.New(client, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- op.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	testenv.WaitFor(t, 30*time.Second, "operator cache sync", func(context.Context) (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("Run returned before sync: %w", err)
		default:
		}
		return op.HasSynced(), nil
	})
	return &running{op: op, reg: reg, stop: stop}
}

// metric returns the sum of all series of the named metric in reg.
func metric(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func newPod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels,
			Annotations: map[string]string{seqAnnotation: "0"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.k8s.io/pause:3.10"}}},
	}
}

func createPod(t testing.TB, client kubernetes.Interface, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, err := client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return got
}

// setSeq writes seq into the pod's annotation with a merge patch, retrying
// while the API server is unavailable.
func setSeq(ctx context.Context, client kubernetes.Interface, ns, name string, seq int) error {
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"%d"}}}`, seqAnnotation, seq)
	var last error
	for ctx.Err() == nil {
		_, err := client.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			return nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return errors.Join(ctx.Err(), last)
}

// lastSeq returns the seq of the newest object the handler saw for name.
func lastSeq(cs []call) int {
	if len(cs) == 0 {
		return -1
	}
	return cs[len(cs)-1].seq
}

// assertSeqNeverDecreases fails when a pod's handled states go backwards.
func assertSeqNeverDecreases(t testing.TB, name string, cs []call) {
	t.Helper()
	prev := -1
	for i, c := range cs {
		if c.seq < prev {
			t.Errorf("pod %s: call %d (%s) has seq %d after seq %d: events handled out of order", name, i, c.typ, c.seq, prev)
		}
		prev = c.seq
	}
}
