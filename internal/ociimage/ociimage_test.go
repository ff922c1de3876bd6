package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	tinyOnce sync.Once
	tinyPath string
	tinyErr  error
)

// tinyBinary builds a static hello-world once per test binary.
func tinyBinary(t *testing.T) string {
	t.Helper()
	tinyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ociimage-tiny-")
		if err != nil {
			tinyErr = err
			return
		}
		src := filepath.Join(dir, "main.go")
		if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644); err != nil {
			tinyErr = err
			return
		}
		tinyPath = filepath.Join(dir, "tiny")
		cmd := exec.Command("go", "build", "-trimpath", "-o", tinyPath, src)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			tinyErr = errors.New(string(out))
		}
	})
	if tinyErr != nil {
		t.Fatalf("build tiny binary: %v", tinyErr)
	}
	return tinyPath
}

func TestWriteProducesImageThatReadsBackVerified(t *testing.T) {
	bin := tinyBinary(t)
	dir := t.TempDir()
	labels := map[string]string{
		"org.opencontainers.image.title":   "tiny",
		"org.opencontainers.image.version": "v0.0.1",
	}
	desc, err := Write(dir, Options{Binary: bin, Path: "/usr/bin/tiny", Cmd: []string{"--help"}, Labels: labels, RefName: "dev"})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	img, err := Read(dir, "dev")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if img.Descriptor.Digest != desc.Digest {
		t.Errorf("index digest %s, Write returned %s", img.Descriptor.Digest, desc.Digest)
	}
	wantPlatform := &Platform{Architecture: runtime.GOARCH, OS: "linux"}
	if diff := cmp.Diff(wantPlatform, img.Descriptor.Platform); diff != "" {
		t.Errorf("platform (-want +got):\n%s", diff)
	}
	got := img.Config.Config
	want := ContainerConfig{
		User:       DefaultUser,
		Env:        []string{"PATH=/"},
		Entrypoint: []string{"/usr/bin/tiny"},
		Cmd:        []string{"--help"},
		WorkingDir: "/",
		Labels: map[string]string{
			"org.opencontainers.image.title":   "tiny",
			"org.opencontainers.image.version": "v0.0.1",
			AnnotationCreated:                  "1970-01-01T00:00:00Z",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("container config (-want +got):\n%s", diff)
	}
	if img.Config.OS != "linux" || img.Config.Architecture != runtime.GOARCH {
		t.Errorf("config platform %s/%s, want linux/%s", img.Config.OS, img.Config.Architecture, runtime.GOARCH)
	}
	if img.Manifest.Annotations["org.opencontainers.image.title"] != "tiny" {
		t.Errorf("manifest annotations %v lack the title label", img.Manifest.Annotations)
	}
	if len(img.Layers) != 1 {
		t.Fatalf("got %d layers, want 1", len(img.Layers))
	}
	files, err := LayerFiles(img.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	f, ok := files["usr/bin/tiny"]
	if !ok {
		t.Fatalf("layer lacks usr/bin/tiny; has %v", keys(files))
	}
	if f.Header.Mode != 0o755 || f.Header.Uid != 0 {
		t.Errorf("binary mode %o uid %d, want 755 owned by root", f.Header.Mode, f.Header.Uid)
	}
	wantBin, _ := os.ReadFile(bin)
	if !bytes.Equal(f.Data, wantBin) {
		t.Errorf("binary in layer differs from %s", bin)
	}
	for _, d := range []string{"usr/", "usr/bin/", "etc/", "tmp/"} {
		if _, ok := files[d]; !ok {
			t.Errorf("layer lacks directory %s", d)
		}
	}
	if !strings.Contains(string(files["etc/passwd"].Data), "nonroot:x:65532:65532:") {
		t.Errorf("etc/passwd does not name user 65532: %q", files["etc/passwd"].Data)
	}
}

func keys(m map[string]File) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestWriteIsReproducible(t *testing.T) {
	bin := tinyBinary(t)
	a, err := Write(t.TempDir(), Options{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Write(t.TempDir(), Options{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Errorf("two builds of the same binary differ: %s and %s", a.Digest, b.Digest)
	}
}

func TestWriteHonoursSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir := t.TempDir()
	if _, err := Write(dir, Options{Binary: tinyBinary(t)}); err != nil {
		t.Fatal(err)
	}
	img, err := Read(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Created != "2023-11-14T22:13:20Z" {
		t.Errorf("created %q, want 2023-11-14T22:13:20Z", img.Config.Created)
	}
}

func TestWriteReplacesEarlierImageInSameDirectory(t *testing.T) {
	dir := t.TempDir()
	bin := tinyBinary(t)
	if _, err := Write(dir, Options{Binary: bin, Path: "/a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(dir, Options{Binary: bin, Path: "/b", RefName: "v2"}); err != nil {
		t.Fatal(err)
	}
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 3 {
		t.Errorf("layout holds %d blobs, want 3 (manifest, config, layer)", len(blobs))
	}
	if _, err := Read(dir, "latest"); err == nil {
		t.Error("Read found the replaced image tagged latest")
	}
	img, err := Read(dir, "v2")
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Config.Config.Entrypoint; len(got) != 1 || got[0] != "/b" {
		t.Errorf("entrypoint %v, want [/b]", got)
	}
}

func TestWriteRejectsBadInput(t *testing.T) {
	bin := tinyBinary(t)
	notELF := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no binary", Options{}, "Options.Binary is empty"},
		{"relative path", Options{Binary: bin, Path: "tiny"}, "Options.Path"},
		{"unclean path", Options{Binary: bin, Path: "/a/../tiny"}, "Options.Path"},
		{"named user", Options{Binary: bin, User: "nonroot"}, "numeric uid:gid"},
		{"missing binary", Options{Binary: filepath.Join(t.TempDir(), "nope")}, "read binary"},
		{"not an ELF file", Options{Binary: notELF}, "not an ELF executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Write(t.TempDir(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Write error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestWriteRefusesDynamicallyLinkedBinary(t *testing.T) {
	var dynamic string
	for _, p := range []string{"/bin/ls", "/usr/bin/env", "/bin/sh"} {
		if _, err := os.Stat(p); err == nil {
			dynamic = p
			break
		}
	}
	if dynamic == "" {
		t.Fatal("no dynamically linked system binary found (/bin/ls, /usr/bin/env, /bin/sh)")
	}
	_, err := Write(t.TempDir(), Options{Binary: dynamic})
	if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("Write(%s) error = %v, want a hint to build with CGO_ENABLED=0", dynamic, err)
	}
}

func TestReadDetectsTamperedBlobs(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, Options{Binary: tinyBinary(t)}); err != nil {
		t.Fatal(err)
	}
	img, err := Read(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	layer, _ := blobPath(dir, img.Manifest.Layers[0].Digest)
	data, _ := os.ReadFile(layer)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(layer, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir, ""); err == nil || !strings.Contains(err.Error(), "content digest") {
		t.Errorf("Read of a tampered layer: error = %v, want a digest mismatch", err)
	}
}

func TestWriteArchiveHoldsTheLayout(t *testing.T) {
	dir := t.TempDir()
	desc, err := Write(dir, Options{Binary: tinyBinary(t)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, dir); err != nil {
		t.Fatal(err)
	}
	// WriteArchiveFile writes the same bytes, creating missing parents.
	file := filepath.Join(t.TempDir(), "new", "dir", "image.tar")
	if err := WriteArchiveFile(file, dir); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, buf.Bytes()) {
		t.Errorf("WriteArchiveFile wrote %d bytes (err %v), WriteArchive %d; want the same archive", len(got), err, buf.Len())
	}
	// Unpack the archive and read it as a layout: it must verify.
	out := t.TempDir()
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(out, hdr.Name)
		if hdr.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img, err := Read(out, "latest")
	if err != nil {
		t.Fatalf("Read unpacked archive: %v", err)
	}
	if img.Descriptor.Digest != desc.Digest {
		t.Errorf("archive image %s, want %s", img.Descriptor.Digest, desc.Digest)
	}
}

func TestWriteAddsLinksAndFiles(t *testing.T) {
	bin := tinyBinary(t)
	dir := t.TempDir()
	if _, err := Write(dir, Options{Binary: bin, Path: "/bin/busybox", Links: []string{"/bin/sh", "/usr/bin/env"},
		Files: []ExtraFile{{Path: "/opt/tool/tiny", Source: bin}}, RefName: "dev"}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	img, err := Read(dir, "dev")
	if err != nil {
		t.Fatal(err)
	}
	files, err := LayerFiles(img.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"bin/sh", "usr/bin/env"} {
		f, ok := files[l]
		if !ok {
			t.Fatalf("layer lacks %s; has %v", l, keys(files))
		}
		if f.Header.Typeflag != tar.TypeSymlink || f.Header.Linkname != "/bin/busybox" {
			t.Errorf("%s: type %c -> %q, want a symlink to /bin/busybox", l, f.Header.Typeflag, f.Header.Linkname)
		}
	}
	if _, ok := files["usr/bin/"]; !ok {
		t.Errorf("layer lacks the link's parent directory usr/bin/")
	}
	wantBin, _ := os.ReadFile(bin)
	if f, ok := files["opt/tool/tiny"]; !ok || f.Header.Mode != 0o755 || !bytes.Equal(f.Data, wantBin) {
		t.Errorf("extra file opt/tool/tiny missing or wrong (present %v)", ok)
	}
	if _, ok := files["opt/tool/"]; !ok {
		t.Errorf("layer lacks the extra file's parent directory opt/tool/")
	}
	for _, bad := range []ExtraFile{{Path: "/bin/busybox", Source: bin}, {Path: "opt/x", Source: bin}, {Path: "/opt/x"}} {
		if _, err := Write(t.TempDir(), Options{Binary: bin, Path: "/bin/busybox", Files: []ExtraFile{bad}}); err == nil || !strings.Contains(err.Error(), "Options.Files[0]") {
			t.Errorf("Files %+v: err %v, want one naming Options.Files[0]", bad, err)
		}
	}

	for _, bad := range [][]string{{"bin/sh"}, {"/bin/../sh"}, {"/bin/busybox"}, {"/etc/passwd"}, {"/"}} {
		if _, err := Write(t.TempDir(), Options{Binary: bin, Path: "/bin/busybox", Links: bad}); err == nil || !strings.Contains(err.Error(), "Options.Links[0]") {
			t.Errorf("Links %q: err %v, want one naming Options.Links[0]", bad, err)
		}
	}
}
