package resources_test

import (
	"strings"
	"testing"

	"github.com/podkit-dev/podkit/pkg/syncer/resources"
)

func TestValidateNamesTheUnknownSyncer(t *testing.T) {
	tests := []struct {
		names   []string
		wantErr string
	}{
		{[]string{"configmaps", "secrets", "services", "pods", "events"}, ""},
		{[]string{"gvk:Widget.v1.example.com", "gvk:PodTemplate.v1+status"}, ""},
		{[]string{"configmaps", "deployments"}, `unknown syncer "deployments"; choose from configmaps, endpoints, endpointslices, events, pods, secrets, services`},
		{[]string{"gvk:Widget"}, `syncer "gvk:Widget": kind "Widget": want Kind.version.group`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.names, ","), func(t *testing.T) {
			err := resources.Validate(tt.names)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
