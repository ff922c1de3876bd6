package entrypoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/podkit-dev/podkit/pkg/entrypoint/internal/minihttp"
)

// ChangeAction tells the application that its configuration changed. Parse one with
// ParseChangeAction; the zero value does nothing.
type ChangeAction struct {
	kind   string // "", "none", "signal", "restart", "exec", "http"
	signal syscall.Signal
	argv   []string
	url    string
}

// ParseChangeAction accepts signal:SIG (e.g. signal:SIGHUP), restart, exec:CMD ARGS (split on
// white space), http:URL (an empty POST to an http:// URL, as configmap-reload does) or none.
func ParseChangeAction(s string) (ChangeAction, error) {
	kind, arg, _ := strings.Cut(s, ":")
	switch kind {
	case "none", "restart":
		return ChangeAction{kind: kind}, nil
	case "signal":
		sig, err := ParseSignal(arg)
		if err != nil {
			return ChangeAction{}, err
		}
		return ChangeAction{kind: kind, signal: sig}, nil
	case "exec":
		argv := strings.Fields(arg)
		if len(argv) == 0 {
			return ChangeAction{}, errors.New("exec: needs a command, e.g. exec:/reload.sh")
		}
		return ChangeAction{kind: kind, argv: argv}, nil
	case "http":
		if !strings.HasPrefix(arg, "http://") {
			return ChangeAction{}, errors.New("http: needs an http:// URL, e.g. http:http://127.0.0.1:9090/-/reload (for https use exec:curl ...)")
		}
		if _, err := minihttp.ParseURL(arg); err != nil {
			return ChangeAction{}, fmt.Errorf("http: %w", err)
		}
		return ChangeAction{kind: kind, url: arg}, nil
	}
	return ChangeAction{}, fmt.Errorf("unknown action %q: want signal:SIG, restart, exec:CMD, http:URL or none", s)
}

// Run performs the action against the supervised process. Commands run through the
// Supervisor's Reaper; exec and http give up after a minute.
func (a ChangeAction) Run(ctx context.Context, s *Supervisor) error {
	switch a.kind {
	case "signal":
		if err := s.Process().Signal(a.signal); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("send reload signal: %w", err)
		}
	case "restart":
		if err := s.Process().Restart(); err != nil {
			return fmt.Errorf("restart after configuration change: %w", err)
		}
	case "exec":
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		out, err := s.Reaper().Output(cctx, exec.Command(a.argv[0], a.argv[1:]...))
		if err != nil {
			return fmt.Errorf("run on-change command %s: %w: %s", a.argv[0], err, strings.TrimSpace(string(out)))
		}
	case "http":
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		code, err := minihttp.Post(cctx, a.url)
		if err != nil {
			return err
		}
		if code/100 != 2 {
			return fmt.Errorf("post %s: status %d", a.url, code)
		}
	}
	return nil
}
