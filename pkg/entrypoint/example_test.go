package entrypoint_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/podkit-dev/podkit/pkg/entrypoint"
)

// A container entrypoint: supervise nginx as PID 1, rewrite SIGTERM to nginx's graceful SIGQUIT
// and restart it if it crashes.
func ExampleNewSupervisor() {
	sup, err := entrypoint.NewSupervisor(entrypoint.SupervisorOptions{
		ProcessOptions: entrypoint.ProcessOptions{
			Command: []string{"nginx", "-g", "daemon off;"},
			Restart: entrypoint.RestartOnFailure,
			Grace:   20 * time.Second,
		},
		SignalRewrite: map[syscall.Signal]syscall.Signal{syscall.SIGTERM: syscall.SIGQUIT},
	})
	if err != nil {
		slog.Error("configure supervisor", "error", err)
		os.Exit(2)
	}
	code, err := sup.Run(context.Background())
	if err != nil {
		slog.Error("supervise", "error", err)
	}
	os.Exit(code)
}

// The seed's process handler shape: start, then read the started and ended channels.
func ExampleNewProcessHandler() {
	p, err := entrypoint.NewProcessHandler(entrypoint.ProcessOptions{
		Command: []string{"/bin/sh", "-c", "exit 3"},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Start()
	fmt.Println("started:", <-p.GetStartedChannel())
	end := <-p.GetEndedChannel()
	fmt.Println("ended:", end, "exit code:", entrypoint.ExitCode(end))
	// Output:
	// started: <nil>
	// ended: exit status 3 exit code: 3
}

// Watch a ConfigMap volume, validate each version and swap it into the live directory.
func ExampleNewConfigHandler() {
	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	src, live := filepath.Join(dir, "volume"), filepath.Join(dir, "live")
	_ = os.Mkdir(src, 0o755)
	_ = os.WriteFile(filepath.Join(src, "app.conf"), []byte("listen 80;\n"), 0o644)

	c, err := entrypoint.NewConfigHandler(entrypoint.ConfigOptions{
		Format: entrypoint.FormatDir, Source: src, Dest: live,
		Validator: entrypoint.ValidatorFunc(func(_ context.Context, staged string) error {
			_, err := os.Stat(filepath.Join(staged, "app.conf"))
			return err
		}),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println("changed:", <-c.GetWasChangedChannel())
	c.Update()
	r := <-c.GetUpdateResultChannel()
	fmt.Println("added:", r.Added, "error:", r.Err)
	// Output:
	// changed: <nil>
	// added: [app.conf] error: <nil>
}

// Active/backup by the presence of a file; the initial state comes first.
func ExampleNewActivationHandler() {
	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	a, err := entrypoint.NewActivationHandler(filepath.Join(dir, "active"), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	fmt.Println("active:", (<-a.GetWasChangedChannel()).State)
	_ = os.WriteFile(filepath.Join(dir, "active"), nil, 0o644)
	fmt.Println("active:", (<-a.GetWasChangedChannel()).State)
	// Output:
	// active: false
	// active: true
}
