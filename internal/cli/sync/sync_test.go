package sync_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	synccmd "github.com/podkit-dev/podkit/internal/cli/sync"
	"github.com/podkit-dev/podkit/internal/testenv"
)

var host, virtual *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		if host, err = testenv.Start(context.Background(), testenv.Options{}); err != nil {
			fmt.Fprintf(os.Stderr, "start host: %v\n", err)
			return 1
		}
		defer host.Stop()
		if virtual, err = testenv.Start(context.Background(), testenv.Options{}); err != nil {
			fmt.Fprintf(os.Stderr, "start virtual: %v\n", err)
			return 1
		}
		defer virtual.Stop()
		return m.Run()
	}())
}

// run executes `podkit sync run args...` in-process and returns its
// standard error and error.
func run(ctx context.Context, args ...string) (string, error) {
	var stderr bytes.Buffer
	c := &common.Common{
		Flags:   genericclioptions.NewConfigFlags(true),
		Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &stderr},
		Logger:  slog.New(slog.NewTextHandler(&stderr, nil)),
	}
	cmd := synccmd.NewCommand(ctx, c)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(append([]string{"run"}, args...))
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&stderr)
	err := cmd.ExecuteContext(ctx)
	return stderr.String(), err
}

func TestBadInputFailsWithOneLineNamingTheFlagOrCluster(t *testing.T) {
	unreachable := filepath.Join(t.TempDir(), "unreachable.kubeconfig")
	kc := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n" +
		"users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
	if err := os.WriteFile(unreachable, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown resource in --sync", []string{"--virtual-kubeconfig", virtual.Kubeconfig, "--target-namespace", "t", "--sync", "configmaps,deployments"}, clierr.CodeUsage, `--sync: unknown syncer "deployments"`},
		{"unknown permission in --allow", []string{"--virtual-kubeconfig", virtual.Kubeconfig, "--target-namespace", "t", "--allow", "root"}, clierr.CodeUsage, `--allow: unknown permission "root"; choose from host-namespaces,`},
		{"missing target namespace", []string{"--virtual-kubeconfig", virtual.Kubeconfig}, clierr.CodeUsage, "--target-namespace is required"},
		{"missing virtual kubeconfig", []string{"--target-namespace", "t"}, clierr.CodeUsage, "--virtual-kubeconfig is required"},
		{"bad virtual cluster name", []string{"--virtual-kubeconfig", virtual.Kubeconfig, "--target-namespace", "t", "--name", "Bad_Name"}, clierr.CodeUsage, "--name: virtual cluster name"},
		{"virtual API server address without a port", []string{"--virtual-kubeconfig", virtual.Kubeconfig, "--target-namespace", "t", "--virtual-apiserver-address", "10.0.0.1"}, clierr.CodeUsage, `--virtual-apiserver-address / --virtual-dns-address / --cluster-domain: APIServer "10.0.0.1": want IP:port`},
		{"virtual DNS address not an IP", []string{"--virtual-kubeconfig", virtual.Kubeconfig, "--target-namespace", "t", "--virtual-dns-address", "kube-dns"}, clierr.CodeUsage, `DNS "kube-dns" is not an IP address`},
		{"zero workers", []string{"--virtual-kubeconfig", virtual.Kubeconfig, "--target-namespace", "t", "--workers", "0"}, clierr.CodeUsage, "--workers 0"},
		{"unreachable virtual cluster", []string{"--virtual-kubeconfig", unreachable, "--host-kubeconfig", host.Kubeconfig, "--target-namespace", "t"}, clierr.CodeFailure, "reach virtual cluster at https://127.0.0.1:1"},
		{"unreachable host cluster", []string{"--virtual-kubeconfig", virtual.Kubeconfig, "--host-kubeconfig", unreachable, "--target-namespace", "t"}, clierr.CodeFailure, "reach host cluster at https://127.0.0.1:1"},
		{"missing kubeconfig file", []string{"--virtual-kubeconfig", "/nonexistent/kubeconfig", "--target-namespace", "t"}, clierr.CodeUsage, "--virtual-kubeconfig /nonexistent/kubeconfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(context.Background(), tt.args...)
			if err == nil {
				t.Fatal("command succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line containing %q", err, tt.wantErr)
			}
			if got := clierr.Code(err); got != tt.wantCode {
				t.Fatalf("exit code %d, want %d", got, tt.wantCode)
			}
		})
	}
}

func TestRunSyncsUntilCancelled(t *testing.T) {
	target := host.Namespace(t)
	vns := virtual.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := run(ctx, "--virtual-kubeconfig", virtual.Kubeconfig, "--host-kubeconfig", host.Kubeconfig,
			"--target-namespace", target, "--name", "cli", "--sync", "configmaps", "--workers", "2", "--allow", "all-configmaps")
		done <- err
	}()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "hello"}, Data: map[string]string{"k": "v"}}
	if err := virtual.Client.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "host copy of the ConfigMap", func(ctx context.Context) (bool, error) {
		got, err := host.Clientset.CoreV1().ConfigMaps(target).Get(ctx, "hello-x-"+vns+"-x-cli", metav1.GetOptions{})
		return err == nil && got.Data["k"] == "v", nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("command ended with %v, want nil after cancellation", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("command did not stop after cancellation")
	}
}
