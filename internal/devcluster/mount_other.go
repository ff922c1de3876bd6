//go:build !linux

package devcluster

// mntDetach has no meaning off Linux, where a real node never runs: it
// lets podkit, whose other commands work anywhere, build for darwin.
const mntDetach = 0
