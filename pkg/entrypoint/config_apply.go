package entrypoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/podkit-dev/podkit/pkg/entrypoint/internal/safetar"
)

// dataLink is the symlink the kubelet swaps atomically in ConfigMap and Secret volumes.
const dataLink = "..data"

// Apply stages the newest source configuration beside the live one, validates it and swaps it in
// with one rename. When nothing differs it returns an empty result and leaves everything alone;
// on any failure the previous configuration stays live and untouched, and Err says why. The
// previous tree is deleted in the background (deleting can be slow on disks with online discard);
// Close waits for that. Apply may be called directly instead of Update; calls are serialised.
func (c *ConfigHandler) Apply(ctx context.Context) UpdateResult {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	res, err := c.apply(ctx)
	res.Err = err
	if err != nil {
		c.log.Error("configuration update failed; previous configuration stays live", "error", err)
	} else if res.HasChanges() {
		c.log.Info("configuration updated", "added", res.Added, "changed", res.Changed, "removed", res.Removed)
	}
	return res
}

func (c *ConfigHandler) apply(ctx context.Context) (UpdateResult, error) {
	dest := c.opts.Dest
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return UpdateResult{}, fmt.Errorf("create parent of %s: %w", dest, err)
	}
	staged, err := c.stage()
	if err != nil {
		return UpdateResult{}, err
	}
	swapped := false
	defer func() {
		if !swapped {
			_ = os.RemoveAll(staged)
		}
	}()
	res, err := diffTrees(dest, staged)
	if err != nil {
		return UpdateResult{}, err
	}
	if !res.HasChanges() {
		return res, nil
	}
	if c.opts.Validator != nil {
		if err := c.opts.Validator.Validate(ctx, staged); err != nil {
			return res, fmt.Errorf("validate staged configuration: %w", err)
		}
	}
	if err := swap(staged, dest); err != nil {
		return res, err
	}
	// After a file rename the staged path is gone; after a directory exchange it holds the
	// previous tree, removed in the background.
	swapped = true
	if c.opts.Format != FormatFile {
		select {
		case c.trash <- staged:
		default:
			c.removeTrash(staged)
		}
	}
	return res, nil
}

// trashLoop deletes previous configuration trees until Close, then what is left.
func (c *ConfigHandler) trashLoop() {
	defer c.wg.Done()
	for {
		select {
		case p := <-c.trash:
			c.removeTrash(p)
		case <-c.done:
			for {
				select {
				case p := <-c.trash:
					c.removeTrash(p)
				default:
					return
				}
			}
		}
	}
}

func (c *ConfigHandler) removeTrash(p string) {
	if err := os.RemoveAll(p); err != nil {
		c.log.Warn("remove previous configuration", "path", p, "error", err)
	}
}

// stage materialises the source next to dest and returns the staged path.
func (c *ConfigHandler) stage() (string, error) {
	dir, base := filepath.Split(c.opts.Dest)
	switch c.opts.Format {
	case FormatFile:
		return c.stageFile(dir, base)
	case FormatTar:
		staged, err := stagingDir(dir, base)
		if err != nil {
			return "", err
		}
		f, err := os.Open(c.opts.Source)
		if err != nil {
			_ = os.RemoveAll(staged)
			return "", fmt.Errorf("open archive: %w", err)
		}
		defer f.Close()
		if err := safetar.Extract(f, staged, c.limits()); err != nil {
			_ = os.RemoveAll(staged)
			return "", fmt.Errorf("extract %s: %w", c.opts.Source, err)
		}
		return staged, nil
	default:
		var lastErr error
		for range 5 { // the kubelet may swap ..data while we copy; start again from the new one
			staged, err := stagingDir(dir, base)
			if err != nil {
				return "", err
			}
			lastErr = c.snapshotDir(staged)
			if lastErr == nil {
				return staged, nil
			}
			_ = os.RemoveAll(staged)
			if !errors.Is(lastErr, errSwappedDuringCopy) && !errors.Is(lastErr, fs.ErrNotExist) {
				break
			}
		}
		return "", lastErr
	}
}

// stagingDir creates an empty ".<base>.staged-*" directory in dir. It becomes the live directory
// on swap, so it gets the usual 0755 (MkdirTemp's 0700 would hide the configuration from an
// application that runs as another user).
func stagingDir(dir, base string) (string, error) {
	staged, err := os.MkdirTemp(dir, "."+base+".staged-")
	if err != nil {
		return "", fmt.Errorf("create staging directory: %w", err)
	}
	if err := os.Chmod(staged, 0o755); err != nil {
		_ = os.Remove(staged)
		return "", fmt.Errorf("create staging directory: %w", err)
	}
	return staged, nil
}

func (c *ConfigHandler) limits() safetar.Limits {
	return safetar.Limits{MaxFiles: c.opts.MaxFiles, MaxFileBytes: c.opts.MaxFileBytes, MaxTotalBytes: c.opts.MaxTotalBytes}
}

func (c *ConfigHandler) stageFile(dir, base string) (string, error) {
	src, err := os.Open(c.opts.Source)
	if err != nil {
		return "", fmt.Errorf("open source: %w", err)
	}
	defer src.Close()
	f, err := os.CreateTemp(dir, "."+base+".staged-")
	if err != nil {
		return "", fmt.Errorf("create staged file: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(src, c.opts.MaxFileBytes+1))
	if err == nil && n > c.opts.MaxFileBytes {
		err = fmt.Errorf("source is larger than MaxFileBytes (%d)", c.opts.MaxFileBytes)
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("stage %s: %w", c.opts.Source, err)
	}
	return f.Name(), nil
}

var errSwappedDuringCopy = errors.New("..data was swapped during the copy")

// snapshotDir copies one consistent version of the source directory into staged. In the
// ConfigMap layout it reads the directory ..data points to (immutable once published) and checks
// that ..data still points there afterwards.
func (c *ConfigHandler) snapshotDir(staged string) error {
	src := c.opts.Source
	target, err := os.Readlink(filepath.Join(src, dataLink))
	layout := err == nil
	if layout {
		if filepath.IsAbs(target) || !filepath.IsLocal(target) {
			return fmt.Errorf("%s/%s points outside the volume: %s", src, dataLink, target)
		}
		src = filepath.Join(src, target)
	}
	if err := copyTree(src, staged, c.limits()); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if layout {
		if now, err := os.Readlink(filepath.Join(c.opts.Source, dataLink)); err != nil || now != target {
			return errSwappedDuringCopy
		}
	}
	return nil
}

// copyTree copies regular files, directories and in-tree relative symlinks; names starting with
// ".." (the kubelet's bookkeeping) are skipped.
func copyTree(src, dst string, lim safetar.Limits) error {
	root, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer root.Close()
	var files int
	var total int64
	links := safetar.Links{}
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if strings.HasPrefix(d.Name(), "..") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if files++; files > lim.MaxFiles {
			return fmt.Errorf("more than %d entries", lim.MaxFiles)
		}
		out := filepath.Join(dst, filepath.FromSlash(p))
		switch t := d.Type(); {
		case t.IsDir():
			return os.Mkdir(out, 0o755)
		case t&fs.ModeSymlink != 0:
			link, err := root.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(link) || !filepath.IsLocal(filepath.Join(path.Dir(p), link)) {
				return fmt.Errorf("symlink %s escapes the directory: %s", p, link)
			}
			links[p] = link
			return os.Symlink(link, out)
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Size() > lim.MaxFileBytes {
				return fmt.Errorf("file %s is larger than %d bytes", p, lim.MaxFileBytes)
			}
			if total += info.Size(); total > lim.MaxTotalBytes {
				return fmt.Errorf("more than %d bytes in total", lim.MaxTotalBytes)
			}
			return copyFile(root, p, out, info.Mode().Perm())
		default:
			return fmt.Errorf("%s is not a regular file, directory or symlink", p)
		}
	})
	if err != nil {
		return err
	}
	// Each link passed a textual check alone; together they may still lead out.
	return links.Check()
}

// copyFile copies one file of the source into the staging tree. The source is opened through
// the root (no escape by a link in its path); the copy is written with plain system calls,
// because os.OpenFile's poller registration costs five more per file (four fcntl and a failing
// epoll_ctl) on PID 1's reload path.
func copyFile(root *os.Root, p, out string, perm fs.FileMode) error {
	in, err := root.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	fd, err := unix.Open(out, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, uint32(perm&0o777|0o400))
	if err != nil {
		return &fs.PathError{Op: "create", Path: out, Err: err}
	}
	var buf [4 << 10]byte // configuration files are small; a larger buffer would grow the stack
	for {
		n, rerr := in.Read(buf[:])
		for b := buf[:n]; len(b) > 0; {
			m, err := unix.Write(fd, b)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				_ = unix.Close(fd)
				return &fs.PathError{Op: "write", Path: out, Err: err}
			}
			b = b[m:]
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			_ = unix.Close(fd)
			return rerr
		}
	}
	if err := unix.Close(fd); err != nil {
		return &fs.PathError{Op: "close", Path: out, Err: err}
	}
	return nil
}

// swap makes staged live with a single rename: a plain rename when dest is absent or a file, an
// atomic exchange (renameat2 RENAME_EXCHANGE) when dest is a directory.
func swap(staged, dest string) error {
	info, err := os.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !info.IsDir()) {
		if err := os.Rename(staged, dest); err != nil {
			return fmt.Errorf("swap in %s: %w", dest, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat live configuration: %w", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, staged, unix.AT_FDCWD, dest, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("swap in %s (renameat2 RENAME_EXCHANGE; dest must not be a mount point): %w", dest, err)
	}
	return nil
}

type treeEntry struct {
	kind byte   // 'f' file, 'l' symlink
	path string // absolute path, for content comparison
	link string
	size int64
	perm fs.FileMode
}

// readTree indexes the files and symlinks under p (or p itself when it is a file, keyed by its
// base name). A missing p is an empty tree.
func readTree(p string, name string) (map[string]treeEntry, error) {
	out := map[string]treeEntry{}
	info, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		out[name] = treeEntry{kind: 'f', path: p, size: info.Size(), perm: info.Mode().Perm()}
		return out, nil
	}
	err = filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(p, f)
		rel = filepath.ToSlash(rel)
		if d.Type()&fs.ModeSymlink != 0 {
			l, err := os.Readlink(f)
			out[rel] = treeEntry{kind: 'l', path: f, link: l}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[rel] = treeEntry{kind: 'f', path: f, size: info.Size(), perm: info.Mode().Perm()}
		return nil
	})
	return out, err
}

// sameEntry compares two entries, reading file contents only when everything else matches.
// It reads with plain system calls into buf: configuration files are small and a reload is on
// PID 1's latency path, where os.File's poller registration and fresh 32 KiB buffers per file
// cost more than the reads.
func sameEntry(a, b treeEntry, buf []byte) (bool, error) {
	if a.kind != b.kind || a.link != b.link || a.size != b.size || a.perm != b.perm {
		return false, nil
	}
	if a.kind != 'f' {
		return true, nil
	}
	fa, err := openRead(a.path)
	if err != nil {
		return false, err
	}
	defer unix.Close(fa)
	fb, err := openRead(b.path)
	if err != nil {
		return false, err
	}
	defer unix.Close(fb)
	half := len(buf) / 2
	ba, bb := buf[:half], buf[half:]
	for {
		na, err := readFull(fa, ba)
		if err != nil {
			return false, fmt.Errorf("read %s: %w", a.path, err)
		}
		nb, err := readFull(fb, bb)
		if err != nil {
			return false, fmt.Errorf("read %s: %w", b.path, err)
		}
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if na < half {
			return true, nil // both ended here
		}
	}
}

func openRead(p string) (int, error) {
	for {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
}

// readFull reads until buf is full or the file ends, and returns how much it read.
func readFull(fd int, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// diffTrees lists what changes when staged replaces live.
func diffTrees(live, staged string) (UpdateResult, error) {
	name := filepath.Base(live)
	old, err := readTree(live, name)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("read live configuration: %w", err)
	}
	nw, err := readTree(staged, name)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("read staged configuration: %w", err)
	}
	var r UpdateResult
	var buf []byte
	for k, v := range nw {
		o, ok := old[k]
		if !ok {
			r.Added = append(r.Added, k)
			continue
		}
		if buf == nil {
			buf = make([]byte, 8<<10)
		}
		same, err := sameEntry(o, v, buf)
		if err != nil {
			return UpdateResult{}, fmt.Errorf("compare %s: %w", k, err)
		}
		if !same {
			r.Changed = append(r.Changed, k)
		}
	}
	for k := range old {
		if _, ok := nw[k]; !ok {
			r.Removed = append(r.Removed, k)
		}
	}
	slices.Sort(r.Added)
	slices.Sort(r.Changed)
	slices.Sort(r.Removed)
	return r, nil
}
