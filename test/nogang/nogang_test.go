package nogang

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/testenv/fwtest"
	"github.com/podkit-dev/podkit/pkg/framework"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Cluster(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1.AddToScheme)
		o.NoGang = true
	}))
}

// TestFrameworkRunsBarrierOnlyWithoutTheGangAPI: discovery has no
// scheduling.k8s.io/v1beta1 (upstream: the group version is beta and off by
// default in 1.37, k8s.io/kubernetes pkg/features/kube_features.go
// GenericWorkload), so the controller creates no PodGroup, its pods name no
// schedulingGroup (the apiserver would drop the field anyway with the gate
// off: k8s.io/api core/v1 PodSpec.SchedulingGroup is +featureGate=
// GenericWorkload), the Framework completes, and GangScheduled says
// GangAPIUnavailable.
func TestFrameworkRunsBarrierOnlyWithoutTheGangAPI(t *testing.T) {
	ctx := context.Background()
	ok, err := framework.ServesGangAPI(env.Config)
	if err != nil || ok {
		t.Fatalf("ServesGangAPI = %v, %v; want false on a cluster started with NoGang", ok, err)
	}
	ns := env.Namespace(t)
	fwtest.Start(t, env, fwtest.Options{Namespace: ns})
	fw := &v1.Framework{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"},
		Spec: v1.FrameworkSpec{TaskRoles: []v1.TaskRoleSpec{{
			Name: "worker", TaskNumber: 3,
			Task: v1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "main", Image: "busybox"}},
			}}},
		}}},
	}
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	var pods corev1.PodList
	testenv.WaitFor(t, 2*time.Minute, "3 pods running", func(ctx context.Context) (bool, error) {
		if err := env.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 3, nil
	})
	for _, p := range pods.Items {
		if p.Spec.SchedulingGroup != nil {
			t.Errorf("pod %s has schedulingGroup %+v on a cluster without the gang API", p.Name, p.Spec.SchedulingGroup)
		}
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"0"}}}`, testenv.AnnotationExitCode)
		if err := env.Client.Patch(ctx, &p, client.RawPatch(types.MergePatchType, patch)); err != nil {
			t.Fatalf("annotate pod %s: %v", p.Name, err)
		}
	}
	got := &v1.Framework{}
	testenv.WaitFor(t, 2*time.Minute, "framework Succeeded", func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(fw), got); err != nil {
			return false, err
		}
		return got.Status != nil && meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionSucceeded), nil
	})
	c := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionGangScheduled)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonGangAPIUnavailable {
		t.Errorf("GangScheduled = %+v, want False with reason %s", c, v1.ReasonGangAPIUnavailable)
	}
}
