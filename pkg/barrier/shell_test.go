package barrier

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shells are the interpreters injector.sh must work with.
var shells = []string{"dash", "bash"}

func requireShell(t testing.TB, sh string) string {
	t.Helper()
	p, err := exec.LookPath(sh)
	if err != nil {
		t.Fatalf("%s is not installed (apt-get install -y %s): %v", sh, sh, err)
	}
	return p
}

// sourceScript sources script with shell in a clean environment plus env and
// returns the exported variables that match keep.
func sourceScript(t testing.TB, shell, script string, env []string, keep func(string) bool) map[string]string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "injector.sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shell, "-c", `set -eu; . "$0"; exec env -0`, path)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s sourcing injector: %v\nstderr: %s\nscript:\n%s", shell, err, stderr.String(), script)
	}
	if stderr.Len() > 0 {
		t.Fatalf("%s wrote to stderr: %s\nscript:\n%s", shell, stderr.String(), script)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("sourcing the injector created files: %v\nscript:\n%s", entries, script)
	}
	vars := map[string]string{}
	for _, kv := range strings.Split(string(out), "\x00") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && keep(k) {
			vars[k] = v
		}
	}
	return vars
}

// syntaxCheck runs shell -n on script.
func syntaxCheck(t testing.TB, shell, script string) {
	t.Helper()
	cmd := exec.Command(shell, "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s -n rejects the script: %v: %s\nscript:\n%s", shell, err, out, script)
	}
}

func isInjected(k string) bool {
	if strings.HasPrefix(k, "FB_") && !strings.HasSuffix(k, "_PORT") {
		return true
	}
	switch k {
	case "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK":
		return true
	}
	return false
}
