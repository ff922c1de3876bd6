package synccontext

import (
	"fmt"
	"slices"
	"strings"
)

// Permission lets virtual objects carry one kind of host-level setting to the
// host. Without it the built-in syncers refuse (pods) or neutralise
// (services) the setting and record a Warning event on the virtual object
// naming the field and the permission.
type Permission string

// Permissions of a Policy. The names are what `podkit sync run --allow` takes.
const (
	// AllowHostNamespaces: hostNetwork, hostPID, hostIPC.
	AllowHostNamespaces Permission = "host-namespaces"
	// AllowPrivileged: privileged containers.
	AllowPrivileged Permission = "privileged"
	// AllowCapabilities: added capabilities beyond the container runtime's
	// default set (Pod Security "baseline" list).
	AllowCapabilities Permission = "capabilities"
	// AllowPrivilegeEscalation: allowPrivilegeEscalation set to true.
	AllowPrivilegeEscalation Permission = "privilege-escalation"
	// AllowHostPath: hostPath volumes.
	AllowHostPath Permission = "host-path"
	// AllowHostPorts: containers' hostPort.
	AllowHostPorts Permission = "host-ports"
	// AllowUnmaskedProcMount: procMount Unmasked.
	AllowUnmaskedProcMount Permission = "unmasked-proc-mount"
	// AllowUnconfined: seccomp or AppArmor Unconfined, custom SELinux
	// options, sysctls outside the safe set, Windows HostProcess.
	AllowUnconfined Permission = "unconfined"
	// AllowTolerations: tolerations beyond the not-ready/unreachable ones
	// every API server adds (they let pods onto tainted, dedicated nodes).
	AllowTolerations Permission = "tolerations"
	// AllowInfrastructureVolumes: in-tree volumes that name storage outside
	// the cluster directly (NFS, iSCSI, RBD, CephFS, cloud disks, FlexVolume,
	// gitRepo, …); their secret references are translated.
	AllowInfrastructureVolumes Permission = "infrastructure-volumes"
	// AllowServiceExposure: Service types NodePort and LoadBalancer with
	// loadBalancerIP, loadBalancerSourceRanges, loadBalancerClass and
	// externalTrafficPolicy. Without it they become ClusterIP on the host.
	AllowServiceExposure Permission = "service-exposure"
	// AllowExternalIPs: Services' externalIPs (CVE-2020-8554: they
	// intercept traffic to any address). Without it they are cleared.
	AllowExternalIPs Permission = "external-ips"
	// AllowPodTemplates: let the generic syncer copy objects that carry a pod
	// template (spec.template.spec, spec.jobTemplate.spec.template.spec:
	// Deployments, Jobs, most operators' kinds). Their pods are made by the
	// host's controllers, unchecked and untranslated.
	AllowPodTemplates Permission = "pod-templates"
	// AllowAllSecrets: sync every virtual Secret, not only those referenced
	// by synced pods.
	AllowAllSecrets Permission = "all-secrets"
	// AllowAllConfigMaps: sync every virtual ConfigMap, not only those
	// referenced by synced pods.
	AllowAllConfigMaps Permission = "all-configmaps"
	// AllowServiceEndpoints: copy the EndpointSlices and v1 Endpoints of
	// virtual Services without a selector to the host, so their host
	// Services route to the addresses the tenant wrote (CVE-2021-25740: any
	// address the host's network reaches). Without it the endpointslices
	// and endpoints syncers copy none.
	AllowServiceEndpoints Permission = "service-endpoints"
	// AllowRuntimeClass: pods' runtimeClassName. A RuntimeClass is a host
	// object that picks the container runtime (a sandbox, or one with less
	// isolation) and may add node selectors, tolerations and overhead.
	// Without it such pods are refused.
	AllowRuntimeClass Permission = "runtime-class"
)

// Permissions returns every permission, in the order above.
func Permissions() []Permission {
	return []Permission{
		AllowHostNamespaces, AllowPrivileged, AllowCapabilities, AllowPrivilegeEscalation, AllowHostPath,
		AllowHostPorts, AllowUnmaskedProcMount, AllowUnconfined, AllowTolerations, AllowInfrastructureVolumes,
		AllowServiceExposure, AllowExternalIPs, AllowPodTemplates, AllowAllSecrets, AllowAllConfigMaps,
		AllowServiceEndpoints, AllowRuntimeClass,
	}
}

// Policy says which host-level settings virtual objects may carry to the
// host. The zero value is the safe default: every permission withheld, so a
// tenant of the virtual cluster gets no more than a namespace of the host
// would give it under Pod Security "baseline" without exposure.
type Policy struct {
	// Allow lists the permissions granted. Default: none.
	Allow []Permission
}

// Allows reports whether p grants perm.
func (p Policy) Allows(perm Permission) bool { return slices.Contains(p.Allow, perm) }

// ParsePolicy builds a Policy from permission names (as --allow spells
// them); an unknown name is an error that lists the valid ones.
func ParsePolicy(names []string) (Policy, error) {
	var p Policy
	for _, n := range names {
		perm := Permission(strings.TrimSpace(n))
		if !slices.Contains(Permissions(), perm) {
			valid := make([]string, 0, len(Permissions()))
			for _, v := range Permissions() {
				valid = append(valid, string(v))
			}
			return Policy{}, fmt.Errorf("unknown permission %q; choose from %s", n, strings.Join(valid, ", "))
		}
		if !p.Allows(perm) {
			p.Allow = append(p.Allow, perm)
		}
	}
	return p, nil
}

// Hint is the text an event adds to say how a refused setting is allowed.
func (perm Permission) Hint() string {
	return fmt.Sprintf("allow it with --allow=%s (syncer.Options.Policy)", perm)
}
