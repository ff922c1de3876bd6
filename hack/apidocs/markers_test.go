package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want markerArgs
		err  bool
	}{
		{in: "shortName=fw,categories=podkit", want: markerArgs{{"shortName", "fw"}, {"categories", "podkit"}}},
		{in: `rule="a, b",message="say \"no\", twice"`, want: markerArgs{{"rule", "a, b"}, {"message", `say "no", twice`}}},
		{in: "rule=`self == oldSelf`,message=x", want: markerArgs{{"rule", "self == oldSelf"}, {"message", "x"}}},
		{in: "default={a: 1, b: {c: 2}},x=y", want: markerArgs{{"default", "{a: 1, b: {c: 2}}"}, {"x", "y"}}},
		{in: "a=", want: markerArgs{{"a", ""}}},
		{in: "status", err: true},
		{in: `rule="unterminated`, err: true},
		{in: `rule="x"y`, err: true},
		{in: "a={b", err: true},
		{in: "a=`b", err: true},
	} {
		got, err := parseArgs(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("parseArgs(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(markerArg{})); !tc.err && diff != "" {
			t.Errorf("parseArgs(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestSplitDocSeparatesMarkers(t *testing.T) {
	doc, ms := splitDoc("Size is big.\n+optional\n  +kubebuilder:validation:Minimum=0\nMore prose.\n")
	if doc != "Size is big.\nMore prose." {
		t.Errorf("doc = %q", doc)
	}
	if diff := cmp.Diff(markers{"optional", "kubebuilder:validation:Minimum=0"}, ms); diff != "" {
		t.Errorf("markers (-want +got):\n%s", diff)
	}
	if !ms.has("optional") || ms.has("required") {
		t.Errorf("has: optional=%v required=%v", ms.has("optional"), ms.has("required"))
	}
	if v, ok := ms.value("kubebuilder:validation:Minimum"); !ok || v != "0" {
		t.Errorf("value(Minimum) = %q, %v", v, ok)
	}
}

func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"shortName=fw,categories=podkit",
		`rule="self.size > 0",message="no \"parts\"",fieldPath=".parts"`,
		"rule=`x`,default={a: {b: 1}}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := parseArgs(s)
		if err != nil {
			return
		}
		for _, a := range args {
			if a.key == "" {
				t.Errorf("parseArgs(%q) returned an empty key", s)
			}
		}
	})
}
