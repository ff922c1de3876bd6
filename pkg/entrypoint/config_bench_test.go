package entrypoint

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkConfigApplyDataSwap measures one kubelet-style ..data swap plus Apply (snapshot, diff,
// exchange) for a three-file ConfigMap, without the fsnotify and signal hops.
func BenchmarkConfigApplyDataSwap(b *testing.B) {
	base := b.TempDir()
	vol := &kubeletVolume{dir: filepath.Join(base, "volume")}
	if err := os.Mkdir(vol.dir, 0o755); err != nil {
		b.Fatal(err)
	}
	t := &testing.T{}
	vol.publish(t, versionFiles(0))
	c, err := NewConfigHandler(ConfigOptions{Format: FormatDir, Source: vol.dir, Dest: filepath.Join(base, "live"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	i := 0
	for b.Loop() {
		i++
		vol.publish(t, versionFiles(i))
		if r := c.Apply(context.Background()); r.Err != nil || !r.HasChanges() {
			b.Fatalf("apply %d: %+v", i, r)
		}
	}
}
