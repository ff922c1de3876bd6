// Package common holds what every podkit command shares: kubectl's
// connection flags, the output streams and the logger. Commands receive a
// *Common from the root command instead of reading globals.
package common

import (
	"fmt"
	"log/slog"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Common is the state shared by all commands of one podkit invocation.
type Common struct {
	// Flags are kubectl's --kubeconfig, --context, -n and friends.
	Flags *genericclioptions.ConfigFlags
	// Streams are stdin, stdout and stderr.
	Streams genericiooptions.IOStreams
	// Logger writes diagnostics to stderr.
	Logger *slog.Logger
}

// RESTConfig returns the client configuration selected by the kubectl flags
// (or KUBECONFIG / in-cluster config), with an error that says what to do.
func (c *Common) RESTConfig() (*rest.Config, error) {
	cfg, err := c.Flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig (set --kubeconfig or KUBECONFIG, or start a local cluster with: podkit dev up): %w", err)
	}
	return cfg, nil
}

// Clientset returns a typed clientset for the selected cluster.
func (c *Common) Clientset() (kubernetes.Interface, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create clientset: %w", err)
	}
	return cs, nil
}

// Namespace returns the namespace chosen with -n, from the kubeconfig
// context, or "default".
func (c *Common) Namespace() (string, error) {
	ns, _, err := c.Flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("resolve namespace: %w", err)
	}
	return ns, nil
}
