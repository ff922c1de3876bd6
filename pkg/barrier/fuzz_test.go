package barrier

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzShell is the shell the fuzz targets source scripts with: /bin/sh is
// dash on Debian, the strictest common POSIX shell.
const fuzzShell = "dash"

// sourceInEmptyDir checks the script with sh -n, sources it in an empty
// directory (failing if that creates files) and returns the variables kept.
func sourceInEmptyDir(t *testing.T, script string, keep func(string) bool) map[string]string {
	t.Helper()
	sh := requireShell(t, fuzzShell)
	syntaxCheck(t, sh, script)
	return sourceScript(t, sh, script, nil, keep)
}

func FuzzShellQuote(f *testing.F) {
	for _, s := range []string{"", "plain", "it's", "'", "''", `\'`, "$(touch pwned)", "`id`", "a\nb", "${HOME}", "\"", "\xff\xfe", "!x", "-n", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ShellQuote(s)
		if strings.IndexByte(s, 0) >= 0 {
			if err == nil {
				t.Fatalf("ShellQuote(%q) accepted a NUL byte", s)
			}
			return
		}
		if err != nil {
			t.Fatalf("ShellQuote(%q): %v", s, err)
		}
		got := sourceInEmptyDir(t, "FB_VALUE="+q+"\nexport FB_VALUE\n", func(k string) bool { return k == "FB_VALUE" })
		if got["FB_VALUE"] != s {
			t.Fatalf("value after sourcing = %q, want %q", got["FB_VALUE"], s)
		}
	})
}

func FuzzInjectorRoleNames(f *testing.F) {
	for _, s := range [][2]string{{"worker", "ps"}, {"a-b", "a.b"}, {"Head", "head"}, {"1st", "2nd"}, {"x;touch pwned", "y"}, {"$(id)", "`id`"}, {"", "w"}, {"a_b", "A-B"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		roles := []RolePeers{{Name: a, IPs: []string{"10.0.0.1"}}, {Name: b, IPs: []string{"10.0.0.2", "10.0.0.3"}}}
		script, err := RenderInjector(roles, InjectorOptions{TaskRoleName: b, TaskIndex: 1, Torch: true})
		ea, errA := RoleEnvName(a)
		eb, errB := RoleEnvName(b)
		if errA != nil || errB != nil || ea == eb {
			if err == nil {
				t.Fatalf("RenderInjector accepted roles %q and %q", a, b)
			}
			return
		}
		if err != nil {
			t.Fatalf("RenderInjector(%q, %q): %v", a, b, err)
		}
		got := sourceInEmptyDir(t, string(script), isInjected)
		want := map[string]string{
			"FB_" + ea + "_IPS": "10.0.0.1", "FB_" + ea + "_ADDRESSES": "10.0.0.1:", "FB_" + ea + "_COUNT": "1",
			"FB_" + eb + "_IPS": "10.0.0.2,10.0.0.3", "FB_" + eb + "_ADDRESSES": "10.0.0.2:,10.0.0.3:", "FB_" + eb + "_COUNT": "2",
			"FB_ROLE": b, "FB_INDEX": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "3", "RANK": "2",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q\nscript:\n%s", k, got[k], v, script)
			}
		}
		if len(got) != len(want) {
			t.Errorf("sourcing set %d variables, want %d: %v", len(got), len(want), got)
		}
	})
}

func FuzzInjectorIPs(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "fd00::1", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4;touch pwned", "$(touch pwned)", "' ; touch pwned ; '", "1.2.3.4\n touch pwned", "", "::0%00\x0000", "fe80::1%a\nevil slots=9", "010.0.0.1", "FD00::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ip string) {
		dir := t.TempDir()
		roles := []RolePeers{{Name: "w", IPs: []string{"10.0.0.9", ip}}}
		script, err := RenderInjector(roles, InjectorOptions{TaskRoleName: "w", TaskIndex: 1, Torch: true, Hostfile: true, HostfilePath: filepath.Join(dir, "hostfile")})
		if a, perr := netip.ParseAddr(ip); perr != nil || a.Zone() != "" || a.String() != ip {
			if err == nil {
				t.Fatalf("RenderInjector accepted pod IP %q", ip)
			}
			return
		}
		if err != nil {
			t.Fatalf("RenderInjector with pod IP %q: %v", ip, err)
		}
		got := sourceInEmptyDir(t, string(script), isInjected)
		if want := "10.0.0.9," + ip; got["FB_W_IPS"] != want {
			t.Errorf("FB_W_IPS = %q, want %q", got["FB_W_IPS"], want)
		}
		if want := "10.0.0.9:," + ip + ":"; got["FB_W_ADDRESSES"] != want {
			t.Errorf("FB_W_ADDRESSES = %q, want %q", got["FB_W_ADDRESSES"], want)
		}
		if got["RANK"] != "1" || got["WORLD_SIZE"] != "2" {
			t.Errorf("RANK, WORLD_SIZE = %q, %q; want 1, 2", got["RANK"], got["WORLD_SIZE"])
		}
	})
}
