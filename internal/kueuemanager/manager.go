package kueuemanager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/internal/k8sbin"
	"github.com/podkit-dev/podkit/internal/toolbuild"
)

// DefaultNamespace is the namespace Kueue's manager keeps its state in (the
// certificate Secret), as Kueue's install does.
const DefaultNamespace = "kueue-system"

// FrameworkExternalFramework names podkit's Framework in Kueue's
// configuration (integrations.externalFrameworks: Kind.version.group).
const FrameworkExternalFramework = "Framework.v1alpha1.podkit.dev"

// conversionCRDs are the CRDs whose conversion webhook Kueue's certificate
// rotator injects its CA into (Kueue v0.17.0's pkg/util/cert). The rotator
// reports ready only once every one of them declares a conversion webhook,
// so InstallCRDs declares one (at the manager's local webhook port).
var conversionCRDs = []string{"localqueues", "clusterqueues", "workloads", "cohorts", "multikueueclusters"}

// Options configures Start.
type Options struct {
	// Kubeconfig is the cluster's kubeconfig file. Required.
	Kubeconfig string
	// Dir receives the manager's configuration, certificates and log
	// (kueue.log). Required.
	Dir string
	// Binary is Kueue's manager; default toolbuild.KueueBinary of the
	// podkit cache.
	Binary string
	// CRDDir holds Kueue's CRDs; default toolbuild.KueueCRDDir of the
	// podkit cache.
	CRDDir string
	// Namespace is Kueue's own namespace, created when missing; default
	// DefaultNamespace.
	Namespace string
	// Log, when set, also receives the manager's output.
	Log io.Writer
	// Detach lets the manager outlive the calling process (podkit dev up;
	// StopDir ends it). Otherwise, on Linux, it is killed when the caller
	// dies without calling Stop (a test binary killed at its timeout).
	Detach bool
	// ReadyTimeout bounds the wait for the manager's readiness; default 2
	// minutes.
	ReadyTimeout time.Duration
}

func (o *Options) setDefaults() error {
	if o.Binary == "" || o.CRDDir == "" {
		cache, err := k8sbin.CacheDir()
		if err != nil {
			return err
		}
		if o.Binary == "" {
			o.Binary = toolbuild.KueueBinary(cache)
		}
		if o.CRDDir == "" {
			o.CRDDir = toolbuild.KueueCRDDir(cache)
		}
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	return nil
}

func (o *Options) validate() error {
	if o.Kubeconfig == "" {
		return errors.New("kueuemanager.Options.Kubeconfig is required")
	}
	if o.Dir == "" {
		return errors.New("kueuemanager.Options.Dir is required")
	}
	if st, err := os.Stat(o.Binary); err != nil || st.IsDir() {
		return fmt.Errorf("kueue manager %s: %w", o.Binary, k8sbin.ErrNotBuilt)
	}
	return nil
}

// Manager is a running Kueue manager.
type Manager struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
	// HealthAddr is the manager's health probe address (/healthz, /readyz).
	HealthAddr string
	// WebhookPort is the local port of the manager's webhook server.
	WebhookPort int
}

// Start installs Kueue's CRDs (declaring their conversion webhook at a
// local port), creates Kueue's namespace, writes the manager's
// configuration (no leader election, internal certificate management,
// podkit's Framework as an external framework, batch/job the only built-in
// integration, jobs without a queue name left alone, every listener on
// 127.0.0.1 and free ports, no visibility server) and runs the manager
// until Stop, returning once its /readyz answers OK.
func Start(ctx context.Context, opts Options) (*Manager, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", opts.Kubeconfig, err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	m := &Manager{HealthAddr: "127.0.0.1:" + strconv.Itoa(ports[0]), WebhookPort: ports[1], done: make(chan struct{}), log: filepath.Join(opts.Dir, "kueue.log")}
	if err := InstallCRDs(ctx, cfg, opts.CRDDir, m.WebhookPort); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opts.Namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s: %w", opts.Namespace, err)
	}
	// Kueue's install creates the rotator's Secret empty; the rotator fills it.
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opts.Namespace, Name: certSecret}}
	if err := c.Create(ctx, sec); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create secret %s/%s: %w", opts.Namespace, certSecret, err)
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "certs"), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", opts.Dir, err)
	}
	config := filepath.Join(opts.Dir, "config.yaml")
	if err := os.WriteFile(config, []byte(configuration(opts, m)), 0o644); err != nil {
		return nil, fmt.Errorf("write kueue's configuration: %w", err)
	}
	logFile, err := os.Create(m.log)
	if err != nil {
		return nil, fmt.Errorf("create kueue's log: %w", err)
	}
	var out io.Writer = logFile
	if opts.Log != nil {
		out = io.MultiWriter(logFile, opts.Log)
	}
	// Not CommandContext: the manager lives until Stop, not until ctx ends.
	m.cmd = exec.Command(opts.Binary, "--config", config, "--zap-log-level", "2")
	m.cmd.Env = append(os.Environ(), "KUBECONFIG="+opts.Kubeconfig)
	m.cmd.Stdout, m.cmd.Stderr = out, out
	// A session of its own: a closed terminal does not hang it up.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if !opts.Detach {
		dieWithParent(m.cmd.SysProcAttr)
	}
	if err := m.cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("start kueue's manager %s: %w", opts.Binary, err), logFile.Close())
	}
	if err := os.WriteFile(filepath.Join(opts.Dir, PIDFile), []byte(strconv.Itoa(m.cmd.Process.Pid)), 0o644); err != nil {
		return nil, errors.Join(fmt.Errorf("write kueue's pid file: %w", err), m.cmd.Process.Kill())
	}
	go func() {
		m.err = m.cmd.Wait()
		_ = logFile.Close()
		close(m.done)
	}()
	if err := m.waitReady(ctx, opts.ReadyTimeout, c, opts.Namespace, filepath.Join(opts.Dir, "certs")); err != nil {
		return nil, errors.Join(err, m.Stop())
	}
	return m, nil
}

// configuration is Kueue's config.kueue.x-k8s.io/v1beta2 Configuration.
func configuration(opts Options, m *Manager) string {
	return fmt.Sprintf(`apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: %s
health:
  healthProbeBindAddress: %s
metrics:
  bindAddress: "0"
webhook:
  host: 127.0.0.1
  port: %d
  certDir: %s
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: true
  webhookServiceName: kueue-webhook-service
  webhookSecretName: %s
manageJobsWithoutQueueName: false
integrations:
  frameworks:
  - batch/job
  externalFrameworks:
  - %s
featureGates:
  VisibilityOnDemand: false
`, opts.Namespace, m.HealthAddr, m.WebhookPort, filepath.Join(opts.Dir, "certs"), certSecret, FrameworkExternalFramework)
}

// certSecret is the Secret Kueue's certificate rotator writes its serving
// certificate into (Kueue's default internalCertManagement.webhookSecretName).
const certSecret = "kueue-webhook-server-cert"

// waitReady waits for the manager's /readyz. Meanwhile it does what the
// kubelet does for Kueue's Deployment, which mounts the rotator's Secret
// at the certificate directory: it copies the Secret's files there once
// the rotator has written them (the rotator waits for them before it
// reports ready). A later rotation is not copied.
func (m *Manager) waitReady(ctx context.Context, timeout time.Duration, c client.Client, ns, certDir string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + m.HealthAddr + "/readyz"
	copied := false
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case <-m.done:
			return false, fmt.Errorf("kueue's manager exited while starting (%v): %s", m.err, m.LogTail(20))
		default:
		}
		if !copied {
			sec := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: certSecret}, sec); err != nil || len(sec.Data["tls.crt"]) == 0 || len(sec.Data["tls.key"]) == 0 {
				return false, nil
			}
			for name, data := range sec.Data {
				if err := os.WriteFile(filepath.Join(certDir, name), data, 0o600); err != nil {
					return false, fmt.Errorf("write kueue's certificate: %w", err)
				}
			}
			copied = true
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("wait for kueue's manager to be ready at %s: %w; its log ends: %s", url, err, m.LogTail(20))
	}
	return nil
}

// PIDFile is the file, in Options.Dir, that holds the manager's process
// id, for Running and StopDir.
const PIDFile = "kueue.pid"

// Running returns the process id of the manager Start ran in dir, or 0
// when it no longer runs.
func Running(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, PIDFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0
	}
	argv0, _, _ := strings.Cut(string(cmdline), "\x00")
	if filepath.Base(argv0) != k8sbin.Kueue {
		return 0 // the pid was reused
	}
	return pid
}

// StopDir ends the manager Start ran in dir (from another process, e.g.
// podkit dev down) with SIGTERM, SIGKILL after 10 s, and waits until it is
// gone. A manager no longer running is not an error.
func StopDir(dir string) error {
	pid := Running(dir)
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop kueue's manager (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for Running(dir) != 0 {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(10 * time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// LogTail returns the last n lines of the manager's log.
func (m *Manager) LogTail(n int) string {
	data, _ := os.ReadFile(m.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogPath is the manager's log file.
func (m *Manager) LogPath() string { return m.log }

// Pid is the manager's process id.
func (m *Manager) Pid() int { return m.cmd.Process.Pid }

// Stop ends the manager with SIGTERM (SIGKILL after 10 s) and waits for it.
func (m *Manager) Stop() error {
	select {
	case <-m.done:
		return nil
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	return nil
}

// InstallCRDs creates or updates every CRD in dir (Kueue's, from its
// module) and waits until each is established. The CRDs Kueue's
// certificate rotator injects a CA into get a conversion webhook at
// https://127.0.0.1:webhookPort/convert: the rotator waits for them. The
// API server cannot verify that certificate (it names Kueue's in-cluster
// Service), so only the storage version, kueue.x-k8s.io/v1beta2, is
// usable: never request v1beta1.
func InstallCRDs(ctx context.Context, cfg *rest.Config, dir string, webhookPort int) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no kueue CRDs in %s (run: podkit dev tools --kueue): %w", dir, k8sbin.ErrNotBuilt)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		crd := &unstructured.Unstructured{}
		if err := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096).Decode(&crd.Object); err != nil {
			return fmt.Errorf("decode %s: %w", f, err)
		}
		plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		for _, p := range conversionCRDs {
			if p != plural {
				continue
			}
			conv := map[string]any{
				"strategy": "Webhook",
				"webhook": map[string]any{
					"conversionReviewVersions": []any{"v1"},
					"clientConfig":             map[string]any{"url": fmt.Sprintf("https://127.0.0.1:%d/convert", webhookPort)},
				},
			}
			if err := unstructured.SetNestedMap(crd.Object, conv, "spec", "conversion"); err != nil {
				return fmt.Errorf("declare %s's conversion webhook: %w", crd.GetName(), err)
			}
		}
		names = append(names, crd.GetName())
		existing := &unstructured.Unstructured{}
		existing.SetGroupVersionKind(crdGVK)
		err = c.Get(ctx, client.ObjectKey{Name: crd.GetName()}, existing)
		switch {
		case apierrors.IsNotFound(err):
			if err := c.Create(ctx, crd); err != nil {
				return fmt.Errorf("create CRD %s: %w", crd.GetName(), err)
			}
		case err != nil:
			return fmt.Errorf("get CRD %s: %w", crd.GetName(), err)
		default:
			// Keep a CA bundle the rotator injected earlier.
			if ca, ok, _ := unstructured.NestedString(existing.Object, "spec", "conversion", "webhook", "clientConfig", "caBundle"); ok {
				_ = unstructured.SetNestedField(crd.Object, ca, "spec", "conversion", "webhook", "clientConfig", "caBundle")
			}
			crd.SetResourceVersion(existing.GetResourceVersion())
			if err := c.Update(ctx, crd); err != nil {
				return fmt.Errorf("update CRD %s: %w", crd.GetName(), err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, name := range names {
		err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			crd := &unstructured.Unstructured{}
			crd.SetGroupVersionKind(crdGVK)
			if err := c.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, cond := range conds {
				m, _ := cond.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s to be established: %w", name, err)
		}
	}
	return nil
}

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
