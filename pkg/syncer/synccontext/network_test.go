package synccontext

import (
	"strings"
	"testing"
)

func TestPodNetworkValidateNamesTheField(t *testing.T) {
	tests := []struct {
		name    string
		n       PodNetwork
		wantErr string
	}{
		{"unset", PodNetwork{}, ""},
		{"IPv4 and IPv6", PodNetwork{APIServer: "10.0.0.1:443", DNS: "fd00::10", ClusterDomain: "vc.example"}, ""},
		{"IPv6 API server", PodNetwork{APIServer: "[fd00::1]:6443"}, ""},
		{"no port", PodNetwork{APIServer: "10.0.0.1"}, `APIServer "10.0.0.1": want IP:port`},
		{"a name, not an IP", PodNetwork{APIServer: "kubernetes.default:443"}, `"kubernetes.default" is not an IP address`},
		{"port out of range", PodNetwork{APIServer: "10.0.0.1:70000"}, `port "70000" is not a number from 1 to 65535`},
		{"DNS a name", PodNetwork{DNS: "kube-dns"}, `DNS "kube-dns" is not an IP address`},
		{"bad domain", PodNetwork{ClusterDomain: "Cluster_Local"}, `ClusterDomain "Cluster_Local"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.n.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	if d := (PodNetwork{}).Domain(); d != DefaultClusterDomain {
		t.Errorf("Domain() = %q, want %q", d, DefaultClusterDomain)
	}
}
