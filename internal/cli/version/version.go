// Package version implements `podkit version`: the client's build and, when a
// cluster is reachable, the server's version.
package version

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
)

// Version is podkit's version, set at build time with
// -ldflags "-X github.com/podkit-dev/podkit/internal/cli/version.Version=v…".
// Left "dev", Current reads the version from the binary's build
// information instead.
var Version = "dev"

// Current is podkit's version: Version when the build set it; else the
// module version `go install …@v1.2.3` recorded; else "dev" with the VCS
// revision of a build from a checkout ("dev+0a1b2c3d4e5f", "-dirty" when it
// had uncommitted changes).
func Current() string {
	bi, ok := debug.ReadBuildInfo()
	return current(Version, bi, ok)
}

func current(set string, bi *debug.BuildInfo, ok bool) string {
	if set != "dev" && set != "" {
		return set
	}
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	return "dev+" + rev[:min(12, len(rev))] + dirty
}

type flags struct {
	client bool
	output string
}

// Info is what `podkit version -o json` prints.
type Info struct {
	ClientVersion string `json:"clientVersion"`
	GoVersion     string `json:"goVersion"`
	ServerVersion string `json:"serverVersion,omitempty"`
	ServerError   string `json:"serverError,omitempty"`
}

// NewCommand returns the version command.
func NewCommand(ctx context.Context, c *common.Common) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the podkit version and the version of the cluster it talks to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runE(cmd.Context(), c, f)
		},
	}
	cmd.Flags().BoolVar(&f.client, "client", false, "Print the client version only; do not contact the cluster")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "Output format: empty for text, json or yaml")
	return cmd
}

func runE(_ context.Context, c *common.Common, f *flags) error {
	if f.output != "" && f.output != "json" && f.output != "yaml" {
		return clierr.Usagef("--output %q is not supported: use json, yaml or leave it empty", f.output)
	}
	info := Info{ClientVersion: Current()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.GoVersion = bi.GoVersion
	}
	var serverErr error
	if !f.client {
		serverErr = serverVersion(c, &info)
	}
	switch f.output {
	case "json":
		enc := json.NewEncoder(c.Streams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(info); err != nil {
			return fmt.Errorf("write version: %w", err)
		}
	case "yaml":
		out, err := yaml.Marshal(info)
		if err != nil {
			return fmt.Errorf("write version: %w", err)
		}
		if _, err := c.Streams.Out.Write(out); err != nil {
			return fmt.Errorf("write version: %w", err)
		}
	default:
		fmt.Fprintf(c.Streams.Out, "Client Version: %s (%s)\n", info.ClientVersion, info.GoVersion)
		if info.ServerVersion != "" {
			fmt.Fprintf(c.Streams.Out, "Server Version: %s\n", info.ServerVersion)
		}
	}
	return serverErr
}

func serverVersion(c *common.Common, info *Info) error {
	cs, err := c.Clientset()
	if err == nil {
		var v fmt.Stringer
		v, err = cs.Discovery().ServerVersion()
		if err == nil {
			info.ServerVersion = v.String()
			return nil
		}
	}
	info.ServerError = err.Error()
	return fmt.Errorf("get server version (use --client to skip the server): %w", err)
}
