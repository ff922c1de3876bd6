package controller

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/podkit-dev/podkit/api/fcv1"
	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/pkg/framework"
	"github.com/podkit-dev/podkit/pkg/kueue"
)

// Defaults of the API client rate limits: FrameworkController's own.
const (
	DefaultQPS   = 80
	DefaultBurst = 120
)

type flags struct {
	metricsAddr             string
	metricsSecure           bool
	probeAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	leaderElectionID        string
	watchNamespace          string
	qps                     float32
	burst                   int
	maxConcurrentReconciles int
	creationConcurrency     int
	statusUpdateInterval    time.Duration
	releaseMinTasks         int
	configFile              string
	fcCompat                bool
	kueue                   bool
}

// NewCommand returns the `podkit controller` command.
func NewCommand(ctx context.Context, c *common.Common) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the Framework controller (podkit.dev/v1alpha1 Frameworks)",
		Long: `Run the Framework controller until interrupted. It creates one ConfigMap per
framework attempt and one pod per task ({framework}-{role}-{index}), records
pod IPs and completions in the Framework's status, and applies the retry and
completion policies.

Install the CRD and RBAC first: kubectl apply --server-side -f config/crd/bases
-f config/rbac. Run several replicas with --leader-elect for availability.`,
		Example: `  # against the current kubeconfig context, all namespaces
  podkit controller

  # in a Deployment
  podkit controller --leader-elect --metrics-bind-address :8443 --health-probe-bind-address :8081`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runE(cmd.Context(), c, f)
		},
	}
	cmd.SetContext(ctx)
	fs := cmd.Flags()
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8443", `address of the Prometheus /metrics endpoint ("0" disables it)`)
	fs.BoolVar(&f.metricsSecure, "metrics-secure", true, "serve /metrics over HTTPS, to callers the apiserver authenticates (TokenReview) and authorizes for GET /metrics (SubjectAccessReview); false serves plain HTTP to anyone")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", `address of the /healthz and /readyz endpoints ("0" disables them)`)
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "elect a leader through a Lease so that only one replica reconciles")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's namespace)")
	fs.StringVar(&f.leaderElectionID, "leader-election-id", "podkit-framework-controller.podkit.dev", "name of the leader election Lease")
	fs.StringVar(&f.watchNamespace, "watch-namespace", "", "reconcile Frameworks of this namespace only (default: all namespaces)")
	fs.Float32Var(&f.qps, "kube-api-qps", DefaultQPS, "queries per second to the apiserver")
	fs.IntVar(&f.burst, "kube-api-burst", DefaultBurst, "burst of queries to the apiserver")
	fs.IntVar(&f.maxConcurrentReconciles, "max-concurrent-reconciles", 4, "Frameworks reconciled at once")
	fs.IntVar(&f.creationConcurrency, "creation-concurrency", 32, "pod creations or deletions in flight per Framework")
	fs.BoolVar(&f.kueue, "kueue", false, "admit Frameworks labelled kueue.x-k8s.io/queue-name through Kueue (Workload per Framework, suspended until admitted; needs Kueue's CRDs and manager: podkit dev up --with-kueue)")
	fs.BoolVar(&f.fcCompat, "fc-compat", false, "also reconcile FrameworkController's frameworkcontroller.microsoft.com/v1 Frameworks (install config/fc-compat first)")
	fs.StringVar(&f.configFile, "config", "", "FrameworkController-format configuration file (podFailureSpec, frameworkMin/MaxRetryDelaySecForTransientConflictFailed); default: FC's defaults")
	fs.DurationVar(&f.statusUpdateInterval, "status-update-interval", time.Second, "shortest gap between progress-only status writes of one Framework (completions are written at once)")
	fs.IntVar(&f.releaseMinTasks, "barrier-release-min-tasks", v1.BarrierReleaseMinTasks, "publish the barrier release annotation on Frameworks of at least this many tasks (barriers of smaller ones watch the whole Framework); 1 publishes for every size")
	return cmd
}

// metricsOptions serves /metrics as kubebuilder's scaffold does by default:
// HTTPS (a self-signed certificate unless one is mounted) behind
// controller-runtime's authentication and authorization filter.
func (f *flags) metricsOptions() metricsserver.Options {
	o := metricsserver.Options{BindAddress: f.metricsAddr}
	if f.metricsSecure {
		o.SecureServing = true
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return o
}

func (f *flags) validate() error {
	switch {
	case f.qps <= 0:
		return clierr.Usagef("--kube-api-qps %v: must be positive", f.qps)
	case f.burst < 1:
		return clierr.Usagef("--kube-api-burst %d: must be at least 1", f.burst)
	case f.maxConcurrentReconciles < 1:
		return clierr.Usagef("--max-concurrent-reconciles %d: must be at least 1", f.maxConcurrentReconciles)
	case f.creationConcurrency < 1:
		return clierr.Usagef("--creation-concurrency %d: must be at least 1", f.creationConcurrency)
	case f.releaseMinTasks < 1:
		return clierr.Usagef("--barrier-release-min-tasks %d: must be at least 1 (1 publishes for every Framework)", f.releaseMinTasks)
	case f.statusUpdateInterval < 0:
		return clierr.Usagef("--status-update-interval %s: must not be negative", f.statusUpdateInterval)
	case f.leaderElect && f.leaderElectionID == "":
		return clierr.Usagef("--leader-election-id is empty: give the Lease a name or drop --leader-elect")
	}
	return nil
}

// Scheme returns the scheme the controller needs: client-go's types and
// podkit.dev/v1alpha1.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("add client-go types to scheme: %w", err)
	}
	if err := v1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("add podkit types to scheme: %w", err)
	}
	if err := fcv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("add FrameworkController types to scheme: %w", err)
	}
	return s, nil
}

func runE(ctx context.Context, c *common.Common, f *flags) error {
	if err := f.validate(); err != nil {
		return err
	}
	var fwConfig *framework.Config
	if f.configFile != "" {
		data, err := os.ReadFile(f.configFile)
		if err != nil {
			return clierr.Usagef("--config: %v", err)
		}
		if fwConfig, err = framework.LoadConfig(data); err != nil {
			return clierr.Usagef("--config %s: %v", f.configFile, err)
		}
		if len(fwConfig.Ignored) > 0 {
			c.Logger.Info("FrameworkController settings podkit does not use were ignored", "config", f.configFile, "keys", fwConfig.Ignored)
		}
	}
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = f.qps, f.burst
	logger := logr.FromSlogHandler(c.Logger.Handler())
	ctrl.SetLogger(logger)

	scheme, err := Scheme()
	if err != nil {
		return err
	}
	byObject, err := framework.CacheByObjectFor(cfg)
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	cacheOpts := cache.Options{ByObject: byObject}
	if f.watchNamespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{f.watchNamespace: {}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Logger:  logger,
		Cache:   cacheOpts,
		Metrics: f.metricsOptions(),
		// One controller per process; a process that runs this command
		// more than once (tests) would otherwise be refused the name.
		Controller:              ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
		HealthProbeBindAddress:  f.probeAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        f.leaderElectionID,
		LeaderElectionNamespace: f.leaderElectionNamespace,
		// Hand the Lease over at once on a clean shutdown.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("create controller manager: %w", err)
	}
	apis := []framework.API{framework.APIPodkit}
	if f.fcCompat {
		if _, err := mgr.GetRESTMapper().RESTMapping(fcv1.FrameworkGroupVersionKind.GroupKind(), fcv1.GroupVersion.Version); err != nil {
			return clierr.Usagef("--fc-compat: the cluster does not serve %s (%v); install it first: kubectl kustomize config/fc-compat | kubectl apply --server-side --force-conflicts -f -",
				fcv1.FrameworkGroupVersionKind.GroupVersion().WithResource("frameworks"), err)
		}
		apis = append(apis, framework.APIFrameworkController)
	}
	for _, api := range apis {
		r, err := framework.New(framework.Options{
			MaxConcurrentReconciles: f.maxConcurrentReconciles,
			CreationConcurrency:     f.creationConcurrency,
			StatusUpdateInterval:    f.statusUpdateInterval,
			ReleaseMinTasks:         f.releaseMinTasks,
			Config:                  fwConfig,
			API:                     api,
		})
		if err != nil {
			return err
		}
		if err := r.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	if f.kueue {
		r, err := kueue.New(kueue.Options{})
		if err != nil {
			return err
		}
		if err := r.SetupWithManager(mgr); err != nil {
			return clierr.Usagef("--kueue: %v", err)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add readiness check: %w", err)
	}
	c.Logger.Info("starting framework controller", "qps", f.qps, "burst", f.burst, "leaderElect", f.leaderElect, "watchNamespace", f.watchNamespace, "fcCompat", f.fcCompat, "kueue", f.kueue)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run controller manager: %w", err)
	}
	return nil
}
