package demo

import (
	"context"
	"errors"
	"fmt"
	"k8s.io/apimachinery/pkg/util/wait"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/devcluster"
)

// crdName is the Framework CRD's name.
const crdName = "frameworks.podkit.dev"

// annotationKwokNode marks the simulated nodes kwokctl creates.
const annotationKwokNode = "kwok.x-k8s.io/node"

// connect selects the cluster: the one --kubeconfig names, else the dev
// cluster, started when it is not running.
func (d *demo) connect(ctx context.Context) (string, error) {
	if d.c.Flags.KubeConfig != nil && *d.c.Flags.KubeConfig != "" {
		cfg, err := d.c.RESTConfig()
		if err != nil {
			return "", err
		}
		d.cfg = cfg
		return fmt.Sprintf("kubeconfig %s (%s)", *d.c.Flags.KubeConfig, cfg.Host), nil
	}
	workdir := d.f.workdir
	if workdir == "" {
		var err error
		if workdir, err = devcluster.DefaultWorkdir(); err != nil {
			return "", err
		}
	}
	mgr := &devcluster.Manager{Workdir: workdir}
	d.printf("    starting or reusing dev cluster %q (a first start takes about 10 s)...\n", d.f.name)
	res, err := mgr.Up(ctx, devcluster.UpOptions{Name: d.f.name, Nodes: d.f.nodes})
	if err != nil {
		return "", fmt.Errorf("start dev cluster %q: %w", d.f.name, err)
	}
	d.devCluster = true
	d.kubeconfig = res.Kubeconfig
	cfg, err := clientcmd.BuildConfigFromFlags("", res.Kubeconfig)
	if err != nil {
		return "", fmt.Errorf("load kubeconfig %s: %w", res.Kubeconfig, err)
	}
	d.cfg = cfg
	return fmt.Sprintf("dev cluster %q %s (%s, %s, %d nodes)", d.f.name, res.Action, res.Server, res.Version, res.Nodes), nil
}

// preflight turns the common ways a cluster cannot run the demo into one
// clear error each: unreachable, no CRD and no right to install it, no
// right to create what the demo creates.
func (d *demo) preflight(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cs, err := kubernetes.NewForConfig(d.cfg)
	if err != nil {
		return fmt.Errorf("create clientset: %w", err)
	}
	d.cs = cs
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("cannot reach the cluster at %s: %v (check --kubeconfig and --context, or drop --kubeconfig to use the local dev cluster)", d.cfg.Host, err)
	}
	d.user = "your kubeconfig's user"
	if r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{}); err == nil && r.Status.UserInfo.Username != "" {
		d.user = fmt.Sprintf("user %q", r.Status.UserInfo.Username)
	}

	d.crdInstalled, err = crdServed(cs)
	if err != nil {
		return err
	}
	if !d.crdInstalled {
		ok, err := d.can(ctx, "create", "apiextensions.k8s.io", "customresourcedefinitions", "")
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("the cluster has no Framework CRD (%s) and %s may not install it: ask a cluster admin to run: kubectl apply --server-side -f config/crd/bases", crdName, d.user)
		}
	}
	checks := []struct{ verb, group, resource, ns string }{
		{"create", v1.GroupVersion.Group, "frameworks", d.ns},
		{"create", "", "pods", d.ns},
		{"patch", "", "pods", d.ns},
		{"list", "", "pods", d.ns},
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, d.ns, metav1.GetOptions{}); apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		checks = append(checks, struct{ verb, group, resource, ns string }{"create", "", "namespaces", ""})
	}
	for _, ch := range checks {
		ok, err := d.can(ctx, ch.verb, ch.group, ch.resource, ch.ns)
		if err != nil {
			return err
		}
		if !ok {
			where := "cluster-wide"
			if ch.ns != "" {
				where = "in namespace " + ch.ns
			}
			res := ch.resource
			if ch.group != "" {
				res += "." + ch.group
			}
			return fmt.Errorf("%s may not %s %s %s: run the demo with a cluster-admin kubeconfig (or grant the podkit-framework-editor role and pod rights there), or pick another namespace with -n", d.user, ch.verb, res, where)
		}
	}
	return nil
}

// crdServed reports whether the API server serves podkit.dev/v1alpha1
// frameworks.
func crdServed(cs kubernetes.Interface) (bool, error) {
	list, err := cs.Discovery().ServerResourcesForGroupVersion(v1.GroupVersion.String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", v1.GroupVersion, err)
	}
	for _, r := range list.APIResources {
		if r.Name == "frameworks" {
			return true, nil
		}
	}
	return false, nil
}

// can asks the API server whether the demo's user may verb resource.
func (d *demo) can(ctx context.Context, verb, group, resource, ns string) (bool, error) {
	return canI(ctx, d.cs, &authzv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: ns})
}

func canI(ctx context.Context, cs kubernetes.Interface, attrs *authzv1.ResourceAttributes) (bool, error) {
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
		Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attrs},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("check access to %s %s: %w", attrs.Verb, attrs.Resource, err)
	}
	return r.Status.Allowed, nil
}

// isKwok reports whether every node the demo's pods can land on is a kwok
// node: containers do not run there, so the demo completes pods itself.
// Nodes tainted NoSchedule or NoExecute (the dev cluster's real node) take
// none of the demo's pods, which tolerate nothing.
func isKwok(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, fmt.Errorf("list nodes: %w", err)
	}
	if len(nodes.Items) == 0 {
		return false, nil
	}
	kwok := 0
	for _, n := range nodes.Items {
		if slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool {
			return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
		}) {
			continue
		}
		if _, ok := n.Annotations[annotationKwokNode]; !ok {
			return false, nil
		}
		kwok++
	}
	return kwok > 0, nil
}

// ensureNamespace creates the demo's namespace when missing and waits for
// its default ServiceAccount, without which pods are rejected.
func ensureNamespace(ctx context.Context, cs kubernetes.Interface, ns string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"app.kubernetes.io/part-of": "podkit-demo"}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("get default service account of %s: %w", ns, err)
		}
		return true, nil
	})
}

// findConfigDir returns the directory holding crd/, rbac/ and samples/:
// --config-dir, else ./config or a parent's, else ../config beside the binary.
func findConfigDir(flag string) (string, error) {
	if flag != "" {
		if !isConfigDir(flag) {
			return "", fmt.Errorf("--config-dir %s has no samples/ and crd/bases/: point it at podkit's config directory", flag)
		}
		return filepath.Abs(flag)
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, start := range starts {
		for dir := start; ; dir = filepath.Dir(dir) {
			if cand := filepath.Join(dir, "config"); isConfigDir(cand) {
				return cand, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", errors.New("podkit's config directory (samples, CRD, RBAC) not found: run from a podkit checkout or pass --config-dir")
}

func isConfigDir(dir string) bool {
	for _, sub := range []string{"samples", filepath.Join("crd", "bases"), "rbac"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			return false
		}
	}
	return true
}

// oneLine flattens an error message for a table cell.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}
