package barrier

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// statusJSONCases are task role statuses in the shapes the fast path takes
// and the ones it must leave to encoding/json.
var statusJSONCases = []struct {
	name string
	json string
	fast bool // scanRoleStatuses handles it
}{
	{"empty list", `[]`, true},
	{"plain", `[{"name":"worker","taskStatuses":[{"index":0,"state":"Running","attemptStatus":{"id":0,"podIP":"10.0.0.1","podName":"p"}},{"index":1,"attemptStatus":{"podIP":null}}]}]`, true},
	{"white space and nesting skipped", " [ {\"x\": [1, -2.5e+3, {\"a\": \"\\u00e9\\\"\"}, true, false, null], \"name\" : \"w\" ,\"taskStatuses\":[ ] } ] \n", true},
	{"deletion pending", `[{"name":"w","taskStatuses":[{"index":0,"deletionPending":true,"attemptStatus":{"podIP":"10.0.0.1"}}]}]`, true},
	{"index out of order", `[{"name":"w","taskStatuses":[{"index":1,"attemptStatus":{"podIP":"b"}},{"index":0,"attemptStatus":{"podIP":"a"}}]}]`, true},
	{"key differing in case", `[{"Name":"w"}]`, false},
	{"duplicate key", `[{"name":"w","taskStatuses":[{"index":0,"attemptStatus":{"podIP":"a"},"attemptStatus":{}}]}]`, false},
	{"escaped value", `[{"name":"w\u0041"}]`, false},
	{"escaped key", `[{"n\u0061me":"w"}]`, false},
	{"non-ASCII value", `[{"name":"wé"}]`, false},
	{"index as float", `[{"name":"w","taskStatuses":[{"index":1.0}]}]`, false},
	{"index beyond int32", `[{"name":"w","taskStatuses":[{"index":2147483648}]}]`, false},
	{"null list", `null`, false},
	{"null tasks", `[{"name":"w","taskStatuses":null}]`, false},
	{"invalid JSON", `[{"name":"w",}]`, false},
	{"trailing data", `[] []`, false},
	{"wrong type", `[{"name":1}]`, false},
}

func TestScanRoleStatusesAgreesWithEncodingJSON(t *testing.T) {
	for _, tc := range statusJSONCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := scanRoleStatuses([]byte(tc.json))
			if ok != tc.fast {
				t.Fatalf("fast path took it: %v, want %v", ok, tc.fast)
			}
			var want []roleStatusJSON
			err := json.Unmarshal([]byte(tc.json), &want)
			if ok {
				if err != nil {
					t.Fatalf("fast path accepted what encoding/json rejects: %v", err)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("fast path differs from encoding/json (-want +got):\n%s", d)
				}
			}
			dec, decErr := decodeRoleStatuses([]byte(tc.json))
			if (decErr != nil) != (err != nil) {
				t.Fatalf("decodeRoleStatuses error %v, encoding/json error %v", decErr, err)
			}
			if err == nil {
				if d := cmp.Diff(want, dec, cmp.Comparer(func(a, b []taskStatusJSON) bool { return cmp.Equal(normTasks(a), normTasks(b)) })); d != "" {
					t.Errorf("decodeRoleStatuses differs from encoding/json (-want +got):\n%s", d)
				}
			}
		})
	}
}

// normTasks treats a nil and an empty task list alike.
func normTasks(ts []taskStatusJSON) []taskStatusJSON {
	if len(ts) == 0 {
		return nil
	}
	return ts
}

// FuzzScanRoleStatuses checks that whatever the fast path accepts,
// encoding/json accepts too and reads the same way.
func FuzzScanRoleStatuses(f *testing.F) {
	for _, tc := range statusJSONCases {
		f.Add([]byte(tc.json))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := scanRoleStatuses(data)
		if !ok {
			return
		}
		var want []roleStatusJSON
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("fast path accepted %q, which encoding/json rejects: %v", data, err)
		}
		if !cmp.Equal(want, got, cmp.Comparer(func(a, b []taskStatusJSON) bool { return cmp.Equal(normTasks(a), normTasks(b)) })) {
			t.Fatalf("fast path read %q as %+v, encoding/json as %+v", data, got, want)
		}
	})
}

func BenchmarkDecodeRoleStatuses(b *testing.B) {
	f, _ := releasedFramework(b, 1000)
	raw, err := json.Marshal(f.Status.AttemptStatus.TaskRoleStatuses)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, ok := scanRoleStatuses(raw); !ok {
				b.Fatal("not scanned")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var rs []roleStatusJSON
			if err := json.Unmarshal(raw, &rs); err != nil {
				b.Fatal(err)
			}
		}
	})
}
