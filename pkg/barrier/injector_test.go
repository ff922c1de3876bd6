package barrier

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoleEnvName(t *testing.T) {
	tests := []struct {
		role    string
		want    string
		wantErr bool
	}{
		{"worker", "WORKER", false},
		{"ps-0", "PS_0", false},
		{"my.role-name", "MY_ROLE_NAME", false},
		{"Head", "HEAD", false},
		{"1st", "1ST", false},
		{"a_b", "A_B", false},
		{"", "", true},
		{"a b", "", true},
		{"a$b", "", true},
		{"a'b", "", true},
		{"rôle", "", true},
	}
	for _, tt := range tests {
		got, err := RoleEnvName(tt.role)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("RoleEnvName(%q) = %q, %v; want %q, error %v", tt.role, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestInjectorExportsExpectedVariablesInDashAndBash(t *testing.T) {
	roles := []RolePeers{
		{Name: "ps-server", IPs: []string{"10.0.0.1"}},
		{Name: "worker.v2", IPs: []string{"10.0.1.1", "10.0.1.2", "fd00::3"}},
		{Name: "Head", IPs: []string{"10.0.2.1"}},
		{Name: "3d", IPs: nil},
	}
	tests := []struct {
		name string
		opts InjectorOptions
		env  []string
		want map[string]string
	}{
		{
			name: "peers, counts and own task",
			opts: InjectorOptions{TaskRoleName: "worker.v2", TaskIndex: 2},
			env:  []string{"FB_WORKER_V2_PORT=2222", "FB_PS_SERVER_PORT=80"},
			want: map[string]string{
				"FB_PS_SERVER_IPS": "10.0.0.1", "FB_PS_SERVER_ADDRESSES": "10.0.0.1:80", "FB_PS_SERVER_COUNT": "1",
				"FB_WORKER_V2_IPS": "10.0.1.1,10.0.1.2,fd00::3", "FB_WORKER_V2_COUNT": "3",
				"FB_WORKER_V2_ADDRESSES": "10.0.1.1:2222,10.0.1.2:2222,fd00::3:2222",
				"FB_HEAD_IPS":            "10.0.2.1", "FB_HEAD_ADDRESSES": "10.0.2.1:", "FB_HEAD_COUNT": "1",
				"FB_3D_IPS": "", "FB_3D_ADDRESSES": "", "FB_3D_COUNT": "0",
				"FB_ROLE": "worker.v2", "FB_INDEX": "2",
			},
		},
		{
			name: "torch variables with an explicit master role",
			opts: InjectorOptions{TaskRoleName: "worker.v2", TaskIndex: 1, Torch: true, TorchMasterRole: "Head", TorchMasterPort: 1234,
				Hostfile: true, HostfilePath: "/work dir/it's/hostfile"},
			want: map[string]string{
				"FB_PS_SERVER_IPS": "10.0.0.1", "FB_PS_SERVER_ADDRESSES": "10.0.0.1:", "FB_PS_SERVER_COUNT": "1",
				"FB_WORKER_V2_IPS": "10.0.1.1,10.0.1.2,fd00::3", "FB_WORKER_V2_COUNT": "3",
				"FB_WORKER_V2_ADDRESSES": "10.0.1.1:,10.0.1.2:,fd00::3:",
				"FB_HEAD_IPS":            "10.0.2.1", "FB_HEAD_ADDRESSES": "10.0.2.1:", "FB_HEAD_COUNT": "1",
				"FB_3D_IPS": "", "FB_3D_ADDRESSES": "", "FB_3D_COUNT": "0",
				"FB_ROLE": "worker.v2", "FB_INDEX": "1",
				// RANK order: Head(1), ps-server(1), worker.v2(3), 3d(0).
				"MASTER_ADDR": "10.0.2.1", "MASTER_PORT": "1234", "WORLD_SIZE": "5", "RANK": "3",
				"FB_HOSTFILE": "/work dir/it's/hostfile",
			},
		},
		{
			name: "torch defaults: first role is master, port 29500, no own task means no RANK",
			opts: InjectorOptions{Torch: true},
			want: map[string]string{
				"FB_PS_SERVER_IPS": "10.0.0.1", "FB_PS_SERVER_ADDRESSES": "10.0.0.1:", "FB_PS_SERVER_COUNT": "1",
				"FB_WORKER_V2_IPS": "10.0.1.1,10.0.1.2,fd00::3", "FB_WORKER_V2_COUNT": "3",
				"FB_WORKER_V2_ADDRESSES": "10.0.1.1:,10.0.1.2:,fd00::3:",
				"FB_HEAD_IPS":            "10.0.2.1", "FB_HEAD_ADDRESSES": "10.0.2.1:", "FB_HEAD_COUNT": "1",
				"FB_3D_IPS": "", "FB_3D_ADDRESSES": "", "FB_3D_COUNT": "0",
				"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "5",
			},
		},
	}
	for _, tt := range tests {
		script, err := RenderInjector(roles, tt.opts)
		if err != nil {
			t.Fatalf("%s: RenderInjector: %v", tt.name, err)
		}
		for _, sh := range shells {
			t.Run(tt.name+"/"+sh, func(t *testing.T) {
				path := requireShell(t, sh)
				syntaxCheck(t, path, string(script))
				got := sourceScript(t, path, string(script), tt.env, isInjected)
				if d := cmp.Diff(tt.want, got); d != "" {
					t.Errorf("variables after sourcing (-want +got):\n%s\nscript:\n%s", d, script)
				}
			})
		}
	}
}

func TestRenderInjectorRejectsUnsafeInput(t *testing.T) {
	tests := []struct {
		name  string
		roles []RolePeers
		opts  InjectorOptions
		want  string
	}{
		{"collision after mapping", []RolePeers{{Name: "a-b"}, {Name: "a.b"}}, InjectorOptions{}, `"a-b" and "a.b" both map to FB_A_B_*`},
		{"collision by case", []RolePeers{{Name: "head"}, {Name: "HEAD"}}, InjectorOptions{}, "both map to FB_HEAD_*"},
		{"role with a quote", []RolePeers{{Name: "x';rm -rf /;'"}}, InjectorOptions{}, "cannot be part of a shell variable name"},
		{"ip that is a command", []RolePeers{{Name: "w", IPs: []string{"$(touch /tmp/pwned)"}}}, InjectorOptions{}, "not an IP address"},
		{"own role unknown", []RolePeers{{Name: "w", IPs: []string{"1.2.3.4"}}}, InjectorOptions{TaskRoleName: "x"}, `own task role "x"`},
		{"own index out of range", []RolePeers{{Name: "w", IPs: []string{"1.2.3.4"}}}, InjectorOptions{TaskRoleName: "w", TaskIndex: 1}, "out of range"},
		{"torch master unknown", []RolePeers{{Name: "w", IPs: []string{"1.2.3.4"}}}, InjectorOptions{Torch: true, TorchMasterRole: "m"}, `torch master role "m"`},
		{"torch master without tasks", []RolePeers{{Name: "w"}}, InjectorOptions{Torch: true}, "has no tasks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RenderInjector(tt.roles, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("RenderInjector error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRenderHostfileListsTasksInRankOrder(t *testing.T) {
	roles := []RolePeers{{Name: "worker", IPs: []string{"10.0.0.2", "10.0.0.3"}}, {Name: "launcher", IPs: []string{"10.0.0.1"}}}
	got, err := RenderHostfile(roles, InjectorOptions{Torch: true, TorchMasterRole: "launcher", HostfileSlots: 4})
	if err != nil {
		t.Fatal(err)
	}
	want := "10.0.0.1 slots=4\n10.0.0.2 slots=4\n10.0.0.3 slots=4\n"
	if string(got) != want {
		t.Errorf("hostfile = %q, want %q", got, want)
	}
	got, err = RenderHostfile(roles, InjectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "10.0.0.2 slots=1\n10.0.0.3 slots=1\n10.0.0.1 slots=1\n"; string(got) != want {
		t.Errorf("hostfile without torch = %q, want %q", got, want)
	}
}

func TestInjectorAndHostfileRefuseWhatNoPodIPCanBe(t *testing.T) {
	for _, ip := range []string{
		"::0%00\x0000",            // the zone with a NUL that CI's fuzz run found
		"fe80::1%a\nevil slots=9", // a zone with a newline adds a hostfile line
		"fe80::1%eth0",            // any zone at all
		"FD00::1",                 // IPv6 not in canonical (lower-case) form
		"fd00:0:0:0:0:0:0:1",      // IPv6 not compressed
		"010.0.0.1",               // IPv4 with a leading zero
		"10.0.0.1 ",               // trailing space
		"",                        // empty
	} {
		roles := []RolePeers{{Name: "w", IPs: []string{"10.0.0.9", ip}}}
		opts := InjectorOptions{TaskRoleName: "w", Hostfile: true, HostfilePath: "/x/hostfile"}
		_, err := RenderInjector(roles, opts)
		if err == nil || !strings.Contains(err.Error(), "task w-1") {
			t.Errorf("RenderInjector with pod IP %q: error %v, want one naming task w-1", ip, err)
		}
		if _, err := RenderHostfile(roles, opts); err == nil {
			t.Errorf("RenderHostfile accepted pod IP %q", ip)
		}
	}
	for _, ip := range []string{"10.0.0.1", "fd00::1", "::ffff:1.2.3.4", "2001:db8::"} {
		if err := ValidatePodIP(ip); err != nil {
			t.Errorf("ValidatePodIP(%q) = %v, want nil", ip, err)
		}
	}
}
