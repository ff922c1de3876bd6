package arch

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/podkit-dev/podkit"

// deps returns the packages pkg depends on, test files excluded.
func deps(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath", pkg)
	cmd.Dir = "../.." // the module root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	got := map[string]bool{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct{ ImportPath string }
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		got[p.ImportPath] = true
	}
	return got
}

func TestImportRules(t *testing.T) {
	for _, tc := range []struct {
		pkg       string
		forbidden []string // exact packages or prefixes ending in "/"
	}{
		{"./pkg/...", []string{module + "/internal/cli/", module + "/cmd/"}},
		{"./pkg/framework", []string{module + "/pkg/barrier"}},
		{"./pkg/barrier", []string{module + "/pkg/framework"}},
		{"./cmd/podkit-entrypoint", []string{"k8s.io/client-go/", "sigs.k8s.io/controller-runtime/"}},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			got := deps(t, tc.pkg)
			if len(got) < 5 {
				t.Fatalf("go list found only %d dependencies of %s", len(got), tc.pkg)
			}
			for dep := range got {
				for _, f := range tc.forbidden {
					if dep == strings.TrimSuffix(f, "/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
						t.Errorf("%s depends on %s", tc.pkg, dep)
					}
				}
			}
		})
	}
}

// podkit-entrypoint is PID 1 in every container that uses it, and each page of its binary is
// resident memory there: it speaks to sockets directly rather than through package net (whose
// resolver and DNS parser were about 400 KiB of it), and has no net/http. The library keeps
// Health.Serve(net.Listener) for other programs; this checks what the binary links.
func TestEntrypointBinaryLinksNoNetworkStack(t *testing.T) {
	bin := t.TempDir() + "/podkit-entrypoint"
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/podkit-entrypoint")
	build.Dir = "../.."
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build podkit-entrypoint: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	syms := string(out)
	if !strings.Contains(syms, "/minihttp.Listen\n") {
		t.Fatal("go tool nm shows no minihttp.Listen: the check would see nothing")
	}
	for _, s := range []string{" net.(*netFD).", " net.(*Resolver).", " net/http.", " vendor/golang.org/x/net/dns/dnsmessage.(*Parser)."} {
		if strings.Contains(syms, s) {
			t.Errorf("podkit-entrypoint links %s…", strings.TrimSpace(s))
		}
	}
}
