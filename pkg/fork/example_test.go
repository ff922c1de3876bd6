package fork_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/podkit-dev/podkit/pkg/fork"
)

// main switches on fork.Path: the root process forks, the child works.
func ExamplePath() {
	switch fork.Path() {
	case "":
		fmt.Println("parent: fork a child for path \"worker\"")
	case "worker":
		fmt.Println("child: do the worker's job and exit")
	}
}

// NewPodSpec gives the spec; creating and naming the pod is up to you.
func ExampleNewPodSpec() {
	ctx := context.Background()
	c, err := client.New(config.GetConfigOrDie(), client.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	spec, err := fork.NewPodSpec(ctx, c, "worker")
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // outside a pod: shows the env snippet to add
		return
	}
	fmt.Println(spec.RestartPolicy) // Never
}

// Run creates (or adopts) the child, waits and reports.
func ExampleRun() {
	ctx := context.Background()
	c, err := client.NewWithWatch(config.GetConfigOrDie(), client.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	res, err := fork.Run(ctx, c, "worker", fork.Options{
		Timeout: 10 * time.Minute,
		Delete:  true,
		Progress: func(p fork.Progress) {
			fmt.Fprintln(os.Stderr, p.Pod.Name, p.Summary)
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println(res.Phase, res.ExitCode())
}
