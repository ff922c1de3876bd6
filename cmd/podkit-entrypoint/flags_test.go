package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// The parser accepts what pflag accepted (the flags were pflag's until the binary dropped it).
func TestParseFlagsSyntax(t *testing.T) {
	noEnv := func(string) string { return "" }
	tests := []struct {
		args    []string
		codes   []int
		grace   time.Duration
		restart string
		command []string
	}{
		{[]string{"--", "true"}, nil, 0, "never", []string{"true"}},
		{[]string{"-e", "3", "-e3", "-e=4", "--expect-exit-code", "5,6", "--expect-exit-code=7", "sh"}, []int{3, 3, 4, 5, 6, 7}, 0, "never", []string{"sh"}},
		{[]string{"--grace=5s", "--restart", "always", "sleep", "--grace", "1"}, nil, 5 * time.Second, "always", []string{"sleep", "--grace", "1"}},
		{[]string{"--restart=on-failure", "--", "--not-a-flag"}, nil, 0, "on-failure", []string{"--not-a-flag"}},
		{[]string{"-", "x"}, nil, 0, "never", []string{"-", "x"}},
	}
	for _, tt := range tests {
		f, err := parseFlags(tt.args, noEnv)
		if err != nil {
			t.Errorf("parseFlags(%q): %v", tt.args, err)
			continue
		}
		if !slices.Equal(f.expectCodes, tt.codes) || f.grace != tt.grace || f.restart != tt.restart || !slices.Equal(f.command, tt.command) {
			t.Errorf("parseFlags(%q) = codes %v grace %v restart %q command %q; want %v %v %q %q",
				tt.args, f.expectCodes, f.grace, f.restart, f.command, tt.codes, tt.grace, tt.restart, tt.command)
		}
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"--version"}, {"--help=true"}} {
		f, err := parseFlags(args, noEnv)
		if err != nil || !(f.help || f.version) {
			t.Errorf("parseFlags(%q) = %+v, %v; want help or version", args, f, err)
		}
	}
	for args, want := range map[string]string{
		"--grace":              "flag needs an argument: --grace",
		"--grace x -- true":    `invalid value "x" for --grace`,
		"-x -- true":           `unknown shorthand flag: "x" in -x`,
		"--help=maybe -- true": `invalid value "maybe" for --help`,
		"--nope=1 -- true":     "unknown flag: --nope",
	} {
		_, err := parseFlags(strings.Fields(args), noEnv)
		if _, ok := err.(*usageError); !ok || !strings.Contains(err.Error(), want) {
			t.Errorf("parseFlags(%q) = %v; want a usage error with %q", args, err, want)
		}
	}
}

// A flag on the command line wins over its variable; the variable fills what the line leaves.
func TestParseFlagsEnvironment(t *testing.T) {
	env := map[string]string{"PODKIT_ENTRYPOINT_RESTART": "always", "PODKIT_ENTRYPOINT_GRACE": "2s", "PODKIT_ENTRYPOINT_EXPECT_EXIT_CODE": "1,2"}
	f, err := parseFlags([]string{"--grace", "7s", "--", "true"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if f.restart != "always" || f.grace != 7*time.Second || !slices.Equal(f.expectCodes, []int{1, 2}) {
		t.Errorf("restart %q grace %v codes %v; want always, 7s (the flag), [1 2]", f.restart, f.grace, f.expectCodes)
	}
	if f.name("restart") != "PODKIT_ENTRYPOINT_RESTART (--restart)" || f.name("grace") != "--grace" {
		t.Errorf("names %q %q", f.name("restart"), f.name("grace"))
	}
}

// The help lists every flag once, and each default it shows is the value parsing leaves.
func TestUsageShowsTheDefaultsParsingUses(t *testing.T) {
	var buf bytes.Buffer
	usage(&buf)
	help := buf.String()
	f, err := parseFlags([]string{"--", "true"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`--restart string           restart policy for CMD: never|on-failure|always (default "` + f.restart + `")`,
		`(default "` + f.onChange + `")`, `(default "` + f.logLevel + `")`, `(default "` + f.signalTarget + `")`,
		`(default ` + f.debounce.String() + `)`,
		"  -e, --expect-exit-code ints ", "  -h, --help ", "      --version ",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	for _, d := range flagDefs(&flags{}) {
		if n := strings.Count(help, "--"+d.name+" "); n != 1 {
			t.Errorf("help lists --%s %d times", d.name, n)
		}
	}
	if f.grace != 0 || strings.Contains(help, "--grace duration           time between the stop signal and SIGKILL (0: never escalate, as tini; the kubelet kills after terminationGracePeriodSeconds) (default") {
		t.Errorf("--grace must default to 0 and show no default (got %v)", f.grace)
	}
}
