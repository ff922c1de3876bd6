package fork

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Progress describes one observed change of the child while Wait runs.
type Progress struct {
	// Pod is the child as last observed. Do not modify it.
	Pod *corev1.Pod
	// Phase is the child's phase.
	Phase corev1.PodPhase
	// Summary is a short description such as "Pending: Unschedulable" or
	// "Running".
	Summary string
}

// Result is the outcome of a child.
type Result struct {
	// Namespace and Name identify the child pod.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Phase is the child's last observed phase: Succeeded or Failed once it
	// has completed.
	Phase corev1.PodPhase `json:"phase"`
	// Reason and Message are the pod status's, e.g. "Evicted".
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Containers has one entry per app container, in spec order.
	Containers []ContainerResult `json:"containers"`
	// Adopted is true when the child existed before this call.
	Adopted bool `json:"adopted"`
	// Deleted is true when the child was deleted after completing
	// (Options.Delete).
	Deleted bool `json:"deleted"`
}

// ContainerResult is the outcome of one app container of the child.
type ContainerResult struct {
	// Name is the container's name.
	Name string `json:"name"`
	// Terminated is true when the container has terminated; ExitCode and
	// Reason are meaningful only then.
	Terminated bool   `json:"terminated"`
	ExitCode   int32  `json:"exitCode"`
	Reason     string `json:"reason,omitempty"`
	// Logs are the container's last log lines (Options.Clientset and
	// Options.LogLines), oldest first.
	Logs []string `json:"logs,omitempty"`
	// LogsTruncated is true when the logs were longer than
	// Options.LogLimitBytes and only their tail was kept.
	LogsTruncated bool `json:"logsTruncated,omitempty"`
	// LogError says why the logs could not be read, when they could not.
	LogError string `json:"logError,omitempty"`
}

// Completed reports whether the child has completed (Succeeded or Failed).
func (r *Result) Completed() bool {
	return r.Phase == corev1.PodSucceeded || r.Phase == corev1.PodFailed
}

// ExitCode summarises the child as one process exit code: 0 when it
// succeeded, else the first non-zero exit code of its app containers, else 1
// (for example for an evicted child).
func (r *Result) ExitCode() int {
	if r.Phase == corev1.PodSucceeded {
		return 0
	}
	for _, c := range r.Containers {
		if c.Terminated && c.ExitCode != 0 {
			return int(c.ExitCode)
		}
	}
	return 1
}

// podWatchFunc opens a watch on one pod from resourceVersion.
type podWatchFunc func(ctx context.Context, namespace, name, resourceVersion string) (watch.Interface, error)

func (ch *Child) watchFunc() (podWatchFunc, error) {
	if wc, ok := ch.c.(client.WithWatch); ok {
		return func(ctx context.Context, ns, name, rv string) (watch.Interface, error) {
			return wc.Watch(ctx, &corev1.PodList{}, &client.ListOptions{
				Namespace:     ns,
				FieldSelector: fields.OneTermEqualSelector("metadata.name", name),
				Raw:           &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true},
			})
		}, nil
	}
	if cs := ch.opts.Clientset; cs != nil {
		return func(ctx context.Context, ns, name, rv string) (watch.Interface, error) {
			return cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{
				FieldSelector:       fields.OneTermEqualSelector("metadata.name", name).String(),
				ResourceVersion:     rv,
				AllowWatchBookmarks: true,
			})
		}, nil
	}
	return nil, errors.New("the client cannot watch pods: build it with client.NewWithWatch or set Options.Clientset")
}

// Wait watches the child until it completes, calling Options.Progress on
// each change, then collects its result (and logs, with Options.Clientset)
// and deletes it when Options.Delete is set. It survives watch interruptions
// and API server restarts by reading the pod again and resuming the watch.
// When Options.Timeout or ctx ends the wait, the error wraps the context's
// error and the Result describes the last observed state.
func (ch *Child) Wait(ctx context.Context) (*Result, error) {
	watchPod, err := ch.watchFunc()
	if err != nil {
		return nil, fmt.Errorf("wait for child pod %s/%s: %w", ch.Pod.Namespace, ch.Pod.Name, err)
	}
	if ch.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ch.opts.Timeout)
		defer cancel()
	}
	pod, err := ch.waitCompleted(ctx, watchPod)
	res := ch.result(pod)
	if err != nil {
		return res, err
	}
	if ch.opts.Clientset != nil {
		ch.collectLogs(ctx, res)
	}
	if ch.opts.Delete {
		err := ch.c.Delete(ctx, pod, client.Preconditions{UID: ptr.To(pod.UID)}, client.PropagationPolicy(metav1.DeletePropagationBackground))
		switch {
		case err == nil || apierrors.IsNotFound(err):
			res.Deleted = true
		default:
			return res, explain(err, "delete", "pods", pod.Namespace, fmt.Sprintf("delete child pod %s/%s", pod.Namespace, pod.Name))
		}
	}
	return res, nil
}

// waitCompleted returns the child once its phase is Succeeded or Failed.
func (ch *Child) waitCompleted(ctx context.Context, watchPod podWatchFunc) (*corev1.Pod, error) {
	pod := ch.Pod
	nn := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	last := ""
	report := func(p *corev1.Pod) {
		pod = p
		if s := summary(p); s != last {
			last = s
			if ch.opts.Progress != nil {
				ch.opts.Progress(Progress{Pod: p, Phase: p.Status.Phase, Summary: s})
			}
		}
	}
	timedOut := func(err error) error {
		return fmt.Errorf("wait for child pod %s: stopped while %s: %w", nn, last, err)
	}
	backoff := newBackoff()
	retry := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff.Step()):
			return nil
		}
	}

	report(pod)
	fresh := true // pod was just read: watch from its resourceVersion
	for {
		if completed(pod) {
			return pod, nil
		}
		if err := ctx.Err(); err != nil {
			return pod, timedOut(err)
		}
		if !fresh {
			p := &corev1.Pod{}
			if err := ch.c.Get(ctx, nn, p); err != nil {
				switch {
				case apierrors.IsNotFound(err):
					return pod, fmt.Errorf("wait for child pod %s: it was deleted before completing", nn)
				case apierrors.IsForbidden(err):
					return pod, explain(err, "get", "pods", nn.Namespace, fmt.Sprintf("get child pod %s", nn))
				case ctx.Err() != nil:
					return pod, timedOut(ctx.Err())
				}
				if err := retry(); err != nil {
					return pod, timedOut(err)
				}
				continue
			}
			report(p)
			fresh = true
			continue
		}
		w, err := watchPod(ctx, nn.Namespace, nn.Name, pod.ResourceVersion)
		if err != nil {
			if apierrors.IsForbidden(err) {
				return pod, explain(err, "watch", "pods", nn.Namespace, fmt.Sprintf("watch child pod %s", nn))
			}
			if err := retry(); err != nil {
				return pod, timedOut(err)
			}
			fresh = false
			continue
		}
		events, deleted, err := ch.drain(ctx, w, report)
		w.Stop()
		if deleted {
			return pod, fmt.Errorf("wait for child pod %s: it was deleted before completing", nn)
		}
		if err != nil {
			return pod, timedOut(err)
		}
		if completed(pod) {
			continue
		}
		// The watch ended (server timeout, 410 Gone, API server restart):
		// read the pod again so no change is missed, then watch from there.
		// Back off only when the watch brought nothing, so a healthy
		// long-running wait never sleeps.
		fresh = false
		if events > 0 {
			backoff = newBackoff()
		} else if err := retry(); err != nil {
			return pod, timedOut(err)
		}
	}
}

func newBackoff() wait.Backoff {
	return wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: 5 * time.Second}
}

// drain reads events until the pod completes, is deleted, the watch ends,
// or ctx is done (then it returns ctx's error).
func (ch *Child) drain(ctx context.Context, w watch.Interface, report func(*corev1.Pod)) (events int, deleted bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return events, false, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return events, false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				events++
				report(p)
				if completed(p) {
					return events, false, nil
				}
			case watch.Deleted:
				return events, true, nil
			case watch.Error:
				// Usually 410 Gone: the caller reads the pod and watches again.
				return events, false, nil
			}
		}
	}
}

func completed(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// summary describes a pod's state in a few words.
func summary(p *corev1.Pod) string {
	phase := string(p.Status.Phase)
	if phase == "" {
		phase = string(corev1.PodPending)
	}
	if p.Status.Phase == corev1.PodPending || p.Status.Phase == "" {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
				return phase + ": " + c.Reason
			}
		}
		if p.Spec.NodeName == "" {
			return phase + ": waiting to be scheduled"
		}
		for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
				return phase + ": " + cs.State.Waiting.Reason
			}
		}
		return phase + ": scheduled on " + p.Spec.NodeName
	}
	if p.Status.Reason != "" {
		return phase + ": " + p.Status.Reason
	}
	return phase
}

// Result describes the child as Start left it, without waiting: phase
// Pending or Running for a new child, possibly completed for an adopted one.
func (ch *Child) Result() *Result {
	return ch.result(ch.Pod)
}

// result builds the Result of pod.
func (ch *Child) result(p *corev1.Pod) *Result {
	res := &Result{
		Namespace: p.Namespace,
		Name:      p.Name,
		Phase:     p.Status.Phase,
		Reason:    p.Status.Reason,
		Message:   p.Status.Message,
		Adopted:   ch.Adopted,
	}
	statuses := map[string]corev1.ContainerStatus{}
	for _, s := range p.Status.ContainerStatuses {
		statuses[s.Name] = s
	}
	for _, c := range p.Spec.Containers {
		cr := ContainerResult{Name: c.Name}
		if t := statuses[c.Name].State.Terminated; t != nil {
			cr.Terminated, cr.ExitCode, cr.Reason = true, t.ExitCode, t.Reason
		}
		res.Containers = append(res.Containers, cr)
	}
	return res
}

// collectLogs reads the last Options.LogLines lines of each app container,
// keeping at most Options.LogLimitBytes of their tail; failures are recorded
// per container, since logs are a convenience.
func (ch *Child) collectLogs(ctx context.Context, res *Result) {
	for i := range res.Containers {
		cr := &res.Containers[i]
		stream, err := ch.opts.Clientset.CoreV1().Pods(res.Namespace).GetLogs(res.Name, &corev1.PodLogOptions{
			Container: cr.Name,
			TailLines: ptr.To(int64(ch.opts.LogLines)),
		}).Stream(ctx)
		if err != nil {
			cr.LogError = explain(err, "get", "pods/log", res.Namespace, "read logs of container "+cr.Name).Error()
			continue
		}
		raw, truncated, err := readTail(stream, ch.opts.LogLimitBytes)
		_ = stream.Close()
		if err != nil {
			cr.LogError = fmt.Sprintf("read logs of container %s: %v", cr.Name, err)
		}
		cr.LogsTruncated = truncated
		if s := strings.TrimRight(string(raw), "\n"); s != "" {
			cr.Logs = strings.Split(s, "\n")
		}
	}
}

// readTail reads r to the end and returns its last limit bytes (from the
// start of a line when it had to cut, unless one line is longer than limit),
// and whether it cut anything. Memory stays within 2×limit whatever r holds.
func readTail(r io.Reader, limit int64) ([]byte, bool, error) {
	buf := make([]byte, 0, min(limit, 64<<10)*2)
	chunk := make([]byte, 32<<10)
	cut := false
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		// Compact only once the buffer holds twice the limit: each byte is then moved at most
		// once, instead of the whole tail being moved again for every chunk read.
		if int64(len(buf)) >= 2*limit {
			buf = append(buf[:0], buf[int64(len(buf))-limit:]...)
			cut = true
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return buf, cut, err
		}
	}
	if over := int64(len(buf)) - limit; over > 0 {
		buf, cut = buf[over:], true
	}
	if cut {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 && i+1 < len(buf) {
			buf = buf[i+1:]
		}
	}
	return buf, cut, nil
}
