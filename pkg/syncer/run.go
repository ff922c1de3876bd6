package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// Defaults of Options.
const (
	DefaultName    = "vcluster"
	DefaultWorkers = 4
	DefaultQPS     = 200
	DefaultBurst   = 400
)

// Options configure NewRegisterContext.
type Options struct {
	// VirtualConfig reaches the virtual cluster's API server. Required.
	VirtualConfig *rest.Config
	// HostConfig reaches the host cluster's API server. Required.
	HostConfig *rest.Config
	// TargetNamespace is the host namespace that receives synced objects. Required.
	TargetNamespace string
	// CurrentNamespace is the host namespace the syncer runs in. Default: TargetNamespace.
	CurrentNamespace string
	// Name is the virtual cluster's name, the suffix of host object names.
	// Default: "vcluster".
	Name string
	// Workers is the number of concurrent reconciles per syncer. Default: 4.
	Workers int
	// QPS limits requests per second of each client (virtual and host). Default: 200.
	QPS float32
	// Burst is the client rate limiter's burst. Default: 400.
	Burst int
	// Scheme knows every Resource the syncers use. Default: client-go's scheme.
	Scheme *runtime.Scheme
	// Logger receives the syncers' logs. Default: discard.
	Logger logr.Logger
	// ReachTimeout bounds the check that both API servers answer. Default: 10s.
	ReachTimeout time.Duration
	// Policy says which host-level settings (privileged pods, hostPath,
	// NodePort Services, all Secrets, …) virtual objects may carry to the
	// host. Default: none (see synccontext.Policy).
	Policy synccontext.Policy
	// PodNetwork says where host pods find the virtual API server and the
	// virtual cluster's DNS. Default: unset, host pods keep the host's
	// (see synccontext.PodNetwork).
	PodNetwork synccontext.PodNetwork
}

func (o *Options) setDefaults() {
	if o.CurrentNamespace == "" {
		o.CurrentNamespace = o.TargetNamespace
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.QPS == 0 {
		o.QPS = DefaultQPS
	}
	if o.Burst == 0 {
		o.Burst = DefaultBurst
	}
	if o.Scheme == nil {
		o.Scheme = clientgoscheme.Scheme
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.ReachTimeout == 0 {
		o.ReachTimeout = 10 * time.Second
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.VirtualConfig == nil {
		errs = append(errs, errors.New("VirtualConfig is nil; pass the virtual cluster's *rest.Config"))
	}
	if o.HostConfig == nil {
		errs = append(errs, errors.New("HostConfig is nil; pass the host cluster's *rest.Config"))
	}
	if o.TargetNamespace == "" {
		errs = append(errs, errors.New("TargetNamespace is empty; set the host namespace that receives synced objects"))
	}
	if err := translator.ValidateVirtualClusterName(o.Name); err != nil {
		errs = append(errs, fmt.Errorf("Name: %w", err))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("Workers is %d; set a positive number or 0 for the default %d", o.Workers, DefaultWorkers))
	}
	if o.QPS < 0 || o.Burst < 0 {
		errs = append(errs, fmt.Errorf("QPS %v / Burst %d is negative; set positive numbers or 0 for the defaults", o.QPS, o.Burst))
	}
	if err := o.PodNetwork.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("PodNetwork: %w", err))
	}
	return errors.Join(errs...)
}

// NewRegisterContext checks that both API servers answer and builds the two
// managers (not started): the virtual one caches the whole virtual cluster,
// the host one only TargetNamespace and cluster-scoped objects.
func NewRegisterContext(ctx context.Context, opts Options) (*synccontext.RegisterContext, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("invalid syncer options: %w", err)
	}
	virtualCfg := withRate(opts.VirtualConfig, opts.QPS, opts.Burst)
	hostCfg := withRate(opts.HostConfig, opts.QPS, opts.Burst)
	if err := reach(virtualCfg, opts.ReachTimeout); err != nil {
		return nil, fmt.Errorf("reach virtual cluster at %s: %w", virtualCfg.Host, err)
	}
	if err := reach(hostCfg, opts.ReachTimeout); err != nil {
		return nil, fmt.Errorf("reach host cluster at %s: %w", hostCfg.Host, err)
	}
	common := manager.Options{
		Scheme:                 opts.Scheme,
		Logger:                 opts.Logger,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller: config.Controller{
			SkipNameValidation: ptr.To(true),
			RecoverPanic:       ptr.To(true),
		},
	}
	virtualMgr, err := manager.New(virtualCfg, common)
	if err != nil {
		return nil, fmt.Errorf("create virtual manager: %w", err)
	}
	hostOpts := common
	hostOpts.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{opts.TargetNamespace: {}}}
	hostMgr, err := manager.New(hostCfg, hostOpts)
	if err != nil {
		return nil, fmt.Errorf("create host manager: %w", err)
	}
	currentClient, err := client.New(hostCfg, client.Options{Scheme: opts.Scheme})
	if err != nil {
		return nil, fmt.Errorf("create host client: %w", err)
	}
	events, err := typedcorev1.NewForConfig(virtualCfg)
	if err != nil {
		return nil, fmt.Errorf("create virtual event client: %w", err)
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: events.Events("")})
	return &synccontext.RegisterContext{
		Context:                ctx,
		Options:                &synccontext.Options{Name: opts.Name, Workers: opts.Workers, Policy: opts.Policy, PodNetwork: opts.PodNetwork},
		TargetNamespace:        opts.TargetNamespace,
		CurrentNamespace:       opts.CurrentNamespace,
		CurrentNamespaceClient: currentClient,
		VirtualManager:         virtualMgr,
		PhysicalManager:        hostMgr,
		EventBroadcaster:       broadcaster,
	}, nil
}

func withRate(cfg *rest.Config, qps float32, burst int) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.QPS = qps
	c.Burst = burst
	return c
}

func reach(cfg *rest.Config, timeout time.Duration) error {
	c := rest.CopyConfig(cfg)
	c.Timeout = timeout
	dc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return err
	}
	if _, err := dc.ServerVersion(); err != nil {
		return err
	}
	return nil
}

// Start runs plug-ins until ctx.Context is done: Init of every plug-in, then
// RegisterIndices of every plug-in, then CheckHostAccess (a missing host
// permission is an error naming it, not a cache that never syncs), then it
// starts both managers, waits for
// their caches, and registers each Syncer, FakeSyncer and ControllerStarter
// (ModifyController runs here). It returns nil when the context ends, or the
// first error.
func Start(ctx *synccontext.RegisterContext, plugins ...Base) error {
	if err := Setup(ctx, plugins...); err != nil {
		return err
	}
	if err := CheckHostAccess(ctx, plugins...); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx.Context)
	defer cancel()
	errc := make(chan error, 2)
	for _, m := range []struct {
		name string
		mgr  manager.Manager
	}{{"virtual", ctx.VirtualManager}, {"host", ctx.PhysicalManager}} {
		go func() {
			if err := m.mgr.Start(runCtx); err != nil {
				errc <- fmt.Errorf("run %s manager: %w", m.name, err)
				return
			}
			errc <- nil
		}()
	}
	stop := func(err error) error {
		cancel()
		// Wait for both managers so no goroutine outlives Start.
		var errs []error
		if err != nil {
			errs = append(errs, err)
		}
		for range 2 {
			if e := <-errc; e != nil && err == nil {
				errs = append(errs, e)
			}
		}
		if ctx.EventBroadcaster != nil {
			ctx.EventBroadcaster.Shutdown()
		}
		return errors.Join(errs...)
	}
	for _, c := range []cache.Cache{ctx.VirtualManager.GetCache(), ctx.PhysicalManager.GetCache()} {
		if !c.WaitForCacheSync(runCtx) {
			return stop(nil)
		}
	}
	if err := Register(ctx, plugins...); err != nil {
		return stop(err)
	}
	select {
	case <-runCtx.Done():
		return stop(nil)
	case err := <-errc:
		errc <- nil // account for the manager that ended
		return stop(err)
	}
}

// Setup runs Init and then RegisterIndices of every plug-in that implements
// them, in that order, before the managers start.
func Setup(ctx *synccontext.RegisterContext, plugins ...Base) error {
	for _, p := range plugins {
		if i, ok := p.(Initializer); ok {
			if err := i.Init(ctx); err != nil {
				return fmt.Errorf("init %s: %w", p.Name(), err)
			}
		}
	}
	for _, p := range plugins {
		if i, ok := p.(IndicesRegisterer); ok {
			if err := i.RegisterIndices(ctx); err != nil {
				return fmt.Errorf("register indices of %s: %w", p.Name(), err)
			}
		}
	}
	return nil
}

// Register builds the controller of every Syncer, FakeSyncer and
// ControllerStarter among plugins. Call it after Setup; the managers may
// already run.
func Register(ctx *synccontext.RegisterContext, plugins ...Base) error {
	for _, p := range plugins {
		if s, ok := p.(Syncer); ok {
			if err := RegisterSyncer(ctx, s); err != nil {
				return err
			}
		}
		if s, ok := p.(FakeSyncer); ok {
			if err := RegisterFakeSyncer(ctx, s); err != nil {
				return err
			}
		}
		if s, ok := p.(ControllerStarter); ok {
			if err := s.Register(ctx); err != nil {
				return fmt.Errorf("register controller %s: %w", p.Name(), err)
			}
		}
	}
	return nil
}

func eventSource(name string) corev1.EventSource {
	return corev1.EventSource{Component: "podkit-syncer/" + name}
}
