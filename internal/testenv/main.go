package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// APIServer is for TestMain: it starts an API server (ModeAPIServer), runs
// the tests with *env set, stops it and returns the exit code.
//
//	func TestMain(m *testing.M) { os.Exit(testenv.APIServer(m, &env)) }
func APIServer(m *testing.M, env **Env, opts ...func(*Options)) int {
	return run(m, ModeAPIServer, env, opts)
}

// Cluster is for TestMain: like APIServer with a full kwok cluster
// (ModeCluster).
func Cluster(m *testing.M, env **Env, opts ...func(*Options)) int {
	return run(m, ModeCluster, env, opts)
}

func run(m *testing.M, mode Mode, env **Env, opts []func(*Options)) int {
	o := Options{Mode: mode}
	for _, f := range opts {
		f(&o)
	}
	e, err := Start(context.Background(), o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 1
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stop: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
