package barrier

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// TestDecodeViewReadsWhatTheTypedFrameworkSays checks the barrier's direct
// reading of the apiserver's JSON against viewOf on the typed decoding, for
// statuses plain and compressed and the cases TaskPodIP treats specially.
func TestDecodeViewReadsWhatTheTypedFrameworkSays(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tasks  int
		change func(*v1alpha1.Framework)
	}{
		{"compressed status", 1000, nil},
		{"plain status", 10, nil},
		{"no status", 3, func(f *v1alpha1.Framework) { f.Status = nil }},
		{"completed", 3, func(f *v1alpha1.Framework) { f.Status.State = v1alpha1.FrameworkCompleted }},
		{"task without IP", 1000, func(f *v1alpha1.Framework) {
			f.Status.AttemptStatus.TaskRoleStatuses[0].TaskStatuses[999].AttemptStatus.PodIP = nil
		}},
		{"deletion pending", 5, func(f *v1alpha1.Framework) {
			f.Status.AttemptStatus.TaskRoleStatuses[0].TaskStatuses[2].DeletionPending = true
		}},
		{"statuses out of index order", 5, func(f *v1alpha1.Framework) {
			ts := f.Status.AttemptStatus.TaskRoleStatuses[0].TaskStatuses
			ts[0], ts[4] = ts[4], ts[0]
		}},
		{"status missing a task", 5, func(f *v1alpha1.Framework) {
			rs := &f.Status.AttemptStatus.TaskRoleStatuses[0]
			rs.TaskStatuses = rs.TaskStatuses[:3]
		}},
		{"spec beyond status and a role without status", 4, func(f *v1alpha1.Framework) {
			f.Spec.TaskRoles[0].TaskNumber = 6
			f.Spec.TaskRoles = append(f.Spec.TaskRoles, v1alpha1.TaskRoleSpec{Name: "ps", TaskNumber: 2})
		}},
		{"empty IP", 3, func(f *v1alpha1.Framework) {
			f.Status.AttemptStatus.TaskRoleStatuses[0].TaskStatuses[1].AttemptStatus.PodIP = ptr.To("")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := releasedFramework(t, tc.tasks)
			if tc.change != nil {
				tc.change(f)
			}
			raw, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			var typed v1alpha1.Framework
			if err := json.Unmarshal(raw, &typed); err != nil {
				t.Fatal(err)
			}
			got, _, err := decodeView(raw)
			if err != nil {
				t.Fatalf("decodeView: %v", err)
			}
			if d := cmp.Diff(viewOf(&typed), got, cmp.AllowUnexported(view{})); d != "" {
				t.Errorf("decodeView differs from the typed Framework's view (-want +got):\n%s", d)
			}
			if got.progress().Released() != ProgressOf(&typed).Released() {
				t.Errorf("released: view %v, ProgressOf %v", got.progress().Released(), ProgressOf(&typed).Released())
			}
		})
	}
}

func TestDecodeViewRejectsABadCompressedStatus(t *testing.T) {
	f, _ := releasedFramework(t, 2)
	f.Status.AttemptStatus.TaskRoleStatuses = nil
	f.Status.AttemptStatus.TaskRoleStatusesCompressed = []byte("not gzip")
	raw, err := json.Marshal(struct {
		*v1alpha1.Framework
		Status any `json:"status"`
	}{f, map[string]any{"attemptStatus": map[string]any{"taskRoleStatusesCompressed": []byte("not gzip")}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := decodeView(raw); err == nil {
		t.Fatal("decodeView accepted a compressed status that is not gzip")
	}
}

// semantic decodes JSON generically, for comparing documents whatever their
// key order and white space.
func semantic(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %.80s...: %v", data, err)
	}
	return v
}

// framework.json written from the apiserver's JSON without decoding it must
// say what the file written from the decoded Framework says.
func TestSplicedFrameworkJSONMatchesTheDecodedFramework(t *testing.T) {
	_, small := releasedFramework(t, 3)
	// Both forms: the plain statuses win, and the compressed ones go.
	both := bytes.Replace(small, []byte(`"taskRoleStatuses":`), []byte(`"taskRoleStatusesCompressed":"H4sIAAAAAAAA/4uOBQApu0wNAgAAAA==","taskRoleStatuses":`), 1)
	for name, raw := range map[string][]byte{"3 tasks": small, "1000 tasks": nil, "both forms": both} {
		t.Run(name, func(t *testing.T) {
			n := 3
			if raw == nil {
				n = 1000
				_, raw = releasedFramework(t, n)
			}
			v, expanded, err := decodeView(raw)
			if err != nil {
				t.Fatal(err)
			}
			if (expanded != nil) != (n == 1000) {
				t.Fatalf("expanded statuses: %v, want them only for the compressed status", expanded != nil)
			}
			r := newRelease(v)
			r.raw, r.expanded = raw, expanded
			var typed v1alpha1.Framework
			if err := json.Unmarshal(raw, &typed); err != nil {
				t.Fatal(err)
			}
			for _, podTemplates := range []bool{false, true} {
				got, err := r.frameworkFile(podTemplates)
				if err != nil {
					t.Fatal(err)
				}
				want, err := (&Release{framework: &typed}).frameworkFile(podTemplates)
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(semantic(t, want), semantic(t, got)); d != "" {
					t.Errorf("podTemplates %v: spliced framework.json differs from the decoded Framework's (-want +got):\n%s", podTemplates, d)
				}
				if strings.Contains(string(got), "taskRoleStatusesCompressed") {
					t.Error("spliced framework.json keeps the compressed statuses")
				}
				// Left out unless asked: a template may carry secrets.
				var file v1alpha1.Framework
				if err := json.Unmarshal(got, &file); err != nil {
					t.Fatal(err)
				}
				hasPod := strings.Contains(string(got), `"pod":`)
				if hasPod != podTemplates {
					t.Errorf("podTemplates %v: framework.json has a pod template: %v", podTemplates, hasPod)
				}
				if len(file.Spec.TaskRoles) != len(typed.Spec.TaskRoles) || file.Spec.TaskRoles[0].TaskNumber != typed.Spec.TaskRoles[0].TaskNumber {
					t.Errorf("podTemplates %v: task roles %+v, want those of the Framework", podTemplates, file.Spec.TaskRoles)
				}
				if podTemplates && !cmp.Equal(file.Spec.TaskRoles[0].Task.Pod, typed.Spec.TaskRoles[0].Task.Pod) {
					t.Errorf("asked for, the pod template differs from the Framework's")
				}
			}
		})
	}
}

// FuzzDecodeView checks the barrier's direct reading of a Framework's JSON
// against the typed decoding: whenever that succeeds, both say the same
// (decodeView may accept more: it does not read the other fields).
func FuzzDecodeView(f *testing.F) {
	_, small := releasedFramework(f, 3)
	f.Add(small)
	f.Add([]byte(`{"metadata":{"uid":"u","annotations":{"barrier.podkit.dev/release":"0/released"}},"spec":{"taskRoles":[{"name":"w","taskNumber":2}]},` +
		`"status":{"state":"Running","attemptStatus":{"taskRoleStatuses":[{"name":"w","taskStatuses":[{"index":1,"attemptStatus":{"podIP":"b"}},{"index":0,"deletionPending":true,"attemptStatus":{"podIP":"a"}}]}]}}}`))
	f.Add([]byte(`{"spec":{"taskRoles":[{"name":"w","taskNumber":1}]},"status":{"attemptStatus":{"taskRoleStatuses":null,"taskRoleStatusesCompressed":"H4sIAAAAAAAA/4uOBQApu0wNAgAAAA=="}}}`))
	f.Add([]byte(`{"status":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var typed v1alpha1.Framework
		if err := json.Unmarshal(data, &typed); err != nil {
			return
		}
		for _, r := range typed.Spec.TaskRoles {
			if r.TaskNumber > 1<<16 {
				return // the typed view would allocate per task; not the point here
			}
		}
		got, _, err := decodeView(data)
		if err != nil {
			t.Fatalf("decodeView rejects %q, which the typed decoding accepts: %v", data, err)
		}
		if d := cmp.Diff(viewOf(&typed), got, cmp.AllowUnexported(view{})); d != "" {
			t.Fatalf("decodeView of %q differs from the typed Framework's view (-want +got):\n%s", data, d)
		}
	})
}
