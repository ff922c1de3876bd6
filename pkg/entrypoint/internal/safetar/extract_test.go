package safetar

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// entry is one tar header plus body; the helpers below build archives from them.
type entry struct {
	name, link string
	typ        byte
	mode       int64
	body       string
	size       int64 // header size when it must lie; default len(body)
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}

func build(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		size := int64(len(e.body))
		if e.size != 0 {
			size = e.size
		}
		if e.typ != tar.TypeReg {
			size = 0
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: size, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if e.typ == tar.TypeReg && int64(len(e.body)) == size {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatalf("write body %q: %v", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil && !strings.Contains(err.Error(), "missed writing") {
		t.Fatalf("close tar: %v", err)
	}
	return buf.Bytes()
}

// hostileArchives is the corpus of archives that must be rejected whole.
func hostileArchives(t testing.TB) map[string][]byte {
	ok := file("ok.conf", "fine")
	big := strings.Repeat("x", 2048)
	valid := build(t, ok, file("b.conf", "more"))
	return map[string][]byte{
		"dotdot traversal":               build(t, ok, file("../evil", "x")),
		"nested dotdot traversal":        build(t, ok, file("a/../../evil", "x")),
		"deep dotdot traversal":          build(t, file("a/b/c/../../../../evil", "x")),
		"absolute path":                  build(t, file("/etc/evil", "x")),
		"absolute path after valid":      build(t, ok, file("/tmp/evil", "x")),
		"backslash name":                 build(t, file(`..\evil`, "x")),
		"symlink absolute target":        build(t, entry{name: "l", link: "/etc/passwd", typ: tar.TypeSymlink}),
		"symlink escaping target":        build(t, entry{name: "l", link: "../../outside", typ: tar.TypeSymlink}),
		"symlink nested escape":          build(t, entry{name: "a/b/l", link: "../../../x", typ: tar.TypeSymlink}),
		"write through own symlink":      build(t, entry{name: "d", link: "sub", typ: tar.TypeSymlink}, file("d/x", "x")),
		"write through escaping link":    build(t, entry{name: "d", link: ".", typ: tar.TypeSymlink}, file("d/x", "x")),
		"hardlink to outside":            build(t, entry{name: "h", link: "../../etc/passwd", typ: tar.TypeLink}),
		"hardlink absolute":              build(t, entry{name: "h", link: "/etc/passwd", typ: tar.TypeLink}),
		"hardlink to missing":            build(t, entry{name: "h", link: "nope", typ: tar.TypeLink}),
		"hardlink to symlink":            build(t, entry{name: "l", link: "x", typ: tar.TypeSymlink}, entry{name: "h", link: "l", typ: tar.TypeLink}),
		"char device":                    build(t, entry{name: "dev", typ: tar.TypeChar}),
		"block device":                   build(t, entry{name: "blk", typ: tar.TypeBlock}),
		"fifo":                           build(t, entry{name: "fifo", typ: tar.TypeFifo}),
		"setuid file":                    build(t, entry{name: "suid", typ: tar.TypeReg, mode: 0o4755, body: "x"}),
		"setgid file":                    build(t, entry{name: "sgid", typ: tar.TypeReg, mode: 0o2755, body: "x"}),
		"duplicate names":                build(t, file("a", "1"), file("a", "2")),
		"duplicate after clean":          build(t, file("a", "1"), file("./x/../a", "2")),
		"file then child of file":        build(t, file("a", "1"), file("a/b", "2")),
		"single file too large":          build(t, file("big", big)),
		"total too large":                build(t, file("a", big[:1000]), file("b", big[:1000]), file("c", big[:1000])),
		"too many files":                 build(t, file("1", ""), file("2", ""), file("3", ""), file("4", ""), file("5", ""), file("6", "")),
		"lying header size":              build(t, entry{name: "lie", typ: tar.TypeReg, body: "short", size: 1 << 40}),
		"truncated body":                 valid[:700],
		"truncated header":               valid[:100],
		"garbage":                        []byte(strings.Repeat("\xff", 1024)),
		"below hardlinked file":          build(t, file("a", "x"), entry{name: "b", link: "a", typ: tar.TypeLink}, file("b/c", "x")),
		"root as file":                   build(t, file(".", "x")),
		"dotdot only":                    build(t, entry{name: "..", typ: tar.TypeDir}),
		"missing end marker":             valid[:len(valid)-1024],
		"half end marker":                valid[:len(valid)-600],
		"empty stream":                   nil,
		"escape then good (all or none)": build(t, ok, file("sub/ok", "x"), file("../../evil", "x")),
		// Links that pass a textual check one by one but resolve outside through each other.
		"link through link to parent": build(t, entry{name: "a/b/s", link: "../..", typ: tar.TypeSymlink},
			entry{name: "a/b/l", link: "s/..", typ: tar.TypeSymlink}),
		"chain of three links": build(t, entry{name: "d/1", link: "..", typ: tar.TypeSymlink},
			entry{name: "d/2", link: "1/d/1", typ: tar.TypeSymlink}, entry{name: "d/3", link: "2/..", typ: tar.TypeSymlink}),
		"link through a later link": build(t, entry{name: "l", link: "a/x/..", typ: tar.TypeSymlink},
			entry{name: "a/x", link: "..", typ: tar.TypeSymlink}),
		"link loop":                   build(t, entry{name: "p", link: "q", typ: tar.TypeSymlink}, entry{name: "q", link: "p", typ: tar.TypeSymlink}),
		"implicit parents over limit": build(t, file("a/b/c/d/e/f", "x")),
		"link below dir through dotdot of file": build(t, file("f", "x"),
			entry{name: "l", link: "f/../..", typ: tar.TypeSymlink}),
	}
}

var testLimits = Limits{MaxFiles: 5, MaxFileBytes: 1024, MaxTotalBytes: 2500}

// sandbox returns an empty extraction dir inside a parent that also holds a sentinel file, so
// escapes are visible as changes to the parent.
func sandbox(t testing.TB) (parent, dir string) {
	parent = t.TempDir()
	dir = filepath.Join(parent, "stage")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "sentinel"), []byte("intact"), 0o644); err != nil {
		t.Fatal(err)
	}
	return parent, dir
}

func assertNoEscape(t testing.TB, parent string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"sentinel", "stage"}, names); diff != "" {
		t.Fatalf("extraction created files beside the root (-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(filepath.Join(parent, "sentinel")); string(b) != "intact" {
		t.Fatalf("sentinel changed to %q", b)
	}
	err = filepath.WalkDir(filepath.Join(parent, "stage"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0 {
			t.Errorf("%s has forbidden mode %v", p, info.Mode())
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			real, err := filepath.EvalSymlinks(p)
			if err == nil && !strings.HasPrefix(real, filepath.Join(parent, "stage")) {
				t.Errorf("symlink %s resolves outside to %s", p, real)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// assertEmpty fails unless dir is empty: a refused archive leaves nothing behind.
func assertEmpty(t testing.TB, dir string) {
	t.Helper()
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("refused archive left %d entries in the root (%v)", len(entries), err)
	}
}

func TestExtractRejectsHostileArchivesWhole(t *testing.T) {
	corpus := hostileArchives(t)
	if len(corpus) < 25 {
		t.Fatalf("corpus has %d archives, want >= 25", len(corpus))
	}
	for name, data := range corpus {
		t.Run(name, func(t *testing.T) {
			parent, dir := sandbox(t)
			err := Extract(bytes.NewReader(data), dir, testLimits)
			if !errors.Is(err, ErrRejected) {
				t.Errorf("Extract = %v, want ErrRejected", err)
			}
			assertNoEscape(t, parent)
			assertEmpty(t, dir)
		})
	}
}

func TestExtractCreatesFilesDirsAndInRootLinks(t *testing.T) {
	data := build(t,
		entry{name: "conf.d/", typ: tar.TypeDir, mode: 0o755},
		file("conf.d/a.conf", "a"),
		file("nginx.conf", "main"),
		entry{name: "current", link: "conf.d/a.conf", typ: tar.TypeSymlink},
		entry{name: "conf.d/hard", link: "nginx.conf", typ: tar.TypeLink},
		entry{name: "exec.sh", typ: tar.TypeReg, mode: 0o1755, body: "#!/bin/sh"},
		// The kubelet's ConfigMap layout: links to a link, all inside.
		entry{name: "..2026_12_01/key", typ: tar.TypeReg, mode: 0o644, body: "v"},
		entry{name: "..data", link: "..2026_12_01", typ: tar.TypeSymlink},
		entry{name: "key", link: "..data/key", typ: tar.TypeSymlink},
		entry{name: "dangling", link: "conf.d/missing", typ: tar.TypeSymlink},
		// A directory entry after a file created it implicitly.
		file("implicit/x", "x"),
		entry{name: "implicit", typ: tar.TypeDir, mode: 0o755},
	)
	parent, dir := sandbox(t)
	if err := Extract(bytes.NewReader(data), dir, Limits{}); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	assertNoEscape(t, parent)
	for p, want := range map[string]string{"conf.d/a.conf": "a", "nginx.conf": "main", "current": "a", "conf.d/hard": "main", "key": "v"} {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	info, err := os.Stat(filepath.Join(dir, "exec.sh"))
	if err != nil || info.Mode().Perm() != 0o755 || info.Mode()&fs.ModeSticky != 0 {
		t.Errorf("exec.sh mode = %v, %v; want 0755 without sticky bit", info.Mode(), err)
	}
}

func TestExtractCapsDepthNameLengthHeaderBytesAndImplicitParents(t *testing.T) {
	lim := Limits{MaxFiles: 6, MaxDepth: 4, MaxNameBytes: 64, MaxHeaderBytes: 2048}
	longName := strings.Repeat("n", 65)
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"too deep", build(t, file("a/b/c/d/e", "x")), "directories deep"},
		{"long name", build(t, file(longName, "x")), "longer than 64 bytes"},
		{"long link target", build(t, entry{name: "l", link: longName, typ: tar.TypeSymlink}), "longer than 64 bytes"},
		// A PAX record far larger than any header needs (a comment of 4 KiB).
		{"huge extended header", func() []byte {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			_ = tw.WriteHeader(&tar.Header{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX,
				PAXRecords: map[string]string{"comment": strings.Repeat("c", 4096)}})
			_ = tw.Close()
			return buf.Bytes()
		}(), "bytes of headers"},
		// One entry whose parents alone exceed MaxFiles: they count.
		{"implicit parents", build(t, file("p/q/r/s", "x")), "counting the parent directories"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := lim
			if tt.name == "implicit parents" {
				l.MaxFiles, l.MaxDepth = 3, 10
			}
			parent, dir := sandbox(t)
			err := Extract(bytes.NewReader(tt.data), dir, l)
			if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Extract = %v, want a refusal saying %q", err, tt.want)
			}
			assertNoEscape(t, parent)
			assertEmpty(t, dir)
		})
	}
	// Within every limit, the same shapes extract.
	parent, dir := sandbox(t)
	if err := Extract(bytes.NewReader(build(t, file("a/b/c/d", "x"))), dir, lim); err != nil {
		t.Fatalf("Extract within limits: %v", err)
	}
	assertNoEscape(t, parent)
}
