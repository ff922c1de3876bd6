package safetar

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzExtract feeds arbitrary bytes to Extract: whatever the outcome, nothing may appear beside
// the root and nothing inside it may be a device, a setuid file or an escaping symlink.
func FuzzExtract(f *testing.F) {
	for _, data := range hostileArchives(f) {
		f.Add(data)
	}
	f.Add(build(f, file("a.conf", "a"), file("d/b.conf", "b")))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent, dir := sandbox(t)
		_ = Extract(bytes.NewReader(data), dir, testLimits)
		assertNoEscape(t, parent)
	})
}

// TestWriteFuzzSeedCorpus refreshes testdata/fuzz/FuzzExtract from the hostile corpus when
// PODKIT_WRITE_FUZZ_CORPUS=1; otherwise it checks that the kept corpus exists.
func TestWriteFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzExtract")
	if os.Getenv("PODKIT_WRITE_FUZZ_CORPUS") != "1" {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) < 25 {
			t.Fatalf("kept seed corpus in %s has %d files (%v), want >= 25; regenerate with PODKIT_WRITE_FUZZ_CORPUS=1", dir, len(entries), err)
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, data := range hostileArchives(t) {
		i++
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("hostile-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
