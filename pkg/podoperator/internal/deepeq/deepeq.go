package deepeq

import (
	"hash/maphash"
	"math"
	"math/bits"
	"reflect"
	"unsafe"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Plan compares and hashes values of type T. Build it once with New; it is
// read-only afterwards and safe for concurrent use.
type Plan[T any] struct {
	n    *node
	seed maphash.Seed
}

// New builds the plan for T.
func New[T any]() *Plan[T] {
	b := builder{seen: map[reflect.Type]*node{}}
	return &Plan[T]{n: b.node(reflect.TypeFor[T]()), seed: maphash.MakeSeed()}
}

// Equal reports whether *a and *b hold the same values: same scalars and
// strings, same nil-ness of pointers, slices and maps, and equal elements.
func (p *Plan[T]) Equal(a, b *T) bool {
	return p.n.eq(unsafe.Pointer(a), unsafe.Pointer(b))
}

// Hash returns a hash of *v; Equal values have equal hashes.
func (p *Plan[T]) Hash(v *T) uint64 {
	return p.n.hash(p.seed, 0, unsafe.Pointer(v))
}

// EqualSlices reports whether a and b have the same nil-ness, length and
// Equal elements.
func (p *Plan[T]) EqualSlices(a, b []T) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if !p.Equal(&a[i], &b[i]) {
			return false
		}
	}
	return true
}

// HashSlice returns a hash of s; EqualSlices slices have equal hashes.
func (p *Plan[T]) HashSlice(s []T) uint64 {
	h := mix(0, uint64(len(s)))
	for i := range s {
		h = p.n.hash(p.seed, h, unsafe.Pointer(&s[i]))
	}
	return h
}

// node is the plan for one type: eq compares two values at a and b, hash
// folds the value at p into h.
type node struct {
	eq   func(a, b unsafe.Pointer) bool
	hash func(seed maphash.Seed, h uint64, p unsafe.Pointer) uint64
}

func mix(h, v uint64) uint64 {
	hi, lo := bits.Mul64(h^v^0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9)
	return hi ^ lo
}

type builder struct {
	seen map[reflect.Type]*node
}

func (b *builder) node(t reflect.Type) *node {
	if n, ok := b.seen[t]; ok {
		return n // filled in by the caller up the stack for recursive types
	}
	n := &node{}
	b.seen[t] = n
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		// Floats compare by their bits: equal bits are the same value.
		b.scalarNode(n, t.Size())
	case reflect.String:
		n.eq = func(a, b unsafe.Pointer) bool { return *(*string)(a) == *(*string)(b) }
		n.hash = func(seed maphash.Seed, h uint64, p unsafe.Pointer) uint64 {
			return mix(h, maphash.String(seed, *(*string)(p)))
		}
	case reflect.Pointer:
		elem := b.node(t.Elem())
		n.eq = func(a, b unsafe.Pointer) bool {
			pa, pb := *(*unsafe.Pointer)(a), *(*unsafe.Pointer)(b)
			if pa == nil || pb == nil {
				return pa == pb
			}
			return pa == pb || elem.eq(pa, pb)
		}
		n.hash = func(seed maphash.Seed, h uint64, p unsafe.Pointer) uint64 {
			if pp := *(*unsafe.Pointer)(p); pp != nil {
				return elem.hash(seed, mix(h, 1), pp)
			}
			return mix(h, 0)
		}
	case reflect.Slice:
		elem, size := b.node(t.Elem()), t.Elem().Size()
		n.eq = func(a, b unsafe.Pointer) bool {
			sa, sb := (*sliceHeader)(a), (*sliceHeader)(b)
			if sa.len != sb.len || (sa.data == nil) != (sb.data == nil) {
				return false
			}
			if sa.data == sb.data {
				return true
			}
			for i := range uintptr(sa.len) {
				if !elem.eq(unsafe.Add(sa.data, i*size), unsafe.Add(sb.data, i*size)) {
					return false
				}
			}
			return true
		}
		n.hash = func(seed maphash.Seed, h uint64, p unsafe.Pointer) uint64 {
			s := (*sliceHeader)(p)
			h = mix(h, uint64(s.len))
			for i := range uintptr(s.len) {
				h = elem.hash(seed, h, unsafe.Add(s.data, i*size))
			}
			return h
		}
	case reflect.Array:
		elem, size, length := b.node(t.Elem()), t.Elem().Size(), uintptr(t.Len())
		n.eq = func(a, b unsafe.Pointer) bool {
			for i := range length {
				if !elem.eq(unsafe.Add(a, i*size), unsafe.Add(b, i*size)) {
					return false
				}
			}
			return true
		}
		n.hash = func(seed maphash.Seed, h uint64, p unsafe.Pointer) uint64 {
			for i := range length {
				h = elem.hash(seed, h, unsafe.Add(p, i*size))
			}
			return h
		}
	case reflect.Struct:
		type field struct {
			off uintptr
			n   *node
		}
		var fields []field
		for i := range t.NumField() {
			if f := t.Field(i); f.Type.Size() > 0 {
				fields = append(fields, field{f.Offset, b.node(f.Type)})
			}
		}
		n.eq = func(a, b unsafe.Pointer) bool {
			for _, f := range fields {
				if !f.n.eq(unsafe.Add(a, f.off), unsafe.Add(b, f.off)) {
					return false
				}
			}
			return true
		}
		n.hash = func(seed maphash.Seed, h uint64, p unsafe.Pointer) uint64 {
			for _, f := range fields {
				h = f.n.hash(seed, h, unsafe.Add(p, f.off))
			}
			return h
		}
	case reflect.Map:
		b.mapNode(n, t)
	default:
		// Interfaces, channels, functions: equal only when both are
		// zero, which API types never need more of.
		zero := func(p unsafe.Pointer) bool { return reflect.NewAt(t, p).Elem().IsZero() }
		n.eq = func(a, b unsafe.Pointer) bool { return zero(a) && zero(b) }
		n.hash = func(_ maphash.Seed, h uint64, _ unsafe.Pointer) uint64 { return h }
	}
	return n
}

func (b *builder) scalarNode(n *node, size uintptr) {
	switch size {
	case 1:
		n.eq = func(a, b unsafe.Pointer) bool { return *(*uint8)(a) == *(*uint8)(b) }
		n.hash = func(_ maphash.Seed, h uint64, p unsafe.Pointer) uint64 { return mix(h, uint64(*(*uint8)(p))) }
	case 2:
		n.eq = func(a, b unsafe.Pointer) bool { return *(*uint16)(a) == *(*uint16)(b) }
		n.hash = func(_ maphash.Seed, h uint64, p unsafe.Pointer) uint64 { return mix(h, uint64(*(*uint16)(p))) }
	case 4:
		n.eq = func(a, b unsafe.Pointer) bool { return *(*uint32)(a) == *(*uint32)(b) }
		n.hash = func(_ maphash.Seed, h uint64, p unsafe.Pointer) uint64 { return mix(h, uint64(*(*uint32)(p))) }
	default:
		n.eq = func(a, b unsafe.Pointer) bool { return *(*uint64)(a) == *(*uint64)(b) }
		n.hash = func(_ maphash.Seed, h uint64, p unsafe.Pointer) uint64 { return mix(h, *(*uint64)(p)) }
	}
}

type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// mapNode compares maps by length, nil-ness and a lookup of each key, and
// hashes them with an order-independent sum of their entries. Maps with
// string keys and values (labels, annotations, selectors) and
// ResourceLists take a path without reflection; other maps go through
// reflect, which is slower.
func (b *builder) mapNode(n *node, t reflect.Type) {
	if t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String {
		// Same layout and hashing as map[string]string for any named
		// string key and value types.
		n.eq = func(a, b unsafe.Pointer) bool {
			ma, mb := *(*map[string]string)(a), *(*map[string]string)(b)
			if len(ma) != len(mb) || (ma == nil) != (mb == nil) {
				return false
			}
			for k, va := range ma {
				if vb, ok := mb[k]; !ok || va != vb {
					return false
				}
			}
			return true
		}
		n.hash = func(seed maphash.Seed, h uint64, p unsafe.Pointer) uint64 {
			m := *(*map[string]string)(p)
			var sum uint64
			for k, v := range m {
				sum += mix(maphash.String(seed, k), maphash.String(seed, v))
			}
			return mix(mix(h, uint64(len(m))), sum)
		}
		return
	}
	if t.Key().Kind() == reflect.String && t.Elem() == reflect.TypeFor[resource.Quantity]() {
		// ResourceList. Quantities that are == are equal; others (an
		// *inf.Dec each) are compared field by field.
		quantity := b.node(t.Elem())
		n.eq = func(a, b unsafe.Pointer) bool {
			ma, mb := *(*map[string]resource.Quantity)(a), *(*map[string]resource.Quantity)(b)
			if len(ma) != len(mb) || (ma == nil) != (mb == nil) {
				return false
			}
			var qa, qb *resource.Quantity // map values are not addressable
			for k, va := range ma {
				vb, ok := mb[k]
				if !ok {
					return false
				}
				if va == vb {
					continue
				}
				if qa == nil {
					qa, qb = new(resource.Quantity), new(resource.Quantity)
				}
				*qa, *qb = va, vb
				if !quantity.eq(unsafe.Pointer(qa), unsafe.Pointer(qb)) {
					return false
				}
			}
			return true
		}
		n.hash = func(seed maphash.Seed, h uint64, p unsafe.Pointer) uint64 {
			m := *(*map[string]resource.Quantity)(p)
			var sum uint64
			for k, v := range m {
				// Equal quantities have equal amounts; Equal checks the rest.
				sum += mix(maphash.String(seed, k), math.Float64bits(v.AsApproximateFloat64()))
			}
			return mix(mix(h, uint64(len(m))), sum)
		}
		return
	}
	key, elem := b.node(t.Key()), b.node(t.Elem())
	n.eq = func(a, b unsafe.Pointer) bool {
		ma, mb := reflect.NewAt(t, a).Elem(), reflect.NewAt(t, b).Elem()
		if ma.Len() != mb.Len() || ma.IsNil() != mb.IsNil() {
			return false
		}
		if ma.UnsafePointer() == mb.UnsafePointer() {
			return true
		}
		va, vb := reflect.New(t.Elem()).Elem(), reflect.New(t.Elem()).Elem()
		for it := ma.MapRange(); it.Next(); {
			v := mb.MapIndex(it.Key())
			if !v.IsValid() {
				return false
			}
			va.SetIterValue(it)
			vb.Set(v)
			if !elem.eq(va.Addr().UnsafePointer(), vb.Addr().UnsafePointer()) {
				return false
			}
		}
		return true
	}
	n.hash = func(seed maphash.Seed, h uint64, p unsafe.Pointer) uint64 {
		m := reflect.NewAt(t, p).Elem()
		k, v := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
		var sum uint64
		for it := m.MapRange(); it.Next(); {
			k.SetIterKey(it)
			v.SetIterValue(it)
			sum += mix(key.hash(seed, 0, k.Addr().UnsafePointer()), elem.hash(seed, 0, v.Addr().UnsafePointer()))
		}
		return mix(mix(h, uint64(m.Len())), sum)
	}
}
