package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/podkit-dev/podkit/internal/k8sbin"
)

// envtestPlane runs etcd and kube-apiserver through controller-runtime's
// envtest, from podkit's pinned binaries.
type envtestPlane struct {
	env     *envtest.Environment
	workdir string
}

func (p *envtestPlane) start(ctx context.Context, opts Options) (*rest.Config, string, error) {
	dir, err := k8sbin.Dir(k8sbin.Etcd, k8sbin.KubeAPIServer)
	if err != nil {
		return nil, "", err
	}
	if p.workdir, err = os.MkdirTemp("", "podkit-testenv-"); err != nil {
		return nil, "", fmt.Errorf("create work directory: %w", err)
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
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{CertDir: certDir},
			Etcd:      &envtest.Etcd{DataDir: filepath.Join(p.workdir, "etcd")},
		},
	}
	cfg, err := p.env.Start()
	if err != nil {
		return nil, "", err
	}
	kubeconfig := filepath.Join(p.workdir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, cfg); err != nil {
		return nil, "", err
	}
	return cfg, kubeconfig, nil
}

func (p *envtestPlane) restartAPIServer(context.Context) error {
	api := p.env.ControlPlane.APIServer
	if err := api.Stop(); err != nil {
		return fmt.Errorf("stop kube-apiserver: %w", err)
	}
	if err := api.Start(); err != nil {
		return fmt.Errorf("start kube-apiserver: %w", err)
	}
	return nil
}

func (p *envtestPlane) stop() error {
	var err error
	if p.env != nil {
		if stopErr := p.env.Stop(); stopErr != nil {
			err = fmt.Errorf("stop envtest: %w", stopErr)
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
		pids = append(pids, findProcesses(bin, p.workdir)...)
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
