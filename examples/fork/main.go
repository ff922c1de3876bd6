package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/podkit-dev/podkit/pkg/fork"
)

// pathReport is the code path the forked child takes.
const pathReport = "report"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	var code int
	var err error
	switch p := fork.Path(); p {
	case "":
		code, err = runParent(ctx, logger)
	case pathReport:
		err = runReport(ctx, logger)
	default:
		err = fmt.Errorf("unknown fork path %q", p)
	}
	stop()
	if err != nil {
		logger.Error("exiting", "err", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// runParent forks the child, waits for it and returns its exit code.
func runParent(ctx context.Context, logger *slog.Logger) (int, error) {
	cfg, err := config.GetConfig()
	if err != nil {
		return 0, fmt.Errorf("load client config: %w", err)
	}
	c, err := client.NewWithWatch(cfg, client.Options{})
	if err != nil {
		return 0, fmt.Errorf("create client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("create clientset: %w", err)
	}
	res, err := fork.Run(ctx, c, pathReport, fork.Options{
		Timeout:   5 * time.Minute,
		Delete:    true,
		Clientset: cs,
		Progress: func(p fork.Progress) {
			logger.Info("child", "name", p.Pod.Name, "state", p.Summary)
		},
	})
	if err != nil {
		return 0, err
	}
	for _, ctr := range res.Containers {
		for _, line := range ctr.Logs {
			logger.Info("child log", "container", ctr.Name, "line", line)
		}
	}
	logger.Info("child done", "name", res.Name, "phase", res.Phase, "exitCode", res.ExitCode())
	return res.ExitCode(), nil
}

// runReport is the child's work: here, say where it runs.
func runReport(ctx context.Context, logger *slog.Logger) error {
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("read hostname: %w", err)
	}
	logger.Info("forked child running", "hostname", host, "pod", os.Getenv(fork.EnvPodName))
	select {
	case <-ctx.Done():
		return errors.New("interrupted")
	case <-time.After(time.Second):
	}
	return nil
}
