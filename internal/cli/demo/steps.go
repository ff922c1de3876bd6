package demo

import (
	"context"
	"errors"
	"fmt"
	"k8s.io/apimachinery/pkg/util/wait"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/devcluster"
	"github.com/podkit-dev/podkit/pkg/framework"
)

// Names of what the demo creates besides the samples.
const (
	controllerNamespace      = "podkit-system"
	controllerServiceAccount = "podkit-framework-controller"
	forkParentName           = "podkit-demo-parent"
)

func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("add client-go types to scheme: %w", err)
	}
	if err := v1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("add podkit types to scheme: %w", err)
	}
	return s, nil
}

// prepareNamespace creates the namespace, detects kwok and removes what an
// earlier run left, so every run starts the samples afresh.
func (d *demo) prepareNamespace(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.f.timeout)
	defer cancel()
	scheme, err := newScheme()
	if err != nil {
		return "", err
	}
	if d.cl, err = client.NewWithWatch(d.cfg, client.Options{Scheme: scheme}); err != nil {
		return "", fmt.Errorf("create client: %w", err)
	}
	if d.kwok, err = isKwok(ctx, d.cs); err != nil {
		return "", err
	}
	if err := ensureNamespace(ctx, d.cs, d.ns); err != nil {
		return "", err
	}
	if d.configDir, err = findConfigDir(d.f.configDir); err != nil {
		d.printf("    note: %v\n", err)
	}
	removed, err := d.removeLeftovers(ctx)
	if err != nil {
		return "", err
	}
	detail := "namespace " + d.ns
	if d.kwok {
		detail += " on kwok nodes"
	}
	if removed > 0 {
		detail += fmt.Sprintf(" (removed %d objects of an earlier run)", removed)
	}
	return detail, nil
}

// removeLeftovers deletes the samples and the fork parent of an earlier run
// (their pods go with them) and waits until they are gone.
func (d *demo) removeLeftovers(ctx context.Context) (int, error) {
	var objs []client.Object
	if d.crdInstalled && d.configDir != "" {
		names, err := d.sampleNames()
		if err != nil {
			return 0, err
		}
		for _, n := range names {
			objs = append(objs, &v1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: n}})
		}
	}
	objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: forkParentName}})
	removed := 0
	for _, obj := range objs {
		err := d.cl.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationForeground))
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("delete %T %s from an earlier run: %w", obj, obj.GetName(), err)
		}
		removed++
		err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			err := d.cl.Get(ctx, client.ObjectKeyFromObject(obj), obj)
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
		if err != nil {
			return removed, fmt.Errorf("wait for %s of an earlier run to go: %w", obj.GetName(), err)
		}
	}
	return removed, nil
}

func (d *demo) sampleFiles() ([]string, error) {
	return yamlFiles(filepath.Join(d.configDir, "samples"))
}

func (d *demo) sampleNames() ([]string, error) {
	files, err := d.sampleFiles()
	if err != nil {
		return nil, err
	}
	objs, err := readManifests(files...)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, o := range objs {
		if o.GetKind() == "Framework" {
			names = append(names, o.GetName())
		}
	}
	return names, nil
}

// installCRD applies config/crd/bases and waits until Frameworks are served.
func (d *demo) installCRD(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.f.timeout)
	defer cancel()
	if d.configDir == "" {
		if d.crdInstalled {
			return "", skip("%s is already installed; config directory not found to update it", crdName)
		}
		return "", errors.New("the cluster has no Framework CRD and the config directory was not found: pass --config-dir")
	}
	if d.crdInstalled {
		ok, err := d.can(ctx, "patch", "apiextensions.k8s.io", "customresourcedefinitions", "")
		if err != nil {
			return "", err
		}
		if !ok {
			return "", skip("%s is already installed and %s may not update it", crdName, d.user)
		}
	}
	files, err := yamlFiles(filepath.Join(d.configDir, "crd", "bases"))
	if err != nil {
		return "", err
	}
	objs, err := readManifests(files...)
	if err != nil {
		return "", err
	}
	if err := apply(ctx, d.cl, "", objs); err != nil {
		return "", err
	}
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		return crdServed(d.cs)
	})
	if err != nil {
		return "", fmt.Errorf("wait for %s to be served: %w", crdName, err)
	}
	d.crdInstalled = true
	return fmt.Sprintf("%s applied from %s and served", crdName, rel(files[0])), nil
}

// installRBAC applies the controller's ServiceAccount and ClusterRole and,
// in the demo's namespace, the barrier and fork Roles.
func (d *demo) installRBAC(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.f.timeout)
	defer cancel()
	if d.configDir == "" {
		return "", skip("config directory not found")
	}
	for _, res := range []string{"clusterroles", "clusterrolebindings"} {
		ok, err := d.can(ctx, "create", "rbac.authorization.k8s.io", res, "")
		if err != nil {
			return "", err
		}
		if !ok {
			return "", skip("%s may not create %s; the controller runs as that user instead", d.user, res)
		}
	}
	rbac := filepath.Join(d.configDir, "rbac")
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(controllerNamespace)
	cluster, err := readManifests(
		filepath.Join(rbac, "framework_service_account.yaml"),
		filepath.Join(rbac, "framework_role.yaml"),
		filepath.Join(rbac, "framework_user_roles.yaml"),
	)
	if err != nil {
		return "", err
	}
	if err := apply(ctx, d.cl, controllerNamespace, append([]*unstructured.Unstructured{ns}, cluster...)); err != nil {
		return "", err
	}
	local, err := readManifests(
		filepath.Join(rbac, "barrier_role.yaml"),
		filepath.Join(rbac, "fork_role.yaml"),
		filepath.Join(rbac, "fork_role_binding.yaml"),
	)
	if err != nil {
		return "", err
	}
	if err := apply(ctx, d.cl, d.ns, local); err != nil {
		return "", err
	}
	d.rbacApplied = true
	return fmt.Sprintf("ServiceAccount %s/%s with ClusterRole %s; Roles podkit-barrier and podkit-fork in %s (from %s)",
		controllerNamespace, controllerServiceAccount, controllerServiceAccount, d.ns, rel(rbac)), nil
}

// startController runs the Framework controller in this process, as the
// controller's ServiceAccount when the user may impersonate it (so the demo
// also proves config/rbac is enough), else as the user. The returned stop
// function ends it and waits.
func (d *demo) startController(ctx context.Context) (string, func(), error) {
	noop := func() {}
	if !d.crdInstalled {
		return "", noop, skip("needs the Framework CRD")
	}
	cfg := rest.CopyConfig(d.cfg)
	identity := strings.TrimPrefix(d.user, "user ")
	if d.rbacApplied {
		ok, err := canI(ctx, d.cs, &authzv1.ResourceAttributes{
			Verb: "impersonate", Resource: "serviceaccounts", Namespace: controllerNamespace, Name: controllerServiceAccount,
		})
		if err != nil {
			return "", noop, err
		}
		if ok {
			identity = fmt.Sprintf("system:serviceaccount:%s:%s", controllerNamespace, controllerServiceAccount)
			cfg.Impersonate = rest.ImpersonationConfig{UserName: identity}
		}
	}
	scheme, err := newScheme()
	if err != nil {
		return "", noop, err
	}
	logger := logr.FromSlogHandler(errorsOnly{d.c.Logger.Handler()})
	ctrl.SetLogger(logger)
	byObject, err := framework.CacheByObjectFor(cfg)
	if err != nil {
		return "", noop, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Logger: logger,
		Cache: cache.Options{
			ByObject:          byObject,
			DefaultNamespaces: map[string]cache.Config{d.ns: {}},
		},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// A test may run the demo twice in one process.
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return "", noop, fmt.Errorf("create controller manager: %w", err)
	}
	r, err := framework.New(framework.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		return "", noop, err
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return "", noop, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(runCtx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			d.c.Logger.Error("framework controller stopped", "err", err)
		}
	}
	// Stop with the demo's context too (Ctrl-C).
	stopOnCancel := context.AfterFunc(ctx, cancel)
	stopAll := func() { stopOnCancel(); stop() }

	syncCtx, syncCancel := context.WithTimeout(ctx, d.f.timeout)
	defer syncCancel()
	synced := make(chan bool, 1)
	go func() { synced <- mgr.GetCache().WaitForCacheSync(syncCtx) }()
	select {
	case err := <-done:
		stopOnCancel()
		cancel()
		return "", noop, fmt.Errorf("framework controller as %s: %w", identity, err)
	case ok := <-synced:
		if !ok {
			stopAll()
			return "", noop, fmt.Errorf("framework controller as %s: caches did not sync within %s (check its RBAC)", identity, d.f.timeout)
		}
	}
	d.controllerUp = true
	return fmt.Sprintf("Framework controller running in-process as %s, watching %s", identity, d.ns), stopAll, nil
}

// applySamples applies config/samples into the namespace and starts the
// barrier for one task so that it waits while the gang comes up.
func (d *demo) applySamples(ctx context.Context) (string, error) {
	if d.configDir == "" {
		return "", skip("config directory not found")
	}
	if !d.crdInstalled {
		return "", skip("needs the Framework CRD")
	}
	ctx2, cancel := context.WithTimeout(ctx, d.f.timeout)
	defer cancel()
	files, err := d.sampleFiles()
	if err != nil {
		return "", err
	}
	objs, err := readManifests(files...)
	if err != nil {
		return "", err
	}
	if err := apply(ctx2, d.cl, d.ns, objs); err != nil {
		return "", err
	}
	var fws []*v1.Framework
	for _, o := range objs {
		if o.GetKind() != "Framework" {
			continue
		}
		d.samples = append(d.samples, o.GetName())
		fw := &v1.Framework{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, fw); err != nil {
			return "", fmt.Errorf("decode sample %s: %w", o.GetName(), err)
		}
		fws = append(fws, fw)
	}
	if d.controllerUp && len(fws) > 0 {
		d.startBarrier(ctx, pickBarrierTask(fws))
	}
	return fmt.Sprintf("applied %s from %s", strings.Join(d.samples, ", "), rel(filepath.Join(d.configDir, "samples"))), nil
}

// waitRunning follows the samples until every task has a running pod with
// an IP, printing each change of state.
func (d *demo) waitRunning(ctx context.Context) (string, error) {
	if len(d.samples) == 0 {
		return "", skip("no samples applied")
	}
	if !d.controllerUp {
		return "", skip("needs the Framework controller")
	}
	ctx, cancel := context.WithTimeout(ctx, d.f.timeout)
	defer cancel()
	var ready, total int
	err := d.follow(ctx, func(fws []v1.Framework) bool {
		ready, total = 0, 0
		all := len(fws) == len(d.samples)
		for _, fw := range fws {
			r, t := readyCounts(&fw)
			ready, total = ready+r, total+t
			all = all && t > 0 && r == t
		}
		return all
	})
	if err != nil {
		return "", fmt.Errorf("wait for every task to run (%d/%d ready): %w", ready, total, err)
	}
	return fmt.Sprintf("%d frameworks, %d/%d tasks running with pod IPs", len(d.samples), ready, total), nil
}

// completeSamples completes the samples: on kwok by annotating each running
// task pod with the exit code 0 (there are no containers to exit).
func (d *demo) completeSamples(ctx context.Context) (string, error) {
	if len(d.samples) == 0 || !d.controllerUp {
		return "", skip("needs the samples and the controller")
	}
	if !d.kwok {
		return "", skip("not a kwok cluster: the samples run their real images; follow them with: podkit get fw -n %s", d.ns)
	}
	d.printf("    simulating task completion: kwok nodes run no containers, so each running task pod gets %s=0\n", devcluster.AnnotationExitCode)
	ctx, cancel := context.WithTimeout(ctx, d.f.timeout)
	defer cancel()
	var outcomes []string
	err := d.follow(ctx, func(fws []v1.Framework) bool {
		if err := d.annotateRunningTaskPods(ctx); err != nil {
			d.c.Logger.Warn("complete task pods", "err", err)
		}
		outcomes = outcomes[:0]
		for _, fw := range fws {
			if fw.Status == nil || fw.Status.State != v1.FrameworkCompleted {
				return false
			}
			outcomes = append(outcomes, fw.Name+" "+completionOf(&fw))
		}
		return len(fws) == len(d.samples)
	})
	if err != nil {
		return "", fmt.Errorf("wait for the samples to complete: %w", err)
	}
	return strings.Join(outcomes, ", "), nil
}

func (d *demo) annotateRunningTaskPods(ctx context.Context) error {
	pods := &corev1.PodList{}
	if err := d.cl.List(ctx, pods, client.InNamespace(d.ns), client.HasLabels{v1.LabelFrameworkName}); err != nil {
		return fmt.Errorf("list task pods: %w", err)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"0"}}}`, devcluster.AnnotationExitCode)
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil || p.Annotations[devcluster.AnnotationExitCode] != "" {
			continue
		}
		if err := d.cl.Patch(ctx, p, client.RawPatch(types.MergePatchType, patch)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("annotate pod %s: %w", p.Name, err)
		}
	}
	return nil
}

// follow polls the samples, prints a line whenever one changes, and
// returns once done reports true.
func (d *demo) follow(ctx context.Context, done func([]v1.Framework) bool) error {
	last := map[string]string{}
	return wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list := &v1.FrameworkList{}
		if err := d.cl.List(ctx, list, client.InNamespace(d.ns)); err != nil {
			return false, fmt.Errorf("list frameworks: %w", err)
		}
		var fws []v1.Framework
		for _, fw := range list.Items {
			if !slices.Contains(d.samples, fw.Name) {
				continue
			}
			fws = append(fws, fw)
			state, ready := "Pending", "-"
			if fw.Status != nil {
				state = string(fw.Status.State)
				if fw.Status.ReadyTasks != "" {
					ready = fw.Status.ReadyTasks
				}
			}
			line := fmt.Sprintf("%-22s %-26s ready %s", fw.Name, state, ready)
			if fw.Status != nil && fw.Status.State == v1.FrameworkCompleted {
				line += "  " + completionOf(&fw)
			}
			if last[fw.Name] != line {
				last[fw.Name] = line
				d.printf("    %s\n", line)
			}
		}
		return done(fws), nil
	})
}

// readyCounts parses Status.ReadyTasks ("ready/total").
func readyCounts(fw *v1.Framework) (ready, total int) {
	if fw.Status == nil {
		return 0, 0
	}
	if _, err := fmt.Sscanf(fw.Status.ReadyTasks, "%d/%d", &ready, &total); err != nil {
		return 0, 0
	}
	return ready, total
}

func completionOf(fw *v1.Framework) string {
	cs := fw.Status.AttemptStatus.CompletionStatus
	if cs == nil {
		return "(no completion status)"
	}
	return fmt.Sprintf("%s (code %d, %s)", cs.Type.Name, cs.Code, cs.Phrase)
}

// rel shortens a path to one relative to the working directory when it is
// below it.
func rel(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return p
}

// errorsOnly passes only errors to the wrapped handler: the controller's
// info logs would drown the demo's output.
type errorsOnly struct{ slog.Handler }

func (h errorsOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError && h.Handler.Enabled(ctx, l)
}

func (h errorsOnly) WithAttrs(attrs []slog.Attr) slog.Handler {
	return errorsOnly{h.Handler.WithAttrs(attrs)}
}

func (h errorsOnly) WithGroup(name string) slog.Handler { return errorsOnly{h.Handler.WithGroup(name)} }
