package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/pkg/barrier"
)

// barrierTask names the task the demo runs the barrier for.
type barrierTask struct {
	framework, role string
	torch           bool
}

// barrierOutcome is what the barrier goroutine reports.
type barrierOutcome struct {
	task     barrierTask
	dir      string
	waited   time.Duration
	progress string
	err      error
}

// pickBarrierTask prefers a Framework with a "master" role (its injector
// then shows torch.distributed's variables), else the first one's first role.
func pickBarrierTask(fws []*v1.Framework) barrierTask {
	for _, fw := range fws {
		for _, r := range fw.Spec.TaskRoles {
			if r.Name == "master" {
				return barrierTask{framework: fw.Name, role: r.Name, torch: true}
			}
		}
	}
	t := barrierTask{framework: fws[0].Name}
	if len(fws[0].Spec.TaskRoles) > 0 {
		t.role = fws[0].Spec.TaskRoles[0].Name
	}
	return t
}

// startBarrier runs the barrier for task index 0 of t in the background, as
// the init container of that task's pod would, so that it waits while the
// gang comes up; runBarrier collects it.
func (d *demo) startBarrier(ctx context.Context, t barrierTask) {
	d.barrierDone = make(chan barrierOutcome, 1)
	go func() {
		out := barrierOutcome{task: t, dir: d.f.outputDir}
		defer func() { d.barrierDone <- out }()
		if out.dir == "" {
			var err error
			if out.dir, err = os.MkdirTemp("", "podkit-demo-barrier-"); err != nil {
				out.err = fmt.Errorf("create barrier output directory: %w", err)
				return
			}
		} else if err := os.MkdirAll(out.dir, 0o755); err != nil {
			out.err = fmt.Errorf("create barrier output directory: %w", err)
			return
		}
		timeoutSec := int64(d.f.timeout / time.Second)
		timeoutSec = max(barrier.MinBarrierCheckTimeoutSec, min(timeoutSec, barrier.MaxBarrierCheckTimeoutSec))
		var mu sync.Mutex
		b, err := barrier.New(barrier.Config{
			FrameworkNamespace:      d.ns,
			FrameworkName:           t.framework,
			BarrierCheckIntervalSec: barrier.MinBarrierCheckIntervalSec,
			BarrierCheckTimeoutSec:  timeoutSec,
		}, barrier.Options{
			Dir:        out.dir,
			RESTConfig: d.cfg,
			Injector:   barrier.InjectorOptions{TaskRoleName: t.role, TaskIndex: 0, Torch: t.torch},
			Progress: func(p barrier.Progress) {
				mu.Lock()
				defer mu.Unlock()
				out.progress = p.String()
			},
		})
		if err != nil {
			out.err = err
			return
		}
		start := time.Now()
		out.err = b.RunContext(ctx)
		out.waited = time.Since(start)
	}()
}

// runBarrier waits for the background barrier and prints the injector it
// wrote.
func (d *demo) runBarrier(ctx context.Context) (string, error) {
	if d.barrierDone == nil {
		return "", skip("needs the samples and the controller")
	}
	var out barrierOutcome
	select {
	case out = <-d.barrierDone:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	task := fmt.Sprintf("%s %s-0", out.task.framework, out.task.role)
	if out.err != nil {
		if out.progress != "" {
			return "", fmt.Errorf("barrier for %s (last progress: %s): %w", task, out.progress, out.err)
		}
		return "", fmt.Errorf("barrier for %s: %w", task, out.err)
	}
	injector := filepath.Join(out.dir, barrier.InjectorFilePath)
	script, err := os.ReadFile(injector)
	if err != nil {
		return "", fmt.Errorf("read the injector the barrier wrote: %w", err)
	}
	d.printf("    %s (sourced by the app container):\n", injector)
	for _, line := range strings.Split(strings.TrimRight(string(script), "\n"), "\n") {
		d.printf("    | %s\n", line)
	}
	return fmt.Sprintf("released %s after %s; wrote %s", task, out.waited.Round(10*time.Millisecond), injector), nil
}
