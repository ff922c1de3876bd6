package root

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/podkit-dev/podkit/internal/cli/common"
)

// subcommands lists the constructors of podkit's top-level commands, in the
// order `podkit --help` shows them.
var subcommands = []func(context.Context, *common.Common) *cobra.Command{}
