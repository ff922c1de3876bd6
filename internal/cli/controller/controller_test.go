package controller

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
)

func TestInvalidFlagsAreUsageErrorsNamingTheFlag(t *testing.T) {
	// A configuration file whose only class has a broken regex.
	badConfig := filepath.Join(t.TempDir(), "frameworkcontroller.yaml")
	if err := os.WriteFile(badConfig, []byte("podFailureSpec:\n- code: 221\n  phrase: X\n  podPatterns: [{reasonRegex: '(('}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		flag string
	}{
		{[]string{"--kube-api-qps", "0"}, "--kube-api-qps"},
		{[]string{"--kube-api-burst", "0"}, "--kube-api-burst"},
		{[]string{"--max-concurrent-reconciles", "0"}, "--max-concurrent-reconciles"},
		{[]string{"--creation-concurrency", "-1"}, "--creation-concurrency"},
		{[]string{"--status-update-interval", "-1s"}, "--status-update-interval"},
		{[]string{"--barrier-release-min-tasks", "0"}, "--barrier-release-min-tasks"},
		{[]string{"--leader-elect", "--leader-election-id", ""}, "--leader-election-id"},
		{[]string{"--config", "/nonexistent/frameworkcontroller.yaml"}, "--config"},
		{[]string{"--config", badConfig}, "podFailureSpec[0].podPatterns[0].reasonRegex"},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			out := &bytes.Buffer{}
			c := &common.Common{
				Flags:   genericclioptions.NewConfigFlags(false),
				Streams: genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: out, ErrOut: out},
				Logger:  slog.New(slog.NewTextHandler(out, nil)),
			}
			cmd := NewCommand(context.Background(), c)
			cmd.SetArgs(tt.args)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.Execute()
			if clierr.Code(err) != clierr.CodeUsage || !strings.Contains(err.Error(), tt.flag) {
				t.Errorf("err = %v (code %d), want a usage error naming %s", err, clierr.Code(err), tt.flag)
			}
		})
	}
}

func TestSchemeKnowsFrameworksAndPods(t *testing.T) {
	s, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Framework", "FrameworkList"} {
		if !s.Recognizes(schemaGVK("podkit.dev", "v1alpha1", kind)) {
			t.Errorf("scheme does not know podkit.dev/v1alpha1 %s", kind)
		}
		if !s.Recognizes(schemaGVK("frameworkcontroller.microsoft.com", "v1", kind)) {
			t.Errorf("scheme does not know frameworkcontroller.microsoft.com/v1 %s (--fc-compat)", kind)
		}
	}
	if !s.Recognizes(schemaGVK("", "v1", "Pod")) {
		t.Error("scheme does not know v1 Pod")
	}
}

func schemaGVK(g, v, k string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: g, Version: v, Kind: k}
}
