package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

var host, virtual *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		if host, err = testenv.Start(context.Background(), testenv.Options{}); err != nil {
			fmt.Fprintf(os.Stderr, "start host: %v\n", err)
			return 1
		}
		defer host.Stop()
		if virtual, err = testenv.Start(context.Background(), testenv.Options{}); err != nil {
			fmt.Fprintf(os.Stderr, "start virtual: %v\n", err)
			return 1
		}
		defer virtual.Stop()
		return m.Run()
	}())
}

func TestPDBSyncsDownAndStatusUp(t *testing.T) {
	target, vns := host.Namespace(t), virtual.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, virtual.Kubeconfig, host.Kubeconfig, target) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("syncer: %v", err)
		}
	})

	minAvailable := intstr.FromInt32(1)
	v := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "web"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
	if err := virtual.Client.Create(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	p := &policyv1.PodDisruptionBudget{}
	pNN := types.NamespacedName{Namespace: target, Name: "web-x-" + vns + "-x-example"}
	testenv.WaitFor(t, 30*time.Second, "host PodDisruptionBudget", func(ctx context.Context) (bool, error) {
		return host.Client.Get(ctx, pNN, p) == nil, nil
	})
	if got := p.Spec.Selector.MatchLabels[translator.LabelNamespace]; got != vns {
		t.Fatalf("host selector %v is not scoped to the virtual namespace %s", p.Spec.Selector.MatchLabels, vns)
	}
	p.Status.DisruptionsAllowed, p.Status.ExpectedPods, p.Status.CurrentHealthy, p.Status.DesiredHealthy = 1, 2, 2, 1
	if err := host.Client.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "status flows up", func(ctx context.Context) (bool, error) {
		got := &policyv1.PodDisruptionBudget{}
		return virtual.Client.Get(ctx, types.NamespacedName{Namespace: vns, Name: "web"}, got) == nil && got.Status.ExpectedPods == 2, nil
	})
}
