package helm

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podkit-dev/podkit/internal/k8sbin"
	"github.com/podkit-dev/podkit/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.APIServer(m, &env)) }

// chart is one rendering of charts/podkit.
type chart struct {
	objs []*unstructured.Unstructured
	yaml []byte
}

func root(t *testing.T) string {
	t.Helper()
	r, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func bin(t *testing.T, name string) string {
	t.Helper()
	p, err := k8sbin.Path(name)
	if err != nil {
		t.Fatalf("%v (make tools builds it)", err)
	}
	return p
}

// helm runs the pinned helm with a HOME of its own, so that no user's
// repositories or plugins take part.
func helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(bin(t, k8sbin.Helm), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_DATA_HOME="+home)
	cmd.Dir = root(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &helmError{err: err, stderr: stderr.String()}
	}
	return out, nil
}

type helmError struct {
	err    error
	stderr string
}

func (e *helmError) Error() string { return e.err.Error() + ": " + e.stderr }

// readChart reads every file of the chart. helm reads them in another
// process, which go test's result cache does not see: opening them here
// makes a change to any of them run the tests again.
func readChart(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(root(t), "charts", "podkit"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		_, err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// render runs helm template on the chart, CRDs included, with --set values.
func render(t *testing.T, ns string, set ...string) chart {
	t.Helper()
	readChart(t)
	args := []string{"template", "podkit", "charts/podkit", "--namespace", ns, "--include-crds"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	objs, err := testenv.DecodeManifests(out)
	if err != nil {
		t.Fatalf("decode helm template output: %v\n%s", err, out)
	}
	return chart{objs: objs, yaml: out}
}

// manifests reads a file under config/.
func manifests(t *testing.T, rel string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := testenv.DecodeManifests(b)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func convert[T any](t *testing.T, u *unstructured.Unstructured, kind, name string) *T {
	t.Helper()
	if u == nil {
		t.Fatalf("no %s %s", kind, name)
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
	return out
}

func (c chart) get(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	return find(c.objs, kind, name)
}

func (c chart) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	return convert[appsv1.Deployment](t, c.get(t, "Deployment", "podkit-controller"), "Deployment", "podkit-controller")
}

// normRules sorts each rule's lists and the rules, so that two role files
// that grant the same compare equal however they are written.
func normRules(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		for _, l := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.NonResourceURLs, r.ResourceNames} {
			slices.Sort(l)
		}
		out = append(out, strings.Join([]string{strings.Join(r.APIGroups, ","), strings.Join(r.Resources, ","), strings.Join(r.Verbs, ","), strings.Join(r.NonResourceURLs, ","), strings.Join(r.ResourceNames, ",")}, " | "))
	}
	slices.Sort(out)
	return out
}

// configControllerRules are the generated ClusterRole's rules without the
// Lease rule, which both config/default and the chart grant in the
// controller's own namespace only.
func configControllerRules(t *testing.T) []string {
	t.Helper()
	role := convert[rbacv1.ClusterRole](t, find(manifests(t, "config/rbac/framework_role.yaml"), "ClusterRole", "podkit-framework-controller"), "ClusterRole", "podkit-framework-controller")
	rules := slices.DeleteFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "leases") })
	return normRules(rules)
}

func TestChartLintsStrictly(t *testing.T) {
	// global and enabled are what a parent chart gives a subchart.
	for _, set := range [][]string{nil, {"watchNamespace=apps", "metrics.secure=false", "replicas=3"}, {"global.imageRegistry=r.example", "enabled=true"}} {
		args := []string{"lint", "--strict", "charts/podkit"}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		if out, err := helm(t, args...); err != nil {
			t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// The chart installs what config/default installs: the same CRD, controller
// rules, user roles, metrics roles, and a Deployment whose pod runs the same
// way (security context, probes, resources, ports).
func TestChartMatchesConfigDefault(t *testing.T) {
	c := render(t, "podkit-system")

	if c.get(t, "CustomResourceDefinition", "frameworks.podkit.dev") == nil {
		t.Error("the chart renders no Framework CRD")
	}
	chartCRD, err := os.ReadFile(filepath.Join(root(t), "charts/podkit/crds/podkit.dev_frameworks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	configCRD, err := os.ReadFile(filepath.Join(root(t), "config/crd/bases/podkit.dev_frameworks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chartCRD, configCRD) {
		t.Error("charts/podkit/crds/podkit.dev_frameworks.yaml differs from config/crd/bases: run make generate")
	}

	role := convert[rbacv1.ClusterRole](t, c.get(t, "ClusterRole", "podkit-framework-controller"), "ClusterRole", "podkit-framework-controller")
	if diff := cmp.Diff(configControllerRules(t), normRules(role.Rules)); diff != "" {
		t.Errorf("the chart's controller rules differ from config/rbac/framework_role.yaml (update podkit.controllerRules in templates/_helpers.tpl) (-config +chart):\n%s", diff)
	}
	for _, f := range []struct{ file, name string }{
		{"config/rbac/framework_user_roles.yaml", "podkit-framework-viewer"},
		{"config/rbac/framework_user_roles.yaml", "podkit-framework-editor"},
		{"config/rbac/metrics_role.yaml", "podkit-metrics-auth"},
		{"config/rbac/metrics_role.yaml", "podkit-metrics-reader"},
	} {
		want := convert[rbacv1.ClusterRole](t, find(manifests(t, f.file), "ClusterRole", f.name), "ClusterRole", f.name)
		got := convert[rbacv1.ClusterRole](t, c.get(t, "ClusterRole", f.name), "ClusterRole", f.name)
		if diff := cmp.Diff(normRules(want.Rules), normRules(got.Rules)); diff != "" {
			t.Errorf("ClusterRole %s differs from %s (-config +chart):\n%s", f.name, f.file, diff)
		}
		for k, v := range want.Labels {
			if got.Labels[k] != v {
				t.Errorf("ClusterRole %s label %s=%q, want %q as in %s", f.name, k, got.Labels[k], v, f.file)
			}
		}
	}
	wantLE := convert[rbacv1.Role](t, find(manifests(t, "config/default/leader_election_role.yaml"), "Role", "podkit-leader-election"), "Role", "podkit-leader-election")
	gotLE := convert[rbacv1.Role](t, c.get(t, "Role", "podkit-leader-election"), "Role", "podkit-leader-election")
	if diff := cmp.Diff(normRules(wantLE.Rules), normRules(gotLE.Rules)); diff != "" {
		t.Errorf("leader-election Role (-config +chart):\n%s", diff)
	}

	wantDep := convert[appsv1.Deployment](t, find(manifests(t, "config/manager/manager.yaml"), "Deployment", "podkit-controller"), "Deployment", "podkit-controller")
	dep := c.deployment(t)
	wp, gp := wantDep.Spec.Template.Spec, dep.Spec.Template.Spec
	if diff := cmp.Diff(wp.SecurityContext, gp.SecurityContext); diff != "" {
		t.Errorf("pod securityContext (-config +chart):\n%s", diff)
	}
	if gp.ServiceAccountName != wp.ServiceAccountName {
		t.Errorf("serviceAccountName %q, want %q", gp.ServiceAccountName, wp.ServiceAccountName)
	}
	wc, gc := wp.Containers[0], gp.Containers[0]
	for what, pair := range map[string][2]any{
		"securityContext": {wc.SecurityContext, gc.SecurityContext},
		"livenessProbe":   {wc.LivenessProbe, gc.LivenessProbe},
		"readinessProbe":  {wc.ReadinessProbe, gc.ReadinessProbe},
		"resources":       {wc.Resources, gc.Resources},
		"ports":           {wc.Ports, gc.Ports},
		"env":             {wc.Env, gc.Env},
	} {
		if diff := cmp.Diff(pair[0], pair[1]); diff != "" {
			t.Errorf("container %s (-config +chart):\n%s", what, diff)
		}
	}
	for _, arg := range wc.Args {
		if !slices.Contains(gc.Args, arg) {
			t.Errorf("chart's args %q lack config's %q", gc.Args, arg)
		}
	}
	if gc.Image != "podkit:dev" {
		t.Errorf("image %q, want podkit:dev (values.yaml)", gc.Image)
	}
	svc := convert[corev1.Service](t, c.get(t, "Service", "podkit-controller-metrics"), "Service", "podkit-controller-metrics")
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8443 {
		t.Errorf("metrics Service ports %+v, want 8443", svc.Spec.Ports)
	}
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("metrics Service selects %s=%s, which the controller's pods lack", k, v)
		}
	}
	for _, o := range c.objs {
		if o.GetNamespace() != "" && o.GetNamespace() != "podkit-system" {
			t.Errorf("%s %s in namespace %s, want the release namespace", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}
}

// Each value changes what it names and nothing else it should not.
func TestChartValuesChangeWhatTheyName(t *testing.T) {
	base := render(t, "ops")
	t.Run("image and replicas", func(t *testing.T) {
		dep := render(t, "ops", "image.repository=registry.example/podkit", "image.tag=v1.2.3", "replicas=3").deployment(t)
		if got := dep.Spec.Template.Spec.Containers[0].Image; got != "registry.example/podkit:v1.2.3" {
			t.Errorf("image %q", got)
		}
		if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
			t.Errorf("replicas %v, want 3", dep.Spec.Replicas)
		}
	})
	t.Run("leader election off", func(t *testing.T) {
		c := render(t, "ops", "leaderElection.enabled=false")
		if c.get(t, "Role", "podkit-leader-election") != nil {
			t.Error("the Lease Role is rendered without leader election")
		}
		if args := c.deployment(t).Spec.Template.Spec.Containers[0].Args; slices.Contains(args, "--leader-elect") {
			t.Errorf("args %q still elect a leader", args)
		}
		if args := base.deployment(t).Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--leader-election-id=podkit-framework-controller.podkit.dev") {
			t.Errorf("default args %q lack the Lease name", args)
		}
	})
	t.Run("watch namespace", func(t *testing.T) {
		c := render(t, "ops", "watchNamespace=apps")
		if c.get(t, "ClusterRole", "podkit-framework-controller") != nil || c.get(t, "ClusterRoleBinding", "podkit-framework-controller") != nil {
			t.Error("the cluster-wide controller role is still rendered with watchNamespace")
		}
		role := convert[rbacv1.Role](t, c.get(t, "Role", "podkit-framework-controller"), "Role", "podkit-framework-controller")
		if role.Namespace != "apps" {
			t.Errorf("controller Role in %q, want apps", role.Namespace)
		}
		if diff := cmp.Diff(configControllerRules(t), normRules(role.Rules)); diff != "" {
			t.Errorf("namespaced rules differ from the generated ClusterRole (-config +chart):\n%s", diff)
		}
		rb := convert[rbacv1.RoleBinding](t, c.get(t, "RoleBinding", "podkit-framework-controller"), "RoleBinding", "podkit-framework-controller")
		if rb.Namespace != "apps" || len(rb.Subjects) != 1 || rb.Subjects[0].Namespace != "ops" {
			t.Errorf("RoleBinding %s/%s subjects %+v: want in apps, for the ServiceAccount in ops", rb.Namespace, rb.Name, rb.Subjects)
		}
		if args := c.deployment(t).Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--watch-namespace=apps") {
			t.Errorf("args %q lack --watch-namespace=apps", args)
		}
	})
	t.Run("plain metrics and no Service", func(t *testing.T) {
		c := render(t, "ops", "metrics.secure=false", "metrics.service.enabled=false", "metrics.port=9090")
		for _, name := range []string{"podkit-metrics-auth", "podkit-metrics-reader"} {
			if c.get(t, "ClusterRole", name) != nil {
				t.Errorf("ClusterRole %s rendered with metrics.secure=false", name)
			}
		}
		if c.get(t, "Service", "podkit-controller-metrics") != nil {
			t.Error("metrics Service rendered with metrics.service.enabled=false")
		}
		ctr := c.deployment(t).Spec.Template.Spec.Containers[0]
		if !slices.Contains(ctr.Args, "--metrics-secure=false") || !slices.Contains(ctr.Args, "--metrics-bind-address=:9090") {
			t.Errorf("args %q", ctr.Args)
		}
		if ctr.Ports[0].ContainerPort != 9090 {
			t.Errorf("metrics port %d, want 9090", ctr.Ports[0].ContainerPort)
		}
	})
	t.Run("pod metadata, scheduling and the rest", func(t *testing.T) {
		c := render(t, "ops", "imagePullSecrets[0].name=pull", "image.pullPolicy=Always", "podLabels.team=ml",
			"podAnnotations.note=x", "nodeSelector.pool=infra", "tolerations[0].key=infra", "tolerations[0].operator=Exists",
			"priorityClassName=system-cluster-critical", "serviceAccount.annotations.iam=role", "userRoles.create=false",
			"metrics.service.type=NodePort", "leaderElection.id=my-lease")
		dep := c.deployment(t)
		pod := dep.Spec.Template
		for what, ok := range map[string]bool{
			"imagePullSecrets":  len(pod.Spec.ImagePullSecrets) == 1 && pod.Spec.ImagePullSecrets[0].Name == "pull",
			"pullPolicy":        pod.Spec.Containers[0].ImagePullPolicy == corev1.PullAlways,
			"podLabels":         pod.Labels["team"] == "ml",
			"podAnnotations":    pod.Annotations["note"] == "x",
			"nodeSelector":      pod.Spec.NodeSelector["pool"] == "infra",
			"tolerations":       len(pod.Spec.Tolerations) == 1 && pod.Spec.Tolerations[0].Key == "infra",
			"priorityClassName": pod.Spec.PriorityClassName == "system-cluster-critical",
			"leaderElection.id": slices.Contains(pod.Spec.Containers[0].Args, "--leader-election-id=my-lease"),
		} {
			if !ok {
				t.Errorf("%s is not in the pod: %+v", what, pod)
			}
		}
		if sa := c.get(t, "ServiceAccount", "podkit-framework-controller"); sa == nil || sa.GetAnnotations()["iam"] != "role" {
			t.Errorf("serviceAccount.annotations not on the ServiceAccount: %v", sa)
		}
		for _, name := range []string{"podkit-framework-viewer", "podkit-framework-editor"} {
			if c.get(t, "ClusterRole", name) != nil {
				t.Errorf("ClusterRole %s rendered with userRoles.create=false", name)
			}
		}
		if svc := convert[corev1.Service](t, c.get(t, "Service", "podkit-controller-metrics"), "Service", "podkit-controller-metrics"); svc.Spec.Type != corev1.ServiceTypeNodePort {
			t.Errorf("metrics Service type %s, want NodePort", svc.Spec.Type)
		}
		// The selector stays the chart's own, whatever podLabels add.
		if diff := cmp.Diff(base.deployment(t).Spec.Selector, dep.Spec.Selector); diff != "" {
			t.Errorf("podLabels changed the selector (-default +got):\n%s", diff)
		}
	})
	t.Run("resources and service account", func(t *testing.T) {
		c := render(t, "ops", "resources.limits.memory=1Gi", "serviceAccount.name=ctl")
		ctr := c.deployment(t).Spec.Template.Spec.Containers[0]
		if got := ctr.Resources.Limits.Memory().String(); got != "1Gi" {
			t.Errorf("memory limit %s, want 1Gi", got)
		}
		if c.get(t, "ServiceAccount", "ctl") == nil || c.deployment(t).Spec.Template.Spec.ServiceAccountName != "ctl" {
			t.Error("serviceAccount.name=ctl is not what the pod runs as")
		}
		for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
			for _, o := range c.objs {
				if o.GetKind() != kind {
					continue
				}
				subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
				if got := subjects[0].(map[string]any)["name"]; got != "ctl" {
					t.Errorf("%s %s binds %v, want ctl", kind, o.GetName(), got)
				}
			}
		}
	})
}

// Bad values are refused by helm, with a message that names the value, and
// nothing is rendered.
func TestChartRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"replica=2"}, "'replica' not allowed"},
		{[]string{"metrics.secur=false"}, "'secur' not allowed"},
		{[]string{"watchNamespace=Bad_NS"}, "/watchNamespace"},
		{[]string{"replicas=-1"}, "/replicas"},
		{[]string{"image.pullPolicy=Sometimes"}, "/image/pullPolicy"},
		{[]string{"metrics.port=8081"}, "metrics.port 8081 is the health probes' port"},
		{[]string{"replicas=2", "leaderElection.enabled=false"}, "replicas > 1 needs leaderElection.enabled=true"},
		{[]string{"global.registry=x", "podLabels.team=a", "serviceAccount.annotations.a=b", "oops=1"}, "'oops' not allowed"},
	} {
		args := []string{"template", "podkit", "charts/podkit"}
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		out, err := helm(t, args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("helm template --set %v: err = %v, want one containing %q", tc.set, err, tc.want)
		}
		if len(out) != 0 {
			t.Errorf("helm template --set %v printed manifests beside the error", tc.set)
		}
	}
}

func kubectlApply(t *testing.T, manifest []byte, extra ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin(t, k8sbin.Kubectl), append([]string{"--kubeconfig", env.Kubeconfig, "apply", "--server-side", "-f", "-"}, extra...)...)
	cmd.Stdin = bytes.NewReader(manifest)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The rendered chart is valid for a real apiserver: a server-side dry run
// of every variant passes admission and validation and creates nothing.
func TestChartAppliesWithServerSideDryRun(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	watched := env.Namespace(t)
	for _, set := range [][]string{nil, {"watchNamespace=" + watched, "metrics.secure=false", "replicas=2"}} {
		c := render(t, ns, set...)
		// The harness installed the CRD already (as another field manager).
		out, err := kubectlApply(t, c.yaml, "--dry-run=server", "--force-conflicts")
		if err != nil {
			t.Fatalf("--set %v: kubectl apply --server-side --dry-run=server: %v\n%s", set, err, out)
		}
		if n := strings.Count(out, "(server dry run)"); n != len(c.objs) {
			t.Errorf("--set %v: %d objects dry-run applied, want %d:\n%s", set, n, len(c.objs), out)
		}
	}
	if _, err := env.Clientset.AppsV1().Deployments(ns).Get(ctx, "podkit-controller", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after a dry run the Deployment exists (err = %v)", err)
	}
}

// Installed for one namespace, the chart's RBAC lets the controller do its
// job there and nothing in any other namespace.
func TestChartWatchNamespaceRBACOnARealAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	watched := env.Namespace(t)
	other := env.Namespace(t)
	c := render(t, ns, "watchNamespace="+watched, "metrics.secure=false", "userRoles.create=false")
	var objs []*unstructured.Unstructured
	for _, o := range c.objs {
		if o.GetKind() != "CustomResourceDefinition" {
			objs = append(objs, o)
		}
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	t.Cleanup(func() {
		for _, o := range objs {
			_ = env.Client.Delete(context.Background(), o)
		}
	})
	user := "system:serviceaccount:" + ns + ":podkit-framework-controller"
	for _, tc := range []struct {
		ns, group, resource, verb string
		allowed                   bool
	}{
		{watched, "", "pods", "create", true},
		{watched, "", "pods", "delete", true},
		{watched, "podkit.dev", "frameworks", "watch", true},
		{watched, "podkit.dev", "frameworks/status", "update", true},
		{watched, "podkit.dev", "frameworks/finalizers", "update", true},
		{ns, "coordination.k8s.io", "leases", "update", true},
		{other, "", "pods", "create", false},
		{other, "podkit.dev", "frameworks", "list", false},
		{"", "", "pods", "list", false}, // all namespaces
		{watched, "", "secrets", "get", false},
		{watched, "podkit.dev", "frameworks", "update", false},
		{watched, "coordination.k8s.io", "leases", "update", false},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: tc.ns, Group: tc.group, Resource: strings.Split(tc.resource, "/")[0],
				Subresource: strings.TrimPrefix(tc.resource, strings.Split(tc.resource, "/")[0]+"/"), Verb: tc.verb,
			},
		}}
		if !strings.Contains(tc.resource, "/") {
			sar.Spec.ResourceAttributes.Subresource = ""
		}
		got, err := env.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Allowed != tc.allowed {
			t.Errorf("%s %s in %q: allowed=%v, want %v (%s)", tc.verb, tc.resource, tc.ns, got.Status.Allowed, tc.allowed, got.Status.Reason)
		}
	}
}
