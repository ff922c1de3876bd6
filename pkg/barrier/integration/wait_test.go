package integration

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/barrier"
)

// generous bounds a step that takes well under a second on a healthy
// apiserver; it only turns a hang into a failure.
const generous = 30 * time.Second

func TestWaitReleasesWhenLastTaskGetsIP(t *testing.T) {
	ns := env.Namespace(t)
	createFramework(t, ns, "fw", role{"ps", 1}, role{"worker", 3})
	nn := types.NamespacedName{Namespace: ns, Name: "fw"}
	done, progress := startWait(t, context.Background(), config(ns, "fw"))

	if p := awaitProgress(t, progress, generous); p.Ready != 0 || p.Total != 4 {
		t.Fatalf("first progress = %v, want 0/4", p)
	}
	setPodIPs(t, nn, map[string][]string{"ps": {"10.0.0.1"}, "worker": {"10.0.1.1"}})
	setPodIPs(t, nn, map[string][]string{"ps": {"10.0.0.1"}, "worker": {"10.0.1.1", "", "10.0.1.3"}})
	select {
	case r := <-done:
		t.Fatalf("barrier returned before worker-1 had an IP: %v, %v", r.f, r.err)
	default:
	}
	setPodIPs(t, nn, map[string][]string{"ps": {"10.0.0.1"}, "worker": {"10.0.1.1", "10.0.1.2", "10.0.1.3"}})

	r := await(t, done, generous)
	if r.err != nil {
		t.Fatalf("Wait: %v", r.err)
	}
	peers, err := barrier.PeersOf(r.f)
	if err != nil {
		t.Fatalf("PeersOf(released framework): %v", err)
	}
	want := []barrier.RolePeers{{Name: "ps", IPs: []string{"10.0.0.1"}}, {Name: "worker", IPs: []string{"10.0.1.1", "10.0.1.2", "10.0.1.3"}}}
	if d := cmp.Diff(want, peers); d != "" {
		t.Errorf("peers (-want +got):\n%s", d)
	}
}

func TestWaitReleasesAtOnceWhenAllTasksAlreadyHaveIPs(t *testing.T) {
	ns := env.Namespace(t)
	createFramework(t, ns, "ready", role{"w", 2})
	setPodIPs(t, types.NamespacedName{Namespace: ns, Name: "ready"}, map[string][]string{"w": {"10.0.0.1", "10.0.0.2"}})
	f, err := barrier.Wait(context.Background(), config(ns, "ready"))
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got := barrier.ProgressOf(f); !got.Released() {
		t.Errorf("returned framework progress = %v, want released", got)
	}
}

func TestWaitFailsForMissingFramework(t *testing.T) {
	ns := env.Namespace(t)
	_, err := barrier.Wait(context.Background(), config(ns, "nope"))
	if !errors.Is(err, barrier.ErrFrameworkNotFound) {
		t.Fatalf("Wait error = %v, want ErrFrameworkNotFound", err)
	}
	if !strings.Contains(err.Error(), ns+"/nope") {
		t.Errorf("error %q does not name the framework", err)
	}
}

func TestWaitFailsWhenFrameworkDeletedWhileWaiting(t *testing.T) {
	ns := env.Namespace(t)
	f := createFramework(t, ns, "doomed", role{"w", 2})
	done, progress := startWait(t, context.Background(), config(ns, "doomed"))
	awaitProgress(t, progress, generous)
	if err := env.Client.Delete(context.Background(), f); err != nil {
		t.Fatalf("delete framework: %v", err)
	}
	r := await(t, done, generous)
	if !errors.Is(r.err, barrier.ErrFrameworkNotFound) || !strings.Contains(r.err.Error(), "deleted while waiting") {
		t.Fatalf("Wait error = %v, want ErrFrameworkNotFound (deleted while waiting)", r.err)
	}
}

func TestWaitTimesOutAtContextDeadlineWithProgress(t *testing.T) {
	ns := env.Namespace(t)
	createFramework(t, ns, "slow", role{"worker", 8})
	setPodIPs(t, types.NamespacedName{Namespace: ns, Name: "slow"},
		map[string][]string{"worker": {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "", "10.0.0.7", ""}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := barrier.Wait(ctx, config(ns, "slow"))
	if !errors.Is(err, barrier.ErrTimeout) {
		t.Fatalf("Wait error = %v, want ErrTimeout", err)
	}
	if want := "6/8 tasks ready; waiting for worker-5, worker-7"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestWaitReturnsCauseWhenCanceled(t *testing.T) {
	ns := env.Namespace(t)
	createFramework(t, ns, "canceled", role{"w", 1})
	ctx, cancel := context.WithCancelCause(context.Background())
	done, progress := startWait(t, ctx, config(ns, "canceled"))
	awaitProgress(t, progress, generous)
	stop := errors.New("pod is terminating")
	cancel(stop)
	r := await(t, done, generous)
	if !errors.Is(r.err, stop) || errors.Is(r.err, barrier.ErrTimeout) {
		t.Fatalf("Wait error = %v, want the cancel cause and not ErrTimeout", r.err)
	}
}

func TestWaitReleasesAfterAPIServerRestart(t *testing.T) {
	ns := env.Namespace(t)
	createFramework(t, ns, "restart", role{"w", 2})
	nn := types.NamespacedName{Namespace: ns, Name: "restart"}
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1"}})
	var logs testenv.SyncBuffer
	done, progress := startWait(t, context.Background(), config(ns, "restart"),
		barrier.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if p := awaitProgress(t, progress, generous); p.Ready != 1 {
		t.Fatalf("first progress = %v, want 1/2", p)
	}

	env.RestartAPIServer(t) // crash-style: SIGKILL, then the same command line
	select {
	case r := <-done:
		t.Fatalf("barrier returned during the restart: %v", r.err)
	default:
	}
	setPodIPs(t, nn, map[string][]string{"w": {"10.0.0.1", "10.0.0.2"}})

	r := await(t, done, generous)
	if r.err != nil {
		t.Fatalf("Wait after apiserver restart: %v", r.err)
	}
	if p := barrier.ProgressOf(r.f); !p.Released() {
		t.Errorf("released framework progress = %v", p)
	}
	// The watch broke; the old resource version is gone on a fresh
	// apiserver (its watch cache starts empty), so the barrier listed again.
	for _, want := range []string{"listing again"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the barrier did not log %q; logs:\n%s", want, logs.String())
		}
	}
}

func TestWaitRejectsInvalidConfigNamingTheSetting(t *testing.T) {
	cfg := config("ns", "")
	cfg.BarrierCheckIntervalSec = 1
	_, err := barrier.Wait(context.Background(), cfg)
	if !errors.Is(err, barrier.ErrInvalidConfig) {
		t.Fatalf("Wait error = %v, want ErrInvalidConfig", err)
	}
	for _, name := range []string{"FC_FRAMEWORK_NAME", "BARRIER_CHECK_INTERVAL_SEC=1"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestWaitFailsWithUnusableKubeconfig(t *testing.T) {
	cfg := config("ns", "fw")
	cfg.KubeConfigFilePath = filepath.Join(t.TempDir(), "missing")
	_, err := barrier.Wait(context.Background(), cfg)
	if err == nil || errors.Is(err, barrier.ErrInvalidConfig) || errors.Is(err, barrier.ErrTimeout) || errors.Is(err, barrier.ErrFrameworkNotFound) {
		t.Fatalf("Wait error = %v, want an untyped kubeconfig error", err)
	}
}

func TestFrameworkBarrierRunWritesOutputs(t *testing.T) {
	ns := env.Namespace(t)
	createFramework(t, ns, "run", role{"head", 1}, role{"workergpu", 2})
	setPodIPs(t, types.NamespacedName{Namespace: ns, Name: "run"},
		map[string][]string{"head": {"10.1.0.1"}, "workergpu": {"10.1.1.1", "10.1.1.2"}})
	dir := t.TempDir()
	b, err := barrier.New(config(ns, "run"), barrier.Options{Dir: dir,
		Injector: barrier.InjectorOptions{TaskRoleName: "workergpu", TaskIndex: 1, Torch: true}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := b.RunContext(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	script, err := os.ReadFile(filepath.Join(dir, "injector.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FB_WORKERGPU_IPS='10.1.1.1,10.1.1.2'", "RANK='2'", "MASTER_ADDR='10.1.0.1'", "FB_ROLE='workergpu'"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("injector.sh lacks %s:\n%s", want, script)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "framework.json")); err != nil {
		t.Errorf("framework.json: %v", err)
	}
}
