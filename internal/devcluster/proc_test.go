package devcluster

import (
	"bytes"
	"os/exec"
	"syscall"
	"testing"
)

// Right after exec.Cmd.Start a process can show its new executable with an
// empty command line (execve is still setting it up). readCmdline waits for
// it, so a daemon checked at once is not taken for gone. Without the wait,
// about one start in twenty read empty on this machine.
func TestReadCmdlineRightAfterStartSeesTheArguments(t *testing.T) {
	for i := 0; i < 200; i++ {
		cmd := exec.Command("/bin/sleep", "30.5")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got, err := readCmdline(cmd.Process.Pid)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if err != nil || !bytes.Contains(got, []byte("30.5")) {
			t.Fatalf("start %d: readCmdline = %q, %v; want sleep's arguments", i, got, err)
		}
	}
	// A kernel thread has no command line, and never gets one.
	if got, err := readCmdline(2); err != nil || len(got) != 0 {
		t.Errorf("kthreadd: readCmdline = %q, %v; want empty", got, err)
	}
}
