package vcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/podkit-dev/podkit/internal/k8sbin"
	"github.com/podkit-dev/podkit/internal/vdns"
	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// Options configure Up and Down.
type Options struct {
	// Name names the virtual cluster and suffixes its host objects. Required.
	Name string
	// HostNamespace receives the synced objects; created by Up, deleted by Down. Required.
	HostNamespace string
	// HostConfig reaches the host cluster. Required.
	HostConfig *rest.Config
	// StateDir holds etcd data, certificates, the kubeconfig and logs.
	// Default: <podkit cache>/vclusters/<Name>.
	StateDir string
	// Sync lists the built-in syncers to run. Default: every built-in.
	Sync []string
	// Workers per syncer. Default: syncer.DefaultWorkers.
	Workers int
	// Policy says which host-level settings virtual objects may carry to
	// the host (podkit dev vcluster up --allow). Default: none.
	Policy synccontext.Policy
	// Logger receives progress and syncer logs. Default: discard.
	Logger *slog.Logger
	// DNSAddress is the host:port the virtual cluster's DNS server (see
	// internal/vdns) binds for UDP and TCP; its IP becomes the nameserver
	// of synced pods (syncer PodNetwork.DNS), which query port 53, so on a
	// host whose pods run for real it must be an address they reach, port
	// 53. Default: 127.0.0.1 and a free port (enough for kwok nodes, whose
	// pods send no packets, and for resolving from this machine).
	DNSAddress string
	// DNSUpstream is the "IP:port" of a resolver the DNS server relays
	// names outside the cluster domain to (e.g. the host cluster's DNS
	// Service). Default: unset, such names are REFUSED.
	DNSUpstream string
	// Ready is called once the virtual API server and its DNS server
	// answer, before the syncer starts. Optional.
	Ready func(Access)
}

// Access says how to reach a virtual cluster that is up.
type Access struct {
	// Kubeconfig is the path of the virtual cluster's kubeconfig.
	Kubeconfig string
	// DNS is the host:port of its DNS server, which answers for
	// synccontext.DefaultClusterDomain.
	DNS string
}

func (o *Options) setDefaults() error {
	if o.StateDir == "" {
		cache, err := k8sbin.CacheDir()
		if err != nil {
			return err
		}
		o.StateDir = filepath.Join(cache, "vclusters", o.Name)
	}
	if len(o.Sync) == 0 {
		o.Sync = resources.Names()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DNSAddress == "" {
		o.DNSAddress = vdns.DefaultAddr
	}
	return nil
}

func (o *Options) validate() error {
	var errs []error
	if err := translator.ValidateVirtualClusterName(o.Name); err != nil {
		errs = append(errs, fmt.Errorf("Name: %w", err))
	}
	if o.HostNamespace == "" {
		errs = append(errs, errors.New("HostNamespace is empty; set the host namespace that receives synced objects"))
	}
	if o.HostConfig == nil {
		errs = append(errs, errors.New("HostConfig is nil; pass the host cluster's *rest.Config"))
	}
	return errors.Join(errs...)
}

// KubeconfigPath returns where Up writes the virtual cluster's kubeconfig.
func (o *Options) KubeconfigPath() string { return filepath.Join(o.StateDir, "kubeconfig") }

func (o *Options) pidFile() string { return filepath.Join(o.StateDir, "up.pid") }

// Up starts the virtual control plane and the syncer and runs until ctx
// ends; then it stops every process it started. etcd data is kept in
// StateDir, so the next Up resumes the same virtual cluster.
func Up(ctx context.Context, opts Options) (retErr error) {
	if err := opts.setDefaults(); err != nil {
		return err
	}
	if err := opts.validate(); err != nil {
		return fmt.Errorf("invalid vcluster options: %w", err)
	}
	if pid, alive := running(opts.pidFile()); alive {
		return fmt.Errorf("virtual cluster %s is already up (pid %d)", opts.Name, pid)
	}
	hostCS, err := kubernetes.NewForConfig(opts.HostConfig)
	if err != nil {
		return fmt.Errorf("create host client: %w", err)
	}
	if _, err := hostCS.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("reach host cluster at %s: %w", opts.HostConfig.Host, err)
	}
	certDir := filepath.Join(opts.StateDir, "certs")
	if err := os.RemoveAll(certDir); err != nil {
		return fmt.Errorf("reset certificates: %w", err)
	}
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	if err := os.WriteFile(opts.pidFile(), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	defer func() { retErr = errors.Join(retErr, ignoreNotExist(os.Remove(opts.pidFile()))) }()

	binDir, err := k8sbin.Dir(k8sbin.Etcd, k8sbin.KubeAPIServer)
	if err != nil {
		return err
	}
	api := &envtest.APIServer{CertDir: certDir}
	api.Configure().Set("shutdown-send-retry-after", "true")
	env := &envtest.Environment{
		BinaryAssetsDirectory: binDir,
		ControlPlane:          envtest.ControlPlane{APIServer: api, Etcd: &envtest.Etcd{DataDir: filepath.Join(opts.StateDir, "etcd")}},
	}
	opts.Logger.Info("starting virtual control plane", "name", opts.Name, "stateDir", opts.StateDir)
	virtualCfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start virtual etcd and kube-apiserver: %w", err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("stop virtual control plane: %w", err))
		}
	}()
	if err := writeKubeconfig(opts.KubeconfigPath(), opts.Name, virtualCfg); err != nil {
		return err
	}

	kcmCtx, stopKCM := context.WithCancel(ctx)
	kcmDone, err := startControllerManager(kcmCtx, opts, certDir)
	if err != nil {
		stopKCM()
		return err
	}
	defer func() {
		stopKCM()
		<-kcmDone
	}()

	dnsAddr, stopDNS, err := startDNS(ctx, opts, virtualCfg)
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, stopDNS()) }()
	dnsIP, _, _ := net.SplitHostPort(dnsAddr) // the listener's own address

	if err := ensureNamespace(ctx, hostCS, opts.HostNamespace); err != nil {
		return err
	}
	rc, err := syncer.NewRegisterContext(ctx, syncer.Options{
		VirtualConfig: virtualCfg, HostConfig: opts.HostConfig, TargetNamespace: opts.HostNamespace,
		Name: opts.Name, Workers: opts.Workers, Logger: logr.FromSlogHandler(opts.Logger.Handler()),
		Policy:     opts.Policy,
		PodNetwork: synccontext.PodNetwork{DNS: dnsIP, ClusterDomain: synccontext.DefaultClusterDomain},
	})
	if err != nil {
		return err
	}
	plugins, err := resources.New(rc, opts.Sync)
	if err != nil {
		return err
	}
	if opts.Ready != nil {
		opts.Ready(Access{Kubeconfig: opts.KubeconfigPath(), DNS: dnsAddr})
	}
	return syncer.Start(rc, plugins...)
}

// Down deletes the host namespace of the virtual cluster (and so every
// synced object) and its state directory. It refuses while Up runs.
func Down(ctx context.Context, opts Options) error {
	if err := opts.setDefaults(); err != nil {
		return err
	}
	if err := opts.validate(); err != nil {
		return fmt.Errorf("invalid vcluster options: %w", err)
	}
	if pid, alive := running(opts.pidFile()); alive {
		return fmt.Errorf("virtual cluster %s is up (pid %d); stop it first (Ctrl-C or kill %d)", opts.Name, pid, pid)
	}
	hostCS, err := kubernetes.NewForConfig(opts.HostConfig)
	if err != nil {
		return fmt.Errorf("create host client: %w", err)
	}
	err = hostCS.CoreV1().Namespaces().Delete(ctx, opts.HostNamespace, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete host namespace %s: %w", opts.HostNamespace, err)
	}
	if err := os.RemoveAll(opts.StateDir); err != nil {
		return fmt.Errorf("remove state directory: %w", err)
	}
	return nil
}

// startDNS serves the virtual cluster's names (internal/vdns) from its
// Services and EndpointSlices on opts.DNSAddress until stop is called or
// ctx ends; stop waits for every goroutine it started.
func startDNS(ctx context.Context, opts Options, virtualCfg *rest.Config) (addr string, stop func() error, err error) {
	cs, err := kubernetes.NewForConfig(virtualCfg)
	if err != nil {
		return "", nil, fmt.Errorf("create virtual client for DNS: %w", err)
	}
	src := vdns.NewClusterSource(cs)
	srv, err := vdns.Listen(vdns.Options{
		Addr: opts.DNSAddress, Domain: synccontext.DefaultClusterDomain, Source: src, Upstream: opts.DNSUpstream,
		Logger: opts.Logger.With("component", "dns"),
	})
	if err != nil {
		return "", nil, fmt.Errorf("start virtual DNS: %w", err)
	}
	dnsCtx, cancel := context.WithCancel(ctx)
	src.Start(dnsCtx.Done())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(dnsCtx) }()
	opts.Logger.Info("virtual DNS serving", "address", srv.Addr(), "domain", synccontext.DefaultClusterDomain)
	return srv.Addr(), func() error {
		cancel()
		err := <-done
		src.Shutdown()
		return err
	}, nil
}

// controllers the virtual controller manager runs: everything but what
// needs real nodes, volumes or a cloud (fake nodes must not be evicted), and
// the EndpointSlice controller: the services syncer copies the host's
// EndpointSlices up, so the host is the one source of a Service's endpoints.
const controllers = "*,-nodelifecycle,-nodeipam,-persistentvolume-binder," +
	"-attachdetach,-persistentvolume-expander,-ttl,-bootstrapsigner,-tokencleaner,-endpointslice"

func startControllerManager(ctx context.Context, opts Options, certDir string) (<-chan struct{}, error) {
	bin, err := k8sbin.Path(k8sbin.KubeControllerManager)
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(opts.StateDir, "kube-controller-manager.log"))
	if err != nil {
		return nil, fmt.Errorf("create controller manager log: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin,
		"--kubeconfig="+opts.KubeconfigPath(),
		"--leader-elect=false",
		"--controllers="+controllers,
		"--service-account-private-key-file="+filepath.Join(certDir, "sa-signer.key"),
		"--use-service-account-credentials=false",
		"--secure-port=0",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start kube-controller-manager: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer logFile.Close()
		if err := cmd.Wait(); err != nil && ctx.Err() == nil {
			opts.Logger.Error("kube-controller-manager exited", "err", err, "log", logFile.Name())
		}
	}()
	return done, nil
}

func writeKubeconfig(path, name string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface, ns string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create host namespace %s: %w", ns, err)
	}
	return nil
}

// running reports the pid in pidFile and whether that process is alive.
func running(pidFile string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, syscall.Kill(pid, 0) == nil
}

func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
