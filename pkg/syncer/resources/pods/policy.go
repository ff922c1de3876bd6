package pods

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// Violation is one setting of a virtual pod that would give it more than a
// tenant may have on the host, so the pod is not created there.
type Violation struct {
	// Field is the path of the setting, e.g. spec.containers[0].securityContext.privileged.
	Field string
	// What says what the setting is or does.
	What string
	// Permission allows the setting; empty when the syncer never passes it.
	Permission synccontext.Permission
}

// String is the violation as an event message spells it.
func (v Violation) String() string {
	if v.Permission == "" {
		return fmt.Sprintf("%s: %s; the syncer does not pass it to the host", v.Field, v.What)
	}
	return fmt.Sprintf("%s: %s; %s", v.Field, v.What, v.Permission.Hint())
}

// The policy follows Pod Security "baseline", which vcluster enforces in the
// syncer in its isolated mode (loft-sh/vcluster release v0.7.0, "Isolated
// Mode": pods that run privileged or mount a host path are not synced to the
// host), plus what only a syncer must care about: references to host objects
// by name and host service-account tokens.

// baselineCapabilities may be added without AllowCapabilities: the default
// set of container runtimes (Pod Security "baseline").
var baselineCapabilities = map[corev1.Capability]bool{
	"AUDIT_WRITE": true, "CHOWN": true, "DAC_OVERRIDE": true, "FOWNER": true, "FSETID": true, "KILL": true,
	"MKNOD": true, "NET_BIND_SERVICE": true, "SETFCAP": true, "SETGID": true, "SETPCAP": true, "SETUID": true,
	"SYS_CHROOT": true,
}

// safeSysctls are namespaced and isolated (Pod Security "baseline").
var safeSysctls = map[string]bool{
	"kernel.shm_rmid_forced": true, "net.ipv4.ip_local_port_range": true, "net.ipv4.ip_unprivileged_port_start": true,
	"net.ipv4.tcp_syncookies": true, "net.ipv4.ping_group_range": true, "net.ipv4.ip_local_reserved_ports": true,
	"net.ipv4.tcp_keepalive_time": true, "net.ipv4.tcp_fin_timeout": true, "net.ipv4.tcp_keepalive_intvl": true,
	"net.ipv4.tcp_keepalive_probes": true,
}

// seLinuxTypes may be set without AllowUnconfined (Pod Security "baseline").
var seLinuxTypes = map[string]bool{"": true, "container_t": true, "container_init_t": true, "container_kvm_t": true, "container_engine_t": true}

// conditionTaints are the node-condition taints pods may tolerate without
// AllowTolerations: API servers and the DaemonSet controller add these
// tolerations themselves, and they do not open dedicated nodes.
var conditionTaints = map[string]bool{
	corev1.TaintNodeNotReady: true, corev1.TaintNodeUnreachable: true, corev1.TaintNodeMemoryPressure: true,
	corev1.TaintNodeDiskPressure: true, corev1.TaintNodePIDPressure: true, corev1.TaintNodeNetworkUnavailable: true,
}

// apparmorAnnotationPrefix is the deprecated per-container AppArmor annotation.
const apparmorAnnotationPrefix = "container.apparmor.security.beta.kubernetes.io/"

// volumeKind is how the syncer treats one VolumeSource field.
type volumeKind int

const (
	volumePasses         volumeKind = iota // nothing of the host's is named
	volumeTranslated                       // names virtual objects, translated
	volumeHostPath                         // needs AllowHostPath
	volumeInfrastructure                   // needs AllowInfrastructureVolumes
)

// volumeKinds classifies every VolumeSource field by its Go name; a field
// missing here (a newer API) is refused.
var volumeKinds = map[string]volumeKind{
	"EmptyDir": volumePasses, "DownwardAPI": volumePasses, "Image": volumePasses,
	"ConfigMap": volumeTranslated, "Secret": volumeTranslated, "PersistentVolumeClaim": volumeTranslated,
	"Projected": volumeTranslated, "CSI": volumeTranslated, "Ephemeral": volumeTranslated,
	"HostPath":          volumeHostPath,
	"GCEPersistentDisk": volumeInfrastructure, "AWSElasticBlockStore": volumeInfrastructure, "GitRepo": volumeInfrastructure,
	"NFS": volumeInfrastructure, "ISCSI": volumeInfrastructure, "Glusterfs": volumeInfrastructure, "RBD": volumeInfrastructure,
	"FlexVolume": volumeInfrastructure, "Cinder": volumeInfrastructure, "CephFS": volumeInfrastructure, "Flocker": volumeInfrastructure,
	"FC": volumeInfrastructure, "AzureFile": volumeInfrastructure, "VsphereVolume": volumeInfrastructure, "Quobyte": volumeInfrastructure,
	"AzureDisk": volumeInfrastructure, "PhotonPersistentDisk": volumeInfrastructure, "PortworxVolume": volumeInfrastructure,
	"ScaleIO": volumeInfrastructure, "StorageOS": volumeInfrastructure,
}

// projectionPasses lists the projected sources the syncer passes (Secret and
// ConfigMap translated); any other one is refused.
var projectionPasses = map[string]bool{"Secret": true, "ConfigMap": true, "DownwardAPI": true}

// setField returns the Go name and JSON name of the one non-nil pointer
// field of a struct such as VolumeSource, or empty strings.
func setField(v any) (goName, jsonName string) {
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			sf := rv.Type().Field(i)
			return sf.Name, strings.Split(sf.Tag.Get("json"), ",")[0]
		}
	}
	return "", ""
}

// Check returns the settings of vPod that policy refuses, in spec order.
// The service-account token volume the virtual API server injects is not
// checked: translatePod makes it read a token of the virtual cluster.
func Check(policy synccontext.Policy, vPod *corev1.Pod) []Violation {
	c := &checker{policy: policy}
	spec := &vPod.Spec
	c.need(spec.HostNetwork, "spec.hostNetwork", "the host's network namespace", synccontext.AllowHostNamespaces)
	c.need(spec.HostPID, "spec.hostPID", "the host's process namespace", synccontext.AllowHostNamespaces)
	c.need(spec.HostIPC, "spec.hostIPC", "the host's IPC namespace", synccontext.AllowHostNamespaces)
	if sc := spec.SecurityContext; sc != nil {
		c.confinement("spec.securityContext", sc.SeccompProfile, sc.AppArmorProfile, sc.SELinuxOptions, sc.WindowsOptions)
		for i, s := range sc.Sysctls {
			c.need(!safeSysctls[s.Name], fmt.Sprintf("spec.securityContext.sysctls[%d]", i), "sysctl "+s.Name+" is not in the safe set", synccontext.AllowUnconfined)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(vPod.Annotations)) {
		c.need(strings.HasPrefix(k, apparmorAnnotationPrefix) && vPod.Annotations[k] == "unconfined", "metadata.annotations["+k+"]", "AppArmor unconfined", synccontext.AllowUnconfined)
	}
	for i, t := range spec.Tolerations {
		c.need(!conditionTaints[t.Key], fmt.Sprintf("spec.tolerations[%d]", i), fmt.Sprintf("tolerates taint %q (dedicated or tainted host nodes)", t.Key), synccontext.AllowTolerations)
	}
	if rc := spec.RuntimeClassName; rc != nil && *rc != "" {
		c.need(true, "spec.runtimeClassName", fmt.Sprintf("runs with RuntimeClass %q of the host (its runtime, node selector, tolerations and overhead)", *rc), synccontext.AllowRuntimeClass)
	}
	c.need(len(spec.ResourceClaims) > 0, "spec.resourceClaims", "names ResourceClaims of the host", "")
	c.need(spec.SchedulingGroup != nil, "spec.schedulingGroup", "names a PodGroup of the host", "")
	for i := range spec.Volumes {
		if !injectedTokenVolume(&spec.Volumes[i]) {
			c.volume(fmt.Sprintf("spec.volumes[%d]", i), &spec.Volumes[i])
		}
	}
	for _, cs := range []struct {
		path       string
		containers []corev1.Container
	}{{"spec.initContainers", spec.InitContainers}, {"spec.containers", spec.Containers}} {
		for i := range cs.containers {
			c.container(fmt.Sprintf("%s[%d]", cs.path, i), &cs.containers[i])
		}
	}
	for i := range spec.EphemeralContainers {
		ec := corev1.Container(spec.EphemeralContainers[i].EphemeralContainerCommon)
		c.container(fmt.Sprintf("spec.ephemeralContainers[%d]", i), &ec)
	}
	return c.out
}

type checker struct {
	policy synccontext.Policy
	out    []Violation
}

// need records a violation when set and the policy lacks perm (an empty
// perm is never granted).
func (c *checker) need(set bool, field, what string, perm synccontext.Permission) {
	if set && (perm == "" || !c.policy.Allows(perm)) {
		c.out = append(c.out, Violation{Field: field, What: what, Permission: perm})
	}
}

func (c *checker) confinement(path string, seccomp *corev1.SeccompProfile, apparmor *corev1.AppArmorProfile, selinux *corev1.SELinuxOptions, windows *corev1.WindowsSecurityContextOptions) {
	c.need(seccomp != nil && seccomp.Type == corev1.SeccompProfileTypeUnconfined, path+".seccompProfile", "seccomp Unconfined", synccontext.AllowUnconfined)
	c.need(apparmor != nil && apparmor.Type == corev1.AppArmorProfileTypeUnconfined, path+".appArmorProfile", "AppArmor Unconfined", synccontext.AllowUnconfined)
	c.need(selinux != nil && (selinux.User != "" || selinux.Role != "" || !seLinuxTypes[selinux.Type]), path+".seLinuxOptions", "custom SELinux user, role or type", synccontext.AllowUnconfined)
	c.need(windows != nil && windows.HostProcess != nil && *windows.HostProcess, path+".windowsOptions.hostProcess", "a Windows host process", synccontext.AllowUnconfined)
}

func (c *checker) container(path string, ctr *corev1.Container) {
	for i, p := range ctr.Ports {
		c.need(p.HostPort != 0, fmt.Sprintf("%s.ports[%d].hostPort", path, i), fmt.Sprintf("binds port %d of the host", p.HostPort), synccontext.AllowHostPorts)
	}
	sc := ctr.SecurityContext
	if sc == nil {
		return
	}
	path += ".securityContext"
	c.need(sc.Privileged != nil && *sc.Privileged, path+".privileged", "a privileged container", synccontext.AllowPrivileged)
	c.need(sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation, path+".allowPrivilegeEscalation", "privilege escalation explicitly allowed", synccontext.AllowPrivilegeEscalation)
	c.need(sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount, path+".procMount", "an unmasked /proc", synccontext.AllowUnmaskedProcMount)
	if sc.Capabilities != nil {
		for i, capability := range sc.Capabilities.Add {
			name := corev1.Capability(strings.TrimPrefix(strings.ToUpper(string(capability)), "CAP_"))
			c.need(!baselineCapabilities[name], fmt.Sprintf("%s.capabilities.add[%d]", path, i), "capability "+string(capability)+" beyond the default set", synccontext.AllowCapabilities)
		}
	}
	c.confinement(path, sc.SeccompProfile, sc.AppArmorProfile, sc.SELinuxOptions, sc.WindowsOptions)
}

func (c *checker) volume(path string, v *corev1.Volume) {
	goName, jsonName := setField(v.VolumeSource)
	kind, known := volumeKinds[goName]
	switch {
	case !known:
		c.need(true, path, fmt.Sprintf("volume source %q is unknown to the syncer", jsonName), "")
	case kind == volumeHostPath:
		c.need(true, path+".hostPath", "mounts a path of the host node", synccontext.AllowHostPath)
	case kind == volumeInfrastructure:
		c.need(true, path+"."+jsonName, "names storage outside the cluster directly", synccontext.AllowInfrastructureVolumes)
	}
	if p := v.Projected; p != nil {
		for i := range p.Sources {
			goName, jsonName := setField(p.Sources[i])
			what := fmt.Sprintf("projected source %q", jsonName)
			switch goName {
			case "ServiceAccountToken":
				what = "a service account token: on the host it would be a token of the host namespace's service account"
			case "ClusterTrustBundle", "PodCertificate":
				what += " reads or signs with the host cluster's objects"
			}
			c.need(!projectionPasses[goName], fmt.Sprintf("%s.projected.sources[%d].%s", path, i, jsonName), what, "")
		}
	}
	if e := v.Ephemeral; e != nil && e.VolumeClaimTemplate != nil {
		s := e.VolumeClaimTemplate.Spec
		c.need(s.DataSource != nil || s.DataSourceRef != nil, path+".ephemeral.volumeClaimTemplate.spec.dataSource", "clones a host volume or snapshot by name", "")
	}
}
