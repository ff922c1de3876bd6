//go:build !linux

package kueuemanager

import "syscall"

// dieWithParent does nothing where there is no parent-death signal: Stop
// must be called.
func dieWithParent(*syscall.SysProcAttr) {}
