package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/k8sbin"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/framework"
)

const (
	systemNamespace = "podkit-system"
	controllerSA    = "podkit-framework-controller"
)

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := k8sbin.Path(k8sbin.Kubectl)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	cmd.Dir = moduleRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// installYAML renders the release's install.yaml as make release does
// (hack/release.sh install-yaml) for version e2e-test, and checks that it
// names the released image.
func installYAML(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "install.yaml")
	cmd := exec.Command("bash", "hack/release.sh", "install-yaml", file)
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), "VERSION=e2e-test", "IMAGE_REPO=registry.example/podkit-dev")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/release.sh install-yaml: %v\n%s", err, out)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := testenv.DecodeManifests(data)
	if err != nil {
		t.Fatalf("install.yaml: %v", err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
		if o.GetKind() != "Deployment" {
			continue
		}
		var dep appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &dep); err != nil {
			t.Fatal(err)
		}
		if got := dep.Spec.Template.Spec.Containers[0].Image; got != "registry.example/podkit-dev/podkit:e2e-test" {
			t.Errorf("install.yaml's controller image %q, want the released registry.example/podkit-dev/podkit:e2e-test", got)
		}
	}
	// kubectl apply -f creates in file order: the namespace and the CRD first.
	if len(kinds) < 2 || kinds[0] != "Namespace" || kinds[1] != "CustomResourceDefinition" {
		t.Errorf("install.yaml starts with %v, want Namespace then CustomResourceDefinition", kinds[:min(len(kinds), 2)])
	}
	return file
}

// The release's install.yaml, applied as its first line says, deploys a
// controller whose RBAC runs a sample to Completed.
func TestInstallYAMLDeploysAndItsRBACRunsASample(t *testing.T) {
	file := installYAML(t)
	out := kubectl(t, "apply", "--server-side", "-f", file)
	t.Logf("kubectl apply --server-side -f install.yaml:\n%s", out)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	t.Run("controller pod runs with a restricted security context", func(t *testing.T) {
		testenv.WaitFor(t, time.Minute, "a Running podkit-controller pod", func(ctx context.Context) (bool, error) {
			pods, err := env.Clientset.CoreV1().Pods(systemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=framework-controller"})
			if err != nil {
				return false, err
			}
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning {
					return true, nil
				}
			}
			return false, nil
		})
		dep := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: systemNamespace, Name: "podkit-controller"}, dep); err != nil {
			t.Fatal(err)
		}
		checkDeployment(t, dep)
	})

	t.Run("service account may do its job and no more", func(t *testing.T) {
		ns := env.Namespace(t)
		cs, err := kubernetes.NewForConfig(asControllerSA())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("list secrets as the controller: err = %v, want Forbidden", err)
		}
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}
		if _, err := cs.CoordinationV1().Leases(ns).Create(ctx, lease, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("create a lease outside %s: err = %v, want Forbidden", systemNamespace, err)
		}
		// Secure metrics (the default): the controller reviews the tokens
		// and permissions of whoever scrapes /metrics.
		if _, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "not-a-token"}}, metav1.CreateOptions{}); err != nil {
			t.Errorf("create a TokenReview as the controller (config/rbac/metrics_role.yaml): %v", err)
		}
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: "prometheus",
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}}}
		if _, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{}); err != nil {
			t.Errorf("create a SubjectAccessReview as the controller (config/rbac/metrics_role.yaml): %v", err)
		}
		created, err := cs.CoordinationV1().Leases(systemNamespace).Create(ctx, lease, metav1.CreateOptions{})
		if err != nil {
			t.Errorf("create a lease in %s: %v", systemNamespace, err)
		} else {
			_ = cs.CoordinationV1().Leases(systemNamespace).Delete(ctx, created.Name, metav1.DeleteOptions{})
		}
	})

	t.Run("sample completes under the deployed RBAC", func(t *testing.T) {
		ns := env.Namespace(t)
		runControllerAsSA(ctx, t, ns)
		fw := &v1.Framework{}
		data, err := os.ReadFile(filepath.Join(moduleRoot(t), "config", "samples", "framework_pytorch.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		// The sample is its task pods' ServiceAccount, Role and RoleBinding,
		// then the Framework: create them in that order, as kubectl apply does.
		objs, err := testenv.DecodeManifests(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range objs {
			u.SetNamespace(ns)
			// Strict: a field of the sample the API does not know fails here.
			if err := env.Client.Create(ctx, u, client.FieldValidation("Strict")); err != nil {
				t.Fatalf("create the sample's %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(objs[len(objs)-1].Object, fw); err != nil || fw.Kind != "Framework" {
			t.Fatalf("the sample's last object is %s, want its Framework (%v)", objs[len(objs)-1].GetKind(), err)
		}
		testenv.WaitFor(t, 2*time.Minute, "framework "+fw.Name+" to complete", func(ctx context.Context) (bool, error) {
			if err := completeRunningTaskPods(ctx, ns); err != nil {
				return false, err
			}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(fw), fw); err != nil {
				return false, err
			}
			return fw.Status != nil && fw.Status.State == v1.FrameworkCompleted, nil
		})
		cs := fw.Status.AttemptStatus.CompletionStatus
		if cs == nil || cs.Type.Name != v1.CompletionTypeNameSucceeded {
			t.Errorf("framework completed with %+v, want Succeeded", cs)
		}
	})
}

func checkDeployment(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	spec := dep.Spec.Template.Spec
	if spec.ServiceAccountName != controllerSA {
		t.Errorf("serviceAccountName %q, want %q", spec.ServiceAccountName, controllerSA)
	}
	psc := spec.SecurityContext
	if psc == nil || !ptr.Deref(psc.RunAsNonRoot, false) || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case !ptr.Deref(sc.ReadOnlyRootFilesystem, false):
		t.Error("root filesystem is writable")
	case ptr.Deref(sc.AllowPrivilegeEscalation, true):
		t.Error("privilege escalation allowed")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL":
		t.Errorf("capabilities %+v, want drop [ALL]", sc.Capabilities)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v, want GET /healthz", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want GET /readyz", c.ReadinessProbe)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v, want CPU requests and memory limits", c.Resources)
	}
	metrics := false
	for _, p := range c.Ports {
		metrics = metrics || (p.Name == "metrics" && p.ContainerPort == 8443)
	}
	if !metrics {
		t.Errorf("ports %+v lack metrics:8443", c.Ports)
	}
	if c.Args[0] != "controller" {
		t.Errorf("args %v, want podkit controller ...", c.Args)
	}
}

func asControllerSA() *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", systemNamespace, controllerSA)}
	return cfg
}

// runControllerAsSA runs the Framework controller in-process with the
// deployed ServiceAccount's identity until the test ends.
func runControllerAsSA(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	mgr, err := ctrl.NewManager(asControllerSA(), ctrl.Options{
		Scheme:                 env.Scheme,
		Cache:                  cache.Options{ByObject: framework.CacheByObject(), DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         true,
		LeaderElectionID:       "e2e-" + ns,
		// The Lease lives where the deployed Role allows it.
		LeaderElectionNamespace:       systemNamespace,
		LeaderElectionReleaseOnCancel: true,
		Controller:                    ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := framework.New(framework.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller as %s: %v", controllerSA, err)
		}
	})
	select {
	case <-mgr.Elected():
	case err := <-done:
		t.Fatalf("controller as %s stopped: %v", controllerSA, err)
	case <-ctx.Done():
		t.Fatal("controller never became leader: its Lease RBAC is missing")
	}
}

// completeRunningTaskPods does what a container exiting 0 would: kwok
// completes pods annotated with testenv.AnnotationExitCode.
func completeRunningTaskPods(ctx context.Context, ns string) error {
	pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: v1.LabelFrameworkName})
	if err != nil {
		return err
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"0"}}}`, testenv.AnnotationExitCode)
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.Annotations[testenv.AnnotationExitCode] != "" {
			continue
		}
		_, err := env.Clientset.CoreV1().Pods(ns).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
