package entrypoint

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// kubeletVolume imitates how the kubelet publishes a ConfigMap volume: each version goes into a
// fresh "..<version>" directory, "..data" is switched to it with one rename, and the old
// directory is removed; the keys are symlinks through ..data.
type kubeletVolume struct {
	dir  string
	prev string
}

func (k *kubeletVolume) publish(t *testing.T, files map[string]string) {
	t.Helper()
	ts := fmt.Sprintf("..%d", time.Now().UnixNano())
	if err := os.Mkdir(filepath.Join(k.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(k.dir, ts, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, dataLink)); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		_ = os.Symlink(filepath.Join(dataLink, name), filepath.Join(k.dir, name))
	}
	if k.prev != "" {
		if err := os.RemoveAll(filepath.Join(k.dir, k.prev)); err != nil {
			t.Fatal(err)
		}
	}
	k.prev = ts
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("read %s: %v", e.Name(), err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func versionFiles(v int) map[string]string {
	s := fmt.Sprintf("version %d\n", v)
	return map[string]string{"a.conf": s, "b.conf": s, "c.conf": s}
}

// runUpdates plays the entrypoint's role: every announced change is applied.
func runUpdates(ctx context.Context, c *ConfigHandler, results chan<- UpdateResult) {
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-c.GetWasChangedChannel():
			if !ok {
				return
			}
			if err == nil {
				c.Update()
			}
		case r, ok := <-c.GetUpdateResultChannel():
			if !ok {
				return
			}
			results <- r
		}
	}
}

// applyUpdates plays the entrypoint's role for c until the test ends (see runUpdates) and returns
// a function that waits for the next update result.
func applyUpdates(t *testing.T, c *ConfigHandler) func() UpdateResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	results := make(chan UpdateResult, 10)
	go runUpdates(ctx, c, results)
	return func() UpdateResult {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("no update result")
		}
		return UpdateResult{}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConfigMapDataSwapsApplyFinalStateAndHookNeverSeesPartialView(t *testing.T) {
	base := t.TempDir()
	vol := &kubeletVolume{dir: filepath.Join(base, "volume")}
	if err := os.Mkdir(vol.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	vol.publish(t, versionFiles(0))
	var mu sync.Mutex
	var validated []int
	var partial []string
	validator := ValidatorFunc(func(_ context.Context, staged string) error {
		files := readDir(t, staged)
		var v int
		seen := map[string]bool{}
		for name, body := range files {
			if _, err := fmt.Sscanf(body, "version %d", &v); err != nil {
				return err
			}
			seen[body] = true
			if strings.HasPrefix(name, "..") {
				partial = append(partial, "kubelet bookkeeping leaked: "+name)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 1 || len(files) != 3 {
			partial = append(partial, fmt.Sprint(files))
		}
		validated = append(validated, v)
		return nil
	})
	dest := filepath.Join(base, "live")
	c, err := NewConfigHandler(ConfigOptions{Format: FormatDir, Source: vol.dir, Dest: dest, Validator: validator})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan UpdateResult, 1000)
	go runUpdates(ctx, c, results)

	for v := 1; v <= 100; v++ {
		vol.publish(t, versionFiles(v))
	}
	waitFor(t, "version 100 to be live", func() bool {
		b, _ := os.ReadFile(filepath.Join(dest, "c.conf"))
		return string(b) == "version 100\n"
	})
	cancel()
	if diff := cmp.Diff(versionFiles(100), readDir(t, dest)); diff != "" {
		t.Errorf("live configuration (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(partial) > 0 {
		t.Errorf("validator saw %d partial views, first: %s", len(partial), partial[0])
	}
	for i := 1; i < len(validated); i++ {
		if validated[i] <= validated[i-1] {
			t.Errorf("versions validated %v: want each version at most once, in order", validated)
			break
		}
	}
	if validated[len(validated)-1] != 100 {
		t.Errorf("last validated version = %d, want 100", validated[len(validated)-1])
	}
	t.Logf("100 swaps coalesced into %d applies", len(validated))
	c.Close() // waits for the background removal of previous trees
	assertNoStaging(t, base)
}

func assertNoStaging(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".staged-") {
			t.Errorf("staging leftover %s", e.Name())
		}
	}
}

// dirSource makes a plain directory source holding app.conf with body, and names the live
// directory beside it; base is their parent.
func dirSource(t *testing.T, body string) (base, src, dest string) {
	t.Helper()
	base = t.TempDir()
	src, dest = filepath.Join(base, "src"), filepath.Join(base, "live")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "app.conf"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return base, src, dest
}

func TestConfigValidationFailureKeepsOldConfigLiveAndReportsWhy(t *testing.T) {
	base, src, dest := dirSource(t, "good")
	v, err := CommandValidator([]string{"/bin/sh", "-c", `if grep -q bad "$PODKIT_STAGED_CONFIG/app.conf"; then echo "line 1: bad directive" >&2; exit 1; fi`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConfigHandler(ConfigOptions{Format: FormatDir, Source: src, Dest: dest, Validator: v, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := c.Apply(context.Background()); r.Err != nil || !slices.Equal(r.Added, []string{"app.conf"}) {
		t.Fatalf("initial apply = %+v, want app.conf added", r)
	}
	if err := os.WriteFile(filepath.Join(src, "app.conf"), []byte("bad"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.Apply(context.Background())
	if r.Err == nil || !strings.Contains(r.Err.Error(), "line 1: bad directive") {
		t.Errorf("apply error = %v, want the validator's message", r.Err)
	}
	if got := readDir(t, dest); got["app.conf"] != "good" {
		t.Errorf("live app.conf = %q, want the previous %q", got["app.conf"], "good")
	}
	assertNoStaging(t, base)
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(files[n]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeAtomically publishes data at p the way careful writers do: temp file, then rename.
func writeAtomically(t *testing.T, p string, data []byte) {
	t.Helper()
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

func TestConfigTarUpdateListsAddedChangedRemovedAndRejectsHostileArchive(t *testing.T) {
	base := t.TempDir()
	archive, dest := filepath.Join(base, "in", "config.tar"), filepath.Join(base, "out", "live")
	_ = os.MkdirAll(filepath.Dir(archive), 0o755)
	writeAtomically(t, archive, tarOf(t, map[string]string{"a.conf": "a", "b.conf": "b"}))
	c, err := NewConfigHandler(ConfigOptions{Format: FormatTar, Source: archive, Dest: dest, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next := applyUpdates(t, c)
	if diff := cmp.Diff(UpdateResult{Added: []string{"a.conf", "b.conf"}}, next()); diff != "" {
		t.Errorf("initial result (-want +got):\n%s", diff)
	}
	writeAtomically(t, archive, tarOf(t, map[string]string{"b.conf": "B", "c.conf": "c"}))
	if diff := cmp.Diff(UpdateResult{Added: []string{"c.conf"}, Changed: []string{"b.conf"}, Removed: []string{"a.conf"}}, next()); diff != "" {
		t.Errorf("second result (-want +got):\n%s", diff)
	}
	hostile := tarOf(t, map[string]string{"ok.conf": "x", "../escape": "x"})
	writeAtomically(t, archive, hostile)
	r := next()
	if r.Err == nil || !strings.Contains(r.Err.Error(), "archive rejected") {
		t.Errorf("hostile archive result = %+v, want rejection", r)
	}
	if diff := cmp.Diff(map[string]string{"b.conf": "B", "c.conf": "c"}, readDir(t, dest)); diff != "" {
		t.Errorf("live configuration after rejection (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(base, "out", "escape")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("escape file exists: %v", err)
	}
	c.Close() // waits for the background removal of previous trees (and ends runUpdates)
	assertNoStaging(t, filepath.Join(base, "out"))
}

func TestConfigFileFormatAppliesAndAnnouncesDeletion(t *testing.T) {
	base := t.TempDir()
	src, dest := filepath.Join(base, "nginx.conf"), filepath.Join(base, "live", "nginx.conf")
	writeAtomically(t, src, []byte("worker_processes 1;"))
	c, err := NewConfigHandler(ConfigOptions{Format: FormatFile, Source: src, Dest: dest, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-c.GetWasChangedChannel(); err != nil {
		t.Fatalf("initial announcement = %v, want nil", err)
	}
	c.Update()
	if r := <-c.GetUpdateResultChannel(); r.Err != nil || !slices.Equal(r.Added, []string{"nginx.conf"}) {
		t.Fatalf("result = %+v, want nginx.conf added", r)
	}
	if b, _ := os.ReadFile(dest); string(b) != "worker_processes 1;" {
		t.Errorf("live = %q", b)
	}
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.GetWasChangedChannel():
		if !errors.Is(err, ErrConfigDeleted) {
			t.Errorf("announcement = %v, want ErrConfigDeleted", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("deletion never announced")
	}
}

func TestConfigOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts ConfigOptions
		want string
	}{
		{"missing format", ConfigOptions{Source: "a", Dest: "b"}, "Format"},
		{"missing source", ConfigOptions{Format: FormatDir, Dest: "b"}, "Source"},
		{"missing dest", ConfigOptions{Format: FormatDir, Source: "a"}, "Dest"},
		{"dest equals source", ConfigOptions{Format: FormatDir, Source: "a", Dest: "./a"}, "Dest equals Source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewConfigHandler(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

// A directory source whose links each look local but lead out together (a/b/l -> s/.. where
// a/b/s -> ../..) is refused whole, and the previous configuration stays live byte for byte.
func TestConfigDirRefusesLinksThatLeadOutThroughEachOther(t *testing.T) {
	base, src, dest := dirSource(t, "good")
	c, err := NewConfigHandler(ConfigOptions{Format: FormatDir, Source: src, Dest: dest, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := c.Apply(context.Background()); r.Err != nil {
		t.Fatalf("initial apply = %+v", r)
	}
	if err := os.MkdirAll(filepath.Join(src, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"a/b/s": "../..", "a/b/l": "s/.."} {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	r := c.Apply(context.Background())
	if r.Err == nil || !strings.Contains(r.Err.Error(), "resolves outside the root") {
		t.Fatalf("apply with escaping links = %+v, want a refusal naming the link", r)
	}
	if diff := cmp.Diff(map[string]string{"app.conf": "good"}, readDir(t, dest)); diff != "" {
		t.Errorf("live configuration after refusal (-want +got):\n%s", diff)
	}
	assertNoStaging(t, base)
}

// An edit in a subdirectory of a plain directory source is seen (the whole tree is watched, also
// directories that existed before the handler started), the live tree is readable by others
// (0755), and staged trees a crash left beside the destination are removed at start.
func TestConfigDirWatchesSubdirectoriesAndCleansUpAfterACrash(t *testing.T) {
	base := t.TempDir()
	src, dest := filepath.Join(base, "src"), filepath.Join(base, "live")
	if err := os.MkdirAll(filepath.Join(src, "conf.d", "sites"), 0o755); err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(src, "conf.d", "sites", "a.conf")
	if err := os.WriteFile(site, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(base, ".live.staged-123")
	if err := os.MkdirAll(filepath.Join(crashed, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := NewConfigHandler(ConfigOptions{Format: FormatDir, Source: src, Dest: dest, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := os.Stat(crashed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staged tree left by a crash still there: %v", err)
	}
	next := applyUpdates(t, c)
	if r := next(); r.Err != nil || !slices.Equal(r.Added, []string{"conf.d/sites/a.conf"}) {
		t.Fatalf("initial result = %+v", r)
	}
	if info, err := os.Stat(dest); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("live directory mode = %v (%v), want 0755", info.Mode().Perm(), err)
	}
	writeAtomically(t, site, []byte("v2"))
	if r := next(); r.Err != nil || !slices.Equal(r.Changed, []string{"conf.d/sites/a.conf"}) {
		t.Fatalf("result after a subdirectory edit = %+v, want conf.d/sites/a.conf changed", r)
	}
	// A directory moved in whole, with a subdirectory of its own, is watched too.
	moved := filepath.Join(base, "incoming")
	if err := os.MkdirAll(filepath.Join(moved, "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(moved, "deep", "b.conf"), []byte("b1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, filepath.Join(src, "extra")); err != nil {
		t.Fatal(err)
	}
	if r := next(); r.Err != nil || !slices.Equal(r.Added, []string{"extra/deep/b.conf"}) {
		t.Fatalf("result after a directory moved in = %+v", r)
	}
	writeAtomically(t, filepath.Join(src, "extra", "deep", "b.conf"), []byte("b2"))
	if r := next(); r.Err != nil || !slices.Equal(r.Changed, []string{"extra/deep/b.conf"}) {
		t.Fatalf("result after an edit in the moved directory = %+v", r)
	}
}

// Between two archives a symlink becomes a directory of the same name: the second version is
// extracted into a fresh staging tree, so nothing is written through the old link (its target
// keeps its content) and the live tree ends as the second archive says.
func TestConfigTarLinkReplacedByADirectoryBetweenTwoArchives(t *testing.T) {
	base := t.TempDir()
	archive, dest := filepath.Join(base, "in", "config.tar"), filepath.Join(base, "out", "live")
	if err := os.MkdirAll(filepath.Dir(archive), 0o755); err != nil {
		t.Fatal(err)
	}
	tarWith := func(entries ...tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range entries {
			body := h.Linkname
			if h.Typeflag == tar.TypeReg {
				h.Size, h.Linkname = int64(len(body)), ""
			}
			if h.Mode == 0 {
				h.Mode = 0o644
			}
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				_, _ = tw.Write([]byte(body))
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	// Version 1: conf -> real, real/a.conf. (For regular files Linkname carries the body here.)
	writeAtomically(t, archive, tarWith(
		tar.Header{Name: "real/a.conf", Typeflag: tar.TypeReg, Linkname: "from v1"},
		tar.Header{Name: "conf", Typeflag: tar.TypeSymlink, Linkname: "real"},
	))
	c, err := NewConfigHandler(ConfigOptions{Format: FormatTar, Source: archive, Dest: dest, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next := applyUpdates(t, c)
	if r := next(); r.Err != nil {
		t.Fatalf("version 1: %v", r.Err)
	}
	// Version 2: conf is a directory whose a.conf differs; real/a.conf is unchanged.
	writeAtomically(t, archive, tarWith(
		tar.Header{Name: "real/a.conf", Typeflag: tar.TypeReg, Linkname: "from v1"},
		tar.Header{Name: "conf/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "conf/a.conf", Typeflag: tar.TypeReg, Linkname: "from v2"},
	))
	if r := next(); r.Err != nil {
		t.Fatalf("version 2: %v", r.Err)
	}
	info, err := os.Lstat(filepath.Join(dest, "conf"))
	if err != nil || !info.IsDir() {
		t.Fatalf("live conf = %v, %v; want a directory", info, err)
	}
	for p, want := range map[string]string{"conf/a.conf": "from v2", "real/a.conf": "from v1"} {
		if b, err := os.ReadFile(filepath.Join(dest, p)); err != nil || string(b) != want {
			t.Errorf("live %s = %q, %v; want %q", p, b, err, want)
		}
	}
	c.Close() // waits for the background removal of the previous tree
	assertNoStaging(t, filepath.Dir(dest))
}
