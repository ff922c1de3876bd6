package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

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

	var env []string
	if f.config != "" {
		if f.configDest == "" {
			private, err := os.MkdirTemp("", "podkit-entrypoint-")
			if err != nil {
				return 1, fmt.Errorf("create a private directory for the live configuration: %w", err)
			}
			defer os.RemoveAll(private)
			// Readable by an application running as another user; the name is what is private.
			if err := os.Chmod(private, 0o755); err != nil {
				return 1, fmt.Errorf("create a private directory for the live configuration: %w", err)
			}
			f.configDest = filepath.Join(private, filepath.Base(f.config))
		}
		env = append(os.Environ(), "PODKIT_CONFIG_DEST="+f.configDest)
	}
	opts := entrypoint.SupervisorOptions{
		ProcessOptions: entrypoint.ProcessOptions{
			Command: f.command, Env: env, Restart: f.policy, Grace: f.grace, Logger: log,
			ChildOnly: f.signalTarget == "child",
		},
		SignalRewrite: f.rewrite,
		DirectForward: true,
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
		ln, err := entrypoint.ListenHealth(f.healthAddr)
		if err != nil {
			return 1, fmt.Errorf("--health-addr: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := health.ServeOn(ctx, ln); err != nil {
				log.Error("health server stopped", "error", err)
			}
		}()
	}

	code, err := sup.Run(ctx)
	if err == nil && slices.Contains(f.expectCodes, code) {
		log.Info("remapping the child's exit code to 0 (--expect-exit-code)", "exitCode", code)
		code = 0
	}
	return code, err
}

// watchConfig applies every announced change and runs the on-change action when files changed.
// It calls Apply directly rather than Update: one goroutine hand-off less between the ..data swap
// and the reload signal.
func watchConfig(ctx context.Context, log *slog.Logger, cfg *entrypoint.ConfigHandler, sup *entrypoint.Supervisor, act entrypoint.ChangeAction, health *entrypoint.Health) {
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
			r := cfg.Apply(ctx)
			if r.Err == nil && !r.HasChanges() {
				continue
			}
			if r.Err == nil {
				r.Err = act.Run(ctx, sup)
			}
			health.ObserveReload(r.Err)
			if r.Err != nil {
				log.Error("configuration reload failed", "error", r.Err)
			}
		}
	}
}
