package podoperator

import (
	"sync"
	"unique"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podkit-dev/podkit/pkg/podoperator/internal/deepeq"
)

// NoTransform keeps pods exactly as received. Set it as Options.Transform to
// opt out of the default transform.
func NoTransform(obj any) (any, error) { return obj, nil }

const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// StripTransform drops what handlers rarely need and what is often the
// largest part of a cached pod: metadata.managedFields and the
// kubectl.kubernetes.io/last-applied-configuration annotation. It modifies
// the object in place, which is safe because the informer calls it on
// freshly decoded objects only.
func StripTransform(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	// Write only what is there: a pod that has been through here once may
	// come again (see NewDefaultTransform) with maps shared with the cache.
	if pod.ManagedFields != nil {
		pod.ManagedFields = nil
	}
	if _, ok := pod.Annotations[lastAppliedAnnotation]; ok {
		delete(pod.Annotations, lastAppliedAnnotation)
	}
	return pod, nil
}

// NewDefaultTransform returns the transform New uses when Options.Transform
// is nil. It applies StripTransform, then makes cached pods share what is
// identical between them: pods stamped from one template carry equal
// containers, labels, owner references, tolerations, affinity and so on, and
// each decoded copy would otherwise hold its own maps, slices and strings.
// Equal parts are replaced with one shared instance, and common strings are
// interned.
//
// Its work is proportional to what it saves: a part is looked up by a hash
// of its fields and compared field by field with the one instance it may be
// replaced with, so a part that is shared costs one walk over it more than
// its hash, and a part seen for the first time costs its hash. Nothing is
// encoded or allocated for a part that is already shared.
//
// client-go's watch-list sync hands each object to the transform twice (into
// its temporary store, then again in the FIFO's Replace); a pod whose
// containers are already a shared instance has been here and is returned
// as is, without writing to it or to the parts it shares.
//
// Shared parts are only safe because cached objects are read-only, which
// the informer contract already requires: never modify a pod from a handler
// or the Lister; DeepCopy it first (a deep copy owns all its parts).
//
// Each returned function has its own table of shared parts, bounded in
// size; it is safe for concurrent use.
func NewDefaultTransform() func(obj any) (any, error) {
	s := newSharer()
	return func(obj any) (any, error) {
		obj, _ = StripTransform(obj)
		if pod, ok := obj.(*corev1.Pod); ok {
			s.pod(pod)
		}
		return obj, nil
	}
}

// maxShared bounds the sharer's table; when full it starts over, so parts no
// pod uses any more are not kept forever.
const maxShared = 8192

// sharer dedupes pod parts: the table maps a part's kind and hash to the
// instance pods share; a candidate found there is shared only when it is
// equal field by field.
type sharer struct {
	mu     sync.Mutex
	table  map[shareKey]any
	values map[any]any
	// shared holds the first element of every shared slice in the table,
	// so a pod seen twice is known by its containers.
	shared map[unsafe.Pointer]struct{}

	strings         *deepeq.Plan[string]
	stringMaps      *deepeq.Plan[map[string]string]
	ownerRefs       *deepeq.Plan[metav1.OwnerReference]
	containers      *deepeq.Plan[corev1.Container]
	ephemerals      *deepeq.Plan[corev1.EphemeralContainer]
	volumes         *deepeq.Plan[corev1.Volume]
	tolerations     *deepeq.Plan[corev1.Toleration]
	pullSecrets     *deepeq.Plan[corev1.LocalObjectReference]
	spreads         *deepeq.Plan[corev1.TopologySpreadConstraint]
	readinessGates  *deepeq.Plan[corev1.PodReadinessGate]
	affinity        *deepeq.Plan[corev1.Affinity]
	securityContext *deepeq.Plan[corev1.PodSecurityContext]
	dnsConfig       *deepeq.Plan[corev1.PodDNSConfig]
}

// shareKey names a part in the table: what kind of part, and its hash.
type shareKey struct {
	kind byte
	hash uint64
}

func newSharer() *sharer {
	return &sharer{
		table:           make(map[shareKey]any),
		values:          make(map[any]any),
		shared:          make(map[unsafe.Pointer]struct{}),
		strings:         deepeq.New[string](),
		stringMaps:      deepeq.New[map[string]string](),
		ownerRefs:       deepeq.New[metav1.OwnerReference](),
		containers:      deepeq.New[corev1.Container](),
		ephemerals:      deepeq.New[corev1.EphemeralContainer](),
		volumes:         deepeq.New[corev1.Volume](),
		tolerations:     deepeq.New[corev1.Toleration](),
		pullSecrets:     deepeq.New[corev1.LocalObjectReference](),
		spreads:         deepeq.New[corev1.TopologySpreadConstraint](),
		readinessGates:  deepeq.New[corev1.PodReadinessGate](),
		affinity:        deepeq.New[corev1.Affinity](),
		securityContext: deepeq.New[corev1.PodSecurityContext](),
		dnsConfig:       deepeq.New[corev1.PodDNSConfig](),
	}
}

func (s *sharer) pod(p *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p.Spec.Containers) > 0 {
		if _, ok := s.shared[unsafe.Pointer(&p.Spec.Containers[0])]; ok {
			return // shared on a first pass
		}
	}

	m := &p.ObjectMeta
	str(&m.Namespace)
	str(&m.GenerateName)
	m.Labels = shareMap(s, 'l', m.Labels)
	m.Annotations = shareMap(s, 'a', m.Annotations)
	m.OwnerReferences = shareSlice(s, 'o', s.ownerRefs, m.OwnerReferences)
	m.Finalizers = shareSlice(s, 'f', s.strings, m.Finalizers)

	sp := &p.Spec
	sp.Containers = shareSlice(s, 'c', s.containers, sp.Containers)
	sp.InitContainers = shareSlice(s, 'c', s.containers, sp.InitContainers)
	sp.EphemeralContainers = shareSlice(s, 'e', s.ephemerals, sp.EphemeralContainers)
	sp.Volumes = shareSlice(s, 'v', s.volumes, sp.Volumes)
	sp.Tolerations = shareSlice(s, 't', s.tolerations, sp.Tolerations)
	sp.ImagePullSecrets = shareSlice(s, 'i', s.pullSecrets, sp.ImagePullSecrets)
	sp.TopologySpreadConstraints = shareSlice(s, 's', s.spreads, sp.TopologySpreadConstraints)
	sp.ReadinessGates = shareSlice(s, 'r', s.readinessGates, sp.ReadinessGates)
	sp.NodeSelector = shareMap(s, 'n', sp.NodeSelector)
	sp.Affinity = sharePtr(s, 'A', s.affinity, sp.Affinity)
	sp.SecurityContext = sharePtr(s, 'S', s.securityContext, sp.SecurityContext)
	sp.DNSConfig = sharePtr(s, 'D', s.dnsConfig, sp.DNSConfig)
	sp.TerminationGracePeriodSeconds = shareValue(s, sp.TerminationGracePeriodSeconds)
	sp.Priority = shareValue(s, sp.Priority)
	sp.EnableServiceLinks = shareValue(s, sp.EnableServiceLinks)
	sp.PreemptionPolicy = shareValue(s, sp.PreemptionPolicy)
	str(&sp.NodeName)
	str(&sp.ServiceAccountName)
	str(&sp.DeprecatedServiceAccount)
	str(&sp.SchedulerName)
	str(&sp.PriorityClassName)
	str(&sp.Subdomain)
	strT(&sp.RestartPolicy)
	strT(&sp.DNSPolicy)

	st := &p.Status
	strT(&st.Phase)
	strT(&st.QOSClass)
	str(&st.HostIP)
	str(&st.NominatedNodeName)
	str(&st.Reason)
	for i := range st.Conditions {
		c := &st.Conditions[i]
		strT(&c.Type)
		strT(&c.Status)
		str(&c.Reason)
	}
	for _, list := range [][]corev1.ContainerStatus{st.ContainerStatuses, st.InitContainerStatuses, st.EphemeralContainerStatuses} {
		for i := range list {
			cs := &list[i]
			str(&cs.Name)
			str(&cs.Image)
			str(&cs.ImageID)
		}
	}
}

// store makes v the shared instance for k, replacing any other.
func (s *sharer) store(k shareKey, v any) {
	if len(s.table) >= maxShared || len(s.shared) >= maxShared {
		clear(s.table)
		clear(s.shared)
	}
	s.table[k] = v
}

func shareSlice[T any](s *sharer, kind byte, plan *deepeq.Plan[T], items []T) []T {
	if len(items) == 0 {
		return items
	}
	k := shareKey{kind, plan.HashSlice(items)}
	if cur, ok := s.table[k].([]T); ok && plan.EqualSlices(cur, items) {
		return cur
	}
	s.store(k, items)
	s.shared[unsafe.Pointer(&items[0])] = struct{}{}
	return items
}

func sharePtr[T any](s *sharer, kind byte, plan *deepeq.Plan[T], p *T) *T {
	if p == nil {
		return nil
	}
	k := shareKey{kind, plan.Hash(p)}
	if cur, ok := s.table[k].(*T); ok && plan.Equal(cur, p) {
		return cur
	}
	s.store(k, p)
	return p
}

// shareMap shares string maps (labels, annotations, node selectors); a map
// that becomes the shared one gets its keys and values interned.
func shareMap(s *sharer, kind byte, m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	k := shareKey{kind, s.stringMaps.Hash(&m)}
	if cur, ok := s.table[k].(map[string]string); ok && s.stringMaps.Equal(&cur, &m) {
		return cur
	}
	interned := make(map[string]string, len(m))
	for k, v := range m {
		interned[unique.Make(k).Value()] = unique.Make(v).Value()
	}
	s.store(k, interned)
	return interned
}

// shareValue shares small pointer fields (*int64, *bool, …) by value.
func shareValue[T comparable](s *sharer, p *T) *T {
	if p == nil {
		return nil
	}
	if cur, ok := s.values[*p].(*T); ok {
		return cur
	}
	if len(s.values) >= maxShared {
		clear(s.values)
	}
	s.values[*p] = p
	return p
}

func str(p *string) {
	if *p != "" {
		*p = unique.Make(*p).Value()
	}
}

func strT[T ~string](p *T) {
	if *p != "" {
		*p = T(unique.Make(string(*p)).Value())
	}
}
