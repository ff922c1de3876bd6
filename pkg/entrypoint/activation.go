package entrypoint

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// FileActivationHandler reports "active" while a file exists and "backup" while it does not: the
// usual way to promote one of several replicas (a leader-elector sidecar or an operator writes the
// file into a shared or downward-API volume). The initial state is reported at once, then one
// event per change. It watches the file's directory, so ConfigMap-style ..data swaps and renames
// are seen too.
type FileActivationHandler struct {
	file    string
	log     *slog.Logger
	watcher *fsnotify.Watcher
	events  chan ActivationEvent
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// NewActivationHandler watches file (its directory must exist) and reports its presence.
// logger may be nil (slog.Default()).
func NewActivationHandler(file string, logger *slog.Logger) (*FileActivationHandler, error) {
	if file == "" {
		return nil, errors.New("activation file is empty; pass the path whose presence means active")
	}
	if logger == nil {
		logger = slog.Default()
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("create file watcher: %w", err)
	}
	if err := w.Add(filepath.Dir(file)); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("watch %s: %w", filepath.Dir(file), err)
	}
	a := &FileActivationHandler{
		file: filepath.Clean(file), log: logger.With("handler", "activation", "file", file),
		watcher: w, events: make(chan ActivationEvent, 16), done: make(chan struct{}),
	}
	a.wg.Add(1)
	go a.loop()
	return a, nil
}

// GetWasChangedChannel delivers the initial state and every change; it is closed by Close.
func (a *FileActivationHandler) GetWasChangedChannel() <-chan ActivationEvent { return a.events }

// Close stops watching and closes the channel.
func (a *FileActivationHandler) Close() {
	a.once.Do(func() {
		close(a.done)
		_ = a.watcher.Close()
		a.wg.Wait()
		close(a.events)
	})
}

func (a *FileActivationHandler) state() (bool, error) {
	_, err := os.Stat(a.file)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("stat activation file: %w", err)
	}
}

func (a *FileActivationHandler) send(ev ActivationEvent) bool {
	select {
	case a.events <- ev:
		a.log.Info("activation state", "active", ev.State, "error", ev.Error)
		return true
	case <-a.done:
		return false
	}
}

func (a *FileActivationHandler) loop() {
	defer a.wg.Done()
	last, err := a.state()
	if !a.send(ActivationEvent{State: last, Error: err}) {
		return
	}
	for {
		select {
		case <-a.done:
			return
		case err, ok := <-a.watcher.Errors:
			if !ok {
				return
			}
			if !a.send(ActivationEvent{State: last, Error: fmt.Errorf("watch activation file: %w", err)}) {
				return
			}
		case ev, ok := <-a.watcher.Events:
			if !ok {
				return
			}
			if ev.Name != a.file && filepath.Base(ev.Name) != dataLink {
				continue
			}
			s, err := a.state()
			if s == last && err == nil {
				continue
			}
			last = s
			if !a.send(ActivationEvent{State: s, Error: err}) {
				return
			}
		}
	}
}
