package barrier

import (
	"errors"
	"strings"
)

// Sentinel errors returned (wrapped) by Wait and FrameworkBarrier.Run. Match
// them with errors.Is. Other errors (an unusable kubeconfig, a failed write)
// are unknown failures.
var (
	// ErrInvalidConfig: the Config is invalid. Permanent: fix the config.
	ErrInvalidConfig = errors.New("invalid barrier config")
	// ErrFrameworkNotFound: the Framework does not exist, or was deleted while
	// waiting. Permanent.
	ErrFrameworkNotFound = errors.New("framework not found")
	// ErrFrameworkCompleted: the Framework's attempt completed before every task
	// got a pod IP, so the barrier can never release. Permanent.
	ErrFrameworkCompleted = errors.New("framework completed before the barrier released")
	// ErrTimeout: not every task had a pod IP before the timeout (or the
	// context's deadline). Transient: back off and retry.
	ErrTimeout = errors.New("barrier timed out")
)

// ConfigError lists every problem found in a Config. It matches
// ErrInvalidConfig and prints as one line.
type ConfigError struct {
	// Problems name the setting (its environment variable) and the fix.
	Problems []string
}

func (e *ConfigError) Error() string {
	return ErrInvalidConfig.Error() + ": " + strings.Join(e.Problems, "; ")
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
