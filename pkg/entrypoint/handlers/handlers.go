package handlers

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/podkit-dev/podkit/pkg/entrypoint"
)

// ActivationHandler reports whether the application should be active.
type ActivationHandler = entrypoint.ActivationHandler

// ActivationEvent is the current activation state, or the error met while observing it.
type ActivationEvent = entrypoint.ActivationEvent

// FileActivationHandler is active while its file exists.
type FileActivationHandler = entrypoint.FileActivationHandler

// NewActivationHandler watches activationFile: active while it exists.
func NewActivationHandler(activationFile string, logger *slog.Logger) (*FileActivationHandler, error) {
	return entrypoint.NewActivationHandler(activationFile, logger)
}

// ErrConfigDeleted is sent on the was-changed channel when the configuration source disappears.
var ErrConfigDeleted = entrypoint.ErrConfigDeleted

// ConfigurationHandler announces configuration changes, applies them on Update and reports each
// update's result.
type ConfigurationHandler[T any] interface {
	GetWasChangedChannel() <-chan error
	Update()
	GetUpdateResultChannel() <-chan T
	Close()
}

// Modification is what an update did to one file.
type Modification int

// The modifications an UpdateResult lists.
const (
	Deleted Modification = iota + 1
	Modified
	Created
)

// ToString names the modification: "deleted", "modified", "created" or "invalid".
func (m Modification) ToString() string {
	switch m {
	case Deleted:
		return "deleted"
	case Modified:
		return "modified"
	case Created:
		return "created"
	}
	return "invalid"
}

// UpdateResult is the outcome of a tarred configuration update: each changed file (a path
// relative to the configuration directory) with what happened to it, and the error, if any.
// After an error the previous configuration is still live, whole.
type UpdateResult struct {
	ChangedFiles map[string]Modification
	Err          error
}

// ConfigurationHandlerBase is the ConfigurationHandler every constructor returns; T is the type
// of its update results.
type ConfigurationHandlerBase[T any] struct {
	inner   *entrypoint.ConfigHandler
	convert func(entrypoint.UpdateResult) T
	results chan T
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

var _ ConfigurationHandler[error] = (*ConfigurationHandlerBase[error])(nil)

func newBase[T any](opts entrypoint.ConfigOptions, convert func(entrypoint.UpdateResult) T) (*ConfigurationHandlerBase[T], error) {
	inner, err := entrypoint.NewConfigHandler(opts)
	if err != nil {
		return nil, err
	}
	b := &ConfigurationHandlerBase[T]{inner: inner, convert: convert, results: make(chan T, 16), done: make(chan struct{})}
	b.wg.Add(1)
	go b.forward()
	return b, nil
}

// forward converts the engine's results until it closes its channel or Close is called.
func (b *ConfigurationHandlerBase[T]) forward() {
	defer b.wg.Done()
	defer close(b.results)
	for r := range b.inner.GetUpdateResultChannel() {
		select {
		case b.results <- b.convert(r):
		case <-b.done:
			return
		}
	}
}

// GetWasChangedChannel announces each change of the source (nil) or a problem with it; it is
// closed by Close.
func (b *ConfigurationHandlerBase[T]) GetWasChangedChannel() <-chan error {
	return b.inner.GetWasChangedChannel()
}

// Update applies the newest source in the background; its result arrives on
// GetUpdateResultChannel.
func (b *ConfigurationHandlerBase[T]) Update() { b.inner.Update() }

// GetUpdateResultChannel delivers one result per applied update; it is closed by Close.
func (b *ConfigurationHandlerBase[T]) GetUpdateResultChannel() <-chan T { return b.results }

// Close stops watching and closes both channels.
func (b *ConfigurationHandlerBase[T]) Close() {
	b.once.Do(func() {
		close(b.done)
		b.inner.Close()
		b.wg.Wait()
	})
}

// NewSingleFileConfigurationHandler watches newConfig; Update copies it over oldConfig (staged
// beside it and renamed, so a reader never sees half a file). The result is the update's error.
func NewSingleFileConfigurationHandler(newConfig, oldConfig string, logger *slog.Logger) (*ConfigurationHandlerBase[error], error) {
	return newBase(entrypoint.ConfigOptions{Format: entrypoint.FormatFile, Source: newConfig, Dest: oldConfig, Logger: logger},
		func(r entrypoint.UpdateResult) error { return r.Err })
}

// NewTarredConfigurationHandler watches the archive newConfigFile; Update extracts it safely
// and makes oldConfigDir match it, listing what changed. newConfigDir is accepted for
// compatibility and unused: the new tree is staged beside oldConfigDir and swapped in with one
// rename, so the application never sees a mix of versions.
func NewTarredConfigurationHandler(newConfigFile, newConfigDir, oldConfigDir string, logger *slog.Logger) (*ConfigurationHandlerBase[UpdateResult], error) {
	_ = newConfigDir
	return newBase(entrypoint.ConfigOptions{Format: entrypoint.FormatTar, Source: newConfigFile, Dest: oldConfigDir, Logger: logger},
		func(r entrypoint.UpdateResult) UpdateResult {
			changed := map[string]Modification{}
			for _, f := range r.Added {
				changed[f] = Created
			}
			for _, f := range r.Changed {
				changed[f] = Modified
			}
			for _, f := range r.Removed {
				changed[f] = Deleted
			}
			return UpdateResult{ChangedFiles: changed, Err: r.Err}
		})
}

// NewCustomConfigurationHandler watches newConfigFile; Update places a copy of its newest
// version at hardlink (staged and renamed; a copy rather than a hard link, which would share
// later writes) and then calls update, whose value is the result. When placing the copy fails,
// the failure is logged, hardlink keeps the previous version and update is still called.
func NewCustomConfigurationHandler[T any](newConfigFile, hardlink string, update func() T, logger *slog.Logger) (*ConfigurationHandlerBase[T], error) {
	if update == nil {
		return nil, errors.New("new custom configuration handler: update function is nil")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return newBase(entrypoint.ConfigOptions{Format: entrypoint.FormatFile, Source: newConfigFile, Dest: hardlink, Logger: logger},
		func(r entrypoint.UpdateResult) T {
			if r.Err != nil {
				logger.Error("place the new configuration; calling the update function anyway", "file", newConfigFile, "error", r.Err)
			}
			return update()
		})
}

// ProcessHandler runs an application and reports when it starts and ends.
type ProcessHandler interface {
	GetStartedChannel() <-chan error
	GetEndedChannel() <-chan error
	Start()
	Stop() error
	Kill() error
	Signal(syscall.Signal) error
}

// CmdProcessHandler runs one *exec.Cmd once. Signals go to the process alone, as in the original.
type CmdProcessHandler struct {
	*entrypoint.CmdProcessHandler
	devNull []*os.File // opened for nil streams; closed once the process has ended
}

// Start runs the command in the background.
func (p *CmdProcessHandler) Start() {
	p.CmdProcessHandler.Start()
	if len(p.devNull) > 0 {
		go func() {
			<-p.Done()
			for _, f := range p.devNull {
				_ = f.Close()
			}
		}()
	}
}

var _ ProcessHandler = (*CmdProcessHandler)(nil)

// NewProcessHandler prepares cmd to be run once by Start. Its standard streams must be nil
// (the null device, as for exec.Cmd) or *os.File; a start error arrives on the started channel,
// the end (nil or an *entrypoint.ExitError) on the ended channel.
func NewProcessHandler(cmd *exec.Cmd, logger *slog.Logger) (*CmdProcessHandler, error) {
	if cmd == nil {
		return nil, errors.New("new process handler: cmd is nil")
	}
	if cmd.Err != nil {
		return nil, fmt.Errorf("new process handler: %w", cmd.Err)
	}
	opts := entrypoint.ProcessOptions{
		Command: append([]string{cmd.Path}, cmd.Args[1:]...), Env: cmd.Env, Dir: cmd.Dir,
		ChildOnly: true, Logger: logger,
	}
	var devNull []*os.File
	streams := []struct {
		name string
		v    any
		to   **os.File
		flag int
	}{{"Stdin", cmd.Stdin, &opts.Stdin, os.O_RDONLY}, {"Stdout", cmd.Stdout, &opts.Stdout, os.O_WRONLY}, {"Stderr", cmd.Stderr, &opts.Stderr, os.O_WRONLY}}
	for _, s := range streams {
		switch v := s.v.(type) {
		case nil:
			f, err := os.OpenFile(os.DevNull, s.flag, 0)
			if err != nil {
				for _, f := range devNull {
					_ = f.Close()
				}
				return nil, fmt.Errorf("new process handler: open %s for %s: %w", os.DevNull, s.name, err)
			}
			*s.to = f
			devNull = append(devNull, f)
		case *os.File:
			*s.to = v
		default:
			for _, f := range devNull {
				_ = f.Close()
			}
			return nil, fmt.Errorf("new process handler: cmd.%s is a %T; set an *os.File (or nil for the null device), e.g. os.%s", s.name, v, s.name)
		}
	}
	p, err := entrypoint.NewProcessHandler(opts)
	if err != nil {
		for _, f := range devNull {
			_ = f.Close()
		}
		return nil, fmt.Errorf("new process handler: %w", err)
	}
	return &CmdProcessHandler{CmdProcessHandler: p, devNull: devNull}, nil
}
