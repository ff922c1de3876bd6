package toolbuild

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/podkit-dev/podkit/internal/k8sbin"
)

// Versions of the tools not versioned by the Kubernetes module
// (k8sbin.Version). hack/tools.sh pins the same ones; a test checks it.
const (
	EtcdVersion          = "v3.7.0"
	KwokVersion          = "v0.8.0"
	ControllerGenVersion = "v0.23.0"
)

// Names of the two node binaries built from the Kubernetes module beside
// the control plane.
const (
	Kubelet   = "kubelet"
	KubeProxy = "kube-proxy"
)

// Tool is one binary and how it is built: either a package of the pinned
// module (Package) or a module at a version (Install).
type Tool struct {
	// Name of the binary in the cache.
	Name string
	// Package is built with `go build` inside the pinned module.
	Package string
	// Install is a command path@version run through `go install`.
	Install string
	// StampVersion adds the ldflags that make the binary report
	// k8sbin.Version (k8s.io/component-base/version).
	StampVersion bool
}

// tools lists every binary Build knows, in the order hack/tools.sh builds them.
var tools = []Tool{
	{Name: k8sbin.Etcd, Package: "./etcd"},
	{Name: k8sbin.KubeAPIServer, Package: "k8s.io/kubernetes/cmd/kube-apiserver", StampVersion: true},
	{Name: k8sbin.KubeControllerManager, Package: "k8s.io/kubernetes/cmd/kube-controller-manager", StampVersion: true},
	{Name: k8sbin.KubeScheduler, Package: "k8s.io/kubernetes/cmd/kube-scheduler", StampVersion: true},
	{Name: k8sbin.Kubectl, Package: "k8s.io/kubernetes/cmd/kubectl", StampVersion: true},
	{Name: k8sbin.Kwok, Install: "sigs.k8s.io/kwok/cmd/kwok@" + KwokVersion},
	{Name: k8sbin.Kwokctl, Install: "sigs.k8s.io/kwok/cmd/kwokctl@" + KwokVersion},
	{Name: k8sbin.ControllerGen, Install: "sigs.k8s.io/controller-tools/cmd/controller-gen@" + ControllerGenVersion},
	{Name: Kubelet, Package: "k8s.io/kubernetes/cmd/kubelet", StampVersion: true},
	{Name: KubeProxy, Package: "k8s.io/kubernetes/cmd/kube-proxy", StampVersion: true},
}

// pinFiles maps each embedded file (under pins/) to its source in hack/k8s.
// hack/generate.sh copies them; a test fails when they differ.
var pinFiles = map[string]string{
	"go.mod.txt":       "go.mod",
	"go.sum.txt":       "go.sum",
	"tools.go.txt":     "tools.go",
	"etcd_main.go.txt": "etcd/main.go",
}

//go:embed pins/*.txt
var pins embed.FS // hack/k8s's pins (pinFiles) and podkit's node sources (nodeSources)

// ErrNoGo reports that the go command is not on PATH.
var ErrNoGo = errors.New("the go command was not found: podkit builds the control plane from Go modules with the Go toolchain; install Go 1.26 or newer (https://go.dev/dl/) and put go on PATH")

// Options configures Build.
type Options struct {
	// Dir receives the binaries; default <k8sbin.CacheDir()>/k8s-<k8sbin.Version>/bin.
	Dir string
	// Names selects the binaries to build (see Names); default all.
	// They are built in make tools' order whatever the order given.
	Names []string
	// Out receives one progress line per binary, as make tools prints
	// them; nil discards them.
	Out io.Writer
	// Go is the go command to run; default "go" from PATH.
	Go string
}

func (o *Options) setDefaults() error {
	if o.Dir == "" {
		dir, err := DefaultDir()
		if err != nil {
			return err
		}
		o.Dir = dir
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Go == "" {
		o.Go = "go"
	}
	return nil
}

func (o *Options) validate() error {
	for _, n := range o.Names {
		if !slices.ContainsFunc(tools, func(t Tool) bool { return t.Name == n }) {
			return fmt.Errorf("unknown tool %q: build one of %v", n, names(tools))
		}
	}
	return nil
}

// DefaultDir returns <k8sbin.CacheDir()>/k8s-<k8sbin.Version>/bin, where
// make tools builds and k8sbin looks.
func DefaultDir() (string, error) {
	cache, err := k8sbin.CacheDir()
	if err != nil {
		return "", err
	}
	return BinDir(cache), nil
}

// BinDir returns the directory of the pinned binaries in the cache directory.
func BinDir(cache string) string {
	return filepath.Join(cache, "k8s-"+k8sbin.Version, "bin")
}

// Build builds every selected binary that is not in opts.Dir yet, one at a
// time, printing "cached" or "built in Ns" for each. Each is built into a
// temporary directory beside its place and renamed there, so the cache
// never holds a half-written binary. It stops at the first failure, with
// an error that names the binary and quotes the go command's output.
func Build(ctx context.Context, opts Options) error {
	if err := opts.setDefaults(); err != nil {
		return err
	}
	if err := opts.validate(); err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(opts.Out, "tools: control plane %s, etcd %s, kwok %s into %s\n", k8sbin.Version, EtcdVersion, KwokVersion, opts.Dir)
	var todo []Tool
	for _, t := range tools {
		if len(opts.Names) > 0 && !slices.Contains(opts.Names, t.Name) {
			continue
		}
		if isExecutable(filepath.Join(opts.Dir, t.Name)) {
			fmt.Fprintf(opts.Out, "  %-26s cached\n", t.Name)
			continue
		}
		todo = append(todo, t)
	}
	if len(todo) > 0 {
		if err := buildAll(ctx, opts, todo); err != nil {
			return err
		}
	}
	fmt.Fprintf(opts.Out, "tools: done in %ds\n", int(time.Since(start).Seconds()))
	return nil
}

func buildAll(ctx context.Context, opts Options, todo []Tool) (err error) {
	goBin, err := exec.LookPath(opts.Go)
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrNoGo, err)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", opts.Dir, err)
	}
	var module string // the pinned module, written when first needed
	defer func() {
		if module != "" {
			err = errors.Join(err, os.RemoveAll(module))
		}
	}()
	b := builder{goBin: goBin, dir: opts.Dir, buildDate: time.Now().UTC().Format("2006-01-02T15:04:05Z")}
	for _, t := range todo {
		if t.Package != "" && module == "" {
			if module, err = writeModule(); err != nil {
				return err
			}
		}
		start := time.Now()
		if err := b.build(ctx, t, module); err != nil {
			return err
		}
		fmt.Fprintf(opts.Out, "  %-26s built in %ds\n", t.Name, int(time.Since(start).Seconds()))
	}
	return nil
}

// writeModule writes the embedded pins to a new temporary directory, laid
// out as hack/k8s is, and returns it.
func writeModule() (string, error) {
	dir, err := os.MkdirTemp("", "podkit-k8s-module-")
	if err != nil {
		return "", fmt.Errorf("create a directory for the pinned module: %w", err)
	}
	for embedded, path := range pinFiles {
		data, err := pins.ReadFile("pins/" + embedded)
		if err == nil {
			err = os.MkdirAll(filepath.Join(dir, filepath.Dir(path)), 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, path), data, 0o644)
		}
		if err != nil {
			return "", errors.Join(fmt.Errorf("write the pinned module's %s: %w", path, err), os.RemoveAll(dir))
		}
	}
	return dir, nil
}

type builder struct {
	goBin     string
	dir       string
	buildDate string
}

// build builds t into b.dir (see buildInto).
func (b builder) build(ctx context.Context, t Tool, module string) error {
	return buildInto(b.dir, t.Name, func(tmp string) (*exec.Cmd, error) {
		if t.Install != "" {
			cmd := exec.CommandContext(ctx, b.goBin, "install", "-trimpath", "-ldflags", "-s -w", t.Install)
			cmd.Dir = tmp // outside any module
			cmd.Env = append(goEnv(), "GOBIN="+tmp)
			return cmd, nil
		}
		cmd := exec.CommandContext(ctx, b.goBin, "build", "-trimpath", "-ldflags", b.ldflags(t), "-o", filepath.Join(tmp, t.Name), t.Package)
		cmd.Dir = module
		cmd.Env = goEnv()
		return cmd, nil
	})
}

// buildInto runs the go command that command returns, which must write the
// binary name into the temporary directory it is given (made inside dir),
// and renames the binary into dir: the cache never holds a half-written
// one. A failure names the binary and quotes the end of go's output.
func buildInto(dir, name string, command func(tmp string) (*exec.Cmd, error)) (err error) {
	tmp, err := os.MkdirTemp(dir, "."+name+"-build-")
	if err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()
	cmd, err := command(tmp)
	if err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s: go %s: %w: %s", name, cmd.Args[1], err, tail(out.String(), 20))
	}
	if err := os.Rename(filepath.Join(tmp, name), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	return nil
}

// ldflags are hack/tools.sh's: stripped, and for Kubernetes commands the
// version they report.
func (b builder) ldflags(t Tool) string {
	if !t.StampVersion {
		return "-s -w"
	}
	const pkg = "k8s.io/component-base/version"
	minor := strings.SplitN(strings.TrimPrefix(k8sbin.Version, "v1."), ".", 2)[0]
	return strings.Join([]string{"-s -w",
		"-X " + pkg + ".gitVersion=" + k8sbin.Version,
		"-X " + pkg + ".gitMajor=1",
		"-X " + pkg + ".gitMinor=" + minor,
		"-X " + pkg + ".gitTreeState=clean",
		"-X " + pkg + ".buildDate=" + b.buildDate,
		"-X " + pkg + "/verflag.programName=kubernetes",
		// client-go carries its own copy of the version for the User-Agent.
		"-X k8s.io/client-go/pkg/version.gitVersion=" + k8sbin.Version,
	}, " ")
}

// goEnv is the environment of every go command: static binaries, and no
// go.work of the caller's reaching into the pinned module.
func goEnv() []string {
	return append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// Names returns the names of every binary Build knows, in the order it
// builds them.
func Names() []string { return names(tools) }

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func names(ts []Tool) []string {
	var n []string
	for _, t := range ts {
		n = append(n, t.Name)
	}
	return n
}
