package kueuemanager

import "syscall"

// dieWithParent has the kernel kill the child when the process that
// started it dies.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
