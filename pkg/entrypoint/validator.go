package entrypoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Validator checks a staged configuration before it goes live. stagedPath is the staged file
// (single-file format) or directory (tar and dir formats), located beside the live one.
type Validator interface {
	Validate(ctx context.Context, stagedPath string) error
}

// ValidatorFunc adapts a function to Validator.
type ValidatorFunc func(ctx context.Context, stagedPath string) error

// Validate calls f.
func (f ValidatorFunc) Validate(ctx context.Context, stagedPath string) error {
	return f(ctx, stagedPath)
}

var _ Validator = ValidatorFunc(nil)

// EnvStagedConfig is set, for a CommandValidator, to the staged configuration's path.
const EnvStagedConfig = "PODKIT_STAGED_CONFIG"

// StagedPlaceholder in a CommandValidator's arguments is replaced by the staged path.
const StagedPlaceholder = "{staged}"

// CommandValidator runs argv (e.g. nginx -t -c {staged}/nginx.conf) and accepts the configuration
// when it exits 0. Every "{staged}" in the arguments is replaced by the staged path, which is also
// in $PODKIT_STAGED_CONFIG. The runner must be the Supervisor's Reaper under a PID-1 Supervisor;
// nil means ExecRunner.
func CommandValidator(argv []string, runner CommandRunner) (Validator, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("CommandValidator: argv is empty; pass the program and its arguments")
	}
	if runner == nil {
		runner = ExecRunner{}
	}
	return ValidatorFunc(func(ctx context.Context, staged string) error {
		args := make([]string, len(argv))
		for i, a := range argv {
			args[i] = strings.ReplaceAll(a, StagedPlaceholder, staged)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), EnvStagedConfig+"="+staged)
		out, err := runner.Output(ctx, cmd)
		if err != nil {
			msg := strings.TrimSpace(string(bytes.ToValidUTF8(out, nil)))
			if len(msg) > 2048 {
				msg = msg[len(msg)-2048:]
			}
			return fmt.Errorf("run %s: %w: %s", argv[0], err, msg)
		}
		return nil
	}), nil
}
