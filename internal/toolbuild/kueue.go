package toolbuild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/podkit-dev/podkit/internal/k8sbin"
)

// kueueModule is Kueue's Go module; its go.mod has no replace directives,
// so `go install module/cmd/kueue@version` builds it outside any module,
// against its own Kubernetes libraries (not podkit's).
const kueueModule = "sigs.k8s.io/kueue"

// kueueCRDDir is where Kueue's module keeps its generated CRDs.
const kueueCRDDir = "config/components/crd/bases"

// KueueDir returns <cache>/<k8sbin.KueueDir>: bin/kueue and crd/*.yaml.
func KueueDir(cache string) string {
	return filepath.Join(cache, k8sbin.KueueDir)
}

// KueueCRDDir returns the directory of Kueue's CRDs in KueueDir.
func KueueCRDDir(cache string) string {
	return filepath.Join(KueueDir(cache), "crd")
}

// KueueBinary returns the path of Kueue's manager in KueueDir.
func KueueBinary(cache string) string {
	return filepath.Join(KueueDir(cache), "bin", k8sbin.Kueue)
}

// BuildKueue builds Kueue's manager (sigs.k8s.io/kueue/cmd/kueue at
// k8sbin.KueueVersion, version-stamped as Kueue's Makefile does) into
// <cache>/KueueDir/bin and copies the CRDs of the same module version
// (config/components/crd/bases) into <cache>/KueueDir/crd; cache is
// k8sbin.CacheDir() when empty. Both are skipped when present. opts.Dir,
// when set, replaces <cache>/KueueDir; opts.Names is ignored.
func BuildKueue(ctx context.Context, opts Options) error {
	if opts.Dir == "" {
		cache, err := k8sbin.CacheDir()
		if err != nil {
			return err
		}
		opts.Dir = KueueDir(cache)
	}
	if err := opts.setDefaults(); err != nil {
		return err
	}
	start := time.Now()
	binDir, crdDir := filepath.Join(opts.Dir, "bin"), filepath.Join(opts.Dir, "crd")
	fmt.Fprintf(opts.Out, "tools: kueue %s into %s\n", k8sbin.KueueVersion, opts.Dir)
	needBin := !isExecutable(filepath.Join(binDir, k8sbin.Kueue))
	needCRDs := !hasYAML(crdDir)
	if !needBin {
		fmt.Fprintf(opts.Out, "  %-26s cached\n", k8sbin.Kueue)
	}
	if !needCRDs {
		fmt.Fprintf(opts.Out, "  %-26s cached\n", "kueue CRDs")
	}
	if needBin || needCRDs {
		goBin, err := exec.LookPath(opts.Go)
		if err != nil {
			return fmt.Errorf("%w (%v)", ErrNoGo, err)
		}
		if needBin {
			if err := os.MkdirAll(binDir, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", binDir, err)
			}
			begin := time.Now()
			if err := buildInto(binDir, k8sbin.Kueue, func(tmp string) (*exec.Cmd, error) {
				const pkg = kueueModule + "/pkg/version"
				ldflags := "-s -w -X " + pkg + ".GitVersion=" + k8sbin.KueueVersion + " -X " + pkg + ".BuildDate=" + time.Now().UTC().Format("2006-01-02T15:04:05Z")
				cmd := exec.CommandContext(ctx, goBin, "install", "-trimpath", "-ldflags", ldflags, kueueModule+"/cmd/kueue@"+k8sbin.KueueVersion)
				cmd.Dir = tmp // outside any module
				cmd.Env = append(goEnv(), "GOBIN="+tmp)
				return cmd, nil
			}); err != nil {
				return err
			}
			fmt.Fprintf(opts.Out, "  %-26s built in %ds\n", k8sbin.Kueue, int(time.Since(begin).Seconds()))
		}
		if needCRDs {
			if err := copyKueueCRDs(ctx, goBin, crdDir); err != nil {
				return err
			}
			fmt.Fprintf(opts.Out, "  %-26s copied\n", "kueue CRDs")
		}
	}
	fmt.Fprintf(opts.Out, "tools: done in %ds\n", int(time.Since(start).Seconds()))
	return nil
}

// copyKueueCRDs finds Kueue's module in the module cache (go mod download
// fetches it through the module proxy when missing) and copies its CRDs
// into dir through a temporary directory renamed into place.
func copyKueueCRDs(ctx context.Context, goBin, dir string) (err error) {
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", kueueModule+"@"+k8sbin.KueueVersion)
	cmd.Dir = os.TempDir() // outside any module
	cmd.Env = goEnv()
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("find kueue %s's CRDs: go mod download: %w: %s%s", k8sbin.KueueVersion, err, tail(out.String(), 10), tail(stderr.String(), 10))
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out.Bytes(), &mod); err != nil {
		return fmt.Errorf("find kueue %s's CRDs: read go mod download's answer: %w", k8sbin.KueueVersion, err)
	}
	if mod.Dir == "" {
		return fmt.Errorf("find kueue %s's CRDs: go mod download: %s", k8sbin.KueueVersion, mod.Error)
	}
	src := filepath.Join(mod.Dir, kueueCRDDir)
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read kueue's CRDs: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".crd-")
	if err != nil {
		return fmt.Errorf("copy kueue's CRDs: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return fmt.Errorf("copy kueue's CRDs: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tmp, e.Name()), data, 0o644); err != nil {
			return fmt.Errorf("copy kueue's CRDs: %w", err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("copy kueue's CRDs: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("copy kueue's CRDs: %w", err)
	}
	return nil
}

// hasYAML reports whether dir holds at least one .yaml file.
func hasYAML(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	return len(m) > 0
}
