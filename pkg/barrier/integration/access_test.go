package integration

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/pkg/barrier"
)

// createFrameworkAs creates a one-role Framework of n tasks whose pods run
// as service account sa, and the access objects of its barriers.
func createFrameworkAs(t *testing.T, ns, name, sa string, n int32) *v1alpha1.Framework {
	t.Helper()
	ctx := context.Background()
	f := &v1alpha1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	f.Spec.TaskRoles = []v1alpha1.TaskRoleSpec{{
		Name: "worker", TaskNumber: n,
		Task: v1alpha1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			ServiceAccountName: sa, RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
		}}},
	}}
	if err := env.Client.Create(ctx, f); err != nil {
		t.Fatalf("create framework %s/%s: %v", ns, name, err)
	}
	role, binding := barrier.AccessObjects(f)
	for _, obj := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
		}
	}
	return f
}

// as returns a rest.Config and a client that impersonate service account
// sa of ns, as a task pod's token would authenticate.
func as(t *testing.T, ns, sa string) (*rest.Config, client.Client) {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	cl, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatalf("client as %s: %v", sa, err)
	}
	return cfg, cl
}

// Task A's service account, bound by AccessObjects, runs A's barrier to
// release (list and watch by field selector, get by name) and cannot read
// Framework B in any way; B's account cannot read A.
func TestAccessObjectsLetABarrierReadOnlyItsOwnFramework(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	a := createFrameworkAs(t, ns, "a", "sa-a", 2)
	createFrameworkAs(t, ns, "b", "sa-b", 1)
	cfgA, clA := as(t, ns, "sa-a")

	done, progress := startWait(t, ctx, config(ns, "a"), barrier.WithRESTConfig(cfgA))
	if p := awaitProgress(t, progress, generous); p.Ready != 0 || p.Total != 2 {
		t.Fatalf("first progress as sa-a = %v, want 0/2", p)
	}
	setPodIPs(t, client.ObjectKeyFromObject(a), map[string][]string{"worker": {"10.0.0.1", "10.0.0.2"}})
	if r := await(t, done, generous); r.err != nil || r.f == nil || r.f.Name != "a" {
		t.Fatalf("Wait as sa-a on its own framework: %v, %v; want released", r.f, r.err)
	}

	forbidden := []struct {
		what string
		do   func() error
	}{
		{"get framework b", func() error {
			return clA.Get(ctx, types.NamespacedName{Namespace: ns, Name: "b"}, &v1alpha1.Framework{})
		}},
		{"list frameworks", func() error { return clA.List(ctx, &v1alpha1.FrameworkList{}, client.InNamespace(ns)) }},
		{"list framework b by field selector", func() error {
			return clA.List(ctx, &v1alpha1.FrameworkList{}, client.InNamespace(ns), client.MatchingFields{"metadata.name": "b"})
		}},
		{"update framework a", func() error {
			f := &v1alpha1.Framework{}
			if err := clA.Get(ctx, client.ObjectKeyFromObject(a), f); err != nil {
				return err
			}
			f.Spec.Description = "changed by its task"
			return clA.Update(ctx, f)
		}},
	}
	for _, tt := range forbidden {
		if err := tt.do(); !apierrors.IsForbidden(err) {
			t.Errorf("as sa-a, %s: err = %v, want Forbidden", tt.what, err)
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, generous)
	defer cancel()
	if _, err := barrier.Wait(waitCtx, config(ns, "b"), barrier.WithRESTConfig(cfgA)); !apierrors.IsForbidden(err) {
		t.Errorf("Wait as sa-a on framework b: err = %v, want Forbidden", err)
	}

	_, clB := as(t, ns, "sa-b")
	if err := clB.Get(ctx, client.ObjectKeyFromObject(a), &v1alpha1.Framework{}); !apierrors.IsForbidden(err) {
		t.Errorf("as sa-b, get framework a: err = %v, want Forbidden", err)
	}
	if err := clB.Get(ctx, types.NamespacedName{Namespace: ns, Name: "b"}, &v1alpha1.Framework{}); err != nil {
		t.Errorf("as sa-b, get its own framework b: %v", err)
	}
}

func TestAccessObjectsBindEveryServiceAccountOfTheTaskRolesOnce(t *testing.T) {
	f := &v1alpha1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fw", UID: "uid-1"}}
	for _, sa := range []string{"trainer", "", "trainer", "ps"} {
		f.Spec.TaskRoles = append(f.Spec.TaskRoles, v1alpha1.TaskRoleSpec{Task: v1alpha1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ServiceAccountName: sa}}}})
	}
	role, binding := barrier.AccessObjects(f)
	var got []string
	for _, s := range binding.Subjects {
		got = append(got, s.Namespace+"/"+s.Name)
	}
	if fmt.Sprint(got) != "[ns/trainer ns/default ns/ps]" {
		t.Errorf("subjects = %v, want [ns/trainer ns/default ns/ps]", got)
	}
	if r := role.Rules; len(r) != 1 || fmt.Sprint(r[0].ResourceNames) != "[fw]" || fmt.Sprint(r[0].Verbs) != "[get list watch]" {
		t.Errorf("rules = %+v, want get/list/watch on frameworks named fw only", r)
	}
	for _, o := range []metav1.Object{role, binding} {
		if refs := o.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != "uid-1" || refs[0].Controller == nil || !*refs[0].Controller {
			t.Errorf("%s owner references = %+v, want the Framework as controller", o.GetName(), refs)
		}
	}
	if binding.RoleRef.Name != role.Name || role.Name != barrier.AccessName("fw") {
		t.Errorf("binding refers to %q, role is %q, want both %q", binding.RoleRef.Name, role.Name, barrier.AccessName("fw"))
	}
}

// The metadata-only path (a Framework whose controller publishes the
// release state: LIST, WATCH of metadata, GET) works under the same Role.
func TestAccessObjectsSufficeForThePublishedMetadataWatch(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	createFrameworkAs(t, ns, "pub", "sa-pub", 2)
	nn := types.NamespacedName{Namespace: ns, Name: "pub"}
	setPodIPs(t, nn, map[string][]string{"worker": {"10.0.0.1"}})
	if got := publish(t, nn); got != "0/waiting" {
		t.Fatalf("published %q, want 0/waiting", got)
	}
	cfg, _ := as(t, ns, "sa-pub")
	var reqs requestLog
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) { return reqs.RoundTrip(rt, r) })
	})
	done, progress := startWait(t, ctx, config(ns, "pub"), metadataWatch, barrier.WithRESTConfig(cfg))
	if p := awaitProgress(t, progress, generous); p.Ready != 1 || p.Total != 2 {
		t.Fatalf("first progress = %v, want 1/2", p)
	}
	setPodIPs(t, nn, map[string][]string{"worker": {"10.0.0.1", "10.0.0.2"}})
	if got := publish(t, nn); got != "0/released" {
		t.Fatalf("published %q, want 0/released", got)
	}
	if r := await(t, done, generous); r.err != nil {
		t.Fatalf("Wait as sa-pub: %v", r.err)
	}
	if got, want := reqs.String(), "LIST WATCH(metadata) GET"; got != want {
		t.Errorf("requests = %q, want %q", got, want)
	}
}
