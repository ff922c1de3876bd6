package watch_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/cli/watch"
	"github.com/podkit-dev/podkit/internal/testenv"
)

var env *testenv.Env

// TestMain runs one API server for the package; pods need no CRDs.
func TestMain(m *testing.M) {
	os.Exit(testenv.APIServer(m, &env, func(o *testenv.Options) { o.CRDDirectoryPaths = []string{} }))
}

// execute runs `podkit <args>` in-process until ctx ends and returns the
// command's error.
func execute(ctx context.Context, out, errOut *testenv.SyncBuffer, args ...string) error {
	c := &common.Common{
		Flags:   genericclioptions.NewConfigFlags(true),
		Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut},
		Logger:  slog.New(slog.NewTextHandler(errOut, nil)),
	}
	root := &cobra.Command{Use: "podkit", SilenceUsage: true, SilenceErrors: true}
	c.Flags.AddFlags(root.PersistentFlags())
	root.AddCommand(watch.NewCommand(ctx, c))
	root.SetArgs(append([]string{"--kubeconfig", env.Kubeconfig}, args...))
	root.SetOut(out)
	root.SetErr(errOut)
	return root.ExecuteContext(ctx)
}

// watchUntil runs the command in the background and returns its stdout and
// a function that stops it and returns its error.
func watchUntil(t *testing.T, args ...string) (*testenv.SyncBuffer, func() error) {
	t.Helper()
	out, errOut := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- execute(ctx, out, errOut, args...) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return out, stop
}

// createThenDelete creates a pod, waits until out shows it, then deletes it.
func createThenDelete(t *testing.T, out *testenv.SyncBuffer, ns, name string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.k8s.io/pause:3.10"}}},
	}
	created, err := env.Clientset.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	testenv.WaitFor(t, 30*time.Second, "the add printed", func(context.Context) (bool, error) {
		return strings.Contains(out.String(), name), nil
	})
	if err := env.Clientset.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	return created
}

func TestWatchPodsPrintsOneTextLinePerEvent(t *testing.T) {
	ns := env.Namespace(t)
	out, stop := watchUntil(t, "watch", "pods", "-n", ns, "-l", "app=web")
	created := createThenDelete(t, out, ns, "web")
	testenv.WaitFor(t, 30*time.Second, "a delete line", func(context.Context) (bool, error) {
		return strings.Contains(out.String(), "Pod delete event"), nil
	})
	if err := stop(); err != nil {
		t.Fatalf("watch pods: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	wantAdd := "Pod add event  name=web  namespace=" + ns + "  resourceVersion=" + created.ResourceVersion + "  phase=Pending"
	if lines[0] != wantAdd {
		t.Errorf("first line = %q, want %q", lines[0], wantAdd)
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "Pod delete event  name=web  namespace="+ns+"  resourceVersion=") {
		t.Errorf("last line = %q, want the delete of web", last)
	}
	for _, l := range lines[1 : len(lines)-1] {
		if !strings.HasPrefix(l, "Pod update event  name=web  ") {
			t.Errorf("middle line = %q, want an update of web", l)
		}
	}
}

func TestWatchPodsPrintsJSONLinesAcrossNamespaces(t *testing.T) {
	ns := env.Namespace(t)
	out, stop := watchUntil(t, "watch", "pods", "-A", "-l", "app=web", "--field-selector", "metadata.namespace="+ns, "-o", "json")
	created := createThenDelete(t, out, ns, "api")
	testenv.WaitFor(t, 30*time.Second, "a delete line", func(context.Context) (bool, error) {
		return strings.Contains(out.String(), `"type":"delete"`), nil
	})
	if err := stop(); err != nil {
		t.Fatalf("watch pods: %v", err)
	}
	type line struct {
		Type, Namespace, Name, UID, ResourceVersion, Phase string
	}
	var got []line
	for _, raw := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("line %q is not JSON: %v", raw, err)
		}
		got = append(got, l)
	}
	first := got[0]
	if first.Type != "add" || first.Namespace != ns || first.Name != "api" || first.UID != string(created.UID) || first.ResourceVersion != created.ResourceVersion {
		t.Errorf("first line = %+v, want the add of %s/api rv %s", first, ns, created.ResourceVersion)
	}
	if last := got[len(got)-1]; last.Type != "delete" || last.Name != "api" {
		t.Errorf("last line = %+v, want the delete of api", last)
	}
}

func TestWatchPodsRejectsBadInputWithUsageErrorNamingTheFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		flag string
	}{
		{"label selector", []string{"-l", "app in (web"}, "--selector"},
		{"field selector", []string{"--field-selector", "spec.nodeName"}, "--field-selector"},
		{"output", []string{"-o", "yaml"}, "--output"},
		{"pending action", []string{"--pending-limit", "5m", "--pending-action", "kill"}, "--pending-action"},
		{"pending action without limit", []string{"--pending-action", "delete"}, "--pending-limit"},
		{"negative pending limit", []string{"--pending-limit", "-1m"}, "--pending-limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := execute(context.Background(), &testenv.SyncBuffer{}, &testenv.SyncBuffer{}, append([]string{"watch", "pods"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.flag) {
				t.Fatalf("error = %v, want one naming %s", err, tt.flag)
			}
			if code := clierr.Code(err); code != clierr.CodeUsage {
				t.Errorf("exit code = %d, want %d", code, clierr.CodeUsage)
			}
		})
	}
}

// This API server has no scheduler, so every pod stays Pending: with
// --pending-limit each is reported once, as a pending-too-long line.
func TestWatchPodsReportsPodsPendingLongerThanTheLimit(t *testing.T) {
	ns := env.Namespace(t)
	out, stop := watchUntil(t, "watch", "pods", "-n", ns, "--pending-limit", "1s", "-o", "json")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "waits"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.k8s.io/pause:3.10"}}},
	}
	created, err := env.Clientset.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	testenv.WaitFor(t, 30*time.Second, "a pending-too-long line", func(context.Context) (bool, error) {
		return strings.Contains(out.String(), `"type":"pending-too-long"`), nil
	})
	if err := stop(); err != nil {
		t.Fatalf("watch pods: %v", err)
	}
	type line struct {
		Type, Name, UID, Reason, Action string
		PendingSeconds                  float64
	}
	var pending []line
	for _, raw := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("line %q is not JSON: %v", raw, err)
		}
		if l.Type == "pending-too-long" {
			pending = append(pending, l)
		}
	}
	if len(pending) != 1 {
		t.Fatalf("pending-too-long lines = %+v, want exactly one", pending)
	}
	if l := pending[0]; l.Name != "waits" || l.UID != string(created.UID) || l.PendingSeconds < 1 || l.Reason != "not scheduled yet" || l.Action != "reported" {
		t.Errorf("pending line = %+v, want pod waits, ≥ 1 s, reason \"not scheduled yet\", action reported", l)
	}
}
