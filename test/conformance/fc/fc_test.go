package fc_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/testenv/fwtest"
	"github.com/podkit-dev/podkit/pkg/framework"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Cluster(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1.AddToScheme)
	}))
}

// conflictDelay replaces FC's 60-900 s Transient Conflict back-off so that
// the scenario finishes in seconds; the range itself is a unit test.
const conflictDelay = 2

// startController runs the Framework controller on namespace ns.
func startController(t *testing.T, ns string) {
	t.Helper()
	fwtest.Start(t, env, fwtest.Options{Namespace: ns, QPS: 100, Reconciler: framework.Options{Config: &framework.Config{
		FrameworkMinRetryDelaySecForTransientConflictFailed: ptr.To[int64](conflictDelay),
		FrameworkMaxRetryDelaySecForTransientConflictFailed: ptr.To[int64](conflictDelay),
	}}})
}

// create parses a Framework manifest (FC's shape, podkit's apiVersion) and
// creates it in ns.
func create(t *testing.T, ns, manifest string) *v1.Framework {
	t.Helper()
	fw := &v1.Framework{}
	if err := yaml.UnmarshalStrict([]byte(manifest), fw); err != nil {
		t.Fatalf("parse manifest: %v", err)
	}
	fw.Namespace = ns
	if err := env.Client.Create(context.Background(), fw); err != nil {
		t.Fatalf("create %s: %v", fw.Name, err)
	}
	return fw
}

// waitFor polls the Framework until cond holds; every state seen is
// recorded so a test can check transient states too.
func waitFor(t *testing.T, fw *v1.Framework, what string, cond func(*v1.Framework) bool, seen ...func(*v1.Framework)) *v1.Framework {
	t.Helper()
	var last *v1.Framework
	t.Cleanup(func() {
		if !t.Failed() || last == nil || last.Status == nil {
			return
		}
		st := last.Status
		if n := len(allTasks(last)); n > 10 {
			counts := map[string]int{}
			for _, ts := range allTasks(last) {
				key := fmt.Sprintf("%s deletionPending=%t", ts.State, ts.DeletionPending)
				if cs := ts.AttemptStatus.CompletionStatus; cs != nil {
					key += fmt.Sprintf(" code=%d %.200s", cs.Code, cs.Diagnostics)
				}
				counts[key]++
			}
			t.Logf("last status of %s: %s attempt %d ready %s, %d tasks: %v", last.Name, st.State, st.AttemptStatus.ID, st.ReadyTasks, n, counts)
			return
		}
		out, _ := yaml.Marshal(st)
		t.Logf("last status of %s:\n%s", last.Name, out)
	})
	testenv.WaitFor(t, 60*time.Second, fw.Name+": "+what, func(ctx context.Context) (bool, error) {
		got := &v1.Framework{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(fw), got); err != nil {
			return false, err
		}
		last = got
		if got.Status == nil {
			return false, nil
		}
		for _, f := range seen {
			f(got)
		}
		return cond(got), nil
	})
	return last
}

func allTasks(fw *v1.Framework) []v1.TaskStatus {
	var out []v1.TaskStatus
	for _, rs := range fw.Status.AttemptStatus.TaskRoleStatuses {
		out = append(out, rs.TaskStatuses...)
	}
	return out
}

func completed(fw *v1.Framework) bool { return fw.Status.State == v1.FrameworkCompleted }

func stop(t *testing.T, fw *v1.Framework) {
	t.Helper()
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"executionType":"Stop"}}`))
	if err := env.Client.Patch(context.Background(), fw.DeepCopy(), patch); err != nil {
		t.Fatalf("stop %s: %v", fw.Name, err)
	}
}

func attrs(ct v1.CompletionType) string {
	var s []string
	for _, a := range ct.Attributes {
		s = append(s, string(a))
	}
	return "[" + strings.Join(s, ",") + "]"
}

// want is what FC reaches for a scenario's last framework attempt.
type want struct {
	code       v1.CompletionCode
	phrase     string
	attributes string
	// fwRetried and fwAccountable are the framework's retry counts.
	fwRetried, fwAccountable int32
}

func check(t *testing.T, fw *v1.Framework, w want) {
	t.Helper()
	cs := fw.Status.AttemptStatus.CompletionStatus
	if cs == nil {
		t.Fatalf("%s: no completion status", fw.Name)
	}
	rs := fw.Status.RetryPolicyStatus
	if cs.Code != w.code || string(cs.Phrase) != w.phrase || attrs(cs.Type) != w.attributes ||
		rs.TotalRetriedCount != w.fwRetried || rs.AccountableRetriedCount != w.fwAccountable {
		t.Errorf("%s: code %d %s %s, framework retried %d (accountable %d); FC: code %d %s %s, retried %d (accountable %d)",
			fw.Name, cs.Code, cs.Phrase, attrs(cs.Type), rs.TotalRetriedCount, rs.AccountableRetriedCount,
			w.code, w.phrase, w.attributes, w.fwRetried, w.fwAccountable)
	}
}

func task(fw *v1.Framework, role string, index int) *v1.TaskStatus {
	rs := fw.Status.AttemptStatus.TaskRoleStatus(role)
	if rs == nil || index >= len(rs.TaskStatuses) {
		return nil
	}
	return &rs.TaskStatuses[index]
}

// role renders one task role of a manifest.
func role(name string, n int, fancy bool, maxRetry int, minFailed, minSucceeded int, exit string, extra string) string {
	ann := ""
	if exit != "" {
		ann = fmt.Sprintf("\n        metadata:\n          annotations: {podkit.dev/test-exit-code: %q}", exit)
	}
	return fmt.Sprintf(`
  - name: %s
    taskNumber: %d
    frameworkAttemptCompletionPolicy: {minFailedTaskCount: %d, minSucceededTaskCount: %d}
    task:
      retryPolicy: {fancyRetryPolicy: %t, maxRetryCount: %d}
      pod:%s
        spec:
          restartPolicy: Never%s
          containers:
          - name: main
            image: ubuntu:trusty
            command: [sh, -c, printenv]`, name, n, minFailed, minSucceeded, fancy, maxRetry, ann, extra)
}

func manifest(name string, fancy bool, maxRetry int, roles ...string) string {
	return fmt.Sprintf(`apiVersion: podkit.dev/v1alpha1
kind: Framework
metadata:
  name: %s
spec:
  executionType: Start
  retryPolicy: {fancyRetryPolicy: %t, maxRetryCount: %d}
  taskRoles:%s
`, name, fancy, maxRetry, strings.Join(roles, ""))
}
