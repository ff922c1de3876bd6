package pods

import (
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// apiServerEnv returns the service variables a container of the virtual
// cluster expects for its "kubernetes" Service, for the virtual API server
// at apiServer ("IP:port"), sorted by name; nil when apiServer is unset.
// vcluster sets the same family (pkg/controllers/resources/pods/translate/
// translator.go, translateServicesToEnvironmentVariables) for its own
// Service's cluster IP on port 443.
func apiServerEnv(apiServer string) []corev1.EnvVar {
	host, port, err := net.SplitHostPort(apiServer)
	if err != nil {
		return nil
	}
	url := "tcp://" + net.JoinHostPort(host, port)
	prefix := "KUBERNETES_PORT_" + port + "_TCP"
	return []corev1.EnvVar{
		{Name: "KUBERNETES_PORT", Value: url},
		{Name: prefix, Value: url},
		{Name: prefix + "_ADDR", Value: host},
		{Name: prefix + "_PORT", Value: port},
		{Name: prefix + "_PROTO", Value: "tcp"},
		{Name: "KUBERNETES_SERVICE_HOST", Value: host},
		{Name: "KUBERNETES_SERVICE_PORT", Value: port},
		{Name: "KUBERNETES_SERVICE_PORT_HTTPS", Value: port},
	}
}

// withEnv returns env preceded by the variables of extra the container does
// not set itself: its own values win, and later variables may refer to them.
func withEnv(env, extra []corev1.EnvVar) []corev1.EnvVar {
	if len(extra) == 0 {
		return env
	}
	out := make([]corev1.EnvVar, 0, len(extra)+len(env))
	for _, e := range extra {
		if !slices.ContainsFunc(env, func(o corev1.EnvVar) bool { return o.Name == e.Name }) {
			out = append(out, e)
		}
	}
	return append(out, env...)
}

// translateNetwork points the host pod at the virtual cluster: the
// KUBERNETES_* variables and the "kubernetes" host names at the virtual API
// server, and cluster-first DNS at the virtual DNS server. Settings n leaves
// unset are left as the host makes them.
func translateNetwork(pPod *corev1.Pod, vPod *corev1.Pod, n synccontext.PodNetwork) {
	spec := &pPod.Spec
	if env := apiServerEnv(n.APIServer); env != nil {
		for i := range spec.InitContainers {
			spec.InitContainers[i].Env = withEnv(spec.InitContainers[i].Env, env)
		}
		for i := range spec.Containers {
			spec.Containers[i].Env = withEnv(spec.Containers[i].Env, env)
		}
		for i := range spec.EphemeralContainers {
			spec.EphemeralContainers[i].Env = withEnv(spec.EphemeralContainers[i].Env, env)
		}
		host, _, _ := net.SplitHostPort(n.APIServer)
		spec.HostAliases = append(spec.HostAliases, corev1.HostAlias{IP: host, Hostnames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc"}})
	}
	if n.DNS != "" && clusterFirst(vPod) {
		spec.DNSPolicy, spec.DNSConfig = corev1.DNSNone, virtualDNSConfig(vPod, n)
	}
}

// clusterFirst reports whether vPod resolves names with the cluster's DNS:
// dnsPolicy ClusterFirst (the default) without the host's network, or
// ClusterFirstWithHostNet. Default and None pods keep their resolver, as in
// vcluster's translateDNSConfig.
func clusterFirst(vPod *corev1.Pod) bool {
	switch vPod.Spec.DNSPolicy {
	case corev1.DNSClusterFirstWithHostNet:
		return true
	case corev1.DNSClusterFirst, "":
		return !vPod.Spec.HostNetwork
	}
	return false
}

// ndots is what the kubelet writes for cluster-first pods, and what vcluster
// writes into the dnsConfig that replaces it.
const ndots = "5"

// virtualDNSConfig is the resolver configuration of a cluster-first pod of
// the virtual cluster, as the kubelet would write it there: the virtual DNS
// server first, then the search path <namespace>.svc.<domain>,
// svc.<domain>, <domain> and ndots 5; nameservers, searches and options the
// tenant added in spec.dnsConfig follow (its own option values win).
func virtualDNSConfig(vPod *corev1.Pod, n synccontext.PodNetwork) *corev1.PodDNSConfig {
	domain := n.Domain()
	cfg := &corev1.PodDNSConfig{
		Nameservers: []string{n.DNS},
		Searches:    []string{vPod.Namespace + ".svc." + domain, "svc." + domain, domain},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To(ndots)}},
	}
	own := vPod.Spec.DNSConfig
	if own == nil {
		return cfg
	}
	add := func(list []string, more []string) []string {
		for _, m := range more {
			if !slices.Contains(list, m) {
				list = append(list, m)
			}
		}
		return list
	}
	cfg.Nameservers = add(cfg.Nameservers, own.Nameservers)
	cfg.Searches = add(cfg.Searches, own.Searches)
	for _, o := range own.Options {
		o := *o.DeepCopy()
		if i := slices.IndexFunc(cfg.Options, func(c corev1.PodDNSConfigOption) bool { return strings.EqualFold(c.Name, o.Name) }); i >= 0 {
			cfg.Options[i] = o
			continue
		}
		cfg.Options = append(cfg.Options, o)
	}
	return cfg
}
