package vcluster_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/cli/dev/vcluster"
)

func TestBadFlagsAreUsageErrorsNamingTheFlag(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"up", "--name", "Bad_Name"}, "--name: virtual cluster name"},
		{[]string{"up", "--sync", "configmaps,nodes"}, `--sync: unknown syncer "nodes"`},
		{[]string{"down", "--name", "a-x-b"}, "--name: virtual cluster name"},
		{[]string{"up", "--allow", "host-path,root"}, `--allow: unknown permission "root"; choose from host-namespaces,`},
		{[]string{"up", "--dns-address", "localhost:53"}, `--dns-address "localhost:53": want IP:port`},
		{[]string{"up", "--dns-upstream", "10.96.0.10"}, `--dns-upstream "10.96.0.10": want IP:port`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			c := &common.Common{
				Flags:   genericclioptions.NewConfigFlags(true),
				Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out},
				Logger:  slog.New(slog.NewTextHandler(&out, nil)),
			}
			cmd := vcluster.NewCommand(context.Background(), c)
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			cmd.SetArgs(tt.args)
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error = %v, want one line containing %q", err, tt.wantErr)
			}
			if clierr.Code(err) != clierr.CodeUsage {
				t.Fatalf("exit code %d, want %d", clierr.Code(err), clierr.CodeUsage)
			}
		})
	}
}
