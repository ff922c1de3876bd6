package fwtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/podkit-dev/podkit/api/fcv1"
	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/framework"
)

// Options say how to run the controller.
type Options struct {
	// Namespace limits the controller's cache to one namespace; empty
	// means all.
	Namespace string
	// QPS is the client's QPS and burst; 0 keeps env.Config's.
	QPS float32
	// Impersonate runs the controller as this user (e.g.
	// "system:serviceaccount:ns:name") instead of env's admin.
	Impersonate string
	// Reconciler are the controller's options; Registerer defaults to a
	// registry of its own, so that several controllers can run at once.
	Reconciler framework.Options
}

// Scheme knows client-go's types and both Framework APIs.
func Scheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1.AddToScheme, fcv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatalf("scheme: %v", err)
		}
	}
	return s
}

// Start runs a Framework controller on a manager of its own until the test
// ends (or until the returned stop function is called, which waits for it).
func Start(t testing.TB, env *testenv.Env, opts Options) (stop func()) {
	t.Helper()
	cfg := *env.Config
	if opts.QPS > 0 {
		cfg.QPS, cfg.Burst = opts.QPS, int(opts.QPS)
	}
	if opts.Impersonate != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: opts.Impersonate}
	}
	mo := ctrl.Options{
		Scheme:                 Scheme(t),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	}
	// The cache the podkit controller runs with: the Framework's own pods,
	// ConfigMaps and (where served) PodGroups.
	byObject, err := framework.CacheByObjectFor(&cfg)
	if err != nil {
		t.Fatalf("cache options: %v", err)
	}
	mo.Cache = cache.Options{ByObject: byObject}
	if opts.Namespace != "" {
		mo.Cache.DefaultNamespaces = map[string]cache.Config{opts.Namespace: {}}
	}
	mgr, err := ctrl.NewManager(&cfg, mo)
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	ro := opts.Reconciler
	if ro.Registerer == nil {
		ro.Registerer = prometheus.NewRegistry()
	}
	r, err := framework.New(ro)
	if err != nil {
		t.Fatalf("new framework reconciler: %v", err)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	return testenv.Run(t, "framework controller manager", mgr.Start)
}
