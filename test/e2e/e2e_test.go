package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	os.Exit(testenv.Cluster(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1.AddToScheme)
	}))
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildPodkit builds cmd/podkit as make build does.
func buildPodkit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "podkit")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/podkit")
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/podkit: %v\n%s", err, out)
	}
	return bin
}

func TestPodkitDemoBinaryReachesSummary(t *testing.T) {
	bin := buildPodkit(t)
	if out, err := exec.Command(bin, "demo", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "podkit demo") {
		t.Fatalf("podkit demo is not available (%v): register demo.NewCommand in internal/cli/root\n%s", err, out)
	}
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--kubeconfig", env.Kubeconfig, "-n", ns, "--output-dir", t.TempDir())
	cmd.Dir = moduleRoot(t) // a user runs it from the checkout: config/ is found there
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("podkit demo took %s\nstdout:\n%s\nstderr:\n%s", time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("podkit demo: %v", err)
	}
	out := stdout.String()
	if !strings.Contains(out, "Summary") {
		t.Fatal("output has no summary")
	}
	if m := regexp.MustCompile(`(?m)^\S.*\s(failed|skipped)\s`).FindString(out); m != "" {
		t.Errorf("a step did not succeed: %q", m)
	}
}
