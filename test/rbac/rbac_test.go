package rbac

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/k8sbin"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/testenv/fwtest"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.APIServer(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1.AddToScheme)
		o.APIServerArgs = map[string]string{"enable-admission-plugins": "OwnerReferencesPermissionEnforcement"}
	}))
}

const (
	controllerNamespace = "podkit-system"
	controllerSA        = "system:serviceaccount:podkit-system:podkit-framework-controller"
)

// manifests reads the objects of a YAML file under config/.
func manifests(t *testing.T, rel string) []*unstructured.Unstructured {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	out, err := testenv.DecodeManifests(b)
	if err != nil {
		t.Fatalf("decode %s: %v", rel, err)
	}
	return out
}

// apply creates the objects of files (namespaced ones in ns unless they name their own) and
// deletes them when the test ends, so that no test sees another's grants.
func apply(t *testing.T, ns string, files ...string) {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, f := range files {
		objs = append(objs, manifests(t, f)...)
	}
	create(t, ns, objs)
}

func create(t *testing.T, ns string, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	for _, u := range objs {
		if u.GetNamespace() == "" && !clusterScoped[u.GetKind()] {
			u.SetNamespace(ns)
		}
		if err := env.Client.Create(ctx, u); err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), u) })
	}
}

var clusterScoped = map[string]bool{
	"ClusterRole": true, "ClusterRoleBinding": true, "Namespace": true, "CustomResourceDefinition": true,
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// allowed asks the API server whether user may do verb on resource (group/resource[/sub]) in ns.
func allowed(t *testing.T, user, verb, group, resource, sub, ns string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   user,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + strings.Split(user, ":")[2], "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: sub,
		},
	}}
	got, err := env.Clientset.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got.Status.Allowed
}

type access struct {
	verb, group, resource, sub, ns string
	want                           bool
}

// checkAccess waits until the authorizer agrees on every row (RBAC objects take a moment to be
// seen), then reports each row that disagrees.
func checkAccess(t *testing.T, user string, rows []access) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var wrong []string
		for _, r := range rows {
			if got := allowed(t, user, r.verb, r.group, r.resource, r.sub, r.ns); got != r.want {
				what := r.resource
				if r.sub != "" {
					what += "/" + r.sub
				}
				wrong = append(wrong, r.verb+" "+what+" in "+r.ns+map[bool]string{true: ": denied, want allowed", false: ": allowed, want denied"}[r.want])
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s:\n  %s", user, strings.Join(wrong, "\n  "))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func frameworkFor(ns, name string) *v1.Framework {
	return &v1.Framework{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.FrameworkSpec{
			ExecutionType: v1.ExecutionStart,
			TaskRoles: []v1.TaskRoleSpec{{
				Name: "worker", TaskNumber: 1,
				Task: v1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
				}}},
			}},
		},
	}
}

// The controller's ClusterRole, run as its ServiceAccount, creates the pods and the ConfigMap of
// a Framework on a server that enforces OwnerReferencesPermissionEnforcement: their controller
// reference blocks the owner's deletion, which needs update on frameworks/finalizers.
func TestFrameworkControllerRoleWorksUnderOwnerReferencesPermissionEnforcement(t *testing.T) {
	ensureNamespace(t, controllerNamespace)
	apply(t, controllerNamespace, "config/rbac/framework_service_account.yaml", "config/rbac/framework_role.yaml")
	ns := env.Namespace(t)
	checkAccess(t, controllerSA, []access{
		{"update", "podkit.dev", "frameworks", "finalizers", ns, true},
		{"create", "", "pods", "", ns, true},
		{"list", "", "secrets", "", ns, false},
		{"update", "podkit.dev", "frameworks", "", ns, false},
		{"create", "", "pods", "exec", ns, false},
		{"create", "rbac.authorization.k8s.io", "rolebindings", "", ns, false},
		// podkit controller --kueue (pkg/kueue): Workloads and their
		// status, and the cluster's ResourceFlavors and priority classes.
		{"create", "kueue.x-k8s.io", "workloads", "", ns, true},
		{"update", "kueue.x-k8s.io", "workloads", "status", ns, true},
		{"list", "kueue.x-k8s.io", "resourceflavors", "", "", true},
		{"get", "kueue.x-k8s.io", "workloadpriorityclasses", "", "", true},
		{"create", "kueue.x-k8s.io", "clusterqueues", "", "", false},
	})
	fwtest.Start(t, env, fwtest.Options{Namespace: ns, Impersonate: controllerSA})
	fw := frameworkFor(ns, "owned")
	if err := env.Client.Create(context.Background(), fw); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	testenv.WaitFor(t, time.Minute, "the controller, as its ServiceAccount, to create the task pod", func(ctx context.Context) (bool, error) {
		pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		pod = &pods.Items[0]
		return true, nil
	})
	refs := pod.OwnerReferences
	if len(refs) != 1 || refs[0].UID != fw.UID || !ptr.Deref(refs[0].BlockOwnerDeletion, false) {
		t.Errorf("pod owner references %+v, want the Framework with blockOwnerDeletion", refs)
	}
}

// Without frameworks/finalizers the same identity cannot create such a pod: admission really
// enforces it here, so the test above is not passing by accident. The rest of the role still
// works (the same pod without blockOwnerDeletion is accepted).
func TestWithoutFinalizersUpdateBlockOwnerDeletionIsRefused(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	var role rbacv1.ClusterRole
	for _, u := range manifests(t, "config/rbac/framework_role.yaml") {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
			t.Fatal(err)
		}
	}
	var rules []rbacv1.PolicyRule
	for _, r := range role.Rules {
		if len(r.Resources) == 1 && r.Resources[0] == "frameworks/finalizers" {
			continue
		}
		rules = append(rules, r)
	}
	if len(rules) != len(role.Rules)-1 {
		t.Fatalf("config/rbac/framework_role.yaml has no separate frameworks/finalizers rule: %+v", role.Rules)
	}
	sa := "no-finalizers"
	bindRules(t, ns, sa, rules)
	fw := frameworkFor(ns, "owner")
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + ns + ":" + sa
	checkAccess(t, user, []access{{"create", "", "pods", "", ns, true}, {"update", "podkit.dev", "frameworks", "finalizers", ns, false}})
	cs := impersonated(t, user)
	pod := func(name string, block bool) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1.GroupVersion.String(), Kind: "Framework", Name: fw.Name, UID: fw.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(block),
			}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
	}
	_, err := cs.CoreV1().Pods(ns).Create(ctx, pod("blocking", true), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "blockOwnerDeletion") {
		t.Errorf("create a pod blocking its Framework's deletion without frameworks/finalizers: %v, want Forbidden naming blockOwnerDeletion", err)
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod("plain", false), metav1.CreateOptions{}); err != nil {
		t.Errorf("create the same pod without blockOwnerDeletion: %v", err)
	}
}

// The barrier's Role reads Frameworks in its namespace and nothing else.
func TestBarrierRoleReadsFrameworksOnly(t *testing.T) {
	ns, other := env.Namespace(t), env.Namespace(t)
	apply(t, ns, "config/rbac/barrier_role.yaml")
	sa := "task"
	bind(t, ns, sa, "Role", "podkit-barrier")
	checkAccess(t, "system:serviceaccount:"+ns+":"+sa, []access{
		{"get", "podkit.dev", "frameworks", "", ns, true},
		{"list", "podkit.dev", "frameworks", "", ns, true},
		{"watch", "podkit.dev", "frameworks", "", ns, true},
		{"get", "podkit.dev", "frameworks", "", other, false},
		{"update", "podkit.dev", "frameworks", "", ns, false},
		{"patch", "podkit.dev", "frameworks", "status", ns, false},
		{"list", "", "pods", "", ns, false},
		{"get", "", "secrets", "", ns, false},
		{"get", "", "configmaps", "", ns, false},
	})
}

// fork_role_binding.yaml grants the fork Role to its own ServiceAccount, podkit-fork: that one
// may fork in its namespace; the namespace's default ServiceAccount may not, and podkit-fork may
// do nothing beyond pods and their logs, nor anything in another namespace.
func TestForkRoleGoesToItsOwnServiceAccountOnly(t *testing.T) {
	ns, other := env.Namespace(t), env.Namespace(t)
	apply(t, ns, "config/rbac/fork_role.yaml", "config/rbac/fork_role_binding.yaml")
	if _, err := env.Clientset.CoreV1().ServiceAccounts(ns).Get(context.Background(), "podkit-fork", metav1.GetOptions{}); err != nil {
		t.Errorf("fork_role_binding.yaml's ServiceAccount: %v", err)
	}
	fork := "system:serviceaccount:" + ns + ":podkit-fork"
	checkAccess(t, fork, []access{
		{"get", "", "pods", "", ns, true},
		{"create", "", "pods", "", ns, true},
		{"watch", "", "pods", "", ns, true},
		{"delete", "", "pods", "", ns, true},
		{"get", "", "pods", "log", ns, true},
		{"create", "", "pods", "", other, false},
		{"update", "", "pods", "", ns, false},
		{"create", "", "pods", "exec", ns, false},
		{"get", "", "secrets", "", ns, false},
		{"create", "apps", "deployments", "", ns, false},
		{"create", "", "serviceaccounts", "token", ns, false},
	})
	checkAccess(t, "system:serviceaccount:"+ns+":default", []access{
		{"create", "", "pods", "", ns, false},
		{"get", "", "pods", "", ns, false},
	})
}

func bind(t *testing.T, ns, sa, kind, role string) {
	t.Helper()
	ctx := context.Background()
	if _, err := env.Clientset.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa + "-" + role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}},
	}
	if _, err := env.Clientset.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// bindRules gives sa a Role of its own with rules.
func bindRules(t *testing.T, ns, sa string, rules []rbacv1.PolicyRule) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}, Rules: rules}
	if _, err := env.Clientset.RbacV1().Roles(ns).Create(context.Background(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind(t, ns, sa, "Role", sa)
}

func impersonated(t *testing.T, user string) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// config/watch-namespace: the controller gets a Role in the one namespace it watches and no
// cluster-wide access to any namespace's objects, and runs a Framework there as its
// ServiceAccount. Its Role repeats the generated ClusterRole's rules (minus Leases): they must
// not drift apart.
func TestWatchNamespaceOverlayGrantsOneNamespaceOnly(t *testing.T) {
	kubectl, err := k8sbin.Path(k8sbin.Kubectl)
	if err != nil {
		t.Fatal(err)
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", filepath.Join(root, "config", "watch-namespace")).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/watch-namespace: %v", err)
	}
	var objs []*unstructured.Unstructured
	var role rbacv1.Role
	var deploymentArgs string
	rendered, err := testenv.DecodeManifests(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range rendered {
		switch {
		case u.GetKind() == "ClusterRoleBinding":
			// Only the metrics endpoint's TokenReview/SubjectAccessReview role may stay
			// cluster-wide for the controller: those APIs exist only there.
			var b rbacv1.ClusterRoleBinding
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
				t.Fatal(err)
			}
			for _, s := range b.Subjects {
				if s.Name == "podkit-framework-controller" && b.RoleRef.Name != "podkit-metrics-auth" {
					t.Errorf("the overlay binds the controller cluster-wide to %s %s", b.RoleRef.Kind, b.RoleRef.Name)
				}
			}
		case u.GetKind() == "Role" && u.GetName() == "podkit-framework-controller":
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
				t.Fatal(err)
			}
		case u.GetKind() == "Deployment":
			args, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
			deploymentArgs = fmt.Sprint(args)
		case u.GetKind() == "Namespace" || u.GetKind() == "CustomResourceDefinition":
			continue // the test's API server has both already
		}
		objs = append(objs, u)
	}
	watched := role.Namespace
	if watched == "" {
		t.Fatal("the overlay has no Role podkit-framework-controller")
	}
	if !strings.Contains(deploymentArgs, "--watch-namespace="+watched+" ") && !strings.Contains(deploymentArgs, "--watch-namespace="+watched+"]") {
		t.Errorf("the Deployment's containers %s lack --watch-namespace=%s", deploymentArgs, watched)
	}

	var generated rbacv1.ClusterRole
	for _, u := range manifests(t, "config/rbac/framework_role.yaml") {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &generated); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for _, r := range generated.Rules {
		if slices.Contains(r.APIGroups, "coordination.k8s.io") {
			continue
		}
		if slices.Contains(r.Resources, "resourceflavors") {
			continue // cluster-scoped: a Role cannot grant it (the file says so)
		}
		want = append(want, ruleString(r))
	}
	var got []string
	for _, r := range role.Rules {
		got = append(got, ruleString(r))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("config/watch-namespace/role.yaml has drifted from config/rbac/framework_role.yaml:\n got  %q\n want %q", got, want)
	}

	ensureNamespace(t, controllerNamespace)
	ensureNamespace(t, watched)
	other := env.Namespace(t)
	var keep []*unstructured.Unstructured
	for _, u := range objs {
		if _, err := env.Clientset.Discovery().ServerResourcesForGroupVersion(u.GetAPIVersion()); err == nil {
			keep = append(keep, u)
		}
	}
	create(t, controllerNamespace, keep)
	checkAccess(t, controllerSA, []access{
		{"create", "", "pods", "", watched, true},
		{"update", "podkit.dev", "frameworks", "finalizers", watched, true},
		{"patch", "podkit.dev", "frameworks", "status", watched, true},
		{"create", "coordination.k8s.io", "leases", "", controllerNamespace, true},
		{"create", "", "pods", "", other, false},
		{"list", "podkit.dev", "frameworks", "", "", false},
		{"list", "", "pods", "", "", false},
		{"create", "coordination.k8s.io", "leases", "", watched, false},
		{"list", "", "secrets", "", watched, false},
	})
	fwtest.Start(t, env, fwtest.Options{Namespace: watched, Impersonate: controllerSA})
	fw := frameworkFor(watched, "scoped")
	if err := env.Client.Create(context.Background(), fw); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), fw) })
	testenv.WaitFor(t, time.Minute, "the namespace-scoped controller to create the task pod", func(ctx context.Context) (bool, error) {
		pods, err := env.Clientset.CoreV1().Pods(watched).List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) > 0, err
	})
}

// ruleString normalizes a rule for comparison (order of groups, resources and verbs aside).
func ruleString(r rbacv1.PolicyRule) string {
	parts := [][]string{slices.Sorted(slices.Values(r.APIGroups)), slices.Sorted(slices.Values(r.Resources)), slices.Sorted(slices.Values(r.Verbs))}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(strings.Join(p, ",") + ";")
	}
	return b.String()
}
