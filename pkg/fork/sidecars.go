package fork

import (
	"encoding/json"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// Annotations that service meshes and secret injectors put on the pods their
// admission webhooks changed. A child created from such a parent's spec would
// carry the injected containers and volumes and then be injected again (two
// proxies, duplicate volume names, a rejected pod) or never complete (a proxy
// that keeps running).
const (
	// annotationIstioStatus is Istio's record of what it injected: JSON with
	// "containers", "initContainers" and "volumes".
	annotationIstioStatus = "sidecar.istio.io/status"
	// annotationLinkerdProxyVersion is set by Linkerd's proxy injector.
	annotationLinkerdProxyVersion = "linkerd.io/proxy-version"
	// annotationVaultInjectStatus is "injected" once Vault's agent injector ran.
	annotationVaultInjectStatus = "vault.hashicorp.com/agent-inject-status"
)

// Dropped is a container or volume that fork left out of the child.
type Dropped struct {
	// Kind is "container", "initContainer" or "volume".
	Kind string `json:"kind"`
	// Name is the container's or volume's name.
	Name string `json:"name"`
	// Reason says why: "istio", "linkerd", "vault", "native sidecar",
	// "Options.DropContainers" or "used only by dropped containers".
	Reason string `json:"reason"`
}

// injected lists what the parent's annotations say a webhook injected:
// container and init container names, and volume names, each with a reason.
func injected(parent *corev1.Pod) (containers, volumes map[string]string) {
	containers, volumes = map[string]string{}, map[string]string{}
	ann := parent.Annotations
	if s, ok := ann[annotationIstioStatus]; ok {
		var st struct {
			Containers     []string `json:"containers"`
			InitContainers []string `json:"initContainers"`
			Volumes        []string `json:"volumes"`
		}
		if json.Unmarshal([]byte(s), &st) == nil {
			for _, n := range slices.Concat(st.Containers, st.InitContainers) {
				containers[n] = "istio"
			}
			for _, n := range st.Volumes {
				volumes[n] = "istio"
			}
		}
		// The names Istio has always used, in case the record is unreadable.
		containers["istio-proxy"], containers["istio-init"], containers["istio-validation"] = "istio", "istio", "istio"
	}
	if _, ok := ann[annotationLinkerdProxyVersion]; ok {
		for _, n := range []string{"linkerd-proxy", "linkerd-init", "linkerd-network-validator"} {
			containers[n] = "linkerd"
		}
		for _, n := range []string{"linkerd-identity-end-entity", "linkerd-proxy-init-xtables-lock", "linkerd-identity-token"} {
			volumes[n] = "linkerd"
		}
	}
	if ann[annotationVaultInjectStatus] == "injected" {
		for _, n := range []string{"vault-agent", "vault-agent-init"} {
			containers[n] = "vault"
		}
		for _, n := range []string{"vault-secrets", "home-init", "home-sidecar"} {
			volumes[n] = "vault"
		}
	}
	return containers, volumes
}

// dropSidecars removes from spec the sidecars and volumes that must not be
// copied into a child: what webhooks injected (see the annotations above) and
// native sidecars (init containers with restartPolicy Always), unless
// keepDetected; and the containers named in drop, always. Volumes a webhook
// injected, and volumes that only dropped containers mounted, go too, with
// every mount of them. It returns what it removed, sorted.
func dropSidecars(spec *corev1.PodSpec, parent *corev1.Pod, keepDetected bool, drop []string) []Dropped {
	containers, volumes := map[string]string{}, map[string]string{}
	if !keepDetected {
		containers, volumes = injected(parent)
		for _, c := range spec.InitContainers {
			if _, ok := containers[c.Name]; !ok && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				containers[c.Name] = "native sidecar"
			}
		}
	}
	for _, n := range drop {
		containers[n] = "Options.DropContainers"
	}
	var out []Dropped
	usedByKept, usedByDropped := map[string]bool{}, map[string]bool{}
	filter := func(cs []corev1.Container, kind string) []corev1.Container {
		return slices.DeleteFunc(cs, func(c corev1.Container) bool {
			reason, gone := containers[c.Name]
			for _, m := range c.VolumeMounts {
				if gone {
					usedByDropped[m.Name] = true
				} else {
					usedByKept[m.Name] = true
				}
			}
			if gone {
				out = append(out, Dropped{Kind: kind, Name: c.Name, Reason: reason})
			}
			return gone
		})
	}
	spec.InitContainers = filter(spec.InitContainers, "initContainer")
	spec.Containers = filter(spec.Containers, "container")
	for n := range usedByDropped {
		if _, ok := volumes[n]; !ok && !usedByKept[n] {
			volumes[n] = "used only by dropped containers"
		}
	}
	spec.Volumes = slices.DeleteFunc(spec.Volumes, func(v corev1.Volume) bool {
		reason, gone := volumes[v.Name]
		if gone {
			out = append(out, Dropped{Kind: "volume", Name: v.Name, Reason: reason})
		}
		return gone
	})
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			cs[i].VolumeMounts = slices.DeleteFunc(cs[i].VolumeMounts, func(m corev1.VolumeMount) bool {
				_, gone := volumes[m.Name]
				return gone
			})
			if len(cs[i].VolumeMounts) == 0 {
				cs[i].VolumeMounts = nil
			}
		}
	}
	if len(spec.InitContainers) == 0 {
		spec.InitContainers = nil
	}
	if len(spec.Volumes) == 0 {
		spec.Volumes = nil
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// dropHostPorts clears every hostPort (and its hostIP): a child on the same
// node as its parent could not be scheduled, and a fork never needs the
// parent's node ports.
func dropHostPorts(spec *corev1.PodSpec) {
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			for j := range cs[i].Ports {
				cs[i].Ports[j].HostPort = 0
				cs[i].Ports[j].HostIP = ""
			}
		}
	}
}
