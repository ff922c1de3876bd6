package toolbuild

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/podkit-dev/podkit/internal/k8sbin"
)

// The copies embedded in the binary are their sources byte for byte:
// make generate copies them, and a change to hack/k8s alone fails here.
func TestEmbeddedCopiesMatchTheirSources(t *testing.T) {
	embedded, err := fs.Glob(pins, "pins/*")
	if err != nil {
		t.Fatal(err)
	}
	// Each embedded copy and its source, relative to the module root.
	sources := map[string]string{}
	for e, path := range pinFiles {
		sources[e] = filepath.Join("hack/k8s", path)
	}
	for e, path := range nodeSources {
		sources[e] = path
	}
	var want []string
	for e, path := range sources {
		want = append(want, "pins/"+e)
		got, err := pins.ReadFile("pins/" + e)
		if err != nil {
			t.Fatal(err)
		}
		src, err := os.ReadFile(filepath.Join("../..", path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, src) {
			t.Errorf("internal/toolbuild/pins/%s differs from %s; run: make generate", e, path)
		}
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, embedded); diff != "" {
		t.Errorf("files under pins/ (-copied by generate.sh +embedded):\n%s", diff)
	}
}

// Build and hack/tools.sh build the same binaries at the same versions into
// the same directory, so that either fills the cache for the other.
func TestVersionsAndToolsMatchToolsScript(t *testing.T) {
	script, err := os.ReadFile("../../hack/tools.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"K8S_VERSION=" + k8sbin.Version + "\n",
		"ETCD_VERSION=" + EtcdVersion + "\n",
		"KWOK_VERSION=" + KwokVersion + "\n",
		"CONTROLLER_GEN_VERSION=" + ControllerGenVersion + "\n",
		`bin=$cache/k8s-$K8S_VERSION/bin` + "\n",
		"KUEUE_VERSION=" + k8sbin.KueueVersion + "\n",
		`kueuedir=$cache/kueue-$KUEUE_VERSION` + "\n",
		`"sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION"`,
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("hack/tools.sh lacks %q", strings.TrimSpace(want))
		}
	}
	// The control plane's steps: those not into the node's directory.
	var steps []string
	for _, m := range regexp.MustCompile(`(?m)^step (\S+) (.*)$`).FindAllStringSubmatch(string(script), -1) {
		steps = append(steps, m[1])
		tool := tools[slices.IndexFunc(tools, func(t Tool) bool { return t.Name == m[1] })]
		how := m[2]
		switch {
		case tool.Install != "":
			want := strings.NewReplacer(KwokVersion, "$KWOK_VERSION", ControllerGenVersion, "$CONTROLLER_GEN_VERSION").Replace(tool.Install)
			if how != "gobin_install "+want {
				t.Errorf("hack/tools.sh builds %s with %q, toolbuild with go install %s", m[1], how, tool.Install)
			}
		case tool.StampVersion:
			if how != "k8s_build "+tool.Package {
				t.Errorf("hack/tools.sh builds %s with %q, toolbuild with go build %s", m[1], how, tool.Package)
			}
		default:
			if how != "etcd_build" || tool.Package != "./etcd" {
				t.Errorf("hack/tools.sh builds %s with %q, toolbuild with go build %s", m[1], how, tool.Package)
			}
		}
	}
	if diff := cmp.Diff(Names(), steps); diff != "" {
		t.Errorf("control-plane binaries (-toolbuild +hack/tools.sh):\n%s", diff)
	}
	// The node's steps: into $nodebin, built as BuildNode builds them.
	var nodeSteps []string
	for _, m := range regexp.MustCompile(`(?m)^[ \t]*(?:STEP_ALWAYS=1 )?STEP_BIN=\$nodebin step (\S+) (.*)$`).FindAllStringSubmatch(string(script), -1) {
		nodeSteps = append(nodeSteps, m[1])
		tool := nodeTools[slices.IndexFunc(nodeTools, func(t nodeTool) bool { return t.name == m[1] })]
		var want string
		switch {
		case tool.source != "":
			want = tool.name + "_build"
			if !strings.HasPrefix(strings.TrimSpace(m[0]), "STEP_ALWAYS=1 ") {
				t.Errorf("hack/tools.sh caches %s, BuildNode rebuilds it every time", tool.name)
			}
		case tool.cgo:
			want = "runc_install"
			if tool.tags != "seccomp" || !strings.Contains(string(script), `CGO_ENABLED=1 GO_INSTALL_FLAGS="-tags seccomp" gobin_install "github.com/opencontainers/runc@$RUNC_VERSION"`) {
				t.Errorf("runc: hack/tools.sh's flags differ from BuildNode's (cgo, tags %q)", tool.tags)
			}
		default:
			want = "containerd_install " + tool.name
			if tool.tags != "no_btrfs" || tool.install != "github.com/containerd/containerd/v2/cmd/"+tool.name+"@"+k8sbin.ContainerdVersion {
				t.Errorf("%s: BuildNode installs %s with tags %q, hack/tools.sh containerd_install (no_btrfs)", tool.name, tool.install, tool.tags)
			}
		}
		if m[2] != want {
			t.Errorf("hack/tools.sh builds %s with %q, want %q as BuildNode does", m[1], m[2], want)
		}
	}
	if diff := cmp.Diff(NodeNames(), nodeSteps); diff != "" {
		t.Errorf("node binaries (-toolbuild +hack/tools.sh):\n%s", diff)
	}
	mod, err := pins.ReadFile("pins/go.mod.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\tk8s.io/kubernetes " + k8sbin.Version + "\n", "\tgo.etcd.io/etcd/server/v3 " + EtcdVersion + "\n"} {
		if !bytes.Contains(mod, []byte(want)) {
			t.Errorf("the pinned go.mod lacks %q", strings.TrimSpace(want))
		}
	}
}

// One binary of each kind, built for real: etcd from the pinned module,
// controller-gen with go install (the smallest of each kind). With the Go
// build cache warm (make tools has run) this only links them.
func TestBuildBuildsEachKindThenReportsCached(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bin")
	var out bytes.Buffer
	start := time.Now()
	if err := Build(context.Background(), Options{Dir: dir, Names: []string{k8sbin.ControllerGen, k8sbin.Etcd}, Out: &out}); err != nil {
		t.Fatalf("Build: %v\n%s", err, out.String())
	}
	t.Logf("built etcd and controller-gen in %s:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^tools: control plane ` + k8sbin.Version + `, etcd ` + EtcdVersion + `, kwok ` + KwokVersion + ` into ` + regexp.QuoteMeta(dir) + `$`),
		regexp.MustCompile(`(?m)^  etcd {23}built in \d+s\n  controller-gen {13}built in \d+s\ntools: done in \d+s\n\z`),
	} {
		if !want.MatchString(out.String()) {
			t.Errorf("progress %q does not match %s", out.String(), want)
		}
	}
	for name, want := range map[string]string{k8sbin.Etcd: "etcd Version: 3.7.0", k8sbin.ControllerGen: "Version: " + ControllerGenVersion} {
		got, err := exec.Command(filepath.Join(dir, name), "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(got), want) {
			t.Errorf("%s --version = %q, %v; want %q", name, got, err, want)
		}
	}
	if got := entries(t, dir); !slices.Equal(got, []string{k8sbin.ControllerGen, k8sbin.Etcd}) {
		t.Errorf("%s holds %v, want only controller-gen and etcd", dir, got)
	}

	out.Reset()
	if err := Build(context.Background(), Options{Dir: dir, Names: []string{k8sbin.Etcd, k8sbin.ControllerGen}, Out: &out}); err != nil {
		t.Fatalf("second Build: %v", err)
	}
	if want := regexp.MustCompile(`(?m)^  etcd {23}cached\n  controller-gen {13}cached\ntools: done in 0s\n\z`); !want.MatchString(out.String()) {
		t.Errorf("second run printed %q, want both cached", out.String())
	}
}

func TestMissingGoSaysInstallGo(t *testing.T) {
	dir := t.TempDir()
	err := Build(context.Background(), Options{Dir: dir, Names: []string{k8sbin.Etcd}, Go: filepath.Join(t.TempDir(), "go")})
	if !errors.Is(err, ErrNoGo) || !strings.Contains(err.Error(), "install Go") {
		t.Fatalf("err = %v, want ErrNoGo saying to install Go", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("%s holds %v after a failed build", dir, got)
	}
}

// A failing go command: the error names the binary and quotes the end of
// go's output, and nothing is left in the cache.
func TestFailedBuildNamesTheBinaryAndQuotesGo(t *testing.T) {
	fakeGo := filepath.Join(t.TempDir(), "go")
	script := "#!/bin/sh\nfor i in $(seq 1 30); do echo \"noise $i\"; done\necho 'cannot find module providing package'\nexit 1\n"
	if err := os.WriteFile(fakeGo, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{k8sbin.Kwokctl, k8sbin.KubeScheduler} {
		dir := t.TempDir()
		var out bytes.Buffer
		err := Build(context.Background(), Options{Dir: dir, Names: []string{name}, Go: fakeGo, Out: &out})
		if err == nil {
			t.Fatalf("%s: Build with a failing go succeeded", name)
		}
		for _, want := range []string{"build " + name + ": go ", "exit status 1", "cannot find module providing package", "noise 30"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", name, err, want)
			}
		}
		if strings.Contains(err.Error(), "noise 1\n") {
			t.Errorf("%s: error quotes all of go's output, want its tail: %q", name, err)
		}
		if got := entries(t, dir); len(got) != 0 {
			t.Errorf("%s: %s holds %v after a failed build", name, dir, got)
		}
		if strings.Contains(out.String(), "built") {
			t.Errorf("%s: progress says built: %q", name, out.String())
		}
	}
}

// podkit's own node binaries, from the embedded sources, and ctr with go
// install and build tags: built for real, run, and rebuilt (pause,
// registryhint) or reported cached (ctr) on a second run.
func TestBuildNodeBuildsPodkitsOwnAndContainerdsTools(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bin")
	names := []string{"registryhint", "pause", "ctr"}
	var out bytes.Buffer
	if err := BuildNode(context.Background(), Options{Dir: dir, Names: names, Out: &out}); err != nil {
		t.Fatalf("BuildNode: %v\n%s", err, out.String())
	}
	t.Logf("%s", out.String())
	want := regexp.MustCompile(`(?m)^tools: real node runtime containerd ` + k8sbin.ContainerdVersion + `, runc ` + k8sbin.RuncVersion + ` into ` + regexp.QuoteMeta(dir) + `\n  ctr {24}built in \d+s\n  pause {22}built in \d+s\n  registryhint {15}built in \d+s\ntools: done in \d+s\n\z`)
	if !want.MatchString(out.String()) {
		t.Errorf("progress %q does not match %s", out.String(), want)
	}
	if got, err := exec.Command(filepath.Join(dir, "pause"), "-v").Output(); err != nil || string(got) != "podkit pause\n" {
		t.Errorf("pause -v = %q, %v", got, err)
	}
	if got, err := exec.Command(filepath.Join(dir, "ctr"), "--version").Output(); err != nil || !strings.Contains(string(got), " "+strings.TrimPrefix(k8sbin.ContainerdVersion, "v")) {
		t.Errorf("ctr --version = %q, %v; want %s", got, err, k8sbin.ContainerdVersion)
	}
	if got, err := exec.Command(filepath.Join(dir, "registryhint"), "-h").CombinedOutput(); !strings.Contains(string(got), "-addr") {
		t.Errorf("registryhint -h = %q, %v; want its flags", got, err)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"ctr", "pause", "registryhint"}) {
		t.Errorf("%s holds %v, want only the three", dir, got)
	}
	out.Reset()
	if err := BuildNode(context.Background(), Options{Dir: dir, Names: names, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if want := regexp.MustCompile(`(?m)^  ctr {24}cached\n  pause {22}built in \d+s\n  registryhint {15}built in \d+s\n`); !want.MatchString(out.String()) {
		t.Errorf("second run printed %q, want ctr cached and podkit's own rebuilt", out.String())
	}
}

// Without a C compiler runc cannot be built: BuildNode says what to
// install before it builds anything.
func TestBuildNodeWithoutCgoSaysWhatToInstallAndBuildsNothing(t *testing.T) {
	t.Setenv("CC", filepath.Join(t.TempDir(), "no-such-cc"))
	dir := filepath.Join(t.TempDir(), "bin")
	err := BuildNode(context.Background(), Options{Dir: dir, Names: []string{"pause", "runc"}})
	if !errors.Is(err, ErrNoCgo) || !strings.Contains(err.Error(), "libseccomp-dev") || !strings.Contains(err.Error(), "no-such-cc") {
		t.Fatalf("err = %v, want ErrNoCgo naming the compiler and libseccomp-dev", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("%s holds %v after a refused build", dir, got)
	}
	if err := BuildNode(context.Background(), Options{Dir: dir, Names: []string{"crun"}}); err == nil || !strings.Contains(err.Error(), `unknown node tool "crun"`) {
		t.Errorf("err = %v, want unknown node tool", err)
	}
}

func TestUnknownToolIsRefused(t *testing.T) {
	err := Build(context.Background(), Options{Dir: t.TempDir(), Names: []string{"kube-dns"}})
	if err == nil || !strings.Contains(err.Error(), `unknown tool "kube-dns"`) {
		t.Fatalf("err = %v, want unknown tool", err)
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}
