package fork

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestChildNameIsADeterministicDNSLabel(t *testing.T) {
	long := strings.Repeat("very-long-parent-name.", 12)
	tests := []struct {
		name       string
		parent     string
		uid        types.UID
		path       string
		instance   string
		wantPrefix string
	}{
		{"short names are kept", "op-0", "u1", "worker", "", "op-0-worker-"},
		{"dots and case become dashes", "Op.Example.0", "u1", "Sync_Tenants", "", "op-example-0-sync-tenants-"},
		{"long parent is shortened", long, "u1", "worker", "", "very-long-parent-name-very-long-parent-name-very-long-"},
		{"path of symbols only", "p", "u1", "___", "", "p-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ChildName(tt.parent, tt.uid, tt.path, tt.instance)
			if msgs := validation.IsDNS1123Label(got); len(msgs) > 0 {
				t.Errorf("ChildName() = %q is not a DNS label: %v", got, msgs)
			}
			if !strings.HasPrefix(got, tt.wantPrefix) {
				t.Errorf("ChildName() = %q, want prefix %q", got, tt.wantPrefix)
			}
			if again := ChildName(tt.parent, tt.uid, tt.path, tt.instance); again != got {
				t.Errorf("ChildName() not deterministic: %q then %q", got, again)
			}
		})
	}
}

func TestChildNameDiffersWhenAnyInputDiffers(t *testing.T) {
	base := ChildName("op-0", "uid-1", "worker", "")
	for _, other := range []string{
		ChildName("op-0", "uid-2", "worker", ""), // restarted parent
		ChildName("op-0", "uid-1", "worker2", ""),
		ChildName("op-0", "uid-1", "worker", "1"),
	} {
		if other == base {
			t.Errorf("ChildName collision: %q", other)
		}
	}
}
