// Package syncertest runs the syncer between two real control planes in
// tests: a host and a virtual API server from internal/testenv, started once
// per test binary, and one syncer per test on fresh namespaces.
package syncertest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// VirtualClusterName is the virtual cluster name tests use.
const VirtualClusterName = "vc"

// Clusters are the two control planes of a test binary.
type Clusters struct {
	Host    *testenv.Env
	Virtual *testenv.Env
}

// Main is for TestMain: it starts both control planes, runs the tests and
// stops them.
func Main(m *testing.M, c *Clusters) int {
	var err error
	if c.Host, err = testenv.Start(context.Background(), testenv.Options{Mode: testenv.ModeAPIServer}); err != nil {
		fmt.Fprintf(os.Stderr, "syncertest: start host: %v\n", err)
		return 1
	}
	defer stop("host", c.Host)
	if c.Virtual, err = testenv.Start(context.Background(), testenv.Options{Mode: testenv.ModeAPIServer}); err != nil {
		fmt.Fprintf(os.Stderr, "syncertest: start virtual: %v\n", err)
		return 1
	}
	defer stop("virtual", c.Virtual)
	return m.Run()
}

func stop(name string, e *testenv.Env) {
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "syncertest: stop %s: %v\n", name, err)
	}
}

// Run is one syncer under test.
type Run struct {
	// TargetNamespace is the fresh host namespace the syncer writes to.
	TargetNamespace string
	// Context is the syncer's RegisterContext.
	Context *synccontext.RegisterContext

	cancel context.CancelFunc
	done   chan error
}

// Options tune Start; zero values take syncer.Options defaults.
type Options struct {
	TargetNamespace string
	Workers         int
	// Policy is the syncer's policy; the zero value withholds everything.
	Policy synccontext.Policy
	// PodNetwork is the syncer's PodNetwork; the zero value leaves host
	// pods' API server and DNS settings as the host makes them.
	PodNetwork synccontext.PodNetwork
}

// Start runs a syncer with the plug-ins built by plugins on a fresh host
// target namespace (or opts.TargetNamespace); it is stopped in t.Cleanup.
func (c *Clusters) Start(t testing.TB, opts Options, plugins func(*synccontext.RegisterContext) ([]syncer.Base, error)) *Run {
	t.Helper()
	target := opts.TargetNamespace
	if target == "" {
		target = c.Host.Namespace(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := syncer.NewRegisterContext(ctx, syncer.Options{
		VirtualConfig:   c.Virtual.Config,
		HostConfig:      c.Host.Config,
		TargetNamespace: target,
		Name:            VirtualClusterName,
		Workers:         opts.Workers,
		Policy:          opts.Policy,
		PodNetwork:      opts.PodNetwork,
		Logger:          testr.NewWithInterface(t, testr.Options{Verbosity: 0}),
	})
	if err != nil {
		cancel()
		t.Fatalf("create register context: %v", err)
	}
	ps, err := plugins(rc)
	if err != nil {
		cancel()
		t.Fatalf("create plug-ins: %v", err)
	}
	r := &Run{TargetNamespace: target, Context: rc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- syncer.Start(rc, ps...) }()
	t.Cleanup(func() { r.Stop(t) })
	return r
}

// Stop stops the syncer and fails the test if it ended with an error. It
// may be called more than once.
func (r *Run) Stop(t testing.TB) {
	t.Helper()
	if r.done == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("syncer ended with an error: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("syncer did not stop within 30s")
	}
	r.done = nil
}
