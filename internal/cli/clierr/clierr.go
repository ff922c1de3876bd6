// Package clierr maps command errors to process exit codes: a command returns
// clierr.WithCode or clierr.Usagef, and main exits with clierr.Code(err). It
// does no printing and never exits by itself.
package clierr

import (
	"errors"
	"fmt"
)

// Conventional exit codes shared by podkit commands.
const (
	// CodeFailure is the exit code for an error with no more specific code.
	CodeFailure = 1
	// CodeUsage is the exit code for invalid flags or arguments.
	CodeUsage = 2
)

// Error is an error with the exit code podkit should end with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *Error) Unwrap() error { return e.Err }

// WithCode wraps err so that podkit exits with code. A nil err stays nil.
func WithCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Usagef returns a usage error (exit code 2) built from a format string.
// Name the flag and the fix: Usagef("--selector %q: %v", s, err).
func Usagef(format string, args ...any) error {
	return &Error{Code: CodeUsage, Err: fmt.Errorf(format, args...)}
}

// Code returns the exit code for err: 0 for nil, the code of the first
// *Error in its chain, or CodeFailure.
func Code(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeFailure
}
