package deepeq_test

import (
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podkit-dev/podkit/pkg/podoperator/internal/deepeq"
)

// fill sets every exported field reachable from v to a non-zero value:
// pointers allocated, slices and maps with one element.
func fill(v reflect.Value, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), depth+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), depth+1)
	case reflect.Map:
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, depth+1)
		fill(e, depth+1)
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(k, e)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[resource.Quantity]() {
			v.Set(reflect.ValueOf(resource.MustParse("100m")))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	}
}

// eachChange changes every exported leaf of v in turn (and every pointer,
// slice and map to nil), calls check with its path, and undoes the change.
func eachChange(v reflect.Value, path string, check func(path string)) {
	try := func(path string, change func()) {
		old := reflect.New(v.Type()).Elem()
		old.Set(v)
		change()
		check(path)
		v.Set(old)
	}
	switch v.Kind() {
	case reflect.String:
		try(path, func() { v.SetString(v.String() + "x") })
	case reflect.Bool:
		try(path, func() { v.SetBool(!v.Bool()) })
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		try(path, func() { v.SetInt(v.Int() + 1) })
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		try(path, func() { v.SetUint(v.Uint() + 1) })
	case reflect.Float32, reflect.Float64:
		try(path, func() { v.SetFloat(v.Float() + 1) })
	case reflect.Pointer, reflect.Slice, reflect.Map:
		if v.IsNil() {
			return
		}
		try(path+" = nil", func() { v.Set(reflect.Zero(v.Type())) })
		switch v.Kind() {
		case reflect.Pointer:
			eachChange(v.Elem(), path, check)
		case reflect.Slice:
			for i := range v.Len() {
				eachChange(v.Index(i), fmt.Sprintf("%s[%d]", path, i), check)
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				e := reflect.New(v.Type().Elem()).Elem()
				e.Set(v.MapIndex(k))
				eachChange(e, fmt.Sprintf("%s[%v]", path, k), func(p string) {
					v.SetMapIndex(k, e)
					check(p)
				})
				v.SetMapIndex(k, e)
			}
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[resource.Quantity]() {
			try(path, func() { v.Set(reflect.ValueOf(resource.MustParse("200m"))) })
			return
		}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				eachChange(v.Field(i), path+"."+f.Name, check)
			}
		}
	}
}

func TestEqualNoticesAChangeToAnyFieldOfAPod(t *testing.T) {
	plan := deepeq.New[corev1.Pod]()
	var full corev1.Pod
	fill(reflect.ValueOf(&full).Elem(), 0)
	changed := full.DeepCopy()
	if !plan.Equal(&full, changed) || plan.Hash(&full) != plan.Hash(changed) {
		t.Fatal("a filled pod and its deep copy are not Equal with equal hashes")
	}
	changes := 0
	eachChange(reflect.ValueOf(changed).Elem(), "pod", func(path string) {
		changes++
		if plan.Equal(&full, changed) || plan.Equal(changed, &full) {
			t.Errorf("Equal after changing %s", path)
		}
	})
	if !plan.Equal(&full, changed) {
		t.Fatal("the changes were not all undone")
	}
	if changes < 1000 {
		t.Fatalf("only %d changes; the fill does not reach the whole pod", changes)
	}
	t.Logf("%d changes", changes)
}

func TestEqualTellsNilFromEmptyAndComparesQuantitiesByValue(t *testing.T) {
	plan := deepeq.New[corev1.Container]()
	for _, tc := range []struct {
		name string
		a, b corev1.Container
		want bool
	}{
		{"nil and empty args", corev1.Container{Args: nil}, corev1.Container{Args: []string{}}, false},
		{"nil and empty env", corev1.Container{Env: nil}, corev1.Container{Env: []corev1.EnvVar{}}, false},
		{"nil and empty limits", corev1.Container{Resources: corev1.ResourceRequirements{}},
			corev1.Container{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{}}}, false},
		{"same quantities parsed twice",
			corev1.Container{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1.5Gi")}}},
			corev1.Container{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1.5Gi")}}}, true},
		{"different quantities",
			corev1.Container{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}},
			corev1.Container{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}}, false},
		{"different resource names",
			corev1.Container{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1")}}},
			corev1.Container{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := plan.Equal(&tc.a, &tc.b); got != tc.want {
				t.Errorf("Equal = %v, want %v", got, tc.want)
			}
			if tc.want && plan.Hash(&tc.a) != plan.Hash(&tc.b) {
				t.Error("Equal values hash differently")
			}
		})
	}
}

func TestSlicesCompareByLengthNilnessAndElements(t *testing.T) {
	plan := deepeq.New[corev1.Toleration]()
	a := []corev1.Toleration{{Key: "a"}, {Key: "b"}}
	for _, tc := range []struct {
		name string
		b    []corev1.Toleration
		want bool
	}{
		{"copy", []corev1.Toleration{{Key: "a"}, {Key: "b"}}, true},
		{"shorter", a[:1], false},
		{"other order", []corev1.Toleration{{Key: "b"}, {Key: "a"}}, false},
		{"nil", nil, false},
	} {
		if got := plan.EqualSlices(a, tc.b); got != tc.want {
			t.Errorf("%s: EqualSlices = %v, want %v", tc.name, got, tc.want)
		}
		if tc.want && plan.HashSlice(a) != plan.HashSlice(tc.b) {
			t.Errorf("%s: equal slices hash differently", tc.name)
		}
	}
	if !plan.EqualSlices(nil, nil) || plan.EqualSlices(nil, []corev1.Toleration{}) {
		t.Error("nil slices: want nil == nil and nil != empty")
	}
}
