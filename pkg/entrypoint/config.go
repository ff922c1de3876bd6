package entrypoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/podkit-dev/podkit/pkg/entrypoint/internal/safetar"
)

// ConfigFormat is how the configuration source is delivered.
type ConfigFormat string

// Configuration formats.
const (
	// FormatFile is a single file, copied to Dest.
	FormatFile ConfigFormat = "file"
	// FormatTar is a tar archive, extracted safely into the directory Dest.
	FormatTar ConfigFormat = "tar"
	// FormatDir is a directory (plain, or a ConfigMap/Secret volume with its ..data symlink),
	// copied into the directory Dest.
	FormatDir ConfigFormat = "dir"
)

// ErrConfigDeleted is reported on the was-changed channel when the source disappears.
var ErrConfigDeleted = errors.New("configuration source was deleted")

// ConfigOptions configures a ConfigHandler.
type ConfigOptions struct {
	// Format of the source. Required: FormatFile, FormatTar or FormatDir.
	Format ConfigFormat
	// Source is the watched file, archive or directory. Required.
	Source string
	// Dest is the live configuration the application reads: a file for FormatFile, a directory
	// otherwise. It is replaced by a single rename; its parent must be writable and Dest must not
	// be a mount point. Required.
	Dest string
	// Validator checks each staged configuration before it goes live. Default: none.
	Validator Validator
	// Debounce is the quiet period after a change to a plain file or directory before it is read,
	// so a half-written file is not picked up. ..data swaps are atomic and bypass it. Default: 100ms.
	Debounce time.Duration
	// MaxFiles, MaxFileBytes and MaxTotalBytes bound a source. Defaults: 10000 entries, 16 MiB
	// per file, 64 MiB in total.
	MaxFiles      int
	MaxFileBytes  int64
	MaxTotalBytes int64
	// Logger receives update logs. Default: slog.Default().
	Logger *slog.Logger
}

func (o *ConfigOptions) setDefaults() {
	if o.Debounce == 0 {
		o.Debounce = 100 * time.Millisecond
	}
	if o.MaxFiles == 0 {
		o.MaxFiles = safetar.DefaultMaxFiles
	}
	if o.MaxFileBytes == 0 {
		o.MaxFileBytes = safetar.DefaultMaxFileBytes
	}
	if o.MaxTotalBytes == 0 {
		o.MaxTotalBytes = safetar.DefaultMaxTotalBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

func (o *ConfigOptions) validate() error {
	switch o.Format {
	case FormatFile, FormatTar, FormatDir:
	default:
		return fmt.Errorf("ConfigOptions.Format %q is invalid; use file, tar or dir", o.Format)
	}
	if o.Source == "" {
		return errors.New("ConfigOptions.Source is empty; set the file, archive or directory to watch")
	}
	if o.Dest == "" {
		return errors.New("ConfigOptions.Dest is empty; set where the live configuration goes")
	}
	if filepath.Clean(o.Source) == filepath.Clean(o.Dest) {
		return errors.New("ConfigOptions.Dest equals Source; the live configuration must be a separate path")
	}
	if o.Debounce < 0 || o.MaxFiles < 0 || o.MaxFileBytes < 0 || o.MaxTotalBytes < 0 {
		return errors.New("ConfigOptions.Debounce/MaxFiles/MaxFileBytes/MaxTotalBytes must not be negative")
	}
	return nil
}

// ConfigHandler watches a configuration source with fsnotify and applies it atomically (see
// Apply). It has the entrypoint-framework shape: a change is announced on GetWasChangedChannel
// (at most one pending notification; nil means "a different configuration is available"),
// Update asks for the newest one to be applied, and each outcome arrives on
// GetUpdateResultChannel. If the source exists at construction, a change is announced at once.
type ConfigHandler struct {
	opts    ConfigOptions
	log     *slog.Logger
	watcher *fsnotify.Watcher

	wasChanged chan error
	updates    chan struct{}
	results    chan UpdateResult
	done       chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup

	applyMu  sync.Mutex  // serialises Apply
	trash    chan string // previous trees to remove
	stateMu  sync.Mutex
	lastSeen string // fingerprint of the source last announced
}

// NewConfigHandler validates opts, starts watching and returns the handler. Close it when done.
func NewConfigHandler(opts ConfigOptions) (*ConfigHandler, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("create file watcher: %w", err)
	}
	c := &ConfigHandler{
		opts:       opts,
		log:        opts.Logger.With("handler", "configuration", "source", opts.Source),
		watcher:    w,
		wasChanged: make(chan error, 1),
		updates:    make(chan struct{}, 1),
		results:    make(chan UpdateResult, 16),
		done:       make(chan struct{}),
		trash:      make(chan string, 64),
	}
	c.removeLeftovers()
	if opts.Format == FormatDir {
		// Every directory of the tree: an edit in a subdirectory is a change too.
		if err := c.watchTree(opts.Source); err != nil {
			_ = w.Close()
			return nil, err
		}
	} else if err := w.Add(filepath.Dir(opts.Source)); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("watch %s: %w", filepath.Dir(opts.Source), err)
	}
	c.check()
	c.wg.Add(3)
	go c.watchLoop()
	go c.updateLoop()
	go c.trashLoop()
	return c, nil
}

// GetWasChangedChannel announces source changes; it is closed by Close.
func (c *ConfigHandler) GetWasChangedChannel() <-chan error { return c.wasChanged }

// GetUpdateResultChannel delivers the outcome of each Update; it is closed by Close.
func (c *ConfigHandler) GetUpdateResultChannel() <-chan UpdateResult { return c.results }

// Update asks for the newest source configuration to be applied in the background. Requests made
// while one is pending are merged. After Close it does nothing.
func (c *ConfigHandler) Update() {
	select {
	case <-c.done:
	case c.updates <- struct{}{}:
	default:
	}
}

// Close stops watching, waits for a running update and closes both channels.
func (c *ConfigHandler) Close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.watcher.Close()
		c.wg.Wait()
		close(c.wasChanged)
		close(c.results)
	})
}

func (c *ConfigHandler) updateLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.updates:
			res := c.Apply(context.Background())
			select {
			case c.results <- res:
			case <-c.done:
				return
			}
		}
	}
}

func (c *ConfigHandler) watchLoop() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-c.done:
			timer.Stop()
			return
		case ev, ok := <-c.watcher.Events:
			if !ok {
				return
			}
			switch c.classify(ev) {
			case now:
				timer.Stop()
				c.check()
			case later:
				timer.Reset(c.opts.Debounce)
			}
		case err, ok := <-c.watcher.Errors:
			if !ok {
				return
			}
			c.announce(fmt.Errorf("watch %s: %w", c.opts.Source, err))
		case <-timer.C:
			c.check()
		}
	}
}

type reaction int

const (
	ignore reaction = iota
	now
	later
)

// classify decides how to react to an event: a ..data swap is atomic and handled at once; other
// changes to the source wait for the debounce period; unrelated names are ignored.
func (c *ConfigHandler) classify(ev fsnotify.Event) reaction {
	name := filepath.Base(ev.Name)
	if name == dataLink {
		return now
	}
	if c.opts.Format == FormatDir {
		if strings.HasPrefix(name, "..") {
			return ignore
		}
		if _, err := os.Lstat(filepath.Join(c.opts.Source, dataLink)); err == nil {
			return ignore // ConfigMap layout: only the ..data swap publishes a new version
		}
		if ev.Has(fsnotify.Create) {
			if info, err := os.Lstat(ev.Name); err == nil && info.IsDir() {
				// A new directory may arrive whole (renamed in), subdirectories included.
				if err := c.watchTree(ev.Name); err != nil {
					c.log.Warn("watch new directory", "path", ev.Name, "error", err)
				}
			}
		}
		return later
	}
	if ev.Name == filepath.Clean(c.opts.Source) {
		return later
	}
	return ignore
}

// watchTree adds root and every directory below it to the watcher, skipping the kubelet's
// "..*" bookkeeping (a ConfigMap layout publishes through the ..data swap at the top). The
// number of watches is bounded by MaxFiles, like what a copy may hold.
func (c *ConfigHandler) watchTree(root string) error {
	n := 0
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		if !d.IsDir() {
			return nil
		}
		if p != root && strings.HasPrefix(d.Name(), "..") {
			return filepath.SkipDir
		}
		if n++; n > c.opts.MaxFiles {
			return fmt.Errorf("watch %s: more than %d directories (ConfigOptions.MaxFiles)", c.opts.Source, c.opts.MaxFiles)
		}
		if err := c.watcher.Add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		return nil
	})
}

// removeLeftovers deletes staged trees that a crash left beside the destination
// (".<dest>.staged-*"): only this handler creates such names.
func (c *ConfigHandler) removeLeftovers() {
	dir, base := filepath.Split(c.opts.Dest)
	if dir == "" {
		dir = "."
	}
	left, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+".staged-*"))
	for _, p := range left {
		c.log.Info("removing a staged configuration left by an earlier run", "path", p)
		c.removeTrash(p)
	}
}

// globEscape quotes the characters filepath.Match treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// check announces a change when the source's fingerprint differs from the last one announced.
func (c *ConfigHandler) check() {
	fp, err := c.fingerprint()
	c.stateMu.Lock()
	changed := fp != c.lastSeen
	c.lastSeen = fp
	c.stateMu.Unlock()
	switch {
	case errors.Is(err, os.ErrNotExist):
		if changed {
			c.announce(ErrConfigDeleted)
		}
	case err != nil:
		c.announce(fmt.Errorf("inspect %s: %w", c.opts.Source, err))
	case changed:
		c.announce(nil)
	}
}

// announce sends on the was-changed channel without blocking: a pending notification already
// says "look again", which is all a newer one would say.
func (c *ConfigHandler) announce(err error) {
	select {
	case c.wasChanged <- err:
	default:
	}
}

// fingerprint identifies the source's current version cheaply: the ..data target, or the size,
// modification time and inode of each file.
func (c *ConfigHandler) fingerprint() (string, error) {
	if c.opts.Format == FormatDir {
		if t, err := os.Readlink(filepath.Join(c.opts.Source, dataLink)); err == nil {
			return "data:" + t, nil
		}
	}
	var b strings.Builder
	err := filepath.WalkDir(c.opts.Source, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), "..") && p != c.opts.Source {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %d %d.%d %d.%d;", p, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
		return nil
	})
	return b.String(), err
}
