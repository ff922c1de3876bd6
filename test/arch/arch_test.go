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
