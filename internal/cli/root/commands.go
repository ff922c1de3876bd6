package root

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/podkit-dev/podkit/internal/cli/barrier"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/cli/controller"
	"github.com/podkit-dev/podkit/internal/cli/demo"
	"github.com/podkit-dev/podkit/internal/cli/dev"
	"github.com/podkit-dev/podkit/internal/cli/dev/vcluster"
	"github.com/podkit-dev/podkit/internal/cli/fork"
	"github.com/podkit-dev/podkit/internal/cli/framework"
	"github.com/podkit-dev/podkit/internal/cli/sync"
	"github.com/podkit-dev/podkit/internal/cli/version"
	"github.com/podkit-dev/podkit/internal/cli/watch"
)

// subcommands lists the constructors of podkit's top-level commands, in the
// order `podkit --help` shows them.
var subcommands = []func(context.Context, *common.Common) *cobra.Command{
	demo.NewCommand,
	func(ctx context.Context, c *common.Common) *cobra.Command {
		return dev.NewCommand(ctx, c, vcluster.NewCommand)
	},
	fork.NewCommand,
	watch.NewCommand,
	controller.NewCommand,
	framework.NewGetCommand,
	framework.NewDescribeCommand,
	barrier.NewCommand,
	sync.NewCommand,
	version.NewCommand,
}
