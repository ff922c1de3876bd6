package podoperator

import (
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"sync"
	"unique"

	corev1 "k8s.io/api/core/v1"
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
	pod.ManagedFields = nil
	delete(pod.Annotations, lastAppliedAnnotation)
	return pod, nil
}

// NewDefaultTransform returns the transform New uses when Options.Transform
// is nil. It applies StripTransform, then makes cached pods share what is
// identical between them: pods stamped from one template carry equal
// containers, labels, owner references, tolerations, affinity and so on, and
// each decoded copy would otherwise hold its own maps, slices and strings.
// Equal parts (compared by their protobuf encoding) are replaced with one
// shared instance, and common strings are interned.
//
// Shared parts are only safe because cached objects are read-only, which
// the informer contract already requires: never modify a pod from a handler
// or the Lister; DeepCopy it first (a deep copy owns all its parts).
//
// Each returned function has its own table of shared parts, bounded in
// size; it is safe for concurrent use.
func NewDefaultTransform() func(obj any) (any, error) {
	s := &sharer{table: make(map[[sha256.Size]byte]any), values: make(map[any]any)}
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

// sharer dedupes pod parts by the SHA-256 of their encoding.
type sharer struct {
	mu      sync.Mutex
	table   map[[sha256.Size]byte]any
	values  map[any]any
	scratch []byte
}

// marshaler is what gogo-protobuf generates for every API type.
type marshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

func (s *sharer) pod(p *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()

	m := &p.ObjectMeta
	str(&m.Namespace)
	str(&m.GenerateName)
	m.Labels = shareMap(s, 'l', m.Labels)
	m.Annotations = shareMap(s, 'a', m.Annotations)
	m.OwnerReferences = shareSlice(s, 'o', m.OwnerReferences)
	m.Finalizers = shareStrings(s, 'f', m.Finalizers)

	sp := &p.Spec
	sp.Containers = shareSlice(s, 'c', sp.Containers)
	sp.InitContainers = shareSlice(s, 'c', sp.InitContainers)
	sp.EphemeralContainers = shareSlice(s, 'e', sp.EphemeralContainers)
	sp.Volumes = shareSlice(s, 'v', sp.Volumes)
	sp.Tolerations = shareSlice(s, 't', sp.Tolerations)
	sp.ImagePullSecrets = shareSlice(s, 'i', sp.ImagePullSecrets)
	sp.TopologySpreadConstraints = shareSlice(s, 's', sp.TopologySpreadConstraints)
	sp.ReadinessGates = shareSlice(s, 'r', sp.ReadinessGates)
	sp.NodeSelector = shareMap(s, 'n', sp.NodeSelector)
	sp.Affinity = sharePtr(s, 'A', sp.Affinity)
	sp.SecurityContext = sharePtr(s, 'S', sp.SecurityContext)
	sp.DNSConfig = sharePtr(s, 'D', sp.DNSConfig)
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

// key hashes a kind tag and the encodings of items.
func key[T any, PT interface {
	*T
	marshaler
}](s *sharer, kind byte, items []T) ([sha256.Size]byte, bool) {
	buf := append(s.scratch[:0], kind)
	for i := range items {
		m := PT(&items[i])
		n := m.Size()
		buf = binary.AppendUvarint(buf, uint64(n))
		start := len(buf)
		buf = slices.Grow(buf, n)[:start+n]
		if _, err := m.MarshalToSizedBuffer(buf[start:]); err != nil {
			return [sha256.Size]byte{}, false
		}
	}
	s.scratch = buf
	return sha256.Sum256(buf), true
}

// lookup returns the shared instance for k, or stores v as the shared one.
func lookup[V any](s *sharer, k [sha256.Size]byte, v V) V {
	if cur, ok := s.table[k].(V); ok {
		return cur
	}
	if len(s.table) >= maxShared {
		clear(s.table)
	}
	s.table[k] = v
	return v
}

func shareSlice[T any, PT interface {
	*T
	marshaler
}](s *sharer, kind byte, items []T) []T {
	if len(items) == 0 {
		return items
	}
	k, ok := key[T, PT](s, kind, items)
	if !ok {
		return items
	}
	return lookup(s, k, items)
}

func sharePtr[T any, PT interface {
	*T
	marshaler
}](s *sharer, kind byte, p PT) PT {
	if p == nil {
		return nil
	}
	k, ok := key[T, PT](s, kind, []T{*p})
	if !ok {
		return p
	}
	return lookup(s, k, p)
}

// shareMap shares string maps (labels, annotations, node selectors) and
// interns their keys and values.
func shareMap(s *sharer, kind byte, m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	buf := append(s.scratch[:0], kind)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		buf = binary.AppendUvarint(buf, uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(m[k])))
		buf = append(buf, m[k]...)
	}
	s.scratch = buf
	h := sha256.Sum256(buf)
	if cur, ok := s.table[h].(map[string]string); ok {
		return cur
	}
	interned := make(map[string]string, len(m))
	for k, v := range m {
		interned[unique.Make(k).Value()] = unique.Make(v).Value()
	}
	return lookup(s, h, interned)
}

func shareStrings(s *sharer, kind byte, list []string) []string {
	if len(list) == 0 {
		return list
	}
	buf := append(s.scratch[:0], kind)
	for _, v := range list {
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
	}
	s.scratch = buf
	return lookup(s, sha256.Sum256(buf), list)
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
