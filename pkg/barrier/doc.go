// Package barrier is podkit's gang barrier for Framework tasks (seed 004, after
// FrameworkController's FrameworkBarrier). Wait watches one Framework until every
// task counted by the spec has a pod IP; FrameworkBarrier then writes framework.json
// and a POSIX sh injector. It never exits the process: errors are typed
// (ErrInvalidConfig, ErrFrameworkNotFound, ErrTimeout) and the CLI maps them to codes.
package barrier
