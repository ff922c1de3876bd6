package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
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
	tinyMu    sync.Mutex
	tinyPaths = map[string]string{}
)

// tinyBinary builds a static hello-world for linux/GOARCH once per test
// binary.
func tinyBinary(t *testing.T) string {
	t.Helper()
	return tinyBinaryFor(t, runtime.GOARCH)
}

// tinyBinaryFor builds a static hello-world for linux/arch once per test
// binary.
func tinyBinaryFor(t *testing.T, arch string) string {
	t.Helper()
	tinyMu.Lock()
	defer tinyMu.Unlock()
	if p, ok := tinyPaths[arch]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "ociimage-tiny-")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "tiny")
	cmd := exec.Command("go", "build", "-trimpath", "-o", p, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build tiny binary for linux/%s: %v\n%s", arch, err, out)
	}
	tinyPaths[arch] = p
	return p
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

func TestWriteIndexHoldsOneImagePerPlatform(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	// An earlier single-platform image in the same layout is replaced.
	if _, err := Write(dir, Options{Binary: tinyBinaryFor(t, "amd64"), RefName: "old"}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"org.opencontainers.image.version": "v9.9.9"}
	desc, err := WriteIndex(dir, "v9.9.9", []Options{
		{Binary: tinyBinaryFor(t, "amd64"), Path: "/tiny", Labels: labels},
		{Binary: tinyBinaryFor(t, "arm64"), Path: "/tiny", Labels: labels},
	})
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != MediaTypeIndex || desc.Annotations[AnnotationRefName] != "v9.9.9" {
		t.Errorf("descriptor %+v: want an image index tagged v9.9.9", desc)
	}
	if _, err := Read(dir, "v9.9.9"); err == nil || !strings.Contains(err.Error(), "ReadAll") {
		t.Errorf("Read of a multi-platform image: err = %v, want one naming ReadAll", err)
	}
	if _, err := ReadAll(dir, "old"); err == nil {
		t.Error("the replaced image is still tagged in index.json")
	}
	images, err := ReadAll(dir, "v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	blobs := map[string]bool{desc.Digest: true}
	for _, img := range images {
		p := img.Descriptor.Platform
		got = append(got, p.OS+"/"+p.Architecture)
		files, err := LayerFiles(img.Layers[0])
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(tinyBinaryFor(t, p.Architecture))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(files["tiny"].Data, want) {
			t.Errorf("%s image does not hold the %s binary", p.Architecture, p.Architecture)
		}
		if img.Config.Config.Labels["org.opencontainers.image.version"] != "v9.9.9" {
			t.Errorf("%s config labels %v lack the version", p.Architecture, img.Config.Config.Labels)
		}
		blobs[img.Descriptor.Digest] = true
		blobs[img.Manifest.Config.Digest] = true
		blobs[img.Manifest.Layers[0].Digest] = true
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, got); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !blobs["sha256:"+e.Name()] {
			t.Errorf("blob %s is referenced by nothing (left from the replaced image?)", e.Name())
		}
	}
	if len(entries) != len(blobs) {
		t.Errorf("%d blobs, want %d", len(entries), len(blobs))
	}
	// Reproducible: the same inputs give the same index digest.
	again, err := WriteIndex(filepath.Join(t.TempDir(), "again"), "v9.9.9", []Options{
		{Binary: tinyBinaryFor(t, "amd64"), Path: "/tiny", Labels: labels},
		{Binary: tinyBinaryFor(t, "arm64"), Path: "/tiny", Labels: labels},
	})
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != desc.Digest {
		t.Errorf("second build's digest %s differs from %s", again.Digest, desc.Digest)
	}
}

func TestWriteIndexRefusesBadInputAndKeepsTheLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	if _, err := Write(dir, Options{Binary: tinyBinary(t), RefName: "keep"}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	amd := tinyBinaryFor(t, "amd64")
	for name, tc := range map[string]struct {
		ref    string
		images []Options
		want   string
	}{
		"no images":          {ref: "x", want: "no images"},
		"platform twice":     {ref: "x", images: []Options{{Binary: amd}, {Binary: amd}}, want: "both linux/amd64"},
		"other tag":          {ref: "x", images: []Options{{Binary: amd, RefName: "y"}}, want: `images[0].RefName "y"`},
		"bad path in second": {ref: "x", images: []Options{{Binary: amd}, {Binary: tinyBinaryFor(t, "arm64"), Path: "rel"}}, want: "images[1]: Options.Path"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := WriteIndex(dir, tc.ref, tc.images)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			after, err := os.ReadFile(filepath.Join(dir, IndexFile))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Errorf("index.json changed after a refused WriteIndex:\n%s", after)
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); len(entries) != 3 {
				t.Errorf("%d blobs after a refused WriteIndex, want the earlier image's 3", len(entries))
			}
			if _, err := Read(dir, "keep"); err != nil {
				t.Errorf("earlier image no longer reads back: %v", err)
			}
		})
	}
}

func TestReadAllDetectsAnIndexThatLiesAboutAPlatform(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	desc, err := WriteIndex(dir, "v1", []Options{{Binary: tinyBinaryFor(t, "amd64")}, {Binary: tinyBinaryFor(t, "arm64")}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := ReadBlob(dir, *desc)
	if err != nil {
		t.Fatal(err)
	}
	// Swap the two platforms, then re-point index.json at the forged index
	// with a correct digest: only the platform check can catch it.
	var index Index
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatal(err)
	}
	index.Manifests[0].Platform, index.Manifests[1].Platform = index.Manifests[1].Platform, index.Manifests[0].Platform
	forged, err := json.Marshal(index)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := writeBlob(dir, MediaTypeIndex, forged)
	if err != nil {
		t.Fatal(err)
	}
	fd.Annotations = map[string]string{AnnotationRefName: "v1"}
	if err := writeIndexJSON(dir, *fd); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAll(dir, "v1"); err == nil || !strings.Contains(err.Error(), "but its config is") {
		t.Errorf("ReadAll of a forged index: err = %v, want a platform mismatch", err)
	}
}
