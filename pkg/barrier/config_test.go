package barrier

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func envLookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestLoadConfigReadsEnvironmentThenDefaults(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Config
	}{
		{
			name: "only required variables get the original defaults",
			env:  map[string]string{"FC_FRAMEWORK_NAMESPACE": "ns", "FC_FRAMEWORK_NAME": "fw"},
			want: Config{FrameworkNamespace: "ns", FrameworkName: "fw", BarrierCheckIntervalSec: 10, BarrierCheckTimeoutSec: 600},
		},
		{
			name: "every variable is read",
			env: map[string]string{
				"KUBE_APISERVER_ADDRESS": "https://10.0.0.1:6443", "KUBECONFIG": "/k/config",
				"FC_FRAMEWORK_NAMESPACE": "ns", "FC_FRAMEWORK_NAME": "fw",
				"BARRIER_CHECK_INTERVAL_SEC": "5", "BARRIER_CHECK_TIMEOUT_SEC": " 1200 ",
			},
			want: Config{
				KubeApiServerAddress: "https://10.0.0.1:6443", KubeConfigFilePath: "/k/config",
				FrameworkNamespace: "ns", FrameworkName: "fw", BarrierCheckIntervalSec: 5, BarrierCheckTimeoutSec: 1200,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadConfig(envLookup(tt.env))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("config (-want +got):\n%s", d)
			}
		})
	}
}

func TestLoadConfigNamesEachInvalidVariable(t *testing.T) {
	base := map[string]string{"FC_FRAMEWORK_NAMESPACE": "ns", "FC_FRAMEWORK_NAME": "fw"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<unset>" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name  string
		env   map[string]string
		names []string
	}{
		{"missing name", with("FC_FRAMEWORK_NAME", "<unset>"), []string{"FC_FRAMEWORK_NAME"}},
		{"missing namespace", with("FC_FRAMEWORK_NAMESPACE", "<unset>"), []string{"FC_FRAMEWORK_NAMESPACE"}},
		{"interval below 5", with("BARRIER_CHECK_INTERVAL_SEC", "4"), []string{"BARRIER_CHECK_INTERVAL_SEC=4"}},
		{"negative interval", with("BARRIER_CHECK_INTERVAL_SEC", "-10"), []string{"BARRIER_CHECK_INTERVAL_SEC=-10"}},
		{"timeout below 60", with("BARRIER_CHECK_TIMEOUT_SEC", "59"), []string{"BARRIER_CHECK_TIMEOUT_SEC=59"}},
		{"timeout above 1200", with("BARRIER_CHECK_TIMEOUT_SEC", "1201"), []string{"BARRIER_CHECK_TIMEOUT_SEC=1201"}},
		{"interval not a number", with("BARRIER_CHECK_INTERVAL_SEC", "10s"), []string{`BARRIER_CHECK_INTERVAL_SEC="10s"`}},
		{"both numbers unparsable", with("BARRIER_CHECK_INTERVAL_SEC", "x", "BARRIER_CHECK_TIMEOUT_SEC", "y"),
			[]string{"BARRIER_CHECK_INTERVAL_SEC", "BARRIER_CHECK_TIMEOUT_SEC"}},
		{"several problems at once", with("FC_FRAMEWORK_NAME", "<unset>", "BARRIER_CHECK_TIMEOUT_SEC", "5"),
			[]string{"FC_FRAMEWORK_NAME", "BARRIER_CHECK_TIMEOUT_SEC=5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(envLookup(tt.env))
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("LoadConfig error = %v, want ErrInvalidConfig", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans several lines", msg)
			}
			for _, n := range tt.names {
				if !strings.Contains(msg, n) {
					t.Errorf("error %q does not name %s", msg, n)
				}
			}
		})
	}
}

func TestValidateAcceptsRangeBounds(t *testing.T) {
	for _, c := range []Config{
		{FrameworkNamespace: "n", FrameworkName: "f", BarrierCheckIntervalSec: 5, BarrierCheckTimeoutSec: 60},
		{FrameworkNamespace: "n", FrameworkName: "f", BarrierCheckIntervalSec: 3600, BarrierCheckTimeoutSec: 1200},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", c, err)
		}
	}
}
