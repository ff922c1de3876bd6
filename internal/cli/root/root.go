// Package root builds podkit's cobra command tree. Each verb or noun lives in
// its own package under internal/cli and is attached here; nothing else in
// podkit imports this package but cmd/podkit.
package root

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

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
	for _, sub := range subcommands {
		cmd.AddCommand(sub(ctx, c))
	}
	return cmd
}
