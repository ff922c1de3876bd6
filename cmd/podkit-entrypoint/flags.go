package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

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

// flagDef is one command-line flag. The parser below is ours rather than pflag's: it accepts
// the same syntax (--name value, --name=value, -e 3, -e3, -e=3, a first non-flag argument that
// starts CMD, "--") and prints the same help, and the binary is smaller by the libraries pflag
// brings (flag, encoding/csv, their reflection), which PID 1 would otherwise keep resident.
type flagDef struct {
	name, short string
	kind        string // string, duration, ints or bool: the help shows it
	def         string // default as shown in the help; empty for none
	usage       string
	set         func(string) error
}

func flagDefs(f *flags) []flagDef {
	str := func(dst *string) func(string) error { return func(v string) error { *dst = v; return nil } }
	dur := func(dst *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("want a duration such as 30s or 1m30s")
			}
			*dst = d
			return nil
		}
	}
	boolean := func(dst *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false")
			}
			*dst = b
			return nil
		}
	}
	ints := func(dst *[]int) func(string) error {
		return func(v string) error {
			for _, p := range strings.Split(v, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil {
					return fmt.Errorf("want integers, e.g. 3 or 3,143")
				}
				*dst = append(*dst, n)
			}
			return nil
		}
	}
	f.onChange, f.restart, f.signalTarget, f.debounce, f.logLevel = "signal:SIGHUP", "never", "group", 100*time.Millisecond, "info"
	return []flagDef{
		{name: "activation-file", kind: "string", set: str(&f.activation), usage: "file whose presence means active; /readyz fails while it is absent"},
		{name: "config", kind: "string", set: str(&f.config), usage: "configuration source to watch: a file, a tar archive or a directory (ConfigMap volume)"},
		{name: "config-dest", kind: "string", set: str(&f.configDest), usage: "live configuration path CMD reads, replaced atomically (default: in a new private directory under $TMPDIR; CMD gets the path as $PODKIT_CONFIG_DEST; required for tar)"},
		{name: "config-format", kind: "string", set: str(&f.configFormat), usage: "file|tar|dir (default: dir for a directory, tar for *.tar, file otherwise)"},
		{name: "debounce", kind: "duration", def: "100ms", set: dur(&f.debounce), usage: "quiet period after a plain file change (..data swaps are applied at once)"},
		{name: "expect-exit-code", short: "e", kind: "ints", set: ints(&f.expectCodes), usage: "exit with 0 when CMD exits with this code, 0-255 (repeatable; tini -e)"},
		{name: "grace", kind: "duration", set: dur(&f.grace), usage: "time between the stop signal and SIGKILL (0: never escalate, as tini; the kubelet kills after terminationGracePeriodSeconds)"},
		{name: "health-addr", kind: "string", set: str(&f.healthAddr), usage: "serve /healthz, /readyz and /metrics on this address: :PORT for all, or IP:PORT, [IPv6]:PORT, localhost:PORT (names are not resolved); off when empty"},
		{name: "help", short: "h", kind: "bool", set: boolean(&f.help), usage: "show this help"},
		{name: "log-level", kind: "string", def: `"info"`, set: str(&f.logLevel), usage: "debug|info|warn|error"},
		{name: "on-change", kind: "string", def: `"signal:SIGHUP"`, set: str(&f.onChange), usage: "after a change went live: signal:SIG|restart|exec:CMD|http:URL (an IP address or a name from /etc/hosts)|none"},
		{name: "restart", kind: "string", def: `"never"`, set: str(&f.restart), usage: "restart policy for CMD: never|on-failure|always"},
		{name: "signal-rewrite", kind: "string", set: str(&f.signalRewrite), usage: "rewrite received signals before forwarding, e.g. TERM:QUIT,INT:QUIT"},
		{name: "signal-target", kind: "string", def: `"group"`, set: str(&f.signalTarget), usage: "where forwarded signals go: group (CMD's process group, as dumb-init and tini -g) or child (CMD alone, as tini)"},
		{name: "validate", kind: "string", set: str(&f.validate), usage: "command that must succeed on the staged configuration; {staged} is replaced by its path (e.g. 'nginx -t -c {staged}/nginx.conf')"},
		{name: "version", kind: "bool", set: boolean(&f.version), usage: "print the version and exit"},
	}
}

func usage(w io.Writer) {
	var f flags
	defs := flagDefs(&f)
	left := make([]string, len(defs))
	width := 0
	for i, d := range defs {
		l := "      --" + d.name
		if d.short != "" {
			l = "  -" + d.short + ", --" + d.name
		}
		if d.kind != "bool" {
			l += " " + d.kind
		}
		left[i] = l
		width = max(width, len(l))
	}
	var b strings.Builder
	b.WriteString(usageHeader)
	for i, d := range defs {
		b.WriteString(left[i] + strings.Repeat(" ", width-len(left[i])+3) + d.usage)
		if d.def != "" {
			b.WriteString(" (default " + d.def + ")")
		}
		b.WriteString("\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// parseFlags reads args and the environment into flags; errors are *usageError.
func parseFlags(args []string, getenv func(string) string) (*flags, error) {
	f := &flags{}
	defs := flagDefs(f)
	find := func(name string, short bool) *flagDef {
		for i := range defs {
			if (!short && defs[i].name == name) || (short && defs[i].short == name) {
				return &defs[i]
			}
		}
		return nil
	}
	changed := map[string]bool{}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break // the first non-flag argument starts CMD
		}
		var d *flagDef
		var val string
		var hasVal bool
		if strings.HasPrefix(a, "--") {
			var name string
			name, val, hasVal = strings.Cut(a[2:], "=")
			if d = find(name, false); d == nil {
				return nil, usagef("unknown flag: --%s", name)
			}
		} else {
			if d = find(a[1:2], true); d == nil {
				return nil, usagef("unknown shorthand flag: %q in %s", a[1:2], a)
			}
			val, hasVal = strings.TrimPrefix(a[2:], "="), len(a) > 2
		}
		switch {
		case d.kind == "bool" && !hasVal:
			val = "true"
		case !hasVal && i+1 < len(args):
			i++
			val = args[i]
		case !hasVal:
			return nil, usagef("flag needs an argument: --%s", d.name)
		}
		if err := d.set(val); err != nil {
			return nil, usagef("invalid value %q for --%s: %v", val, d.name, err)
		}
		changed[d.name] = true
	}
	if f.help || f.version {
		return f, nil
	}
	f.fromEnv = map[string]string{}
	for _, d := range defs {
		env := envPrefix + strings.ToUpper(strings.ReplaceAll(d.name, "-", "_"))
		if v := getenv(env); v != "" && !changed[d.name] {
			f.fromEnv[d.name] = env
			if err := d.set(v); err != nil {
				return nil, usagef("invalid value %q for %s (--%s): %v", v, env, d.name, err)
			}
		}
	}
	f.command = args[i:]
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
