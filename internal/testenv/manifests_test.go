package testenv

import (
	"strings"
	"testing"
)

func TestDecodeManifestsReadsEveryObjectInOrder(t *testing.T) {
	objs, err := DecodeManifests([]byte(`# a comment only
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: a}
---
---
{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}
---
apiVersion: v1
kind: Secret
metadata:
  name: c
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	if want := "ServiceAccount/a ConfigMap/b Secret/c"; strings.Join(got, " ") != want {
		t.Errorf("objects %v, want %s", got, want)
	}
	if _, err := DecodeManifests([]byte("apiVersion: v1\nkind: ConfigMap\n---\nmetadata: {name: x}\n")); err == nil || !strings.Contains(err.Error(), "document 1") {
		t.Errorf("object without kind: err = %v, want one naming document 1", err)
	}
	if _, err := DecodeManifests([]byte("apiVersion: v1\nkind: [\n")); err == nil {
		t.Error("broken YAML decoded without error")
	}
}
