package framework

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.APIServer(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1.AddToScheme)
	}))
}

func newCommon(ns string) (*common.Common, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = ptr.To(env.Kubeconfig)
	flags.Namespace = ptr.To(ns)
	return &common.Common{
		Flags:   flags,
		Streams: genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: out, ErrOut: errOut},
		Logger:  slog.New(slog.NewTextHandler(errOut, nil)),
	}, out, errOut
}

// createRunning creates a Framework and writes a status as the controller
// would for a running attempt with one ready task.
func createRunning(t *testing.T, ns string) *v1.Framework {
	t.Helper()
	ctx := context.Background()
	fw := &v1.Framework{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "train"},
		Spec: v1.FrameworkSpec{TaskRoles: []v1.TaskRoleSpec{{
			Name: "worker", TaskNumber: 2,
			Task: v1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "main", Image: "busybox"}},
			}}},
		}}},
	}
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatalf("create framework: %v", err)
	}
	now := metav1.Now()
	uid := types.UID("pod-uid-0")
	fw.Status = &v1.FrameworkStatus{
		StartTime: now, State: v1.FrameworkAttemptPreparing, TransitionTime: now, ReadyTasks: "1/2",
		AttemptStatus: v1.FrameworkAttemptStatus{ID: 0, StartTime: now, ConfigMapName: "train-attempt",
			TaskRoleStatuses: []v1.TaskRoleStatus{{Name: "worker", TaskStatuses: []v1.TaskStatus{
				{Index: 0, State: v1.TaskAttemptRunning, StartTime: now, TransitionTime: now,
					AttemptStatus: v1.TaskAttemptStatus{PodName: "train-worker-0", PodUID: &uid, PodIP: ptr.To("10.0.0.7"), PodNodeName: ptr.To("kwok-node-0"), StartTime: now}},
				{Index: 1, State: v1.TaskAttemptCreationRequested, StartTime: now, TransitionTime: now,
					AttemptStatus: v1.TaskAttemptStatus{PodName: "train-worker-1", StartTime: now}},
			}}},
		},
	}
	if err := env.Client.Status().Update(ctx, fw); err != nil {
		t.Fatalf("write status: %v", err)
	}
	return fw
}

func TestGetListsFrameworksWithStateAndReadyTasks(t *testing.T) {
	ns := env.Namespace(t)
	createRunning(t, ns)
	c, out, _ := newCommon(ns)
	cmd := NewGetCommand(context.Background(), c)
	cmd.SetArgs([]string{"fw"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("get fw: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("output:\n%s\nwant a header and one row", out)
	}
	for _, want := range []string{"train", "AttemptPreparing", "1/2"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
}

func TestGetPrintsYAMLWithKind(t *testing.T) {
	ns := env.Namespace(t)
	createRunning(t, ns)
	c, out, _ := newCommon(ns)
	cmd := NewGetCommand(context.Background(), c)
	cmd.SetArgs([]string{"framework", "train", "-o", "yaml"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("get framework train -o yaml: %v", err)
	}
	for _, want := range []string{"apiVersion: podkit.dev/v1alpha1", "kind: Framework", "podIP: 10.0.0.7"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("yaml lacks %q:\n%s", want, out)
		}
	}
}

func TestDescribeShowsTasksAndPodIPs(t *testing.T) {
	ns := env.Namespace(t)
	fw := createRunning(t, ns)
	// Two events: one about this Framework, one about an earlier Framework
	// of the same name (another UID); describe shows only the first.
	for i, uid := range []types.UID{fw.UID, "earlier-framework-uid"} {
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("train.%d", i)},
			InvolvedObject: corev1.ObjectReference{Kind: "Framework", APIVersion: v1.GroupVersion.String(), Namespace: ns, Name: "train", UID: uid},
			Reason:         fmt.Sprintf("Reason%d", i), Message: fmt.Sprintf("message %d", i), Type: corev1.EventTypeNormal,
			FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
		}
		if err := env.Client.Create(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	c, out, _ := newCommon(ns)
	cmd := NewDescribeCommand(context.Background(), c)
	cmd.SetArgs([]string{"fw", "train"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("describe fw train: %v", err)
	}
	for _, want := range []string{"Name:", "train", "Task Role worker: 2 task(s)", "train-worker-0", "10.0.0.7", "kwok-node-0", "AttemptCreationRequested", "Events:", "Reason0", "message 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("describe output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out.String(), "Reason1") {
		t.Errorf("describe shows an event of another Framework (other UID):\n%s", out)
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	ns := env.Namespace(t)
	tests := []struct {
		name     string
		describe bool
		args     []string
		code     int
		text     string
	}{
		{"unknown resource", false, []string{"pods"}, clierr.CodeUsage, "Frameworks only"},
		{"bad output format", false, []string{"fw", "-o", "toml"}, clierr.CodeUsage, "--output"},
		{"missing framework", true, []string{"fw", "nope"}, clierr.CodeFailure, "podkit get fw -A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, _ := newCommon(ns)
			cmd := NewGetCommand(context.Background(), c)
			if tt.describe {
				cmd = NewDescribeCommand(context.Background(), c)
			}
			cmd.SetArgs(tt.args)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.Execute()
			if err == nil || clierr.Code(err) != tt.code || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %v (code %d), want code %d mentioning %q", err, clierr.Code(err), tt.code, tt.text)
			}
		})
	}
}

// -o takes kubectl's printers (cli-runtime PrintFlags), -l filters a list.
func TestGetPrintsWithKubectlsPrintersAndFiltersBySelector(t *testing.T) {
	ns := env.Namespace(t)
	createRunning(t, ns)
	other := &v1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "eval", Labels: map[string]string{"team": "vision"}},
		Spec: v1.FrameworkSpec{TaskRoles: []v1.TaskRoleSpec{{Name: "worker", TaskNumber: 1,
			Task: v1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}}}}}}}}
	if err := env.Client.Create(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	get := func(args ...string) (string, error) {
		c, out, _ := newCommon(ns)
		cmd := NewGetCommand(context.Background(), c)
		cmd.SetArgs(args)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		return out.String(), err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fw", "train", "-o", "jsonpath={.status.attemptStatus.taskRoleStatuses[0].taskStatuses[0].attemptStatus.podIP}"}, "10.0.0.7"},
		{[]string{"fw", "-o", "jsonpath={.items[*].metadata.name}"}, "eval train"},
		{[]string{"fw", "-o", "go-template={{range .items}}{{.metadata.name}};{{end}}"}, "eval;train;"},
		{[]string{"fw", "-l", "team=vision", "-o", "name"}, "framework.podkit.dev/eval\n"},
		{[]string{"fw", "-l", "team!=vision", "-o", "name"}, "framework.podkit.dev/train\n"},
	} {
		got, err := get(tc.args...)
		if err != nil || got != tc.want {
			t.Errorf("get %q = %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
	for _, bad := range [][]string{
		{"fw", "-o", "jsonpath={.status"},
		{"fw", "-l", "team in (vision"},
		{"fw", "train", "-l", "team=vision"},
	} {
		if _, err := get(bad...); clierr.Code(err) != clierr.CodeUsage {
			t.Errorf("get %q: err %v (code %d), want a usage error", bad, err, clierr.Code(err))
		}
	}
}

// Shell completion offers the resource names, then the Framework names of
// the namespace that start with what was typed (cobra's __complete, which
// the scripts of `podkit completion` call).
func TestCompletionOffersFrameworkNames(t *testing.T) {
	ns := env.Namespace(t)
	createRunning(t, ns)
	complete := func(args ...string) []string {
		c, out, _ := newCommon(ns)
		root := &cobra.Command{Use: "podkit"}
		root.AddCommand(NewGetCommand(context.Background(), c), NewDescribeCommand(context.Background(), c))
		root.SetOut(out)
		root.SetArgs(append([]string{cobra.ShellCompRequestCmd}, args...))
		if err := root.Execute(); err != nil {
			t.Fatalf("__complete %q: %v", args, err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		return lines[:len(lines)-1] // the last line is the directive
	}
	if got := complete("get", "fw", "tr"); !slices.Equal(got, []string{"train"}) {
		t.Errorf("get fw tr<TAB> = %q, want [train]", got)
	}
	if got := complete("describe", "fw", "x"); len(got) != 0 {
		t.Errorf("describe fw x<TAB> = %q, want nothing", got)
	}
	if got := complete("get", ""); !slices.Contains(got, "fw") {
		t.Errorf("get <TAB> = %q, want the resource names", got)
	}
}

// startGet runs podkit get with args in the background until cancel; its
// error arrives on done.
func startGet(t *testing.T, ns string, args ...string) (out *testenv.SyncBuffer, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	c, _, _ := newCommon(ns)
	out = &testenv.SyncBuffer{}
	c.Streams.Out = out
	ctx, cancel := context.WithCancel(context.Background())
	cmd := NewGetCommand(ctx, c)
	cmd.SetArgs(args)
	errc := make(chan error, 1)
	go func() { errc <- cmd.Execute() }()
	return out, cancel, errc
}

// get -w prints the list, then a row per change, as kubectl get -w does,
// and keeps watching across an apiserver restart (kubectl would exit).
func TestGetWatchPrintsEachChangeAcrossAnAPIServerRestart(t *testing.T) {
	ns := env.Namespace(t)
	fw := createRunning(t, ns)
	out, cancel, done := startGet(t, ns, "fw", "train", "-w")

	rows := func() []string { return strings.Split(strings.TrimSpace(out.String()), "\n") }
	waitRows := func(n int, want string) {
		t.Helper()
		testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("%d rows, the last with %q", n, want), func(context.Context) (bool, error) {
			r := rows()
			return len(r) >= n && strings.Contains(r[len(r)-1], want), nil
		})
	}
	setState := func(state v1.FrameworkState) {
		t.Helper()
		cur := &v1.Framework{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(fw), cur); err != nil {
			t.Fatal(err)
		}
		cur.Status.State = state
		if err := env.Client.Status().Update(context.Background(), cur); err != nil {
			t.Fatal(err)
		}
	}
	waitRows(2, "AttemptPreparing")
	if !strings.HasPrefix(rows()[0], "NAME") {
		t.Fatalf("first line %q is not the header", rows()[0])
	}
	setState(v1.FrameworkAttemptRunning)
	waitRows(3, "AttemptRunning")

	env.RestartAPIServer(t)
	setState(v1.FrameworkAttemptCompleted)
	waitRows(4, "AttemptCompleted")
	for _, r := range rows()[1:] {
		if strings.HasPrefix(r, "NAME") {
			t.Errorf("header printed again:\n%s", out)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("get -w ended with %v after interruption, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("get -w did not stop when interrupted")
	}
}

// --watch-only skips the initial list; -o yaml prints whole objects.
func TestGetWatchOnlyPrintsObjects(t *testing.T) {
	ns := env.Namespace(t)
	fw := createRunning(t, ns)
	out, cancel, done := startGet(t, ns, "fw", "--watch-only", "-o", "yaml")
	defer cancel()
	ctx := context.Background()
	// Nothing is printed until something changes.
	time.Sleep(time.Second)
	if s := out.String(); s != "" {
		t.Fatalf("--watch-only printed before any change:\n%s", s)
	}
	cur := &v1.Framework{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(fw), cur); err != nil {
		t.Fatal(err)
	}
	cur.Labels = map[string]string{"seen": "yes"}
	if err := env.Client.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the changed Framework as YAML", func(context.Context) (bool, error) {
		s := out.String()
		return strings.Contains(s, "kind: Framework") && strings.Contains(s, "seen: \"yes\""), nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("get --watch-only: %v", err)
	}
}

func TestDescribeShowsTheLatestFailedSchedulingOfUnscheduledPods(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	fw := createRunning(t, ns)
	// train-worker-1 is Pending without a node (no scheduler runs here);
	// train-worker-0 is bound, so it is not listed.
	pods := map[string]*corev1.Pod{}
	for i, node := range []string{"kwok-node-0", ""} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("train-worker-%d", i), Labels: map[string]string{v1.LabelFrameworkName: fw.Name}},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
		}
		if err := env.Client.Create(ctx, p); err != nil {
			t.Fatalf("create pod: %v", err)
		}
		pods[p.Name] = p
	}
	waiting := pods["train-worker-1"]
	now := time.Now()
	event := func(name string, uid types.UID, reason, msg string, at time.Time) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ns, Name: waiting.Name, UID: uid},
			Reason:         reason, Message: msg, Type: corev1.EventTypeWarning,
			FirstTimestamp: metav1.NewTime(at), LastTimestamp: metav1.NewTime(at), Count: 1,
			Source: corev1.EventSource{Component: "default-scheduler"},
		}
	}
	for _, ev := range []*corev1.Event{
		event("old", waiting.UID, "FailedScheduling", "0/2 nodes are available: 2 Insufficient cpu.", now.Add(-3*time.Minute)),
		event("other-reason", waiting.UID, "Scheduled", "a later event of another reason", now),
		event("earlier-pod", "uid-of-an-earlier-pod", "FailedScheduling", "about the pod this name had before a retry", now),
	} {
		if err := env.Client.Create(ctx, ev); err != nil {
			t.Fatalf("create event %s: %v", ev.Name, err)
		}
	}
	// The newest, as the scheduler writes it: events.k8s.io/v1, repeated.
	newest := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "new"},
		Regarding:  corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ns, Name: waiting.Name, UID: waiting.UID},
		EventTime:  metav1.NewMicroTime(now.Add(-5 * time.Minute)), Series: &eventsv1.EventSeries{Count: 4, LastObservedTime: metav1.NewMicroTime(now.Add(-10 * time.Second))},
		Reason: "FailedScheduling", Note: "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.", Type: corev1.EventTypeWarning,
		Action: "Scheduling", ReportingController: "default-scheduler", ReportingInstance: "default-scheduler-host",
	}
	if err := env.Client.Create(ctx, newest); err != nil {
		t.Fatalf("create events.k8s.io/v1 event: %v", err)
	}
	c, out, errOut := newCommon(ns)
	cmd := NewDescribeCommand(ctx, c)
	cmd.SetArgs([]string{"fw", "train"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("describe fw train: %v", err)
	}
	text := out.String()
	i := strings.Index(text, "Unscheduled Pods:")
	if i < 0 {
		t.Fatalf("no Unscheduled Pods section:\n%s\nstderr: %s", text, errOut)
	}
	section, _, _ := strings.Cut(text[i:], "\nEvents:")
	t.Logf("describe:\n%s", text)
	if !strings.Contains(section, "train-worker-1") || !strings.Contains(section, "2 Insufficient nvidia.com/gpu.") {
		t.Errorf("section lacks train-worker-1 with the latest FailedScheduling message:\n%s", section)
	}
	for _, not := range []string{"train-worker-0", "Insufficient cpu", "a later event of another reason", "before a retry"} {
		if strings.Contains(section, not) {
			t.Errorf("section shows %q:\n%s", not, section)
		}
	}
}
