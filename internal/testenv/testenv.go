// Package testenv starts real Kubernetes control planes for podkit's
// integration tests and benchmarks: an API server alone (etcd +
// kube-apiserver through controller-runtime's envtest) or a full cluster
// (kwokctl's binary runtime: + scheduler, controller-manager and kwok
// nodes). It never fakes the API and never skips: missing binaries fail with
// "run: make tools".
package testenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/go-logr/logr"
)

// Mode selects what Start runs.
type Mode string

const (
	// ModeAPIServer runs etcd and kube-apiserver: enough for CRDs,
	// validation, watches and status, but pods are never scheduled.
	ModeAPIServer Mode = "apiserver"
	// ModeCluster runs a kwok cluster: pods are scheduled onto simulated
	// nodes, become Running with an IP, complete on request and are
	// garbage-collected by the real controller-manager.
	ModeCluster Mode = "cluster"
)

// AnnotationExitCode, set on a Running pod in ModeCluster, terminates the
// pod's containers with the annotation's value as exit code: phase Succeeded
// for "0" and Failed otherwise.
const AnnotationExitCode = "podkit.dev/test-exit-code"

// Options configures Start.
type Options struct {
	// Mode is ModeAPIServer (default) or ModeCluster.
	Mode Mode
	// Nodes is the number of kwok nodes in ModeCluster; default 2.
	Nodes int
	// CRDDirectoryPaths are installed before Start returns; default
	// <module root>/config/crd/bases when that directory exists.
	CRDDirectoryPaths []string
	// Scheme is used by Env.Client; default client-go's scheme plus every
	// AddToScheme in SchemeBuilders.
	Scheme *k8sruntime.Scheme
	// SchemeBuilders add types to the default Scheme (e.g. an API group's
	// AddToScheme). Ignored when Scheme is set.
	SchemeBuilders []func(*k8sruntime.Scheme) error
	// StartTimeout bounds Start; default 3 minutes (5 with RealNode).
	StartTimeout time.Duration
	// RealNode adds, in ModeCluster, the dev cluster's real node (kubelet,
	// containerd, runc on this machine; see devcluster.UpOptions.RealNode).
	// One real node runs per machine: Start waits while another test
	// binary's runs.
	RealNode bool
	// NodeResources are resources every kwok node declares besides cpu,
	// memory and pods, in ModeCluster: e.g. {"nvidia.com/gpu": "4"} (see
	// devcluster.UpOptions.NodeResources). Default none.
	NodeResources map[string]string
	// NoGang turns off, in ModeCluster, the upstream gang-scheduling API
	// that the cluster otherwise serves (scheduling.k8s.io/v1beta1 PodGroup
	// and the GenericWorkload feature gate; see devcluster.GangFeatureGates).
	// ModeAPIServer never serves it.
	NoGang bool
	// APIServerArgs are extra kube-apiserver flags (name without "--" → value), in
	// ModeAPIServer only: e.g. {"enable-admission-plugins": "OwnerReferencesPermissionEnforcement"}.
	APIServerArgs map[string]string
}

func (o *Options) setDefaults() error {
	if o.Mode == "" {
		o.Mode = ModeAPIServer
	}
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 3 * time.Minute
		if o.RealNode {
			o.StartTimeout = 5 * time.Minute
		}
	}
	if o.CRDDirectoryPaths == nil {
		if root, err := ModuleRoot(); err == nil {
			dir := filepath.Join(root, "config", "crd", "bases")
			if _, err := os.Stat(dir); err == nil {
				o.CRDDirectoryPaths = []string{dir}
			}
		}
	}
	if o.Scheme == nil {
		o.Scheme = k8sruntime.NewScheme()
		utilruntime.Must(clientgoscheme.AddToScheme(o.Scheme))
		for _, add := range o.SchemeBuilders {
			if err := add(o.Scheme); err != nil {
				return fmt.Errorf("build scheme: %w", err)
			}
		}
	}
	if len(o.APIServerArgs) > 0 && o.Mode != ModeAPIServer {
		return fmt.Errorf("Options.APIServerArgs: only ModeAPIServer takes extra kube-apiserver flags")
	}
	if len(o.NodeResources) > 0 && o.Mode != ModeCluster {
		return fmt.Errorf("Options.NodeResources: only ModeCluster has nodes")
	}
	switch o.Mode {
	case ModeAPIServer, ModeCluster:
	default:
		return fmt.Errorf("unknown mode %q: use %q or %q", o.Mode, ModeAPIServer, ModeCluster)
	}
	return nil
}

// Env is one running control plane.
type Env struct {
	// Mode is what runs.
	Mode Mode
	// Config authenticates as cluster admin.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for Config, for
	// processes started by tests.
	Kubeconfig string
	// Clientset is a typed client-go clientset for Config.
	Clientset kubernetes.Interface
	// Client is a controller-runtime client using Scheme.
	Client client.Client
	// Scheme knows client-go's types and those added by Options.
	Scheme *k8sruntime.Scheme

	plane controlPlane
}

// controlPlane is one way of running Kubernetes.
type controlPlane interface {
	start(ctx context.Context, opts Options) (*rest.Config, string, error)
	restartAPIServer(ctx context.Context) error
	stop() error
	// pids returns the operating-system processes of the control plane.
	pids() []int
}

// Start runs a control plane and returns once its API server is ready and
// CRDs are installed. Call Stop when done.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	setLoggerOnce.Do(setControllerRuntimeLogger)
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	var plane controlPlane
	switch opts.Mode {
	case ModeCluster:
		plane = &kwokPlane{}
	default:
		plane = &envtestPlane{}
	}
	cfg, kubeconfig, err := plane.start(ctx, opts)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start %s control plane: %w", opts.Mode, err), plane.stop())
	}
	env := &Env{Mode: opts.Mode, Config: cfg, Kubeconfig: kubeconfig, Scheme: opts.Scheme, plane: plane}
	cfg.QPS, cfg.Burst = 200, 400
	if env.Clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, errors.Join(fmt.Errorf("create clientset: %w", err), plane.stop())
	}
	if env.Client, err = client.New(cfg, client.Options{Scheme: opts.Scheme}); err != nil {
		return nil, errors.Join(fmt.Errorf("create client: %w", err), plane.stop())
	}
	if opts.Mode == ModeCluster {
		if err := env.waitNodesReady(ctx, opts.Nodes); err != nil {
			return nil, errors.Join(err, plane.stop())
		}
	}
	return env, nil
}

var setLoggerOnce sync.Once

// setControllerRuntimeLogger gives controller-runtime a logger, so code under
// test that logs through it does not print "log.SetLogger(...) was never
// called" with a goroutine stack into the test output. The logs are dropped
// unless PODKIT_TEST_LOG is set (to debug, info, warn or error).
func setControllerRuntimeLogger() {
	level := os.Getenv("PODKIT_TEST_LOG")
	if level == "" {
		ctrllog.SetLogger(logr.Discard())
		return
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelDebug
	}
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
}

// Stop ends every process of the control plane and removes its files.
func (e *Env) Stop() error {
	if e == nil || e.plane == nil {
		return nil
	}
	return e.plane.stop()
}

// PIDs returns the process IDs of the control plane's processes, so tests
// can check that nothing outlives Stop.
func (e *Env) PIDs() []int { return e.plane.pids() }

// RestartAPIServer stops the API server and starts it again on the same
// address with the same data, returning once it answers. In ModeCluster the
// whole cluster restarts (kwokctl stops and starts every component). Watches
// break and clients must resume, which is what tests use it for.
func (e *Env) RestartAPIServer(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.plane.restartAPIServer(ctx); err != nil {
		t.Fatalf("restart API server: %v", err)
	}
	if err := e.waitReady(ctx); err != nil {
		t.Fatalf("API server not ready after restart: %v", err)
	}
}

func (e *Env) waitReady(ctx context.Context) error {
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		err := e.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
		return err == nil, nil
	})
}

func (e *Env) waitNodesReady(ctx context.Context, n int) error {
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		nodes, err := e.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= n, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %d ready kwok nodes: %w", n, err)
	}
	return nil
}

// Namespace creates a namespace with a unique name for the test and deletes
// it when the test ends.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := e.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-", Labels: map[string]string{"podkit.dev/test": sanitizeLabel(t.Name())}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create test namespace: %v", err)
	}
	if e.Mode == ModeCluster {
		// The service account controller creates "default" shortly after the
		// namespace; pods created before it exists are rejected.
		WaitFor(t, 30*time.Second, "default service account in "+ns.Name, func(ctx context.Context) (bool, error) {
			_, err := e.Clientset.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		})
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := e.Clientset.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete test namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

func sanitizeLabel(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	for len(b) > 0 && !isAlnum(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	for len(b) > 0 && !isAlnum(b[0]) {
		b = b[1:]
	}
	return string(b)
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// WaitFor calls cond until it reports done, returns an error, or timeout
// passes; the last two fail the test with what was awaited.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) (done bool, err error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v after %s", what, err, time.Since(start).Round(time.Millisecond))
	}
}

// ModuleRoot returns the directory of podkit's go.mod, found from this
// source file's location or the working directory.
func ModuleRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && isPodkitModule(data) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("podkit module root not found")
}

func isPodkitModule(gomod []byte) bool {
	const want = "module github.com/podkit-dev/podkit\n"
	return len(gomod) >= len(want) && string(gomod[:len(want)]) == want
}

// Run runs fn in a goroutine until the test ends or stop is called: the
// context fn gets is canceled then, stop waits for fn to return, and a
// non-nil error fn returns fails the test, named by what. stop may be
// called more than once.
func Run(t testing.TB, what string, fn func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", what, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
