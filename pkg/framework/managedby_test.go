package framework_test

import (
	"context"
	"testing"
	"time"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/testenv/fwtest"
	"github.com/podkit-dev/podkit/pkg/framework"
)

func TestFrameworkManagedByAnotherControllerIsLeftAlone(t *testing.T) {
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	foreign := newFramework(ns, "foreign", taskRole("worker", 2, ""))
	foreign.Spec.ManagedBy = "example.com/dispatcher"
	if err := env.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	ours := newFramework(ns, "ours", taskRole("worker", 2, ""))
	if err := env.Client.Create(ctx, ours); err != nil {
		t.Fatal(err)
	}
	// Publishing for every size, so that the release annotation left off
	// the foreign Framework below is one this controller does write.
	fwtest.Start(t, env, fwtest.Options{Namespace: ns, QPS: 50, Reconciler: framework.Options{ReleaseMinTasks: -1}})

	// The controller saw both (foreign first); once ours runs and is
	// published, it has had its chance at the foreign one, which must be
	// untouched.
	waitState(t, ours, "our framework running and published", 2*time.Minute, func(fw *v1.Framework) bool {
		return fw.Status.State == v1.FrameworkAttemptRunning && fw.Status.ReadyTasks == "2/2" &&
			fw.Annotations[v1.AnnotationBarrierRelease] == "0/"+v1.BarrierReleased
	})
	got := get(t, ctx, foreign)
	if got.Status != nil {
		t.Errorf("foreign framework got a status: state %s", got.Status.State)
	}
	if pods := podsOf(t, ctx, foreign); len(pods) != 0 {
		t.Errorf("foreign framework has %d pods, want 0", len(pods))
	}
	if a := got.Annotations[v1.AnnotationBarrierRelease]; a != "" {
		t.Errorf("foreign framework got the release annotation %q", a)
	}
	if got.Spec.ManagedBy != "example.com/dispatcher" {
		t.Errorf("managedBy = %q, want example.com/dispatcher", got.Spec.ManagedBy)
	}
}
