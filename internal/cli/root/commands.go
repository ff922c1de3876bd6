package root

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/cli/dev"
	"github.com/podkit-dev/podkit/internal/cli/version"
)

// subcommands lists the constructors of podkit's top-level commands, in the
// order `podkit --help` shows them.
var subcommands = []func(context.Context, *common.Common) *cobra.Command{
	func(ctx context.Context, c *common.Common) *cobra.Command { return dev.NewCommand(ctx, c) },
	version.NewCommand,
}
