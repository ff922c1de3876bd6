package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/podkit-dev/podkit/internal/devcluster"
	"github.com/podkit-dev/podkit/internal/k8sbin"
)

// apiserverDirPrefix names the work directories of envtest control planes,
// so one left by a killed test binary can be found and cleaned.
const apiserverDirPrefix = "podkit-testenv-api-"

// envtestPlane runs etcd and kube-apiserver through controller-runtime's
// envtest, from podkit's pinned binaries.
type envtestPlane struct {
	env     *envtest.Environment
	workdir string
	// restarted is the kube-apiserver started by restartAPIServer, which
	// envtest does not know about and stop must end.
	restarted *restartedProcess
}

func (p *envtestPlane) start(ctx context.Context, opts Options) (*rest.Config, string, error) {
	dir, err := k8sbin.Dir(k8sbin.Etcd, k8sbin.KubeAPIServer)
	if err != nil {
		return nil, "", err
	}
	for _, dir := range staleDirs(apiserverDirPrefix) {
		killAll(dir)
		_ = os.RemoveAll(dir)
	}
	if p.workdir, err = os.MkdirTemp("", apiserverDirPrefix); err != nil {
		return nil, "", fmt.Errorf("create work directory: %w", err)
	}
	if err := writeOwner(p.workdir); err != nil {
		return nil, "", err
	}
	// A certificate directory of our own survives an API server restart, so
	// clients keep trusting the server and their credentials stay valid.
	certDir := filepath.Join(p.workdir, "certs")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create certificate directory: %w", err)
	}
	p.env = &envtest.Environment{
		BinaryAssetsDirectory: dir,
		CRDDirectoryPaths:     opts.CRDDirectoryPaths,
		ErrorIfCRDPathMissing: true,
		Scheme:                opts.Scheme,
		// A busy 2-core machine needs far more than envtest's 20 s default
		// for a cold kube-apiserver to serve.
		ControlPlaneStartTimeout: opts.StartTimeout,
		ControlPlaneStopTimeout:  90 * time.Second,
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{CertDir: certDir, StopTimeout: 90 * time.Second},
			Etcd:      &envtest.Etcd{DataDir: filepath.Join(p.workdir, "etcd"), StopTimeout: 90 * time.Second},
		},
	}
	for k, v := range opts.APIServerArgs {
		p.env.ControlPlane.APIServer.Configure().Set(k, v)
	}
	// envtest picks free ports and releases them before the servers bind:
	// serialize with other starting control planes (see devcluster.LockPorts).
	unlock, err := devcluster.LockPorts(ctx)
	if err != nil {
		return nil, "", err
	}
	cfg, err := p.env.Start()
	unlock()
	if err != nil {
		return nil, "", err
	}
	kubeconfig := filepath.Join(p.workdir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, cfg); err != nil {
		return nil, "", err
	}
	return cfg, kubeconfig, nil
}

// restartAPIServer kills kube-apiserver outright, as a crash would, and
// starts it again with the same command line: same address, certificates and
// etcd data. envtest's own Stop/Start would wait for a graceful drain and
// regenerate state, which is neither fast nor what a crash looks like.
func (p *envtestPlane) restartAPIServer(ctx context.Context) error {
	// While it is down its port looks free: hold the port lock (as a
	// starting control plane does) until it listens again.
	unlock, err := devcluster.LockPorts(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	pids := devcluster.FindProcesses(k8sbin.KubeAPIServer, p.workdir)
	if len(pids) != 1 {
		return fmt.Errorf("find kube-apiserver: %d processes match %s", len(pids), p.workdir)
	}
	args, err := cmdline(pids[0])
	if err != nil {
		return err
	}
	port, err := securePort(args)
	if err != nil {
		return err
	}
	if err := killAndWait(ctx, pids[0], p.restarted); err != nil {
		return err
	}
	logPath := filepath.Join(p.workdir, "kube-apiserver-restarted.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open kube-apiserver log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kube-apiserver again: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.restarted = &restartedProcess{cmd: cmd, done: done}
	return waitListening(ctx, port, done, logPath)
}

func (p *envtestPlane) stop() error {
	var err error
	if p.restarted != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = killAndWait(ctx, p.restarted.cmd.Process.Pid, p.restarted)
		cancel()
	}
	if p.env != nil {
		if stopErr := p.env.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop envtest: %w", stopErr))
		}
	}
	if p.workdir != "" {
		_ = os.RemoveAll(p.workdir)
	}
	return err
}

func (p *envtestPlane) pids() []int {
	var pids []int
	if p.env == nil {
		return nil
	}
	for _, bin := range []string{k8sbin.Etcd, k8sbin.KubeAPIServer} {
		pids = append(pids, devcluster.FindProcesses(bin, p.workdir)...)
	}
	return pids
}

// writeKubeconfig writes a kubeconfig file with cfg's server and client
// certificate credentials.
func writeKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["testenv"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
	}
	kc.Contexts["testenv"] = &clientcmdapi.Context{Cluster: "testenv", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "testenv"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
