package synccontext

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultClusterDomain is the DNS domain of the virtual cluster's Services
// when PodNetwork.ClusterDomain is unset.
const DefaultClusterDomain = "cluster.local"

// PodNetwork says where host pods find the virtual cluster's API server and
// DNS server. Each unset field leaves host pods as the host makes them: the
// kubelet's KUBERNETES_SERVICE_HOST/PORT point at the host's API server
// (which rejects the virtual token the pod mounts), and ClusterFirst DNS is
// the host's cluster DNS, which knows no virtual Service names.
type PodNetwork struct {
	// APIServer is "IP:port", an address host pods reach the virtual API
	// server at (vcluster: the cluster IP of its Service on the host, port
	// 443). Host containers get KUBERNETES_SERVICE_HOST/PORT and the rest of
	// the KUBERNETES_* service variables for it, and host aliases
	// kubernetes, kubernetes.default and kubernetes.default.svc. Default:
	// unset.
	APIServer string
	// DNS is the IP of a DNS server that resolves the virtual cluster's
	// Services. Host pods with dnsPolicy ClusterFirst (and
	// ClusterFirstWithHostNet) get dnsPolicy None with this nameserver, the
	// virtual search path and ndots 5. Default: unset.
	DNS string
	// ClusterDomain is the virtual cluster's DNS domain, used in the search
	// path. Default: DefaultClusterDomain.
	ClusterDomain string
}

// Validate returns an error naming each malformed field.
func (n PodNetwork) Validate() error {
	var errs []error
	if n.APIServer != "" {
		host, port, err := net.SplitHostPort(n.APIServer)
		p, perr := strconv.Atoi(port)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("APIServer %q: want IP:port: %w", n.APIServer, err))
		case net.ParseIP(host) == nil:
			errs = append(errs, fmt.Errorf("APIServer %q: %q is not an IP address", n.APIServer, host))
		case perr != nil || p < 1 || p > 65535:
			errs = append(errs, fmt.Errorf("APIServer %q: port %q is not a number from 1 to 65535", n.APIServer, port))
		}
	}
	if n.DNS != "" && net.ParseIP(n.DNS) == nil {
		errs = append(errs, fmt.Errorf("DNS %q is not an IP address", n.DNS))
	}
	if n.ClusterDomain != "" {
		if msgs := validation.IsDNS1123Subdomain(n.ClusterDomain); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("ClusterDomain %q: %v", n.ClusterDomain, msgs))
		}
	}
	return errors.Join(errs...)
}

// Domain returns ClusterDomain or its default.
func (n PodNetwork) Domain() string {
	if n.ClusterDomain == "" {
		return DefaultClusterDomain
	}
	return n.ClusterDomain
}
