package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podkit-dev/podkit/pkg/entrypoint"
)

// run wires the supervisor, the configuration and activation handlers and the health server,
// and returns the exit code.
func run(ctx context.Context, f *flags) (int, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: f.level}))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	health := &entrypoint.Health{}
	var sup *entrypoint.Supervisor
	var cfg *entrypoint.ConfigHandler
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	opts := entrypoint.SupervisorOptions{
		ProcessOptions: entrypoint.ProcessOptions{
			Command: f.command, Restart: f.policy, Grace: f.grace, Logger: log,
		},
		SignalRewrite: f.rewrite,
	}
	if f.config != "" {
		opts.BeforeStart = func(bctx context.Context) error {
			r := cfg.Apply(bctx)
			health.ObserveReload(r.Err)
			if r.Err != nil {
				return fmt.Errorf("apply initial configuration: %w", r.Err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				watchConfig(ctx, log, cfg, sup, f.action, health)
			}()
			return nil
		}
	}
	var err error
	if sup, err = entrypoint.NewSupervisor(opts); err != nil {
		return 2, err
	}
	if f.config != "" {
		var v entrypoint.Validator
		if f.validate != "" {
			if v, err = entrypoint.CommandValidator(fieldsOf(f.validate), sup.Reaper()); err != nil {
				return 2, err
			}
		}
		cfg, err = entrypoint.NewConfigHandler(entrypoint.ConfigOptions{
			Format: f.format, Source: f.config, Dest: f.configDest, Validator: v,
			Debounce: f.debounce, Logger: log,
		})
		if err != nil {
			return 1, fmt.Errorf("watch configuration: %w", err)
		}
		defer cfg.Close()
	}

	var active atomic.Int32
	active.Store(-1)
	if f.activation != "" {
		act, err := entrypoint.NewActivationHandler(f.activation, log)
		if err != nil {
			return 1, fmt.Errorf("watch activation file: %w", err)
		}
		defer act.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-act.GetWasChangedChannel():
					if !ok {
						return
					}
					if ev.Error == nil {
						active.Store(map[bool]int32{false: 0, true: 1}[ev.State])
					}
				}
			}
		}()
	}

	if f.healthAddr != "" {
		health.Restarts = sup.Process().Restarts
		health.Active = func() int { return int(active.Load()) }
		health.Ready = func() bool {
			return sup.Process().Pid() != 0 && health.LastReloadOK() && (f.activation == "" || active.Load() == 1)
		}
		ln, err := net.Listen("tcp", f.healthAddr)
		if err != nil {
			return 1, fmt.Errorf("listen on --health-addr %s: %w", f.healthAddr, err)
		}
		srv := &http.Server{Handler: health.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() {
			sctx, c := context.WithTimeout(context.Background(), time.Second)
			defer c()
			_ = srv.Shutdown(sctx)
		}()
	}

	code, err := sup.Run(ctx)
	return code, err
}

// watchConfig applies every announced change and runs the on-change action when files changed.
func watchConfig(ctx context.Context, log *slog.Logger, cfg *entrypoint.ConfigHandler, sup *entrypoint.Supervisor, act action, health *entrypoint.Health) {
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-cfg.GetWasChangedChannel():
			if !ok {
				return
			}
			if err != nil {
				log.Warn("configuration source", "error", err)
				continue
			}
			cfg.Update()
		case r, ok := <-cfg.GetUpdateResultChannel():
			if !ok {
				return
			}
			if r.Err == nil && !r.HasChanges() {
				continue
			}
			if r.Err == nil {
				r.Err = notify(ctx, sup, act)
			}
			health.ObserveReload(r.Err)
			if r.Err != nil {
				log.Error("configuration reload failed", "error", r.Err)
			}
		}
	}
}

// notify tells the application that its configuration changed.
func notify(ctx context.Context, sup *entrypoint.Supervisor, act action) error {
	switch act.kind {
	case "signal":
		if err := sup.Process().Signal(act.signal); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("send reload signal: %w", err)
		}
	case "restart":
		if err := sup.Process().Restart(); err != nil {
			return fmt.Errorf("restart after configuration change: %w", err)
		}
	case "exec":
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		out, err := sup.Reaper().Output(cctx, exec.Command(act.argv[0], act.argv[1:]...))
		if err != nil {
			return fmt.Errorf("run on-change command %s: %w: %s", act.argv[0], err, out)
		}
	case "http":
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(cctx, http.MethodPost, act.url, nil)
		if err != nil {
			return fmt.Errorf("build reload request: %w", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("post %s: %w", act.url, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("post %s: %s", act.url, resp.Status)
		}
	}
	return nil
}
