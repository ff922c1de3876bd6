// Package devcluster runs podkit's local Kubernetes clusters: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok simulated
// nodes, as plain processes started by kwokctl's binary runtime from the
// pinned binaries that make tools or podkit dev tools builds. Nothing is
// downloaded and no container engine is used. Containers never really run
// on kwok nodes.
package devcluster

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podkit-dev/podkit/internal/k8sbin"
)

// DefaultName is the cluster name podkit dev uses when --name is not given.
const DefaultName = "podkit"

// AnnotationExitCode, on a Running pod of a dev cluster, makes kwok
// terminate the pod's containers with the annotation's value as exit code:
// phase Succeeded for "0", Failed otherwise.
const AnnotationExitCode = "podkit.dev/test-exit-code"

//go:embed stages.yaml
var stages string

// Binaries are the pinned binaries Up starts a cluster from (a real node
// needs RealNodeBinaries besides).
var Binaries = []string{k8sbin.Etcd, k8sbin.KubeAPIServer, k8sbin.KubeControllerManager, k8sbin.KubeScheduler, k8sbin.Kubectl, k8sbin.Kwok, k8sbin.Kwokctl}

// ErrNotFound is returned for a cluster that does not exist.
var ErrNotFound = errors.New("cluster not found")

var validName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$`)

// Manager creates and controls clusters that live under one work directory.
type Manager struct {
	// Workdir holds one directory per cluster (kwokctl's KWOK_WORKDIR).
	Workdir string
	// Log receives kwokctl's progress output; nil discards it (it is still
	// quoted in errors).
	Log io.Writer
}

// DefaultWorkdir returns <podkit cache>/kwok.
func DefaultWorkdir() (string, error) {
	cache, err := k8sbin.CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "kwok"), nil
}

// State is what Status reports about a cluster.
type State string

// Cluster states.
const (
	// StateRunning means the API server answers /readyz.
	StateRunning State = "Running"
	// StateStopped means the cluster exists but its API server does not answer.
	StateStopped State = "Stopped"
)

// Status describes one cluster.
type Status struct {
	Name       string `json:"name"`
	State      State  `json:"state"`
	Kubeconfig string `json:"kubeconfig"`
	Server     string `json:"server,omitempty"`
	Version    string `json:"version,omitempty"`
	Nodes      int    `json:"nodes"`
}

// UpOptions configures Up.
type UpOptions struct {
	// Name of the cluster; default DefaultName. Lowercase letters, digits
	// and '-', at most 40 characters.
	Name string
	// Nodes is the number of kwok nodes to create; default 1.
	Nodes int
	// Timeout bounds the whole start; default 3 minutes.
	Timeout time.Duration
	// RealNode adds one node that really runs containers: a kubelet, a
	// containerd and runc on this machine (root only), labelled
	// LabelRealNode=true, beside the kwok nodes. A cluster created
	// without it keeps running without it.
	RealNode bool
	// NodeResources are resources every kwok node declares in its
	// status.capacity and allocatable besides kwok's cpu, memory and pods,
	// e.g. {"nvidia.com/gpu": "4"} for extended resources; default none.
	NodeResources map[string]string
	// NoGang leaves the upstream gang-scheduling API off: no
	// scheduling.k8s.io/v1beta1 and no GenericWorkload feature gate (see
	// GangFeatureGates). Default: on.
	NoGang bool
}

// GangFeatureGates is the feature gate a dev cluster's kube-apiserver,
// kube-controller-manager and kube-scheduler run with (unless
// UpOptions.NoGang): GenericWorkload, beta and off by default in
// Kubernetes 1.37, serves the Workload and PodGroup API, lets pods name
// their group in spec.schedulingGroup and adds the GangScheduling plugin to
// the scheduler's default profile.
const GangFeatureGates = "GenericWorkload=true"

// GangRuntimeConfig is the kube-apiserver --runtime-config that serves
// scheduling.k8s.io/v1beta1 (Workload, PodGroup), a beta API off by default.
const GangRuntimeConfig = "scheduling.k8s.io/v1beta1=true"

func (o *UpOptions) setDefaults() {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
}

func validateName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid cluster name %q: use 1-40 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

func (o *UpOptions) validate() error {
	if err := validateName(o.Name); err != nil {
		return err
	}
	if o.RealNode {
		if err := checkRealNodePrerequisites(); err != nil {
			return fmt.Errorf("--real-node: %w", err)
		}
	}
	if o.Nodes < 0 || o.Nodes > 1000 {
		return fmt.Errorf("invalid nodes %d: use a number from 1 to 1000", o.Nodes)
	}
	for name, q := range o.NodeResources {
		if !validResourceName.MatchString(name) {
			return fmt.Errorf("invalid node resource name %q: use a qualified name such as nvidia.com/gpu", name)
		}
		if _, err := resource.ParseQuantity(q); err != nil {
			return fmt.Errorf("invalid quantity %q of node resource %s: %w", q, name, err)
		}
	}
	return nil
}

// validResourceName is a resource name kwokctl's parameter expressions can
// quote: an optional DNS prefix and a name.
var validResourceName = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

// UpResult says what Up did.
type UpResult struct {
	Status
	// Action is "created", "already running" or "restarted".
	Action string
}

// Dir returns the directory of the named cluster.
func (m *Manager) Dir(name string) string { return filepath.Join(m.Workdir, "clusters", name) }

// KubeconfigPath returns the path of the named cluster's kubeconfig.
func (m *Manager) KubeconfigPath(name string) string {
	return filepath.Join(m.Dir(name), "kubeconfig.yaml")
}

// Up makes sure the named cluster is running: it creates it, restarts a
// stopped one, or reports that it already runs. A cluster left half-created
// by a killed run is deleted and created again, never left half-up.
func (m *Manager) Up(ctx context.Context, opts UpOptions) (*UpResult, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	if _, err := os.Stat(m.Dir(opts.Name)); err == nil {
		if opts.RealNode && m.complete(opts.Name) && !m.hasRealNode(opts.Name) {
			return nil, fmt.Errorf("--real-node: cluster %q was created without a real node, which cannot be added later (its apiserver is configured at creation): podkit dev down --name %s, then podkit dev up --name %s --real-node", opts.Name, opts.Name, opts.Name)
		}
		st, err := m.Status(ctx, opts.Name)
		if err == nil && st.State == StateRunning {
			if !m.hasRealNode(opts.Name) {
				return &UpResult{Status: *st, Action: "already running"}, nil
			}
			// A killed kubelet or containerd is started again; the
			// containers kept running under their shims.
			if m.realNodeRunning(opts.Name) {
				return &UpResult{Status: *st, Action: "already running"}, nil
			}
			if err := m.restartRealNode(ctx, opts.Name); err != nil {
				return nil, err
			}
			return &UpResult{Status: *st, Action: "restarted"}, nil
		}
		if m.complete(opts.Name) {
			if err := m.withPortLock(ctx, func() error { return m.kwokctl(ctx, opts.Name, "start", "cluster") }); err == nil {
				if st, err := m.waitReady(ctx, opts.Name); err == nil {
					if m.hasRealNode(opts.Name) {
						if err := m.restartRealNode(ctx, opts.Name); err != nil {
							return nil, err
						}
					}
					return &UpResult{Status: *st, Action: "restarted"}, nil
				}
			}
		}
		// Half-created or unrecoverable: remove it and start over.
		if err := m.remove(ctx, opts.Name); err != nil {
			return nil, fmt.Errorf("clean up broken cluster %q: %w", opts.Name, err)
		}
	}

	unlock, err := LockPorts(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.create(ctx, opts); err != nil {
		// Never leave a half-up cluster behind.
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return nil, errors.Join(err, m.remove(cleanupCtx, opts.Name))
	}
	st, err := m.waitReady(ctx, opts.Name)
	if err != nil {
		return nil, err
	}
	return &UpResult{Status: *st, Action: "created"}, nil
}

func (m *Manager) create(ctx context.Context, opts UpOptions) error {
	// Checked under the port lock Up holds, so two clusters never both
	// start one.
	if opts.RealNode {
		if other := otherRealNode(m.Dir(opts.Name)); other != "" {
			return fmt.Errorf("%w: node %s (stop its cluster with podkit dev down, or run without --real-node)", ErrRealNodeBusy, other)
		}
	}
	cfg, err := m.config(opts.Name, opts.RealNode, !opts.NoGang)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.Workdir, 0o755); err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	cfgFile := filepath.Join(m.Workdir, opts.Name+".kwokctl.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("write kwokctl configuration: %w", err)
	}
	defer os.Remove(cfgFile)
	if err := m.kwokctl(ctx, opts.Name, "create", "cluster", "--config", cfgFile, "--timeout", "2m", "--wait", "2m"); err != nil {
		return err
	}
	if opts.Nodes > 0 {
		args := []string{"scale", "node", "--replicas", fmt.Sprint(opts.Nodes)}
		names := make([]string, 0, len(opts.NodeResources))
		for name := range opts.NodeResources {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			// kwokctl's node template copies allocatable into capacity.
			args = append(args, "--param", fmt.Sprintf(".allocatable[%q] = %q", name, opts.NodeResources[name]))
		}
		if err := m.kwokctl(ctx, opts.Name, args...); err != nil {
			return err
		}
	}
	if opts.RealNode {
		st, err := m.newNodeState(opts.Name)
		if err != nil {
			return err
		}
		if err := m.startRealNode(ctx, opts.Name, st); err != nil {
			return fmt.Errorf("start the real node: %w", err)
		}
	}
	// A marker written last: a directory without it was interrupted.
	return os.WriteFile(filepath.Join(m.Dir(opts.Name), ".podkit-complete"), nil, 0o644)
}

func (m *Manager) complete(name string) bool {
	_, err := os.Stat(filepath.Join(m.Dir(name), ".podkit-complete"))
	return err == nil
}

// LogsFileName is the file, in a cluster's directory (Dir), whose content the
// kwok nodes serve as every container's log (kubectl logs, the pods/log API).
const LogsFileName = "container.log"

// config renders the kwokctl configuration: binary runtime, every binary
// from the podkit cache, podkit's stages, container logs served from
// LogsFileName and, with gang, the upstream gang-scheduling API enabled.
func (m *Manager) config(name string, realNode, gang bool) (string, error) {
	fields := []struct{ key, bin string }{
		{"kubeApiserverBinary", k8sbin.KubeAPIServer},
		{"kubeControllerManagerBinary", k8sbin.KubeControllerManager},
		{"kubeSchedulerBinary", k8sbin.KubeScheduler},
		{"kubectlBinary", k8sbin.Kubectl},
		{"etcdBinary", k8sbin.Etcd},
		{"kwokControllerBinary", k8sbin.Kwok},
	}
	var b strings.Builder
	b.WriteString("apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokctlConfiguration\noptions:\n")
	b.WriteString("  runtime: binary\n  kubeVersion: " + k8sbin.Version + "\n  disableQPSLimits: true\n")
	// A restarted kwok (kwokctl stop/start, a crash) has a new identity and
	// drives no pod until the node leases of the old one expire: keep them
	// short (renewed every 5 s) so that it takes over within 20 s.
	b.WriteString("  nodeLeaseDurationSeconds: 20\n")
	if gang {
		// kwokctl passes the gates to kube-apiserver, kube-controller-manager
		// and kube-scheduler, whose default profile then has GangScheduling.
		fmt.Fprintf(&b, "  kubeFeatureGates: %q\n  kubeRuntimeConfig: %q\n", GangFeatureGates, GangRuntimeConfig)
	}
	if realNode {
		// Real pods need the admission plugins a cluster runs (ServiceAccount
		// mounts the token in-cluster clients read, among others); kwok-only
		// clusters keep kwokctl's default of none.
		b.WriteString("  kubeAdmission: true\n")
	}
	// Pods on a real node reach the apiserver through the kubernetes
	// Service (10.0.0.1, the first address of the apiserver's default
	// service range) or at the machine's address.
	sans := []string{"10.0.0.1"}
	if ip, err := hostIP(); err == nil {
		sans = append(sans, ip)
	}
	b.WriteString("  kubeApiserverCertSANs:\n")
	for _, san := range sans {
		fmt.Fprintf(&b, "  - %q\n", san)
	}
	for _, f := range fields {
		p, err := k8sbin.Path(f.bin)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "  %s: %q\n", f.key, p)
	}
	// One scheduler and one controller-manager need no leader election;
	// with it, an apiserver down for longer than the 10 s renew deadline
	// (a restart on a loaded machine) made both exit for good, and nothing
	// restarts them.
	b.WriteString(`componentsPatches:
- name: kube-scheduler
  extraArgs:
  - {key: leader-elect, value: "false"}
- name: kube-controller-manager
  extraArgs:
  - {key: leader-elect, value: "false"}
`)
	if realNode {
		// kwok drives only the nodes kwokctl creates (annotated
		// kwok.x-k8s.io/node=fake), never the real kubelet's node, and gives
		// them this machine's address, where it serves their logs. The
		// apiserver reaches every kubelet by InternalIP (the real node's
		// Hostname address is its node name, which resolves nowhere) and
		// authenticates to it with the cluster's client certificate (kubectl
		// logs, exec).
		ip, err := hostIP()
		if err != nil {
			return "", err
		}
		pki := filepath.Join(m.Dir(name), "pki")
		fmt.Fprintf(&b, `- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false", override: true}
  - {key: manage-nodes-with-annotation-selector, value: "kwok.x-k8s.io/node=fake"}
  - {key: node-ip, value: %q, override: true}
- name: kube-apiserver
  extraArgs:
  - {key: kubelet-preferred-address-types, value: "InternalIP"}
  - {key: kubelet-client-certificate, value: %q}
  - {key: kubelet-client-key, value: %q}
`, ip, filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key"))
	}
	b.WriteString("---\n")
	b.WriteString(stages)
	logs := filepath.Join(m.Dir(name), LogsFileName)
	fmt.Fprintf(&b, "\n---\napiVersion: kwok.x-k8s.io/v1alpha1\nkind: ClusterLogs\nmetadata:\n  name: podkit-container-logs\nspec:\n  logs:\n  - logsFile: %q\n", logs)
	return b.String(), nil
}

// Down stops and deletes the named cluster and its data.
func (m *Manager) Down(ctx context.Context, name string) error {
	if err := m.Lookup(name); err != nil {
		return err
	}
	return m.remove(ctx, name)
}

func (m *Manager) remove(ctx context.Context, name string) error {
	var nodeErr error
	if m.hasRealNode(name) {
		nodeErr = m.stopRealNode(ctx, name)
	}
	err := m.kwokctl(ctx, name, "delete", "cluster")
	// Never delete the directory with something still mounted in it: the
	// removal would reach into the mounted trees. An unreadable mount
	// table counts as mounted.
	if pts, mErr := mountsUnder(m.Dir(name)); mErr != nil || len(pts) > 0 {
		return errors.Join(nodeErr, mErr, fmt.Errorf("cluster directory %s kept: %d mounts remain under it (%v); run podkit dev down again", m.Dir(name), len(pts), pts))
	}
	// kwokctl refuses clusters it cannot parse; the processes are gone or
	// were never started, so removing the directory finishes the job.
	if rmErr := os.RemoveAll(m.Dir(name)); rmErr != nil {
		return errors.Join(nodeErr, err, fmt.Errorf("remove cluster directory: %w", rmErr))
	}
	if nodeErr != nil {
		return fmt.Errorf("the real node stopped with errors (the cluster is removed): %w", nodeErr)
	}
	return nil
}

func (m *Manager) withPortLock(ctx context.Context, fn func() error) error {
	unlock, err := LockPorts(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

// List returns the names of the clusters under the work directory.
func (m *Manager) List() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(m.Workdir, "clusters"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Lookup returns nil when the named cluster exists, without contacting
// it, and an error wrapping ErrNotFound otherwise.
func (m *Manager) Lookup(name string) error {
	if err := validateName(name); err != nil {
		return err
	}
	if _, err := os.Stat(m.Dir(name)); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cluster %q: %w (list clusters with: podkit dev list; start one with: podkit dev up --name %s)", name, ErrNotFound, name)
	}
	return nil
}

// Status reports whether the named cluster's API server answers and, if so,
// its version and node count.
func (m *Manager) Status(ctx context.Context, name string) (*Status, error) {
	if err := m.Lookup(name); err != nil {
		return nil, err
	}
	st := &Status{Name: name, State: StateStopped, Kubeconfig: m.KubeconfigPath(name)}
	cfg, err := clientcmd.BuildConfigFromFlags("", st.Kubeconfig)
	if err != nil {
		return st, nil
	}
	st.Server = cfg.Host
	cfg.Timeout = 2 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return st, nil
	}
	if err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error(); err != nil {
		return st, nil
	}
	st.State = StateRunning
	if v, err := cs.Discovery().ServerVersion(); err == nil {
		st.Version = v.GitVersion
	}
	if nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		st.Nodes = len(nodes.Items)
	}
	return st, nil
}

func (m *Manager) waitReady(ctx context.Context, name string) (*Status, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := m.Status(ctx, name)
		if err == nil && st.State == StateRunning {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for cluster %q to be ready: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

// kwokctl runs one kwokctl command for the named cluster. Its output goes
// to m.Log and, on failure, its tail is quoted in the error.
func (m *Manager) kwokctl(ctx context.Context, name string, args ...string) error {
	bin, err := k8sbin.Path(k8sbin.Kwokctl)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	w := io.Writer(&out)
	if m.Log != nil {
		w = io.MultiWriter(&out, m.Log)
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--name", name}, args...)...)
	// kwokctl runs the first kubectl on PATH to probe the cluster; make it
	// the pinned one, not whatever the machine has (a slow wrapper, another
	// version).
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+m.Workdir, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kwokctl %s: %w: %s", strings.Join(args, " "), err, tail(out.String(), 800))
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
