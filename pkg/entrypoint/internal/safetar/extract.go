package safetar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Limits bound what an archive may create. A zero field takes its default.
type Limits struct {
	// MaxFiles is the number of entries (files, directories, links), parent
	// directories that an entry creates implicitly included. Default: 10000.
	MaxFiles int
	// MaxFileBytes is the size of one regular file. Default: 16 MiB.
	MaxFileBytes int64
	// MaxTotalBytes is the sum of all regular files. Default: 64 MiB.
	MaxTotalBytes int64
	// MaxDepth is the number of path components of an entry's name. Default: 64.
	MaxDepth int
	// MaxNameBytes is the length of an entry's name and of a link's target. Default: 1024.
	MaxNameBytes int
	// MaxHeaderBytes is the size of one entry's headers, extended headers (PAX records, GNU long
	// names) included. Default: 64 KiB.
	MaxHeaderBytes int64
}

// Defaults for Limits.
const (
	DefaultMaxFiles       = 10000
	DefaultMaxFileBytes   = 16 << 20
	DefaultMaxTotalBytes  = 64 << 20
	DefaultMaxDepth       = 64
	DefaultMaxNameBytes   = 1024
	DefaultMaxHeaderBytes = 64 << 10
)

func (l Limits) withDefaults() Limits {
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxNameBytes <= 0 {
		l.MaxNameBytes = DefaultMaxNameBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

// ErrRejected wraps every reason an archive is refused.
var ErrRejected = errors.New("archive rejected")

func reject(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

type kind int

const (
	kindDir kind = iota + 1
	kindFile
	kindSymlink
	// kindImplicitDir is a parent directory created for an entry below it;
	// a later explicit directory entry of the same name is not a duplicate.
	kindImplicitDir
)

// Extract reads a tar stream from r and creates its entries under dir, which must exist (an empty
// staging directory). All file system access goes through os.Root, so nothing outside dir can be
// touched even by a hostile archive. An archive is taken whole or not at all: on any error Extract
// removes what it created, leaving dir empty.
func Extract(r io.Reader, dir string, limits Limits) (err error) {
	limits = limits.withDefaults()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open extraction root %s: %w", dir, err)
	}
	defer root.Close()
	defer func() {
		if err != nil {
			if cerr := clearRoot(root); cerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up refused archive in %s: %w", dir, cerr))
			}
		}
	}()

	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	seen := map[string]kind{}
	links := Links{}
	var files int
	var total, dataEnd int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// A complete archive ends with two zero blocks after the last entry's padded data;
			// archive/tar accepts a stream cut right after an entry, so check it here.
			if want := (dataEnd+511)/512*512 + 1024; cr.n < want {
				return reject("truncated: %d bytes, the end-of-archive marker needs %d", cr.n, want)
			}
			// Links can only be judged together, once all of them exist.
			return links.Check()
		}
		if err != nil {
			return reject("read header: %v", err)
		}
		// This entry's headers start where the previous entry's padded data ended.
		if hb := cr.n - (dataEnd+511)/512*512; hb > limits.MaxHeaderBytes {
			return reject("entry %.64q has %d bytes of headers, limit %d", hdr.Name, hb, limits.MaxHeaderBytes)
		}
		if len(hdr.Name) > limits.MaxNameBytes || len(hdr.Linkname) > limits.MaxNameBytes {
			return reject("entry %.64q…: name or link target longer than %d bytes", hdr.Name, limits.MaxNameBytes)
		}
		dataEnd = cr.n
		if !headerOnly(hdr.Typeflag) {
			dataEnd += hdr.Size
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return err
		}
		if d := strings.Count(name, "/") + 1; d > limits.MaxDepth {
			return reject("entry %.64q… is %d directories deep, limit %d", name, d, limits.MaxDepth)
		}
		if name == "." {
			if hdr.Typeflag == tar.TypeDir {
				continue
			}
			return reject("entry %q names the root itself", hdr.Name)
		}
		if k, dup := seen[name]; dup && !(k == kindImplicitDir && hdr.Typeflag == tar.TypeDir) {
			return reject("duplicate entry %q", name)
		} else if !dup {
			if files++; files > limits.MaxFiles {
				return reject("more than %d entries", limits.MaxFiles)
			}
		}
		if hdr.Mode&(0o4000|0o2000) != 0 {
			return reject("entry %q has setuid or setgid bit", name)
		}
		// Never write through a link this archive created (and os.Root refuses escapes anyway).
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			switch seen[p] {
			case kindSymlink:
				return reject("entry %q goes through symlink %q", name, p)
			case kindFile:
				return reject("entry %q is below file %q", name, p)
			}
		}
		for p := path.Dir(name); p != "." && seen[p] == 0; p = path.Dir(p) {
			if files++; files > limits.MaxFiles {
				return reject("more than %d entries (counting the parent directories of %q)", limits.MaxFiles, name)
			}
			seen[p] = kindImplicitDir
		}
		parent := path.Dir(name)
		if parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return reject("create parent of %q: %v", name, err)
			}
		}
		perm := fs.FileMode(hdr.Mode) & 0o777
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, perm|0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return reject("create directory %q: %v", name, err)
			}
			seen[name] = kindDir
		case tar.TypeReg, tar.TypeRegA:
			if hdr.Size > limits.MaxFileBytes {
				return reject("file %q is %d bytes, limit %d", name, hdr.Size, limits.MaxFileBytes)
			}
			if total+hdr.Size > limits.MaxTotalBytes {
				return reject("archive exceeds %d bytes", limits.MaxTotalBytes)
			}
			if err := writeFile(root, name, perm|0o400, tr, hdr.Size); err != nil {
				return err
			}
			total += hdr.Size
			seen[name] = kindFile
		case tar.TypeSymlink:
			t := hdr.Linkname
			if t == "" || path.IsAbs(t) || strings.ContainsRune(t, 0) {
				return reject("symlink %q has absolute or empty target %q", name, t)
			}
			if !localPath(path.Join(path.Dir(name), t)) {
				return reject("symlink %q escapes with target %q", name, t)
			}
			if err := root.Symlink(t, name); err != nil {
				return reject("create symlink %q: %v", name, err)
			}
			seen[name] = kindSymlink
			links[name] = t
		case tar.TypeLink:
			t, err := cleanName(hdr.Linkname)
			if err != nil {
				return err
			}
			if seen[t] != kindFile {
				return reject("hardlink %q targets %q, which is not a regular file of this archive", name, hdr.Linkname)
			}
			if err := root.Link(t, name); err != nil {
				return reject("create hardlink %q: %v", name, err)
			}
			seen[name] = kindFile
		default:
			return reject("entry %q has unsupported type %q (devices, FIFOs and others are refused)", name, string(hdr.Typeflag))
		}
	}
}

// clearRoot removes everything below root, never following a link.
func clearRoot(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	for _, n := range names {
		err = errors.Join(err, root.RemoveAll(n))
	}
	return err
}

// cleanName turns an archive name into a clean, slash-separated local path or rejects it.
func cleanName(n string) (string, error) {
	if n == "" || strings.ContainsRune(n, 0) || strings.Contains(n, "\\") {
		return "", reject("invalid entry name %q", n)
	}
	if path.IsAbs(n) {
		return "", reject("absolute entry name %q", n)
	}
	c := path.Clean(n)
	if !localPath(c) {
		return "", reject("entry name %q escapes the root", n)
	}
	return c, nil
}

func localPath(p string) bool {
	c := path.Clean(p)
	return !path.IsAbs(c) && c != ".." && !strings.HasPrefix(c, "../")
}

func writeFile(root *os.Root, name string, perm fs.FileMode, r io.Reader, size int64) (err error) {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return reject("create file %q: %v", name, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %q: %w", name, cerr)
		}
	}()
	n, err := io.Copy(f, io.LimitReader(r, size+1))
	if err != nil {
		return reject("read file %q: %v", name, err)
	}
	if n != size {
		return reject("file %q is %d bytes, header says %d", name, n, size)
	}
	return nil
}

// headerOnly mirrors archive/tar: these entry types carry no data whatever their size says.
func headerOnly(t byte) bool {
	switch t {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return true
	}
	return false
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
