package devcluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podkit-dev/podkit/internal/k8sbin"
	"github.com/podkit-dev/podkit/internal/ociimage"
)

// Real-node binaries, found like the control plane's (k8sbin.Path).
const (
	binKubelet       = "kubelet"
	binKubeProxy     = "kube-proxy"
	binContainerd    = "containerd"
	binShim          = "containerd-shim-runc-v2"
	binCtr           = "ctr"
	binRunc          = "runc"
	binPause         = "pause"
	binRegistryHint  = "registryhint"
	cniBinDirDefault = "/usr/lib/cni"
)

// RealNodeBinaries are the binaries a real node needs besides the CNI
// plugins (bridge, host-local, loopback in CNIBinDir).
var RealNodeBinaries = []string{binKubelet, binKubeProxy, binContainerd, binShim, binCtr, binRunc, binPause, binRegistryHint}

// LabelRealNode is set to "true" on the real node, so that a pod that must
// really run selects it: nodeSelector {podkit.dev/real-node: "true"}. The
// node is also tainted LabelRealNode=true:NoSchedule, so that only pods that
// tolerate it (RealNodeToleration) land there: everything else stays on the
// kwok nodes, where a thousand pods cost nothing.
const LabelRealNode = "podkit.dev/real-node"

// RealNodeToleration is the toleration a pod needs to run on the real node.
var RealNodeToleration = corev1.Toleration{Key: LabelRealNode, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}

// SandboxImage is the pause image the real node's containerd uses for pod
// sandboxes. It is imported from the pause binary make tools builds.
const SandboxImage = "podkit.dev/pause:dev"

// CNIBinDir returns the directory of the CNI plugins: $PODKIT_CNI_BIN, or
// Debian's containernetworking-plugins directory.
func CNIBinDir() string {
	if d := os.Getenv("PODKIT_CNI_BIN"); d != "" {
		return d
	}
	return cniBinDirDefault
}

// nodeState is what a real node records about itself in <cluster>/node/node.json.
type nodeState struct {
	Name       string `json:"name"`
	IP         string `json:"ip"`
	Port       int    `json:"port"`
	Bridge     string `json:"bridge"`
	Subnet     string `json:"subnet"`
	CgroupRoot string `json:"cgroupRoot"`
	// RunDir holds containerd's sockets and state and the kubelet's root
	// directory (its sockets, pod volumes): a short path under /run, as a
	// unix socket path must stay under 108 bytes.
	RunDir string `json:"runDir"`
	// RegistryHintPort is where hack/registryhint answers containerd's
	// pulls with the import command to run.
	RegistryHintPort int `json:"registryHintPort"`
	// KubeletRoot is the kubelet's root directory (pod volumes, emptyDirs
	// included): on disk under the node's directory, unless that path is
	// too long for the unix sockets the kubelet creates in it, then under
	// RunDir (a tmpfs).
	KubeletRoot string `json:"kubeletRoot"`
	// KeepFirewallChain is set when KUBE-FIREWALL existed before the node
	// started (another Kubernetes on this machine): down leaves it alone.
	KeepFirewallChain bool `json:"keepFirewallChain,omitempty"`
}

// nodeDir is where a cluster's real node keeps its configuration, state and
// logs.
func (m *Manager) nodeDir(cluster string) string { return filepath.Join(m.Dir(cluster), "node") }

// RealNodeName returns the name the named cluster's real node registers.
func RealNodeName(cluster string) string { return cluster + "-node" }

// hasRealNode reports whether the cluster was created with a real node.
func (m *Manager) hasRealNode(cluster string) bool {
	_, err := os.Stat(filepath.Join(m.nodeDir(cluster), "node.json"))
	return err == nil
}

// checkRealNodePrerequisites says, before anything is created, what a real
// node lacks: root, a binary, or a CNI plugin.
func checkRealNodePrerequisites() error {
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("a real node runs containers and needs root: run podkit dev up --real-node as root"))
	}
	for _, b := range RealNodeBinaries {
		if _, err := k8sbin.Path(b); err != nil {
			errs = append(errs, err)
		}
	}
	if cgs, err := cgroupMounts(); err != nil || !slices.ContainsFunc(cgs, func(d string) bool { return filepath.Base(d) == "memory" || strings.Contains(filepath.Base(d), "cpu") }) {
		errs = append(errs, fmt.Errorf("no cgroup v1 cpu and memory hierarchies under /sys/fs/cgroup (found %v, %v): the real node is built and tested on cgroup v1 only; a cgroup v2 (unified) machine is not supported yet", cgs, err))
	}
	for _, tool := range []string{"iptables", "ip6tables", "iptables-save", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			errs = append(errs, fmt.Errorf("%s not found: apt-get install iptables iproute2 (kube-proxy writes the node's service rules with it)", tool))
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(CNIBinDir(), p)); err != nil {
			errs = append(errs, fmt.Errorf("CNI plugin %s not found in %s: install Debian's containernetworking-plugins or set PODKIT_CNI_BIN", p, CNIBinDir()))
		}
	}
	return errors.Join(errs...)
}

// hostIP returns the machine's first non-loopback IPv4 address: the kubelet
// refuses a loopback node IP, and pods reach the host there.
func hostIP() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("list interface addresses: %w", err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		return ipn.IP.String(), nil
	}
	return "", errors.New("no non-loopback IPv4 address on this machine: a real node needs one as its node IP")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newNodeState chooses the names and addresses of a cluster's real node.
// They derive from the cluster name so two clusters never share a bridge,
// a subnet or a cgroup.
func (m *Manager) newNodeState(cluster string) (*nodeState, error) {
	ip, err := hostIP()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// Everything host-wide derives from the cluster's directory, not its
	// name: two work directories may hold clusters of the same name.
	sum := sha256.Sum256([]byte(m.Dir(cluster)))
	dirSum := sum
	hintPort, err := freePort()
	if err != nil {
		return nil, err
	}
	// The kubelet binds <root>/pod-resources/<10 digits> and
	// <root>/device-plugins/kubelet.sock: keep them under 108 bytes.
	kubeletRoot := filepath.Join(m.nodeDir(cluster), "kubelet-root")
	if len(kubeletRoot)+len("/pod-resources/")+12 > 107 {
		kubeletRoot = filepath.Join("/run/podkit", hex.EncodeToString(sum[:6]), "kubelet")
	}
	return &nodeState{
		KubeletRoot:       kubeletRoot,
		RegistryHintPort:  hintPort,
		KeepFirewallChain: hasFirewallChain(),
		RunDir:            "/run/podkit/" + hex.EncodeToString(dirSum[:6]),
		Name:              RealNodeName(cluster),
		IP:                ip,
		Port:              port,
		Bridge:            "pk" + hex.EncodeToString(sum[:4]),
		Subnet:            fmt.Sprintf("10.%d.%d.0/24", 200+int(sum[4])%50, sum[5]),
		CgroupRoot:        "/podkit-" + cluster + "-" + hex.EncodeToString(sum[6:9]),
	}, nil
}

func (m *Manager) readNodeState(cluster string) (*nodeState, error) {
	b, err := os.ReadFile(filepath.Join(m.nodeDir(cluster), "node.json"))
	if err != nil {
		return nil, fmt.Errorf("read real node state: %w", err)
	}
	var st nodeState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse real node state: %w", err)
	}
	return &st, nil
}

// cgroupMounts returns the cgroup v1 controller hierarchies the kubelet
// uses; the kubelet fails when its cgroup root is missing from any.
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fields[sep+1] == "cgroup" {
			dirs = append(dirs, fields[4])
		}
	}
	return dirs, sc.Err()
}

// startRealNode configures and starts containerd and the kubelet of a
// cluster, imports the sandbox image, and waits for the node to be Ready.
// A node directory already there is reused (restart after a reboot or a
// killed process).
func (m *Manager) startRealNode(ctx context.Context, cluster string, st *nodeState) error {
	dir := m.nodeDir(cluster)
	if err := os.MkdirAll(st.RunDir, 0o700); err != nil {
		return fmt.Errorf("create real node run directory: %w", err)
	}
	for _, d := range []string{"containerd", "kubelet", "cni/net.d", "cni/ipam", "logs", "images"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("create real node directory: %w", err)
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "node.json"), b, 0o644); err != nil {
		return fmt.Errorf("write real node state: %w", err)
	}
	cgs, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, cg := range cgs {
		if err := os.MkdirAll(filepath.Join(cg, st.CgroupRoot), 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", filepath.Join(cg, st.CgroupRoot), err)
		}
	}
	if err := m.writeNodeConfig(cluster, st); err != nil {
		return err
	}
	if err := m.startRegistryHint(cluster, st); err != nil {
		return err
	}
	if err := m.startContainerd(ctx, cluster); err != nil {
		return err
	}
	if err := m.importSandboxImage(ctx, cluster); err != nil {
		return err
	}
	started := time.Now()
	if err := m.startKubelet(ctx, cluster, st); err != nil {
		return err
	}
	if err := m.waitNodeReady(ctx, cluster, st.Name, started); err != nil {
		return err
	}
	return m.startKubeProxy(ctx, cluster, st)
}

func (m *Manager) startRegistryHint(cluster string, st *nodeState) error {
	if m.daemonPid(cluster, binRegistryHint) != 0 {
		return nil
	}
	bin, err := k8sbin.Path(binRegistryHint)
	if err != nil {
		return err
	}
	_, err = m.startDaemon(cluster, binRegistryHint, []string{bin, "--addr", "127.0.0.1:" + strconv.Itoa(st.RegistryHintPort), "--node", m.nodeDir(cluster)}, nil)
	return err
}

// startKubeProxy runs kube-proxy in iptables mode for the real node, so
// that its pods reach Services (the kubernetes Service above all: in-cluster
// clients). It owns the host's KUBE-* service rules: one real node per
// machine runs at a time (see otherRealNode).
func (m *Manager) startKubeProxy(ctx context.Context, cluster string, st *nodeState) error {
	if m.daemonPid(cluster, binKubeProxy) != 0 {
		return nil
	}
	bin, err := k8sbin.Path(binKubeProxy)
	if err != nil {
		return err
	}
	metrics, err := freePort()
	if err != nil {
		return err
	}
	healthz, err := freePort()
	if err != nil {
		return err
	}
	argv := []string{bin,
		"--kubeconfig", m.KubeconfigPath(cluster),
		"--hostname-override", st.Name,
		"--proxy-mode", "iptables",
		"--cluster-cidr", st.Subnet,
		"--nodeport-addresses", "primary",
		// Masquerade service traffic, so that a pod reaching a Service
		// backed by a pod on the same bridge gets its reply through the
		// host (un-DNATed) even where br_netfilter is not loaded.
		"--masquerade-all",
		// Leave the machine's conntrack sysctls alone.
		"--conntrack-max-per-core", "0",
		"--conntrack-tcp-timeout-established", "0",
		"--conntrack-tcp-timeout-close-wait", "0",
		"--metrics-bind-address", "127.0.0.1:" + strconv.Itoa(metrics),
		"--healthz-bind-address", "127.0.0.1:" + strconv.Itoa(healthz),
		"--v", "1",
	}
	if _, err := m.startDaemon(cluster, binKubeProxy, argv, nil); err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(healthz)
	return m.waitFor(ctx, cluster, binKubeProxy, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// cleanupKubeProxy removes the service rules kube-proxy wrote.
func cleanupKubeProxy(ctx context.Context) error {
	bin, err := k8sbin.Path(binKubeProxy)
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, bin, "--cleanup", "--v", "0").CombinedOutput()
	if err != nil {
		return fmt.Errorf("kube-proxy --cleanup: %w: %s", err, tail(string(out), 600))
	}
	return nil
}

// containerdSocket returns the cluster's containerd socket, or "" when it
// has no real node.
func (m *Manager) containerdSocket(cluster string) string {
	st, err := m.readNodeState(cluster)
	if err != nil {
		return ""
	}
	return filepath.Join(st.RunDir, "containerd.sock")
}

func (m *Manager) writeNodeConfig(cluster string, st *nodeState) error {
	dir := m.nodeDir(cluster)
	runc, err := k8sbin.Path(binRunc)
	if err != nil {
		return err
	}
	containerd := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'runc'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = %[5]q
  SystemdCgroup = false

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = [%[6]q]
  conf_dir = %[7]q

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = %[8]q

[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = %[9]q
`, filepath.Join(dir, "containerd", "root"), filepath.Join(st.RunDir, "state"),
		filepath.Join(st.RunDir, "containerd.sock"), filepath.Join(st.RunDir, "containerd.sock.ttrpc"), runc,
		CNIBinDir(), filepath.Join(dir, "cni", "net.d"), SandboxImage, filepath.Join(dir, "containerd", "hosts"))
	if err := os.WriteFile(filepath.Join(dir, "containerd", "config.toml"), []byte(containerd), 0o644); err != nil {
		return fmt.Errorf("write containerd configuration: %w", err)
	}
	// Every registry, the default one included, is hack/registryhint: no
	// image is ever pulled, and a missing one says how to import it.
	hint := fmt.Sprintf("server = \"http://127.0.0.1:%[1]d\"\n\n[host.\"http://127.0.0.1:%[1]d\"]\n  capabilities = [\"pull\", \"resolve\"]\n", st.RegistryHintPort)
	if err := os.MkdirAll(filepath.Join(dir, "containerd", "hosts", "_default"), 0o755); err != nil {
		return fmt.Errorf("write containerd registry configuration: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "containerd", "hosts", "_default", "hosts.toml"), []byte(hint), 0o644); err != nil {
		return fmt.Errorf("write containerd registry configuration: %w", err)
	}

	// No masquerading and no port mapping: pods reach each other and the
	// host over the bridge, and the node adds no iptables rules that could
	// outlive it.
	gw := strings.TrimSuffix(st.Subnet, "0/24") + "1"
	cni := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %[1]q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %[2]q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %[3]q,
        "ranges": [[{"subnet": %[4]q, "gateway": %[5]q}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "loopback"}
  ]
}
`, "podkit-"+cluster, st.Bridge, filepath.Join(dir, "cni", "ipam"), st.Subnet, gw)
	if err := os.WriteFile(filepath.Join(dir, "cni", "net.d", "10-podkit.conflist"), []byte(cni), 0o644); err != nil {
		return fmt.Errorf("write CNI configuration: %w", err)
	}

	pki := filepath.Join(m.Dir(cluster), "pki")
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://%[1]s
cgroupDriver: cgroupfs
cgroupRoot: %[2]s
failCgroupV1: false
failSwapOn: false
port: %[3]d
readOnlyPort: 0
healthzPort: 0
podLogsDir: %[4]s
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %[5]s
authorization:
  mode: AlwaysAllow
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
nodeStatusReportFrequency: 10s
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
fileCheckFrequency: 5s
resolvConf: ""
localStorageCapacityIsolation: false
enableServer: true
makeIPTablesUtilChains: false
`, m.containerdSocket(cluster), st.CgroupRoot, st.Port, filepath.Join(dir, "logs"), filepath.Join(pki, "ca.crt"))
	if err := os.WriteFile(filepath.Join(dir, "kubelet", "config.yaml"), []byte(kubelet), 0o644); err != nil {
		return fmt.Errorf("write kubelet configuration: %w", err)
	}
	return nil
}

// startDaemon starts a node process detached from podkit (its own session,
// output appended to logs/<name>.log) and records its pid in <name>.pid.
func (m *Manager) startDaemon(cluster, name string, argv []string, env []string) (int, error) {
	dir := m.nodeDir(cluster)
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("open %s log: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	// Not waited for: it outlives this command. Release lets the runtime
	// forget it; the pid file lets podkit dev down find it.
	_ = cmd.Process.Release()
	if err := os.WriteFile(filepath.Join(dir, name+".pid"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return pid, fmt.Errorf("record %s pid: %w", name, err)
	}
	return pid, nil
}

// daemonPid returns the recorded pid of a node process if it still runs
// the expected binary, or 0.
func (m *Manager) daemonPid(cluster, name string) int {
	b, err := os.ReadFile(filepath.Join(m.nodeDir(cluster), name+".pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != name {
		return 0
	}
	// A pid reused after a reboot could be the machine's own containerd or
	// kubelet: ours name this cluster's directory on their command line.
	cmdline, err := readCmdline(pid)
	if err != nil || !bytes.Contains(cmdline, []byte(m.Dir(cluster))) {
		return 0
	}
	// A zombie (exited, not yet collected by its parent) is not running.
	if !Alive(pid) {
		return 0
	}
	return pid
}

func (m *Manager) startContainerd(ctx context.Context, cluster string) error {
	if m.daemonPid(cluster, binContainerd) != 0 {
		return nil
	}
	bin, err := k8sbin.Path(binContainerd)
	if err != nil {
		return err
	}
	// containerd finds its shim (and the shim runc) on PATH.
	path := "PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH")
	sock := m.containerdSocket(cluster)
	// A containerd that really ends while starting is started up to three times, saying each
	// time what became of it (whyGone: its exit code or signal). The "ended within a second
	// with nothing in its log" that CI saw was a live containerd read too early (readCmdline).
	for attempt := 1; ; attempt++ {
		_ = os.Remove(sock)
		if _, err := m.startDaemon(cluster, binContainerd, []string{bin, "--config", filepath.Join(m.nodeDir(cluster), "containerd", "config.toml")}, []string{path}); err != nil {
			return err
		}
		err := m.waitFor(ctx, cluster, binContainerd, func() bool {
			c, err := net.DialTimeout("unix", sock, time.Second)
			if err != nil {
				return false
			}
			c.Close()
			return true
		})
		if err == nil || attempt == 3 || !errors.Is(err, errExitedWhileStarting) {
			return err
		}
		// Never a second containerd beside a first that still runs: it would
		// wait forever for the first one's metadata (bolt) lock.
		if pids := FindProcesses(binContainerd, m.nodeDir(cluster)); len(pids) > 0 {
			return fmt.Errorf("%w; yet containerd %v still runs: not starting another", err, pids)
		}
		m.noteInLog(cluster, binContainerd, fmt.Sprintf("podkit: %v; starting it again (attempt %d of 3)", err, attempt+1))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 2 * time.Second):
		}
	}
}

// errExitedWhileStarting marks a daemon that ended before it was ready.
var errExitedWhileStarting = errors.New("exited while starting")

// noteInLog appends a line of podkit's own to a daemon's log.
func (m *Manager) noteInLog(cluster, name, line string) {
	f, err := os.OpenFile(filepath.Join(m.nodeDir(cluster), name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = fmt.Fprintln(f, line)
}

// waitFor polls ok until it holds, the process dies (its log's tail is
// quoted) or ctx ends.
func (m *Manager) waitFor(ctx context.Context, cluster, name string, ok func() bool) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok() {
			return nil
		}
		if m.daemonPid(cluster, name) == 0 {
			return fmt.Errorf("%s %w (%s): %s", name, errExitedWhileStarting, m.whyGone(cluster, name), m.logTail(cluster, name))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w: %s", name, ctx.Err(), m.logTail(cluster, name))
		case <-tick.C:
		}
	}
}

// whyGone says what became of a daemon daemonPid no longer finds: its wait status when this
// process started it (it is then our child, a zombie until collected), else what its pid runs.
func (m *Manager) whyGone(cluster, name string) string {
	b, err := os.ReadFile(filepath.Join(m.nodeDir(cluster), name+".pid"))
	if err != nil {
		return "no pid file: " + err.Error()
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return "bad pid file: " + err.Error()
	}
	var ws syscall.WaitStatus
	if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err == nil && got == pid {
		switch {
		case ws.Signaled():
			return fmt.Sprintf("pid %d killed by signal %d (%v)", pid, int(ws.Signal()), ws.Signal())
		case ws.Exited():
			return fmt.Sprintf("pid %d exited with code %d", pid, ws.ExitStatus())
		}
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return fmt.Sprintf("pid %d is gone", pid)
	}
	return fmt.Sprintf("pid %d now runs %s", pid, exe)
}

func (m *Manager) logTail(cluster, name string) string {
	b, _ := os.ReadFile(filepath.Join(m.nodeDir(cluster), name+".log"))
	return tail(string(b), 1200)
}

// ctr runs one ctr command against the cluster's containerd in the
// namespace the CRI uses.
func (m *Manager) ctr(ctx context.Context, cluster string, args ...string) (string, error) {
	bin, err := k8sbin.Path(binCtr)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"--address", m.containerdSocket(cluster), "--namespace", "k8s.io"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, tail(out.String(), 800))
	}
	return out.String(), nil
}

// ImportImage imports an OCI archive (make image's _output/image/*.tar)
// into the real node's containerd under name:<the archive's tag>, e.g.
// podkit.dev/podkit-entrypoint:dev. Pods use it with imagePullPolicy Never
// or IfNotPresent; nothing is pulled from a registry.
func (m *Manager) ImportImage(ctx context.Context, cluster, archive, name string) error {
	if err := m.Lookup(cluster); err != nil {
		return err
	}
	if !m.hasRealNode(cluster) {
		return fmt.Errorf("cluster %q has no real node to import images into: create it with podkit dev up --real-node", cluster)
	}
	if _, err := os.Stat(archive); err != nil {
		return fmt.Errorf("image archive: %w (build it with: make image)", err)
	}
	_, err := m.ctr(ctx, cluster, "images", "import", "--base-name", name, "--digests", "--all-platforms", archive)
	return err
}

func (m *Manager) importSandboxImage(ctx context.Context, cluster string) error {
	if out, err := m.ctr(ctx, cluster, "images", "ls", "-q"); err == nil && slices.Contains(strings.Fields(out), SandboxImage) {
		return nil
	}
	bin, err := k8sbin.Path(binPause)
	if err != nil {
		return err
	}
	imgDir := filepath.Join(m.nodeDir(cluster), "images", "pause")
	if _, err := ociimage.Write(imgDir, ociimage.Options{Binary: bin, Path: "/pause", User: "65535:65535", RefName: "dev"}); err != nil {
		return fmt.Errorf("write the pause image: %w", err)
	}
	archive := imgDir + ".tar"
	if err := ociimage.WriteArchiveFile(archive, imgDir); err != nil {
		return fmt.Errorf("write the pause image: %w", err)
	}
	name, _, _ := strings.Cut(SandboxImage, ":")
	_, err = m.ctr(ctx, cluster, "images", "import", "--base-name", name, "--digests", archive)
	return err
}

func (m *Manager) startKubelet(ctx context.Context, cluster string, st *nodeState) error {
	if m.daemonPid(cluster, binKubelet) != 0 {
		return nil
	}
	bin, err := k8sbin.Path(binKubelet)
	if err != nil {
		return err
	}
	dir := m.nodeDir(cluster)
	argv := []string{bin,
		"--config", filepath.Join(dir, "kubelet", "config.yaml"),
		"--kubeconfig", m.KubeconfigPath(cluster),
		"--root-dir", st.KubeletRoot,
		"--hostname-override", st.Name,
		"--node-ip", st.IP,
		"--node-labels", LabelRealNode + "=true",
		"--register-with-taints", LabelRealNode + "=true:NoSchedule",
		"--v", "1",
	}
	path := "PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH")
	_, err = m.startDaemon(cluster, binKubelet, argv, []string{path})
	return err
}

func (m *Manager) clientset(cluster string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", m.KubeconfigPath(cluster))
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.Timeout = 5 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// waitNodeReady waits until the node is Ready and its kubelet renewed the
// node's lease after since: a restarted kubelet finds the status its
// predecessor left, Ready included.
func (m *Manager) waitNodeReady(ctx context.Context, cluster, node string, since time.Time) error {
	cs, err := m.clientset(cluster)
	if err != nil {
		return err
	}
	return m.waitFor(ctx, cluster, binKubelet, func() bool {
		lease, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, node, metav1.GetOptions{})
		if err != nil || lease.Spec.RenewTime == nil || lease.Spec.RenewTime.Time.Before(since.Truncate(time.Second)) {
			return false
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	})
}

// stopRealNode stops the kubelet, every container of the node, the shims
// and containerd, and removes what they left in the kernel: mounts,
// network namespaces, the bridge and the cgroups. It is safe to call on a
// node that is half started or already stopped.
func (m *Manager) stopRealNode(ctx context.Context, cluster string) error {
	st, err := m.readNodeState(cluster)
	if err != nil {
		return err
	}
	var errs []error
	stopPid(ctx, m.daemonPid(cluster, binKubeProxy))
	// Also after a kube-proxy that crashed: its rules outlive it.
	if _, err := os.Stat(filepath.Join(m.nodeDir(cluster), binKubeProxy+".pid")); err == nil {
		errs = append(errs, cleanupKubeProxy(ctx))
	}
	if !st.KeepFirewallChain {
		errs = append(errs, removeFirewallChain(ctx))
	}
	stopPid(ctx, m.daemonPid(cluster, binKubelet))
	// Every container process lives in a cgroup under the node's root.
	cgs, err := cgroupMounts()
	if err != nil {
		errs = append(errs, err)
	}
	killCgroupTree(ctx, cgs, st.CgroupRoot)
	// Shims are children of nobody once containerd started them; they name
	// the containerd socket they serve on their command line.
	sock := m.containerdSocket(cluster)
	for _, pid := range FindProcesses(binShim, sock) {
		stopPid(ctx, pid)
	}
	stopPid(ctx, m.daemonPid(cluster, binContainerd))
	stopPid(ctx, m.daemonPid(cluster, binRegistryHint))
	errs = append(errs, unmountUnder(m.nodeDir(cluster)), unmountUnder(st.RunDir))
	if pts, err := mountsUnder(st.RunDir); err == nil && len(pts) == 0 {
		if err := os.RemoveAll(st.RunDir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", st.RunDir, err))
		}
	}
	if err := deleteLink(st.Bridge); err != nil {
		errs = append(errs, err)
	}
	for _, cg := range cgs {
		errs = append(errs, removeCgroupTree(filepath.Join(cg, st.CgroupRoot)))
	}
	return errors.Join(errs...)
}

// stopPid sends SIGTERM, waits up to 10 s, then SIGKILLs.
func stopPid(ctx context.Context, pid int) {
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !Alive(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && Alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// Alive reports whether pid exists and is neither a zombie nor dead. The
// state follows the parenthesised command name in /proc/<pid>/stat.
func Alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}

// readCmdline returns /proc/<pid>/cmdline. A process in the middle of
// execve already shows its new executable but, for a moment, an empty
// command line: exec.Cmd.Start returns in that moment, so a daemon checked
// right after its start looked gone, and was started a second time (a
// second containerd then waits forever for the first one's bolt lock). An
// empty command line of a process that has an executable (kernel threads
// have neither) is read again for up to a second.
func readCmdline(pid int) ([]byte, error) {
	name := fmt.Sprintf("/proc/%d/cmdline", pid)
	for deadline := time.Now().Add(time.Second); ; {
		b, err := os.ReadFile(name)
		if err != nil || len(b) > 0 || time.Now().After(deadline) {
			return b, err
		}
		if _, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil {
			return b, nil // a kernel thread, or gone
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// FindProcesses returns the pids of live processes whose executable's base
// name is bin and whose command line contains marker (a directory or socket
// unique to one cluster). Zombies are not live.
func FindProcesses(bin, marker string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := readCmdline(pid)
		if err != nil || len(cmdline) == 0 {
			continue
		}
		args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
		if filepath.Base(string(args[0])) != bin || !bytes.Contains(cmdline, []byte(marker)) || !Alive(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// killCgroupTree SIGKILLs every process in the cgroup subtree, in each
// hierarchy, until none is left (or 10 s pass).
func killCgroupTree(ctx context.Context, mounts []string, root string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		found := false
		for _, mnt := range mounts {
			_ = filepath.WalkDir(filepath.Join(mnt, root), func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
						found = true
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				return nil
			})
		}
		if !found {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeCgroupTree removes a cgroup directory and its children, deepest
// first (cgroup directories are removed with rmdir, never unlink).
func removeCgroupTree(dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var last error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
			last = fmt.Errorf("remove cgroup %s: %w", dirs[i], err)
		}
	}
	return last
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var pts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			pts = append(pts, mp)
		}
	}
	slices.SortFunc(pts, func(a, b string) int { return len(b) - len(a) })
	return pts, sc.Err()
}

// unescapeMount decodes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder unmounts everything mounted at or below dir, deepest first,
// and fails when something is still mounted there afterwards.
func unmountUnder(dir string) error {
	var errs []error
	for attempt := 0; attempt < 4; attempt++ {
		pts, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(pts) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, p := range pts {
			if err := syscall.Unmount(p, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				if err := syscall.Unmount(p, mntDetach); err != nil && !errors.Is(err, syscall.EINVAL) {
					errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
				}
			}
		}
	}
	pts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	if len(pts) > 0 {
		return errors.Join(append(errs, fmt.Errorf("%d mounts remain under %s, first %s", len(pts), dir, pts[0]))...)
	}
	return nil
}

// deleteLink removes a network interface (the node's bridge) if present.
func deleteLink(name string) error {
	if _, err := net.InterfaceByName(name); err != nil {
		return nil
	}
	out, err := exec.Command("ip", "link", "delete", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("delete bridge %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// realNodeRunning reports whether the cluster's kubelet and containerd
// both run.
func (m *Manager) realNodeRunning(cluster string) bool {
	for _, b := range []string{binKubelet, binContainerd, binKubeProxy, binRegistryHint} {
		if m.daemonPid(cluster, b) == 0 {
			return false
		}
	}
	return true
}

// restartRealNode starts whichever of containerd and the kubelet is not
// running, with the recorded configuration, and waits for the node to be
// Ready. Pods and their containers survive: the shims kept them running.
func (m *Manager) restartRealNode(ctx context.Context, cluster string) error {
	st, err := m.readNodeState(cluster)
	if err != nil {
		return err
	}
	if m.daemonPid(cluster, binKubelet) == 0 {
		// The kubelet's port may have been taken while it was down.
		if port, err := freePort(); err == nil && !portFree(st.Port) {
			st.Port = port
		}
	}
	if m.daemonPid(cluster, binRegistryHint) == 0 && !portFree(st.RegistryHintPort) {
		if port, err := freePort(); err == nil {
			st.RegistryHintPort = port
		}
	}
	if err := m.startRealNode(ctx, cluster, st); err != nil {
		return fmt.Errorf("restart the real node: %w", err)
	}
	return nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// ErrRealNodeBusy is returned by Up when another cluster's real node runs
// on this machine: its kube-proxy owns the host's service rules, so only
// one real node runs at a time.
var ErrRealNodeBusy = errors.New("another cluster's real node runs on this machine")

// otherRealNode returns the name of a real node that runs on this machine
// for a cluster other than the one in dir, or "". A node counts until its
// last daemon is gone, so that a node still being taken down (its kubelet
// stopped, its containerd not yet) never overlaps the next one.
func otherRealNode(dir string) string {
	entries, _ := os.ReadDir("/proc")
	other := ""
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) == 0 {
			continue
		}
		// Each daemon names its node's directory after one flag.
		flag := map[string]string{binKubelet: "--config", binContainerd: "--config", binRegistryHint: "--node"}[filepath.Base(args[0])]
		i := slices.Index(args, flag)
		if flag == "" || i < 0 || i+1 >= len(args) {
			continue
		}
		path := args[i+1]
		if !strings.Contains(path, "/node") || strings.HasPrefix(path, dir+"/") {
			continue
		}
		// The kubelet names the node; another daemon only says whose it is.
		if j := slices.Index(args, "--hostname-override"); j >= 0 && j+1 < len(args) {
			return args[j+1]
		}
		if other == "" {
			other = filepath.Base(args[0]) + " of " + path
		}
	}
	return other
}

// firewallChain is the filter chain kube-proxy adds to block outside
// connections to localhost node ports; kube-proxy --cleanup leaves it.
const firewallChain = "KUBE-FIREWALL"

var iptablesCommands = []string{"iptables", "ip6tables"}

func hasFirewallChain() bool {
	for _, ipt := range iptablesCommands {
		if exec.Command(ipt, "-w", "-t", "filter", "-n", "-L", firewallChain).Run() == nil {
			return true
		}
	}
	return false
}

// removeFirewallChain deletes KUBE-FIREWALL and the INPUT and OUTPUT rules
// that jump to it, in the IPv4 and IPv6 filter tables.
func removeFirewallChain(ctx context.Context) error {
	var errs []error
	for _, ipt := range iptablesCommands {
		if _, err := exec.LookPath(ipt); err != nil {
			continue
		}
		if exec.CommandContext(ctx, ipt, "-w", "-t", "filter", "-n", "-L", firewallChain).Run() != nil {
			continue
		}
		for _, from := range []string{"INPUT", "OUTPUT"} {
			for exec.CommandContext(ctx, ipt, "-w", "-t", "filter", "-D", from, "-j", firewallChain).Run() == nil {
			}
		}
		for _, op := range []string{"-F", "-X"} {
			if out, err := exec.CommandContext(ctx, ipt, "-w", "-t", "filter", op, firewallChain).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s %s %s: %w: %s", ipt, op, firewallChain, err, strings.TrimSpace(string(out))))
			}
		}
	}
	return errors.Join(errs...)
}

// KillNodeProcess kills one process of the cluster's real node (kubelet,
// containerd or kube-proxy) with SIGKILL, as a crash would, and waits
// until it is gone. Up starts it again; the pods' containers keep running
// under their shims meanwhile.
func (m *Manager) KillNodeProcess(cluster, process string) error {
	if !slices.Contains([]string{binKubelet, binContainerd, binKubeProxy}, process) {
		return fmt.Errorf("process %q: use kubelet, containerd or kube-proxy", process)
	}
	pid := m.daemonPid(cluster, process)
	if pid == 0 {
		return fmt.Errorf("%s of cluster %q is not running", process, cluster)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", process, err)
	}
	for i := 0; i < 250 && Alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
