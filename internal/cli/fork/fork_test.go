package fork

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/fork"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Cluster(m, &env)) }

// run executes `podkit fork args...` in-process against env's cluster.
func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	flags := genericclioptions.NewConfigFlags(true)
	flags.KubeConfig = &env.Kubeconfig
	c := &common.Common{
		Flags:   flags,
		Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Logger:  slog.New(slog.NewTextHandler(&errOut, nil)),
	}
	cmd := NewCommand(context.Background(), c)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// inPod creates a running parent pod and sets the downward-API variables a
// container of it would have.
func inPod(t *testing.T) (ns string, parent *corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	ns = env.Namespace(t)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "tool-0", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "tool", Image: "example.com/tool:1"}}},
	}
	if _, err := env.Clientset.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create parent: %v", err)
	}
	testenv.WaitFor(t, 90*time.Second, "parent Running", func(ctx context.Context) (bool, error) {
		got, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
		parent = got
		return err == nil && got.Status.Phase == corev1.PodRunning, err
	})
	t.Setenv(fork.EnvPodName, p.Name)
	t.Setenv(fork.EnvPodNamespace, ns)
	return ns, parent
}

func TestForkWaitPrintsJSONAndExitsWithChildCode(t *testing.T) {
	ns, parent := inPod(t)
	stdout, stderr, err := run(t, "--path", "job", "--wait", "--timeout", "90s", "-o", "json",
		"--annotation", testenv.AnnotationExitCode+"=3", "--env", "MODE=batch")
	if code := clierr.Code(err); code != 3 {
		t.Fatalf("exit code = %d (err %v), want 3; stderr:\n%s", code, err, stderr)
	}
	var res fork.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not a JSON result: %v\n%s", err, stdout)
	}
	if res.Namespace != ns || res.Phase != corev1.PodFailed || len(res.Containers) != 1 || res.Containers[0].ExitCode != 3 {
		t.Errorf("result = %+v, want Failed with exit code 3 in %s", res, ns)
	}
	if want := fork.ChildName(parent.Name, parent.UID, "job", ""); res.Name != want {
		t.Errorf("child name = %q, want %q", res.Name, want)
	}
	if !strings.Contains(stderr, "state=Running") {
		t.Errorf("stderr shows no progress:\n%s", stderr)
	}
}

func TestForkWithoutWaitCreatesThenAdopts(t *testing.T) {
	inPod(t)
	for _, want := range []string{" created ", " adopted "} {
		stdout, stderr, err := run(t, "--path", "worker")
		if err != nil {
			t.Fatalf("podkit fork: %v\n%s", err, stderr)
		}
		if !strings.HasPrefix(stdout, "pod/tool-0-worker-") || !strings.Contains(stdout, want) {
			t.Errorf("stdout = %q, want pod/tool-0-worker-… %s", stdout, want)
		}
	}
}

func TestForkOutsideAPodShowsEnvSnippet(t *testing.T) {
	t.Setenv(fork.EnvPodName, "")
	t.Setenv(fork.EnvPodNamespace, "")
	_, _, err := run(t, "--path", "worker")
	if err == nil || !strings.Contains(err.Error(), fork.EnvSnippet) {
		t.Errorf("error = %v, want the env snippet", err)
	}
}

func TestForkRejectsBadFlagsAsUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--path is required"},
		{[]string{"--path", "w", "-o", "yaml"}, `--output "yaml"`},
		{[]string{"--path", "w", "--delete"}, "--delete needs --wait"},
		{[]string{"--path", "w", "--env", "NOVALUE"}, `--env "NOVALUE": use KEY=VALUE`},
		{[]string{"--path", "w", "--timeout", "-1s"}, "--timeout -1s is negative"},
	}
	for _, tt := range tests {
		_, _, err := run(t, tt.args...)
		if clierr.Code(err) != clierr.CodeUsage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("podkit fork %v: err = %v (code %d), want usage error containing %q", tt.args, err, clierr.Code(err), tt.want)
		}
	}
}
