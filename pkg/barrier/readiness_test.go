package barrier

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// testFramework returns a Framework whose roles have the given task numbers
// and whose status has the given pod IPs ("" for none) by role.
func testFramework(numbers map[string]int32, order []string, ips map[string][]string) *v1alpha1.Framework {
	f := &v1alpha1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fw"}}
	st := &v1alpha1.FrameworkStatus{State: v1alpha1.FrameworkAttemptPreparing}
	for _, name := range order {
		f.Spec.TaskRoles = append(f.Spec.TaskRoles, v1alpha1.TaskRoleSpec{Name: name, TaskNumber: numbers[name]})
		rs := v1alpha1.TaskRoleStatus{Name: name}
		for i, ip := range ips[name] {
			ts := v1alpha1.TaskStatus{Index: int32(i)}
			if ip != "" {
				ts.AttemptStatus.PodIP = ptr.To(ip)
			}
			rs.TaskStatuses = append(rs.TaskStatuses, ts)
		}
		st.AttemptStatus.TaskRoleStatuses = append(st.AttemptStatus.TaskRoleStatuses, rs)
	}
	f.Status = st
	return f
}

func TestProgressOfCountsTasksAgainstTaskNumber(t *testing.T) {
	tests := []struct {
		name string
		f    *v1alpha1.Framework
		want Progress
	}{
		{
			name: "no status yet",
			f:    &v1alpha1.Framework{Spec: v1alpha1.FrameworkSpec{TaskRoles: []v1alpha1.TaskRoleSpec{{Name: "w", TaskNumber: 2}}}},
			want: Progress{Ready: 0, Total: 2, Waiting: []string{"w-0", "w-1"}},
		},
		{
			name: "missing and empty IPs wait",
			f: testFramework(map[string]int32{"ps": 1, "worker": 8}, []string{"ps", "worker"},
				map[string][]string{"ps": {"10.0.0.1"}, "worker": {"10.0.1.0", "10.0.1.1", "", "", "10.0.1.4", "", "10.0.1.6"}}),
			want: Progress{Ready: 5, Total: 9, Waiting: []string{"worker-2", "worker-3", "worker-5", "worker-7"}},
		},
		{
			name: "status entries beyond taskNumber do not count",
			f:    testFramework(map[string]int32{"w": 1}, []string{"w"}, map[string][]string{"w": {"10.0.0.1", "10.0.0.2"}}),
			want: Progress{Ready: 1, Total: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, ProgressOf(tt.f)); d != "" {
				t.Errorf("progress (-want +got):\n%s", d)
			}
		})
	}
}

func TestProgressStringListsWaitingTasks(t *testing.T) {
	p := Progress{Ready: 3, Total: 8, Waiting: []string{"worker-5", "worker-7"}}
	if got, want := p.String(), "3/8 tasks ready; waiting for worker-5, worker-7"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	p = Progress{Ready: 0, Total: 10, Waiting: []string{"w-0", "w-1", "w-2", "w-3", "w-4", "w-5", "w-6", "w-7", "w-8", "w-9"}}
	if got := p.String(); !strings.HasSuffix(got, "w-7 and 2 more") {
		t.Errorf("String() = %q, want the list cut after 8 names", got)
	}
}

func TestWriteOutputsWritesFilesWithModes(t *testing.T) {
	dir := t.TempDir()
	f := testFramework(map[string]int32{"a-b": 2, "c": 1}, []string{"a-b", "c"},
		map[string][]string{"a-b": {"10.0.0.1", "10.0.0.2"}, "c": {"10.0.0.3"}})
	err := WriteOutputs(dir, f, InjectorOptions{TaskRoleName: "c", Torch: true, Hostfile: true})
	if err != nil {
		t.Fatalf("WriteOutputs: %v", err)
	}
	for name, mode := range map[string]os.FileMode{"framework.json": 0o644, "injector.sh": 0o755, "hostfile": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("stat %s: %v", name, err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode = %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("dir has %d entries, want 3 (no temporary files left): %v", len(entries), entries)
	}
	var got v1alpha1.Framework
	data, _ := os.ReadFile(filepath.Join(dir, "framework.json"))
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("decode framework.json: %v", err)
	}
	if got.Kind != "Framework" || got.APIVersion != "podkit.dev/v1alpha1" || got.Name != "fw" {
		t.Errorf("framework.json has kind %q apiVersion %q name %q", got.Kind, got.APIVersion, got.Name)
	}
	hf, _ := os.ReadFile(filepath.Join(dir, "hostfile"))
	if want := "10.0.0.1 slots=1\n10.0.0.2 slots=1\n10.0.0.3 slots=1\n"; string(hf) != want {
		t.Errorf("hostfile = %q, want %q", hf, want)
	}
	vars := sourceScript(t, requireShell(t, "dash"), mustRead(t, filepath.Join(dir, "injector.sh")), nil, isInjected)
	if vars["FB_A_B_IPS"] != "10.0.0.1,10.0.0.2" || vars["RANK"] != "2" || vars["FB_HOSTFILE"] != filepath.Join(dir, "hostfile") {
		t.Errorf("injector variables = %v", vars)
	}
}

func TestWriteOutputsRefusesFrameworkWithoutAllIPs(t *testing.T) {
	dir := t.TempDir()
	f := testFramework(map[string]int32{"w": 2}, []string{"w"}, map[string][]string{"w": {"10.0.0.1"}})
	if err := WriteOutputs(dir, f, InjectorOptions{}); err == nil || !strings.Contains(err.Error(), "w-1") {
		t.Fatalf("WriteOutputs error = %v, want one naming task w-1", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written despite the error: %v", entries)
	}
}

func TestWriteFileAtomicReplacesExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "injector.sh")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, []byte("new"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); got != "new" {
		t.Errorf("content = %q, want new", got)
	}
	if err := writeFileAtomic(filepath.Join(t.TempDir(), "missing", "x"), nil, 0o644); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
