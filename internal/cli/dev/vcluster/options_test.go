package vcluster

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// `podkit dev vcluster up --allow` passes through to the syncer's policy as
// `podkit sync run --allow` does (internal/cli/sync).
func TestAllowFlagBecomesTheSyncerPolicy(t *testing.T) {
	c := testCommon(t)
	f := &flags{}
	cmd := newCommand(context.Background(), c, f)
	up, _, err := cmd.Find([]string{"up"})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.ParseFlags([]string{"--allow", "host-path,runtime-class", "--allow", "service-exposure"}); err != nil {
		t.Fatalf("parse --allow: %v", err)
	}
	opts, err := f.options(c)
	if err != nil {
		t.Fatalf("options: %v", err)
	}
	want := []synccontext.Permission{synccontext.AllowHostPath, synccontext.AllowRuntimeClass, synccontext.AllowServiceExposure}
	for _, p := range want {
		if !opts.Policy.Allows(p) {
			t.Errorf("policy %v does not allow %s", opts.Policy.Allow, p)
		}
	}
	if len(opts.Policy.Allow) != len(want) || opts.Policy.Allows(synccontext.AllowPrivileged) {
		t.Errorf("policy %v, want exactly %v", opts.Policy.Allow, want)
	}
}

// --dns-address and --dns-upstream reach vcluster.Options; a value that is
// not IP:port is a usage error before anything starts.
func TestDNSFlagsReachTheOptionsAndAreValidated(t *testing.T) {
	c := testCommon(t)
	for _, tc := range []struct {
		flag, arg, want string
		bad             bool
	}{
		{"--dns-address", "", "127.0.0.1:0", false}, // the default
		{"--dns-address", "10.0.0.2:53", "10.0.0.2:53", false},
		{"--dns-address", "localhost:53", "", true},
		{"--dns-address", "10.0.0.2", "", true},
		{"--dns-upstream", "", "", false}, // the default: none
		{"--dns-upstream", "10.96.0.10:53", "10.96.0.10:53", false},
		{"--dns-upstream", "kube-dns:53", "", true},
	} {
		f := &flags{}
		cmd := newCommand(context.Background(), c, f)
		up, _, err := cmd.Find([]string{"up"})
		if err != nil {
			t.Fatal(err)
		}
		var args []string
		if tc.arg != "" {
			args = []string{tc.flag, tc.arg}
		}
		if err := up.ParseFlags(args); err != nil {
			t.Fatalf("parse %v: %v", args, err)
		}
		opts, err := f.options(c)
		got := opts.DNSAddress
		if tc.flag == "--dns-upstream" {
			got = opts.DNSUpstream
		}
		switch {
		case tc.bad && err == nil:
			t.Errorf("%s %q accepted, want a usage error", tc.flag, tc.arg)
		case !tc.bad && (err != nil || got != tc.want):
			t.Errorf("%s %q: got %q, err %v; want %q", tc.flag, tc.arg, got, err, tc.want)
		}
	}
}

// testCommon is the CLI's common state for a kubeconfig naming an
// unreachable server: options are built, nothing is contacted.
func testCommon(t *testing.T) *common.Common {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	kc := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n" +
		"users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	config := genericclioptions.NewConfigFlags(true)
	config.KubeConfig = &kubeconfig
	var out bytes.Buffer
	return &common.Common{
		Flags:   config,
		Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out},
		Logger:  slog.New(slog.NewTextHandler(&out, nil)),
	}
}
