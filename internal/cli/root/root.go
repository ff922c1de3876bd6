// Package root builds podkit's cobra command tree. Each verb or noun lives in
// its own package under internal/cli and is attached here; nothing else in
// podkit imports this package but cmd/podkit.
package root

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/cli/version"
)

// NewCommand returns the podkit root command with every subcommand attached.
func NewCommand(ctx context.Context, streams genericiooptions.IOStreams) *cobra.Command {
	c := &common.Common{
		Flags:   genericclioptions.NewConfigFlags(true),
		Streams: streams,
		Logger:  slog.New(slog.NewTextHandler(streams.ErrOut, nil)),
	}
	cmd := &cobra.Command{
		Use:           "podkit",
		Short:         "podkit: fork, operate, supervise, sync and gang-schedule Kubernetes pods",
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version, as kubectl-style tools have it.
		Version: version.Current(),
	}
	cmd.SetVersionTemplate("podkit version {{.Version}}\n")
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return clierr.WithCode(clierr.CodeUsage, err)
	})
	c.Flags.AddFlags(cmd.PersistentFlags())
	var logs logFlags
	logs.add(cmd)
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		logger, err := logs.logger(streams.ErrOut)
		if err != nil {
			return clierr.WithCode(clierr.CodeUsage, err)
		}
		c.Logger = logger
		// client-go and the other Kubernetes libraries log through klog:
		// into the same handler, at the same level and format.
		klog.SetSlogLogger(logger)
		return setKlogVerbosity(logs.verbosity)
	}
	for _, sub := range subcommands {
		cmd.AddCommand(sub(ctx, c))
	}
	return cmd
}

// logFlags are the logging flags every command has.
type logFlags struct {
	level     string
	format    string
	verbosity int
}

func (f *logFlags) add(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.level, "log-level", "info", "lowest level logged to stderr: debug, info, warn or error")
	fs.StringVar(&f.format, "log-format", "text", "log format on stderr: text or json")
	fs.IntVarP(&f.verbosity, "v", "v", 0, "log verbosity, as kubectl's -v: 1 and above also log the libraries' V(n) messages (implies --log-level debug)")
}

// logger builds the logger the flags ask for, writing to w.
func (f *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(f.level) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.level)
	}
	if f.verbosity < 0 {
		return nil, fmt.Errorf("--v %d: want 0 or more", f.verbosity)
	}
	if f.verbosity > 0 {
		// logr's V(n) is slog level -n: -v 4 shows V(0) to V(4).
		level = min(level, slog.LevelDebug, slog.Level(-f.verbosity))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(f.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", f.format)
	}
}

// setKlogVerbosity sets klog's own -v, which decides which V(n) messages
// klog emits at all.
func setKlogVerbosity(v int) error {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	if err := fs.Set("v", strconv.Itoa(v)); err != nil {
		return fmt.Errorf("set klog verbosity %d: %w", v, err)
	}
	return nil
}
