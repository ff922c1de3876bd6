package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/podkit-dev/podkit/internal/devcluster"
	"github.com/podkit-dev/podkit/internal/k8sbin"
)

const (
	kwokClusterName = "testenv"
	kwokDirPrefix   = "podkit-testenv-kwok-"
	ownerFile       = "owner.pid"
)

// kwokPlane runs a full cluster through internal/devcluster in a work
// directory of its own, so parallel test binaries never share a cluster.
type kwokPlane struct {
	mgr *devcluster.Manager
	// restarted is the kube-apiserver started by restartAPIServer.
	restarted *restartedProcess
}

func (p *kwokPlane) start(ctx context.Context, opts Options) (*rest.Config, string, error) {
	cleanStaleClusters(ctx)
	workdir, err := os.MkdirTemp("", kwokDirPrefix)
	if err != nil {
		return nil, "", fmt.Errorf("create work directory: %w", err)
	}
	if err := writeOwner(workdir); err != nil {
		return nil, "", err
	}
	p.mgr = &devcluster.Manager{Workdir: workdir}
	for {
		_, err := p.mgr.Up(ctx, devcluster.UpOptions{Name: kwokClusterName, Nodes: opts.Nodes, RealNode: opts.RealNode, NodeResources: opts.NodeResources, NoGang: opts.NoGang})
		if err == nil {
			break
		}
		if !errors.Is(err, devcluster.ErrRealNodeBusy) {
			return nil, "", err
		}
		select {
		case <-ctx.Done():
			return nil, "", fmt.Errorf("%w (waited until the start timeout)", err)
		case <-time.After(2 * time.Second):
		}
	}
	kubeconfig := p.mgr.KubeconfigPath(kwokClusterName)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, "", fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	if len(opts.CRDDirectoryPaths) > 0 {
		_, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
			Paths:              opts.CRDDirectoryPaths,
			ErrorIfPathMissing: true,
			Scheme:             opts.Scheme,
		})
		if err != nil {
			return nil, "", fmt.Errorf("install CRDs from %v: %w", opts.CRDDirectoryPaths, err)
		}
	}
	return cfg, kubeconfig, nil
}

// restartAPIServer kills kube-apiserver outright, as a crash would, and
// starts it again with the same command line, log file and pid file, so
// that kwokctl still manages it. Only the apiserver restarts: restarting
// the whole cluster (kwokctl stop/start) also restarts kwok under a new
// identity, which then waits for the old identity's node leases to expire
// (200 s as kwokctl sets them up) before it drives any pod again.
func (p *kwokPlane) restartAPIServer(ctx context.Context) error {
	unlock, err := devcluster.LockPorts(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	dir := p.mgr.Dir(kwokClusterName)
	pids := devcluster.FindProcesses(k8sbin.KubeAPIServer, dir)
	if len(pids) != 1 {
		return fmt.Errorf("find kube-apiserver: %d processes match %s", len(pids), dir)
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
	logPath := filepath.Join(dir, "logs", "kube-apiserver.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open kube-apiserver log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kube-apiserver again: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.restarted = &restartedProcess{cmd: cmd, done: done}
	pidFile := filepath.Join(dir, "pids", k8sbin.KubeAPIServer+".pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return fmt.Errorf("record the new kube-apiserver pid for kwokctl: %w", err)
	}
	// The lock is held until it listens: until then its port looks free
	// to a control plane that is starting.
	return waitListening(ctx, port, done, logPath)
}

func (p *kwokPlane) stop() error {
	if p.mgr == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := p.mgr.Down(ctx, kwokClusterName)
	if errors.Is(err, devcluster.ErrNotFound) {
		err = nil
	}
	if p.restarted != nil {
		err = errors.Join(err, killAndWait(ctx, p.restarted.cmd.Process.Pid, p.restarted))
	}
	return errors.Join(err, os.RemoveAll(p.mgr.Workdir))
}

func (p *kwokPlane) pids() []int {
	if p.mgr == nil {
		return nil
	}
	var pids []int
	for _, bin := range []string{k8sbin.Etcd, k8sbin.KubeAPIServer, k8sbin.KubeControllerManager, k8sbin.KubeScheduler, "kwok-controller"} {
		pids = append(pids, devcluster.FindProcesses(bin, p.mgr.Workdir)...)
	}
	return pids
}

// cleanStaleClusters deletes clusters left by test binaries that were
// killed before they could stop them: their owner process is gone.
func cleanStaleClusters(ctx context.Context) {
	for _, dir := range staleDirs(kwokDirPrefix) {
		mgr := &devcluster.Manager{Workdir: dir}
		_ = mgr.Down(ctx, kwokClusterName)
		killAll(dir)
		_ = os.RemoveAll(dir)
	}
}

// staleDirs returns the work directories with the given prefix whose owner
// process has exited.
func staleDirs(prefix string) []string {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	var stale []string
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || processAlive(pid) {
			continue
		}
		stale = append(stale, dir)
	}
	return stale
}

// writeOwner records this process as the owner of a work directory.
func writeOwner(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("write owner file: %w", err)
	}
	return nil
}

// killAll kills every control-plane process whose command line mentions dir.
func killAll(dir string) {
	for _, bin := range []string{k8sbin.Etcd, k8sbin.KubeAPIServer, k8sbin.KubeControllerManager, k8sbin.KubeScheduler, k8sbin.Kwok, "kwok-controller"} {
		for _, pid := range devcluster.FindProcesses(bin, dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func processAlive(pid int) bool {
	return devcluster.Alive(pid)
}

// SetContainerLogs sets what every container of the kwok cluster answers to a log request
// (kubectl logs, the pods/log API): one CRI log line per line of text, on stdout. Only in
// ModeCluster; the content applies to all pods, so tests that read logs must not run in
// parallel with each other.
func (e *Env) SetContainerLogs(t testing.TB, text string) {
	t.Helper()
	p, ok := e.plane.(*kwokPlane)
	if !ok {
		t.Fatal("SetContainerLogs needs testenv.Cluster: only kwok nodes serve logs")
	}
	var b strings.Builder
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		b.WriteString(ts + " stdout F " + strings.TrimSuffix(line, "\n") + "\n")
	}
	path := filepath.Join(p.mgr.Dir(kwokClusterName), devcluster.LogsFileName)
	if err := os.WriteFile(path+".tmp", []byte(b.String()), 0o644); err != nil {
		t.Fatalf("write container logs: %v", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatalf("write container logs: %v", err)
	}
}

// RealNodeName returns the name of the cluster's real node (started with
// Options.RealNode).
func (e *Env) RealNodeName() string { return devcluster.RealNodeName(kwokClusterName) }

// ImportImage loads an OCI archive into the real node's containerd as
// name:<the archive's tag>.
func (e *Env) ImportImage(t testing.TB, archive, name string) {
	t.Helper()
	p, ok := e.plane.(*kwokPlane)
	if !ok {
		t.Fatal("ImportImage needs testenv.Cluster with Options.RealNode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.mgr.ImportImage(ctx, kwokClusterName, archive, name); err != nil {
		t.Fatal(err)
	}
}

// CrashRealNode kills the named processes of the real node (kubelet,
// containerd, kube-proxy) with SIGKILL, then starts them again the way
// podkit dev up does, and waits for the node to be Ready.
func (e *Env) CrashRealNode(t testing.TB, processes ...string) {
	t.Helper()
	p, ok := e.plane.(*kwokPlane)
	if !ok {
		t.Fatal("CrashRealNode needs testenv.Cluster with Options.RealNode")
	}
	for _, proc := range processes {
		if err := p.mgr.KillNodeProcess(kwokClusterName, proc); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := p.mgr.Up(ctx, devcluster.UpOptions{Name: kwokClusterName})
	if err != nil {
		t.Fatalf("restart the real node: %v", err)
	}
	if res.Action != "restarted" {
		t.Fatalf("podkit dev up after the crash: %s, want restarted", res.Action)
	}
}
