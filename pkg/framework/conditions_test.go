package framework_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/k8sbin"
)

// kubectl runs the pinned kubectl against the test apiserver.
func kubectl(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	bin, err := k8sbin.Path("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

// wantConditions checks the status of each named condition and that every
// condition carries the Framework's generation.
func wantConditions(t *testing.T, fw *v1.Framework, want map[string]metav1.ConditionStatus) {
	t.Helper()
	if fw.Status.ObservedGeneration != fw.Generation {
		t.Errorf("status.observedGeneration = %d, want %d", fw.Status.ObservedGeneration, fw.Generation)
	}
	for typ, status := range want {
		c := meta.FindStatusCondition(fw.Status.Conditions, typ)
		switch {
		case c == nil:
			t.Errorf("condition %s missing; conditions: %+v", typ, fw.Status.Conditions)
		case c.Status != status:
			t.Errorf("condition %s = %s (%s: %s), want %s", typ, c.Status, c.Reason, c.Message, status)
		case c.ObservedGeneration != fw.Generation:
			t.Errorf("condition %s observedGeneration = %d, want %d", typ, c.ObservedGeneration, fw.Generation)
		}
	}
}

func TestConditionsFollowTheStateAndKubectlWaitsForSucceeded(t *testing.T) {
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fw := newFramework(ns, "cond", taskRole("worker", 2, ""))
	fw.Spec.ExecutionType = v1.ExecutionCreate
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	startController(t, ns, 50)

	// Held by executionType Create: not in progress for kstatus.
	got := waitState(t, fw, "conditions written while held", time.Minute, func(fw *v1.Framework) bool {
		return len(fw.Status.Conditions) > 0
	})
	wantConditions(t, got, map[string]metav1.ConditionStatus{
		v1.ConditionRunning: metav1.ConditionFalse, v1.ConditionSucceeded: metav1.ConditionFalse,
		v1.ConditionFailed: metav1.ConditionFalse, v1.ConditionSuspended: metav1.ConditionFalse,
		v1.ConditionReconciling: metav1.ConditionFalse, v1.ConditionStalled: metav1.ConditionFalse,
	})

	// Start: kubectl waits for Running, which comes with the state.
	if err := env.Client.Patch(ctx, fw.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"executionType":"Start"}}`))); err != nil {
		t.Fatalf("start framework: %v", err)
	}
	if out, err := kubectl(t, ctx, "-n", ns, "wait", "--for=condition=Running", "--timeout=2m", "fw/cond"); err != nil {
		t.Fatalf("kubectl wait --for=condition=Running: %v\n%s", err, out)
	}
	got = get(t, ctx, fw)
	if got.Status.State != v1.FrameworkAttemptRunning {
		t.Errorf("Running=True with state %s, want AttemptRunning", got.Status.State)
	}
	wantConditions(t, got, map[string]metav1.ConditionStatus{
		v1.ConditionRunning: metav1.ConditionTrue, v1.ConditionSucceeded: metav1.ConditionFalse,
		v1.ConditionReconciling: metav1.ConditionFalse, v1.ConditionStalled: metav1.ConditionFalse,
	})

	// Stop completes it as failed (StopFrameworkRequested): Failed and
	// Stalled, never Succeeded.
	stopFramework(t, ctx, fw)
	if out, err := kubectl(t, ctx, "-n", ns, "wait", "--for=condition=Failed", "--timeout=2m", "fw/cond"); err != nil {
		t.Fatalf("kubectl wait --for=condition=Failed: %v\n%s", err, out)
	}
	got = get(t, ctx, fw)
	if got.Status.State != v1.FrameworkCompleted {
		t.Errorf("Failed=True with state %s, want Completed", got.Status.State)
	}
	wantConditions(t, got, map[string]metav1.ConditionStatus{
		v1.ConditionRunning: metav1.ConditionFalse, v1.ConditionSucceeded: metav1.ConditionFalse,
		v1.ConditionFailed: metav1.ConditionTrue, v1.ConditionStalled: metav1.ConditionTrue,
		v1.ConditionReconciling: metav1.ConditionFalse,
	})
	if c := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionFailed); c.Reason != "StopFrameworkRequested" {
		t.Errorf("Failed reason = %q, want StopFrameworkRequested", c.Reason)
	}

	// A spec change on a completed Framework moves observedGeneration.
	if err := env.Client.Patch(ctx, fw.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"description":"edited"}}`))); err != nil {
		t.Fatalf("edit description: %v", err)
	}
	got = waitState(t, fw, "observedGeneration follows the edit", time.Minute, func(fw *v1.Framework) bool {
		return fw.Status.ObservedGeneration == fw.Generation && fw.Generation > 1
	})
	wantConditions(t, got, map[string]metav1.ConditionStatus{v1.ConditionFailed: metav1.ConditionTrue})
}

func TestKubectlWaitsForSucceededOfACompletedFramework(t *testing.T) {
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	startController(t, ns, 50)
	fw := newFramework(ns, "ok", taskRole("master", 1, "0"), taskRole("worker", 2, "0"))
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	out, err := kubectl(t, ctx, "-n", ns, "wait", "--for=condition=Succeeded", "--timeout=2m", "fw/ok")
	if err != nil {
		t.Fatalf("kubectl wait --for=condition=Succeeded: %v\n%s", err, out)
	}
	if !strings.Contains(out, "condition met") {
		t.Errorf("kubectl wait said %q, want condition met", out)
	}
	got := get(t, ctx, fw)
	if got.Status.State != v1.FrameworkCompleted || !got.Status.AttemptStatus.CompletionStatus.Succeeded() {
		t.Fatalf("Succeeded=True with state %s completion %+v", got.Status.State, got.Status.AttemptStatus.CompletionStatus)
	}
	wantConditions(t, got, map[string]metav1.ConditionStatus{
		v1.ConditionSucceeded: metav1.ConditionTrue, v1.ConditionFailed: metav1.ConditionFalse,
		v1.ConditionRunning: metav1.ConditionFalse, v1.ConditionReconciling: metav1.ConditionFalse,
		v1.ConditionStalled: metav1.ConditionFalse, v1.ConditionSuspended: metav1.ConditionFalse,
	})
}
