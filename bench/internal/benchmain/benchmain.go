// Package benchmain is the main function the benchmark commands that run
// with a context share.
package benchmain

import (
	"context"
	"log/slog"
	"os"
	"os/signal"

	"github.com/podkit-dev/podkit/bench/internal/load"
)

// Run runs run with a context canceled on an interrupt, printing the load
// average before and after (load.Report). An error is logged
// ("benchmark failed") and the process exits with status 1, without the
// second load average.
func Run(run func(ctx context.Context) error) {
	end := load.Report()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx)
	stop()
	if err != nil {
		log.Error("benchmark failed", "err", err)
		os.Exit(1)
	}
	end()
}
