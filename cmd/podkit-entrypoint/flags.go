package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/podkit-dev/podkit/pkg/entrypoint"
)

// envPrefix names the environment variables that give flag defaults: --config-format is read
// from PODKIT_ENTRYPOINT_CONFIG_FORMAT. A flag on the command line wins over the environment.
const envPrefix = "PODKIT_ENTRYPOINT_"

const usageHeader = `podkit-entrypoint runs CMD as a container's PID 1: it reaps zombies, forwards signals, restarts
CMD per policy, and applies configuration changes atomically (stage, validate, swap, notify).

Usage:
  podkit-entrypoint [flags] -- CMD [ARGS...]

Every flag can also be set through PODKIT_ENTRYPOINT_<FLAG> (e.g. PODKIT_ENTRYPOINT_RESTART=always).

Flags:
`

// flags holds the raw and parsed settings.
type flags struct {
	config        string
	configFormat  string
	configDest    string
	validate      string
	onChange      string
	activation    string
	restart       string
	grace         time.Duration
	signalRewrite string
	healthAddr    string
	debounce      time.Duration
	logLevel      string
	help          bool
	version       bool
	expectCodes   []int
	signalTarget  string

	command []string
	format  entrypoint.ConfigFormat
	policy  entrypoint.RestartPolicy
	rewrite map[syscall.Signal]syscall.Signal
	action  entrypoint.ChangeAction
	level   slog.Level
	fromEnv map[string]string // flag name → environment variable it was read from
}

// name is how errors refer to a setting: the flag, plus the variable when it came from there.
func (f *flags) name(flag string) string {
	if env, ok := f.fromEnv[flag]; ok {
		return env + " (--" + flag + ")"
	}
	return "--" + flag
}

// usageError is a command-line mistake: one line on stderr and exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

func newFlagSet(f *flags) *pflag.FlagSet {
	fs := pflag.NewFlagSet("podkit-entrypoint", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false) // the first non-flag argument starts CMD, even without "--"
	fs.StringVar(&f.config, "config", "", "configuration source to watch: a file, a tar archive or a directory (ConfigMap volume)")
	fs.StringVar(&f.configFormat, "config-format", "", "file|tar|dir (default: dir for a directory, tar for *.tar, file otherwise)")
	fs.StringVar(&f.configDest, "config-dest", "", "live configuration path CMD reads, replaced atomically (default: in a new private directory under $TMPDIR; CMD gets the path as $PODKIT_CONFIG_DEST; required for tar)")
	fs.StringVar(&f.validate, "validate", "", "command that must succeed on the staged configuration; {staged} is replaced by its path (e.g. 'nginx -t -c {staged}/nginx.conf')")
	fs.StringVar(&f.onChange, "on-change", "signal:SIGHUP", "after a change went live: signal:SIG|restart|exec:CMD|http:URL (an IP address or a name from /etc/hosts)|none")
	fs.StringVar(&f.activation, "activation-file", "", "file whose presence means active; /readyz fails while it is absent")
	fs.StringVar(&f.restart, "restart", "never", "restart policy for CMD: never|on-failure|always")
	fs.DurationVar(&f.grace, "grace", 0, "time between the stop signal and SIGKILL (0: never escalate, as tini; the kubelet kills after terminationGracePeriodSeconds)")
	fs.IntSliceVarP(&f.expectCodes, "expect-exit-code", "e", nil, "exit with 0 when CMD exits with this code, 0-255 (repeatable; tini -e)")
	fs.StringVar(&f.signalTarget, "signal-target", "group", "where forwarded signals go: group (CMD's process group, as dumb-init and tini -g) or child (CMD alone, as tini)")
	fs.StringVar(&f.signalRewrite, "signal-rewrite", "", "rewrite received signals before forwarding, e.g. TERM:QUIT,INT:QUIT")
	fs.StringVar(&f.healthAddr, "health-addr", "", "serve /healthz, /readyz and /metrics on this address: :PORT for all, or IP:PORT, [IPv6]:PORT, localhost:PORT (names are not resolved); off when empty")
	fs.DurationVar(&f.debounce, "debounce", 100*time.Millisecond, "quiet period after a plain file change (..data swaps are applied at once)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug|info|warn|error")
	fs.BoolVarP(&f.help, "help", "h", false, "show this help")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	return fs
}

func usage(w io.Writer) {
	var f flags
	fs := newFlagSet(&f)
	fmt.Fprint(w, usageHeader)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// parseFlags reads args and the environment into flags; errors are *usageError.
func parseFlags(args []string, getenv func(string) string) (*flags, error) {
	f := &flags{}
	fs := newFlagSet(f)
	if err := fs.Parse(args); err != nil {
		return nil, usagef("%v", err)
	}
	if f.help || f.version {
		return f, nil
	}
	var envErr error
	f.fromEnv = map[string]string{}
	fs.VisitAll(func(fl *pflag.Flag) {
		env := envPrefix + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v := getenv(env); v != "" && !fl.Changed && envErr == nil {
			f.fromEnv[fl.Name] = env
			if err := fs.Set(fl.Name, v); err != nil {
				envErr = usagef("invalid value %q for %s (--%s): %v", v, env, fl.Name, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	f.command = fs.Args()
	if len(f.command) == 0 {
		return nil, usagef("no command given; usage: podkit-entrypoint [flags] -- CMD [ARGS...]")
	}
	return f, f.complete()
}

func (f *flags) complete() error {
	var err error
	if f.policy, err = entrypoint.ParseRestartPolicy(f.restart); err != nil {
		return usagef("invalid value %q for %s: want never, on-failure or always", f.restart, f.name("restart"))
	}
	if f.grace < 0 {
		return usagef("invalid value %v for %s: must not be negative", f.grace, f.name("grace"))
	}
	for _, c := range f.expectCodes {
		if c < 0 || c > 255 {
			return usagef("invalid value %d for %s: an exit code is 0-255", c, f.name("expect-exit-code"))
		}
	}
	if f.signalTarget != "group" && f.signalTarget != "child" {
		return usagef("invalid value %q for %s: want group or child", f.signalTarget, f.name("signal-target"))
	}
	if f.debounce < 0 {
		return usagef("invalid value %v for %s: must not be negative", f.debounce, f.name("debounce"))
	}
	if f.rewrite, err = entrypoint.ParseSignalRewrite(f.signalRewrite); err != nil {
		return usagef("invalid value %q for %s: %v", f.signalRewrite, f.name("signal-rewrite"), err)
	}
	if err := f.level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usagef("invalid value %q for %s: want debug, info, warn or error", f.logLevel, f.name("log-level"))
	}
	if f.action, err = entrypoint.ParseChangeAction(f.onChange); err != nil {
		return usagef("invalid value %q for %s: %v", f.onChange, f.name("on-change"), err)
	}
	if f.config == "" {
		for name, v := range map[string]string{"--config-format": f.configFormat, "--config-dest": f.configDest, "--validate": f.validate} {
			if v != "" {
				return usagef("%s needs --config", name)
			}
		}
		return nil
	}
	switch f.configFormat {
	case "":
		info, statErr := os.Stat(f.config)
		switch {
		case statErr == nil && info.IsDir():
			f.format = entrypoint.FormatDir
		case strings.HasSuffix(f.config, ".tar"):
			f.format = entrypoint.FormatTar
		default:
			f.format = entrypoint.FormatFile
		}
	case "file", "tar", "dir":
		f.format = entrypoint.ConfigFormat(f.configFormat)
	default:
		return usagef("invalid value %q for %s: want file, tar or dir", f.configFormat, f.name("config-format"))
	}
	if f.configDest == "" {
		if f.format == entrypoint.FormatTar {
			return usagef("--config-dest is required with --config-format tar: where the archive is extracted")
		}
		// Left empty: run creates a private directory with an unpredictable name (a fixed path
		// under a shared /tmp could be prepared by someone else) and tells CMD through
		// PODKIT_CONFIG_DEST.
	}
	if f.validate != "" && len(strings.Fields(f.validate)) == 0 {
		return usagef("invalid value for %s: empty command", f.name("validate"))
	}
	return nil
}

// fieldsOf splits a command line on white space (no shell quoting; wrap in sh -c for that).
func fieldsOf(s string) []string { return strings.Fields(s) }
