package fork

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func mapEnv(m map[string]string) LookupEnvFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func assertErrorContains(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want one containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %q, want it to contain %q", err, want)
	}
}

func TestParentFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    types.NamespacedName
		wantErr string
	}{
		{"podkit names", map[string]string{EnvPodName: "p", EnvPodNamespace: "ns"}, types.NamespacedName{Namespace: "ns", Name: "p"}, ""},
		{"seed names", map[string]string{LegacyEnvPodName: "p", LegacyEnvPodNamespace: "ns"}, types.NamespacedName{Namespace: "ns", Name: "p"}, ""},
		{"podkit names win", map[string]string{EnvPodName: "a", LegacyEnvPodName: "b", EnvPodNamespace: "ns"}, types.NamespacedName{Namespace: "ns", Name: "a"}, ""},
		{"nothing set", nil, types.NamespacedName{}, "PODKIT_POD_NAME and PODKIT_POD_NAMESPACE are not set"},
		{"namespace missing", map[string]string{EnvPodName: "p"}, types.NamespacedName{}, "PODKIT_POD_NAMESPACE is not set"},
		{"blank counts as missing", map[string]string{EnvPodName: " ", EnvPodNamespace: "ns"}, types.NamespacedName{}, "PODKIT_POD_NAME is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parentFromEnv(mapEnv(tt.env))
			if tt.wantErr != "" {
				assertErrorContains(t, err, tt.wantErr)
				assertErrorContains(t, err, EnvSnippet)
				if !errors.Is(err, ErrNoParentEnv) {
					t.Errorf("error does not wrap ErrNoParentEnv: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parentFromEnv() = %v, %v; want %v, nil", got, err, tt.want)
			}
		})
	}
}

func TestPathReadsPodkitThenSeedVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{EnvForkPath: "worker"}, "worker"},
		{map[string]string{LegacyEnvForkPath: "legacy"}, "legacy"},
		{map[string]string{EnvForkPath: "worker", LegacyEnvForkPath: "legacy"}, "worker"},
	}
	for _, tt := range tests {
		if got := pathFrom(mapEnv(tt.env)); got != tt.want {
			t.Errorf("pathFrom(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestPathUsesProcessEnvironment(t *testing.T) {
	t.Setenv(EnvForkPath, "from-env")
	if got := Path(); got != "from-env" {
		t.Errorf("Path() = %q, want %q", got, "from-env")
	}
}
