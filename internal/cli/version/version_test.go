package version

import (
	"runtime/debug"
	"testing"
)

func TestCurrentPrefersLdflagsThenModuleThenRevision(t *testing.T) {
	withMain := func(v string, settings ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/podkit-dev/podkit", Version: v}, Settings: settings}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	tests := []struct {
		name, set string
		bi        *debug.BuildInfo
		want      string
	}{
		{"set by make (ldflags)", "v0.4.0", withMain("(devel)", rev), "v0.4.0"},
		{"go install …@v0.4.1", "dev", withMain("v0.4.1"), "v0.4.1"},
		{"built in a checkout", "dev", withMain("(devel)", rev), "dev+0a1b2c3d4e5f"},
		{"built in a dirty checkout", "dev", withMain("(devel)", rev, dirty), "dev+0a1b2c3d4e5f-dirty"},
		{"nothing known", "dev", withMain("(devel)"), "dev"},
	}
	for _, tt := range tests {
		if got := current(tt.set, tt.bi, true); got != tt.want {
			t.Errorf("%s: current = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := current("dev", nil, false); got != "dev" {
		t.Errorf("without build info: %q, want dev", got)
	}
}
