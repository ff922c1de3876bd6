package toolbuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/podkit-dev/podkit/internal/k8sbin"
)

// nodeTool is one binary of the real node's runtime and how hack/tools.sh
// builds it.
type nodeTool struct {
	name string
	// install is a command path@version run through `go install`.
	install string
	// tags are build tags of the go install.
	tags string
	// cgo builds with CGO_ENABLED=1 (runc links libseccomp).
	cgo bool
	// source is an embedded main.go (pins/<source>) of podkit's own,
	// built in a module of its own and rebuilt every time, as make tools
	// rebuilds it, so that an upgraded podkit never runs an old copy.
	source string
}

// nodeTools lists the real node's runtime in hack/tools.sh's order.
// kubelet and kube-proxy come from the Kubernetes module with the control
// plane (Build).
var nodeTools = []nodeTool{
	{name: "containerd", install: "github.com/containerd/containerd/v2/cmd/containerd@" + k8sbin.ContainerdVersion, tags: "no_btrfs"},
	{name: "containerd-shim-runc-v2", install: "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@" + k8sbin.ContainerdVersion, tags: "no_btrfs"},
	{name: "ctr", install: "github.com/containerd/containerd/v2/cmd/ctr@" + k8sbin.ContainerdVersion, tags: "no_btrfs"},
	{name: "pause", source: "pause_main.go.txt"},
	{name: "registryhint", source: "registryhint_main.go.txt"},
	{name: "runc", install: "github.com/opencontainers/runc@" + k8sbin.RuncVersion, tags: "seccomp", cgo: true},
}

// nodeSources maps each embedded source (under pins/) to its file in the
// checkout. hack/generate.sh copies them; a test fails when they differ.
var nodeSources = map[string]string{
	"pause_main.go.txt":        "hack/pause/main.go",
	"registryhint_main.go.txt": "hack/registryhint/main.go",
}

// NodeNames returns the names of the real node's runtime binaries
// BuildNode knows, in the order it builds them.
func NodeNames() []string {
	var n []string
	for _, t := range nodeTools {
		n = append(n, t.name)
	}
	return n
}

// NodeBinDir returns the directory of the real node's runtime in the cache
// directory, where make tools builds it and k8sbin looks.
func NodeBinDir(cache string) string {
	return filepath.Join(cache, k8sbin.NodeDir, "bin")
}

// ErrNoCgo reports that runc cannot be built: it needs a C compiler and
// libseccomp's headers.
var ErrNoCgo = errors.New("runc is built with cgo against libseccomp: install a C compiler, pkg-config and libseccomp's headers (Debian: apt-get install gcc pkg-config libseccomp-dev)")

// BuildNode builds the real node's runtime (containerd, its runc shim, ctr,
// runc, podkit's pause and registryhint) into opts.Dir, default
// NodeBinDir of the cache, with Build's progress lines and guarantees:
// binaries already there are skipped (pause and registryhint are always
// rebuilt, in a second or two), each is renamed into place only once
// built, and the first failure stops it. runc's prerequisites are checked
// before anything is built.
func BuildNode(ctx context.Context, opts Options) error {
	if opts.Dir == "" {
		cache, err := k8sbin.CacheDir()
		if err != nil {
			return err
		}
		opts.Dir = NodeBinDir(cache)
	}
	if err := opts.setDefaults(); err != nil {
		return err
	}
	for _, n := range opts.Names {
		if !slices.Contains(NodeNames(), n) {
			return fmt.Errorf("unknown node tool %q: build one of %v", n, NodeNames())
		}
	}
	start := time.Now()
	fmt.Fprintf(opts.Out, "tools: real node runtime containerd %s, runc %s into %s\n", k8sbin.ContainerdVersion, k8sbin.RuncVersion, opts.Dir)
	var todo []nodeTool
	for _, t := range nodeTools {
		if len(opts.Names) > 0 && !slices.Contains(opts.Names, t.name) {
			continue
		}
		if t.source == "" && isExecutable(filepath.Join(opts.Dir, t.name)) {
			fmt.Fprintf(opts.Out, "  %-26s cached\n", t.name)
			continue
		}
		todo = append(todo, t)
	}
	if len(todo) == 0 {
		fmt.Fprintf(opts.Out, "tools: done in %ds\n", int(time.Since(start).Seconds()))
		return nil
	}
	goBin, err := exec.LookPath(opts.Go)
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrNoGo, err)
	}
	if slices.ContainsFunc(todo, func(t nodeTool) bool { return t.cgo }) {
		if err := checkCgo(ctx); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", opts.Dir, err)
	}
	for _, t := range todo {
		begin := time.Now()
		if err := buildNodeTool(ctx, goBin, opts.Dir, t); err != nil {
			return err
		}
		fmt.Fprintf(opts.Out, "  %-26s built in %ds\n", t.name, int(time.Since(begin).Seconds()))
	}
	fmt.Fprintf(opts.Out, "tools: done in %ds\n", int(time.Since(start).Seconds()))
	return nil
}

// checkCgo finds the C compiler ($CC, else gcc) and libseccomp through
// pkg-config, as runc's cgo build will.
func checkCgo(ctx context.Context) error {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		return fmt.Errorf("%w: C compiler %q not found", ErrNoCgo, cc)
	}
	if out, err := exec.CommandContext(ctx, "pkg-config", "--exists", "--print-errors", "libseccomp").CombinedOutput(); err != nil {
		return fmt.Errorf("%w: pkg-config libseccomp: %v %s", ErrNoCgo, err, bytes.TrimSpace(out))
	}
	return nil
}

// buildNodeTool builds t into dir (see buildInto).
func buildNodeTool(ctx context.Context, goBin, dir string, t nodeTool) error {
	return buildInto(dir, t.name, func(tmp string) (*exec.Cmd, error) {
		env := append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if t.cgo {
			env = append(env, "CGO_ENABLED=1")
		}
		if t.install != "" {
			args := []string{"install", "-trimpath", "-ldflags", "-s -w"}
			if t.tags != "" {
				args = append(args, "-tags", t.tags)
			}
			cmd := exec.CommandContext(ctx, goBin, append(args, t.install)...)
			cmd.Dir = tmp // outside any module
			cmd.Env = append(env, "GOBIN="+tmp)
			return cmd, nil
		}
		src, err := pins.ReadFile("pins/" + t.source)
		if err != nil {
			return nil, err
		}
		mod := filepath.Join(tmp, "src")
		gomod := "module podkit.dev/node/" + t.name + "\n\ngo 1.26\n"
		if err := os.MkdirAll(mod, 0o755); err != nil {
			return nil, err
		}
		if err := errors.Join(os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644), os.WriteFile(filepath.Join(mod, "main.go"), src, 0o644)); err != nil {
			return nil, fmt.Errorf("write its source: %w", err)
		}
		cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(tmp, t.name), ".")
		cmd.Dir = mod
		cmd.Env = env
		return cmd, nil
	})
}
